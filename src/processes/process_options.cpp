#include <vigil/processes/process_options.hpp>

#include <fmt/format.h>

#include <stdexcept>

namespace vigil {
namespace {

[[noreturn]] void fail(const std::string& field, const std::string& what) {
  throw std::invalid_argument(fmt::format("process_options::{} {}", field, what));
}

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

}  // namespace

std::string_view to_string(output_stream stream) noexcept {
  return stream == output_stream::out ? "stdout" : "stderr";
}

void validate(const process_options& options) {
  if (options.argv.empty())
    fail("argv", "must name a program, got an empty argv");
  if (options.argv.front().empty())
    fail("argv", "must name a program, got an empty argv[0]");
  for (std::size_t i = 0; i < options.argv.size(); ++i)
    if (has_nul(options.argv[i]))
      fail(fmt::format("argv[{}]", i), "must not contain a NUL byte");
  for (const auto& [name, value] : options.env) {
    if (name.empty() || name.find('=') != std::string::npos || has_nul(name))
      fail("env", fmt::format("has an unusable variable name \"{}\"", name));
    if (has_nul(value))
      fail(fmt::format("env[{}]", name), "must not contain a NUL byte");
  }
  if (has_nul(options.cwd))
    fail("cwd", "must not contain a NUL byte");
  if (options.max_line == 0)
    fail("max_line", "must be positive, got 0");
}

}  // namespace vigil
