#pragma once

/// @file
/// vigil's exceptions and error codes.

#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

namespace vigil {

/// Throw it from a task to say "restarting cannot help": the task ends with outcome `fatal`
/// and is never restarted, whatever its restart policy.
class fatal_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by `supervisor::run()` when more restarts happened than `restart_intensity` allows.
/// `last_failure()` is the failure of the child whose restart broke the limit.
class intensity_exceeded : public std::runtime_error {
 public:
  intensity_exceeded(const std::string& what, std::exception_ptr last_failure)
      : std::runtime_error(what), last_failure_(std::move(last_failure)) {}

  /// The child failure that broke the limit (may be null).
  const std::exception_ptr& last_failure() const noexcept { return last_failure_; }

 private:
  std::exception_ptr last_failure_;
};

/// Expected runtime conditions, reported as `std::error_code` in the Asio pattern
/// (awaitable APIs throw them as `std::system_error`).
enum class errc {
  bus_closed = 1,       ///< the event bus was closed and every buffered event was read
  already_exists,       ///< a task of that name is registered
  shutting_down,        ///< the supervisor no longer accepts tasks
  attempt_timed_out,    ///< an attempt ran past `task_spec::timeout`
  attempt_stalled,      ///< an attempt sent no heartbeat within `task_spec::stall_timeout`
  readiness_timed_out,  ///< an attempt was not ready within `supervisor_options::readiness_timeout`
};

/// The category of `vigil::errc`; its name is "vigil".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace vigil

template <>
struct std::is_error_code_enum<vigil::errc> : std::true_type {};
