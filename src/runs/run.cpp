#include <vigil/runs/run.hpp>

#include <fmt/format.h>

#include <array>

namespace vigil {

namespace {
constexpr std::array<std::string_view, 5> labels = {"queued", "running", "completed", "failed",
                                                    "cancelled"};
}

std::string_view to_string(run_status status) noexcept {
  const auto index = static_cast<std::size_t>(status);
  return index < labels.size() ? labels[index] : std::string_view("unknown");
}

std::optional<run_status> run_status_from_string(std::string_view label) noexcept {
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] == label)
      return static_cast<run_status>(i);
  return std::nullopt;
}

invalid_transition::invalid_transition(std::string id, run_status from, run_status to)
    : std::logic_error(fmt::format("vigil: run '{}' cannot go from {} to {}", id, from, to)),
      id_(std::move(id)),
      from_(from),
      to_(to) {}

}  // namespace vigil
