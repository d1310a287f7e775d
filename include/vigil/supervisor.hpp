#pragma once

/// @file
/// The supervisor: owns tasks, restarts them by policy, shuts them down gracefully.

#include <vigil/event_bus.hpp>
#include <vigil/shutdown.hpp>
#include <vigil/supervisor_options.hpp>
#include <vigil/task_handle.hpp>
#include <vigil/task_snapshot.hpp>
#include <vigil/task_spec.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

namespace detail {
class supervisor_core;
}

/// Owns a registry of tasks, each a coroutine restarted by its `task_spec`'s policy, and
/// publishes every lifecycle step on its `event_bus`.
///
/// Every task runs on a strand of its own over the supervisor's executor; all supervisor state
/// lives on one more strand, so a multi-threaded `io_context` is fine. Control operations (add,
/// remove, shutdown) are posted to that strand and are never lost; the event bus is for
/// observers only.
///
/// @par Thread safety
/// Every member function may be called from any thread.
///
/// @par Example
/// @code
/// asio::io_context io;
/// vigil::supervisor sup{io.get_executor()};
/// auto handle = sup.add({.name = "worker", .fn = work});
/// asio::co_spawn(io, sup.run(), asio::detached);
/// io.run();  // until sup.shutdown()
/// @endcode
class supervisor {
 public:
  /// @throws std::invalid_argument naming the option and its value when `options` is unusable.
  explicit supervisor(asio::any_io_executor executor, supervisor_options options = {});

  /// Requests a graceful shutdown (as `shutdown()`) and returns at once; the shutdown goes on
  /// as long as the execution context runs. A nested supervisor's core lives on in its
  /// parent's task until that task ends.
  ~supervisor();

  supervisor(const supervisor&) = delete;
  supervisor& operator=(const supervisor&) = delete;

  /// Registers a task and starts its first attempt as soon as possible (before or after
  /// `run()` is awaited).
  ///
  /// Publishes `task_add_requested` then `task_added`, or `task_add_failed` when the name is
  /// taken (`reason` `already_exists`) or the supervisor is shutting down (`shutting_down`); a
  /// refused task's handle resolves `rejected` at once.
  /// @throws std::invalid_argument naming the field and the value when `spec` is unusable.
  task_handle add(task_spec spec);

  /// Stops a task: cancels a running attempt (waiting up to its `stop_grace`) or a pending
  /// backoff, then publishes `task_finished` and `task_removed`. The task's handle resolves
  /// `canceled`, or `abandoned` when the attempt ignored cancellation past the grace.
  /// Returns false when no task of that name is registered.
  bool remove(std::string_view name);

  /// Starts the graceful shutdown: new tasks are rejected, every task is cancelled (in reverse
  /// start order), and after at most `supervisor_options::shutdown_grace` the shutdown ends with
  /// `all_stopped_within_grace` or `grace_exceeded`. Idempotent: every call returns a handle on
  /// the same shutdown. On a nested supervisor (`as_task()`) it ends the current run only.
  shutdown_handle shutdown();

  /// Completes when the shutdown is over, with its report.
  /// @throws vigil::intensity_exceeded when the supervisor gave up because of a crash loop.
  /// @par Cancellation
  /// Cancelling the awaiting operation throws `operation_aborted`; the supervisor is not affected.
  asio::awaitable<shutdown_report> run();

  /// Completes once no task is registered (at once if none is). For batch work: add, wait until
  /// empty, then shut down.
  asio::awaitable<void> wait_until_empty();

  /// A consistent picture of every registered task, in add order, taken on the supervisor's
  /// strand. Not cancellable; completes as soon as the strand gets to it.
  asio::awaitable<std::vector<task_snapshot>> snapshot();

  /// Names of the registered tasks, in the order they were added.
  std::vector<std::string> list() const;

  /// True while a task of that name is registered (from `add` until `task_removed`).
  bool contains(std::string_view name) const;

  /// This supervisor as the body of a task of another supervisor, so supervisors nest into a
  /// tree (see `docs/trees.md`).
  ///
  /// From this call on, the children wait for an attempt of the parent's task: each attempt is
  /// one run of this supervisor, which starts the children, forwards the run's events to the
  /// parent's bus under the task's name (`payments/poller`, `depth` 1), reports the task ready
  /// once every child is ready, and ends the attempt when this supervisor shuts down: normally
  /// after `shutdown()`, as a failure (`vigil::intensity_exceeded`) when it gives up, so the
  /// parent's restart policy, backoff and intensity apply. Cancelling the attempt (the parent's
  /// remove, shutdown, group restart, timeout) shuts this supervisor down with its own
  /// `shutdown_grace`: give the parent's task a `stop_grace` at least that long. After a run the
  /// children still registered (`never` ones excepted) are registered again for the next run,
  /// with a fresh restart intensity window. Task handles cover one run.
  ///
  /// Call it before the execution context runs the children, so they start with the parent's
  /// attempt. Destroying this object ends the run in progress; later attempts fail with
  /// `vigil::fatal_error`. `run()` is for a root supervisor: do not await it on a nested one.
  /// @throws std::logic_error when `supervisor_options::handle_signals` is set (the root's job).
  task_fn as_task();

  /// The lifecycle event bus. Subscribe before adding tasks to see every event.
  event_bus& events() noexcept;

  /// The executor the supervisor was created with.
  const asio::any_io_executor& get_executor() const noexcept;

 private:
  std::shared_ptr<detail::supervisor_core> core_;
};

}  // namespace vigil
