#pragma once

#include <vigil/chrono.hpp>
#include <vigil/detail/task_handle_state.hpp>
#include <vigil/event.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <system_error>

namespace vigil::detail {

struct attempt_state;

/// What a running attempt reports back to its supervisor (implemented by the supervisor core).
class attempt_observer {
 public:
  virtual void on_ready(std::shared_ptr<attempt_state> attempt) = 0;
  /// An event of the supervisor nested in the attempt of `task`: published on the observer's
  /// bus under the path `task/<e.task>`. Called from any strand (the nested supervisor's, its
  /// subscribers', a grandchild's).
  virtual void forward(const std::string& task, event e) = 0;
  /// An event about a part of the attempt (a bus of a `message_bus_worker`): published on the
  /// observer's bus under `task/<e.task>`, with the attempt's number. Called from any strand.
  virtual void report(const attempt_state& attempt, event e) = 0;

 protected:
  ~attempt_observer() = default;
};

/// One attempt of one task, shared by the supervisor, the attempt's completion handler and every
/// copy of its `task_context`. One allocation per attempt.
struct attempt_state : std::enable_shared_from_this<attempt_state> {
  attempt_state(std::shared_ptr<const task_handle_state> of_task, std::uint32_t number,
                std::weak_ptr<attempt_observer> watcher, time_point started = clock::now(),
                duration grace = std::chrono::seconds(5))
      : task(std::move(of_task)),
        attempt(number),
        observer(std::move(watcher)),
        stop_grace(grace),
        last_heartbeat(started.time_since_epoch().count()) {}

  const std::string& name() const noexcept { return task->name; }
  /// The task's strand: the attempt runs here.
  const asio::any_io_executor& executor() const noexcept { return task->executor; }

  const std::shared_ptr<const task_handle_state> task;  ///< its name and strand
  const std::uint32_t attempt;
  const std::weak_ptr<attempt_observer> observer;
  const duration stop_grace;  ///< the task's `stop_grace`

  std::atomic<bool> stop{false};  ///< set before cancellation is emitted
  /// When the supervisor abandons the attempt if still running; written before `stop`.
  std::atomic<clock::rep> stop_deadline{time_point::max().time_since_epoch().count()};
  std::atomic<bool> ready{false};  ///< `task_context::ready()` was called
  std::atomic<clock::rep> last_heartbeat;

  /// Bound to the attempt's `co_spawn`; emitted only on `executor()` (Asio's thread rules).
  asio::cancellation_signal signal;
  /// Supervisor strand only: set when the supervisor cut the attempt short (timeout, stall);
  /// the failure the attempt ends with, whatever it returns.
  std::exception_ptr cut_short;

  // How the body ended, written on the task's strand before the completion is posted to the
  // supervisor's: caught where it was thrown, so the supervisor never rethrows it.
  std::exception_ptr error;  ///< what the body threw
  std::string what;          ///< its `what()`
  bool fatal = false;        ///< it was a `vigil::fatal_error`
  std::error_code code;      ///< `task_context::fail()`: a failure without an exception
};

}  // namespace vigil::detail
