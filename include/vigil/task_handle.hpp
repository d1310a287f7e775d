#pragma once

/// @file
/// The caller's side of a supervised task: wait for its final outcome.

#include <vigil/detail/task_handle_state.hpp>
#include <vigil/task_outcome.hpp>

#include <asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>

namespace vigil {

namespace detail {
class supervisor_core;
}  // namespace detail

/// Returned by `supervisor::add`: the way to learn how a task ended.
///
/// The outcome travels on a one-shot path of its own, never on the lossy event bus, so it
/// cannot be missed. Cheap to copy; copies share the same outcome.
///
/// @par Thread safety
/// Every member may be called from any thread.
class task_handle {
 public:
  /// An empty handle (`valid()` is false).
  task_handle() noexcept = default;

  /// False only for a default-constructed handle.
  bool valid() const noexcept { return state_ != nullptr; }

  /// The task's name.
  const std::string& name() const noexcept;

  /// True once the task ended for good.
  bool done() const;

  /// The outcome if the task has ended, else `std::nullopt`; never waits.
  std::optional<task_outcome> try_outcome() const;

  /// Completes with the final outcome once the task ended for good (at once if it already has).
  /// Any number of waiters, before or after the end.
  ///
  /// @par Cancellation
  /// Terminal, partial and total cancellation of the awaiting operation throw
  /// `std::system_error` with `asio::error::operation_aborted`; the task is not affected.
  /// @throws std::logic_error on an empty handle.
  asio::awaitable<task_outcome> wait() const;

 private:
  friend class detail::supervisor_core;
  explicit task_handle(std::shared_ptr<detail::task_handle_state> state) noexcept
      : state_(std::move(state)) {}

  std::shared_ptr<detail::task_handle_state> state_;
};

}  // namespace vigil
