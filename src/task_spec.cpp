#include <vigil/task_spec.hpp>

#include <fmt/format.h>
#include "text.hpp"

#include <stdexcept>

namespace vigil {

void validate(const task_spec& spec) {
  if (spec.name.empty())
    throw std::invalid_argument("vigil: task_spec.name must not be empty");
  const auto fail = [&](std::string_view field, const std::string& detail) {
    throw std::invalid_argument(
        fmt::format("vigil: task \"{}\": task_spec.{} {}", spec.name, field, detail));
  };
  if (spec.name.find('/') != std::string::npos)
    fail("name", "must not contain '/' (it separates the parts of nested task paths)");
  if (!spec.fn)
    fail("fn", "must be set (got an empty function)");
  if (static_cast<unsigned>(spec.restart) > static_cast<unsigned>(restart_policy::on_failure))
    fail("restart",
         fmt::format("is not a restart policy, got {}", static_cast<unsigned>(spec.restart)));
  if (spec.timeout && *spec.timeout <= duration::zero())
    fail("timeout", fmt::format("must be positive, got {}", detail::to_text(*spec.timeout)));
  if (spec.stall_timeout && *spec.stall_timeout <= duration::zero())
    fail("stall_timeout",
         fmt::format("must be positive, got {}", detail::to_text(*spec.stall_timeout)));
  if (spec.stop_grace < duration::zero())
    fail("stop_grace",
         fmt::format("must not be negative, got {}", detail::to_text(spec.stop_grace)));
  try {
    spec.backoff.validate();  // names no task: the message gets the name only when it throws
  } catch (const std::invalid_argument& e) {
    std::string_view what = e.what();  // "vigil: backoff.<field> <detail>"
    what.remove_prefix(std::string_view("vigil: ").size());
    throw std::invalid_argument(fmt::format("vigil: task \"{}\": task_spec.{}", spec.name, what));
  }
}

}  // namespace vigil
