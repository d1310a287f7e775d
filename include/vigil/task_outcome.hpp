#pragma once

/// @file
/// How a supervised task ended for good.

#include <vigil/detail/enum_formatter.hpp>

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace vigil {

/// The final result of a task, delivered once by `task_handle::wait()`.
///
/// Compare it with an outcome code directly: `outcome == vigil::task_outcome::completed`.
struct task_outcome {
  /// How the task ended.
  enum class code : std::uint8_t {
    completed,  ///< an attempt succeeded and the policy does not restart it
    failed,     ///< gave up: `restart_policy::never`, retries exhausted, or intensity exceeded
    fatal,      ///< the task threw `vigil::fatal_error`: never restarted
    canceled,   ///< removed, or the supervisor shut down, and the task stopped within its grace
    abandoned,  ///< ignored cancellation past its grace; its coroutine may still be running
    rejected,   ///< never registered: the name was taken or the supervisor was shutting down
  };
  using enum code;

  code kind = code::completed;  ///< how it ended
  std::exception_ptr error;     ///< the last failure, where there was one
  std::string reason;           ///< `what()` of `error`, or why it was rejected or abandoned
  std::uint32_t attempts = 0;   ///< attempts started in all

  friend bool operator==(const task_outcome& outcome, code kind) noexcept {
    return outcome.kind == kind;
  }
};

/// The stable lowercase label of an outcome code, the same as its enumerator.
constexpr std::string_view to_string(task_outcome::code kind) noexcept {
  switch (kind) {
    case task_outcome::completed:
      return "completed";
    case task_outcome::failed:
      return "failed";
    case task_outcome::fatal:
      return "fatal";
    case task_outcome::canceled:
      return "canceled";
    case task_outcome::abandoned:
      return "abandoned";
    case task_outcome::rejected:
      return "rejected";
  }
  return "unknown";
}

}  // namespace vigil

template <>
struct fmt::formatter<vigil::task_outcome::code>
    : vigil::detail::enum_formatter<vigil::task_outcome::code> {};
