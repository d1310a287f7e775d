#pragma once

/// @file
/// Starts work in the background as tracked runs: status kept in a `run_registry`, cancel,
/// wait for all, an optional limit on how many run at once, and a graceful shutdown.

#include <vigil/chrono.hpp>
#include <vigil/runs/run.hpp>
#include <vigil/runs/run_registry.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

struct task_manager_options {
  /// How many runs may be `running` at once; the others wait `queued`, started in the order
  /// they were started. 0: no limit.
  std::size_t max_running = 0;
};

/// Runs units of work in the background and keeps their status in a `run_registry`: `running`
/// when the work starts, then `completed` with the string it returned, `failed` with the
/// `what()` of what it threw, or `cancelled`.
///
/// Each run's work runs on a strand of its own made from the manager's executor, so runs go in
/// parallel on a multi-threaded `io_context`. Cancellation is Asio's: `cancel()` and
/// `shutdown()` emit terminal cancellation into the work, whose pending operation then throws
/// `asio::error::operation_aborted`; CPU-bound work polls
/// `(co_await asio::this_coro::cancellation_state).cancelled()`.
///
/// Destroying the manager cancels what is left, as `shutdown()` would, without waiting: work
/// still running then records its end in the registry when it ends (the registry is shared,
/// so it lives as long as that work).
///
/// @par Thread safety
/// Every member may be called from any thread.
class task_manager {
 public:
  /// A manager with a registry of its own.
  explicit task_manager(asio::any_io_executor executor, task_manager_options options = {});

  /// A manager that records its runs in `registry` (one with a journal, or shared with others).
  /// @throws std::invalid_argument when `registry` is null.
  task_manager(asio::any_io_executor executor, std::shared_ptr<run_registry> registry,
               task_manager_options options = {});

  ~task_manager();
  task_manager(const task_manager&) = delete;
  task_manager& operator=(const task_manager&) = delete;

  /// Adds `r` to the registry (see `run_registry::add`) and starts `work` in the background,
  /// or queues it when `max_running` runs are running already. Returns the run's id at once.
  /// `work` is a coroutine that has not started: its `co_return` value becomes `result`.
  /// @throws std::invalid_argument as `run_registry::add` does, or when `work` is empty.
  /// @throws std::logic_error after `shutdown()` (and the run is not added).
  std::string start(run r, asio::awaitable<std::string> work);

  /// As above, for work that returns nothing (`result` stays empty).
  std::string start(run r, asio::awaitable<void> work);

  /// Cancels the run `id`: a queued run becomes `cancelled` at once; a running one is told to
  /// stop, and the call waits until its work has ended. True only when this call's
  /// cancellation ended the run as `cancelled`: false for an unknown or finished run, one
  /// already being cancelled, or work that caught the cancellation and completed anyway.
  /// Work that ignores cancellation keeps this call waiting; bound it with a cancellation of
  /// its own (a timeout), which throws `operation_aborted` and leaves the run as it is.
  asio::awaitable<bool> cancel(std::string_view id);

  /// Completes when no run is queued or running, including runs started while it waits.
  /// Cancellation: throws `asio::error::operation_aborted`.
  asio::awaitable<void> wait_all();

  /// Refuses new runs, cancels the queued ones, cancels the running ones and waits up to
  /// `grace` for them to end. Work still running after `grace` is marked `failed` with a reason
  /// saying it ignored cancellation; it is not stopped (nothing can stop a coroutine that does
  /// not want to), and its end, whenever it comes, changes nothing in the registry.
  /// @throws std::invalid_argument when `grace` is negative.
  asio::awaitable<void> shutdown(duration grace);

  /// How many runs are queued or running.
  std::size_t active_count() const;

  /// The ids of the runs queued or running, in the order they were started.
  std::vector<std::string> active_ids() const;

  /// Whether the run `id` is queued or running.
  bool is_active(std::string_view id) const;

  /// Where the runs are recorded.
  run_registry& registry() const noexcept;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace vigil
