#pragma once

/// @file
/// One run of a message bus: `running_handle` for whoever waits on it, `bus_run` for the bus.

#include <vigil/detail/oneshot.hpp>

#include <asio/awaitable.hpp>

#include <exception>
#include <memory>

namespace vigil {

namespace detail {
/// How a run ended: null after a clean stop, the crash otherwise.
using run_state = oneshot<std::exception_ptr>;
}  // namespace detail

/// A handle on one run of a message bus, returned by `message_bus::start()`. It lives exactly as
/// long as the run: `wait()` completes when the bus was stopped and rethrows when it crashed,
/// so a task that awaits it stays up while its bus does.
///
/// Cheap to copy; copies refer to the same run. Two handles compare equal when they refer to
/// the same run.
///
/// @par Thread safety
/// Every member may be called from any thread.
class running_handle {
 public:
  /// An empty handle (`valid()` is false).
  running_handle() noexcept = default;

  /// False only for a default-constructed handle.
  bool valid() const noexcept { return state_ != nullptr; }

  /// True once the run ended, stopped or crashed.
  /// @throws std::logic_error on an empty handle.
  bool done() const;

  /// True once the run ended with a crash.
  /// @throws std::logic_error on an empty handle.
  bool crashed() const;

  /// The crash, or null while the run goes on or after a clean stop.
  /// @throws std::logic_error on an empty handle.
  std::exception_ptr error() const;

  /// Completes when the run ends: normally after `stop()`, by rethrowing the bus's exception
  /// when it crashed. Any number of waiters, before or after the end.
  ///
  /// @par Cancellation
  /// Terminal, partial and total cancellation throw `std::system_error` with
  /// `asio::error::operation_aborted`; the bus is not affected.
  /// @throws std::logic_error on an empty handle.
  asio::awaitable<void> wait() const;

  /// Completes when the run ends, however it ends: unlike `wait()`, a crash is not rethrown
  /// (read it from `error()`). What a bus's `stop()` awaits, as it must not rethrow a crash.
  /// Cancellation as for `wait()`.
  /// @throws std::logic_error on an empty handle.
  asio::awaitable<void> join() const;

  friend bool operator==(const running_handle&, const running_handle&) noexcept = default;

 private:
  friend class bus_run;
  explicit running_handle(std::shared_ptr<detail::run_state> state) noexcept
      : state_(std::move(state)) {}

  std::shared_ptr<detail::run_state> state_;
};

/// The bus's side of one run: what an adapter keeps to hand out the `running_handle` and to end
/// the run. Ending is first-wins: after `finish()` or `fail()`, both return false.
///
/// @par Example (inside an adapter)
/// @code
/// run_ = vigil::bus_run{};      // a new run, at start()
/// co_return run_.handle();
/// // ... the read loop ends:
/// run_.fail(std::current_exception());   // connection lost: the run crashed
/// run_.finish();                         // stop() was called: a clean end
/// @endcode
///
/// @par Thread safety
/// Every member may be called from any thread.
class bus_run {
 public:
  /// A new run, not ended.
  bus_run() : state_(std::make_shared<detail::run_state>()) {}

  /// The handle on this run (the same run for every call).
  running_handle handle() const noexcept { return running_handle(state_); }

  /// True once `finish()` or `fail()` ended the run.
  bool done() const { return state_->is_set(); }

  /// Ends the run cleanly: waiters complete normally. False when it had already ended.
  bool finish() { return state_->set(nullptr); }

  /// Ends the run as a crash: waiters get `error` rethrown. False when it had already ended.
  /// @throws std::invalid_argument when `error` is null (a crash needs its exception).
  bool fail(std::exception_ptr error);

 private:
  std::shared_ptr<detail::run_state> state_;
};

}  // namespace vigil
