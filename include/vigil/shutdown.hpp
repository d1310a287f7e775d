#pragma once

/// @file
/// The result of a supervisor's graceful shutdown.

#include <vigil/chrono.hpp>
#include <vigil/detail/oneshot.hpp>

#include <asio/awaitable.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vigil {

/// How a supervisor's shutdown went.
struct shutdown_report {
  /// True when every task stopped within its grace period (no task was abandoned).
  bool within_grace = true;
  /// Tasks that ignored cancellation past the shutdown grace, or past their own `stop_grace`
  /// in a sequential shutdown (outcome `abandoned`), in start order.
  std::vector<std::string> abandoned;
  /// From the shutdown request to the end of the shutdown.
  duration took{};
  /// Set when the supervisor gave up on its own (`vigil::intensity_exceeded`); `run()` rethrows it.
  std::exception_ptr escalation;
};

namespace detail {
using shutdown_state = oneshot<shutdown_report>;
}

/// Returned by `supervisor::shutdown()`: every call returns a handle on the same, single
/// shutdown. Cheap to copy.
///
/// @par Thread safety
/// Every member may be called from any thread.
class shutdown_handle {
 public:
  explicit shutdown_handle(std::shared_ptr<detail::shutdown_state> state) noexcept
      : state_(std::move(state)) {}

  /// True once the shutdown is over.
  bool done() const { return state_->is_set(); }

  /// The report if the shutdown is over, else `std::nullopt`; never waits.
  std::optional<shutdown_report> try_report() const { return state_->get(); }

  /// Completes with the report once the shutdown is over. Unlike `supervisor::run()`, it does
  /// not throw when the supervisor escalated: the report carries `escalation`.
  ///
  /// @par Cancellation
  /// Terminal, partial and total cancellation throw `std::system_error` with
  /// `asio::error::operation_aborted`; the shutdown goes on.
  asio::awaitable<shutdown_report> wait() const;

 private:
  std::shared_ptr<detail::shutdown_state> state_;
};

}  // namespace vigil
