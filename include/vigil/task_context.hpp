#pragma once

/// @file
/// What a task attempt knows about itself and tells its supervisor.

#include <vigil/detail/attempt_state.hpp>
#include <vigil/event.hpp>

#include <asio/any_io_executor.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

namespace vigil {

class supervisor;
class task_context;

namespace detail {
/// Publishes `e` about a part of the attempt (see `attempt_observer::report`); for vigil's own
/// task bodies such as `message_bus_worker`.
void report(const task_context& ctx, event e);
}  // namespace detail

/// Handed by value to every attempt of a task; cheap to copy (one shared pointer).
///
/// @par Thread safety
/// Every member but `fail()` may be called from any thread, also after the attempt ended.
///
/// @par Example
/// @code
/// asio::awaitable<void> poll(vigil::task_context ctx) {
///   asio::steady_timer timer(ctx.executor());
///   for (;;) {
///     co_await fetch_once();
///     ctx.ready();       // first success: the task is up
///     ctx.heartbeat();   // progress, for the stall watchdog
///     timer.expires_after(1s);
///     co_await timer.async_wait(asio::use_awaitable);
///   }
/// }
/// @endcode
class task_context {
 public:
  explicit task_context(std::shared_ptr<detail::attempt_state> state) noexcept
      : state_(std::move(state)) {}

  /// The task's name.
  const std::string& name() const noexcept { return state_->name(); }

  /// This attempt's number: 1 for the first, counting every attempt of the task.
  std::uint32_t attempt() const noexcept { return state_->attempt; }

  /// The executor the attempt runs on: a strand of its own on the supervisor's execution
  /// context. Create the attempt's I/O objects and timers on it.
  const asio::any_io_executor& executor() const noexcept { return state_->executor(); }

  /// Records progress (one relaxed atomic store): the stall watchdog restarts an attempt that
  /// stays silent longer than `task_spec::stall_timeout`.
  void heartbeat() const noexcept {
    state_->last_heartbeat.store(clock::now().time_since_epoch().count(),
                                 std::memory_order_relaxed);
  }

  /// Tells the supervisor the task is up: publishes `task_ready` (once per attempt).
  void ready() const;

  /// Ends this attempt as a failure without the cost of an exception: call it, then return
  /// (`co_return`). The supervisor treats the attempt as if it had thrown
  /// `std::system_error(code)` (restart policy, backoff, `classify`, intensity), but makes the
  /// exception and the text only if someone asks for them (an outcome, `classify`, an event
  /// subscriber). For tasks that fail often and cheaply. Call it from the attempt itself,
  /// before it returns; a zero `code` is ignored, and a later throw wins over it.
  void fail(std::error_code code) const noexcept { state_->code = code; }

  /// True once the supervisor asked this attempt to stop (remove, shutdown, timeout, stall,
  /// readiness timeout, group restart). A CPU-bound
  /// loop that awaits nothing should poll it; awaiting tasks are cancelled by Asio's
  /// per-operation cancellation anyway.
  bool stop_requested() const noexcept { return state_->stop.load(std::memory_order_acquire); }

  /// The task's `task_spec::stop_grace`: how long a stop of this task may take. For a task
  /// that stops something of its own (a child process) when it decides to end.
  duration stop_grace() const noexcept { return state_->stop_grace; }

  /// When the supervisor gives up on this attempt (`grace_exceeded`) if it is still running:
  /// set when it asks the attempt to stop, from the grace that stop has (the task's
  /// `stop_grace`, or what is left of `supervisor_options::shutdown_grace`);
  /// `time_point::max()` before. A task that cleans up on cancellation budgets by it.
  time_point stop_deadline() const noexcept {
    if (!stop_requested())
      return time_point::max();
    return time_point(duration(state_->stop_deadline.load(std::memory_order_relaxed)));
  }

 private:
  friend class supervisor;  // as_task() hands the attempt to the nested supervisor
  friend void detail::report(const task_context& ctx, event e);

  std::shared_ptr<detail::attempt_state> state_;
};

}  // namespace vigil
