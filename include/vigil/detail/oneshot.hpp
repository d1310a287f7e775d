#pragma once

#include <vigil/detail/wait_queue.hpp>

#include <asio/async_result.hpp>

#include <mutex>
#include <optional>
#include <system_error>

namespace vigil::detail {

/// A value set once and awaited by any number of waiters, from any thread.
///
/// The path `task_handle::wait()` and `supervisor::run()` ride: independent of the event bus,
/// so a lagging observer can never lose an outcome.
template <class T>
class oneshot {
 public:
  oneshot() = default;
  oneshot(const oneshot&) = delete;
  oneshot& operator=(const oneshot&) = delete;

  /// Stores `value` and wakes every waiter; false (and no change) when a value was already set.
  bool set(T value) {
    deferred_completions done;
    return set(done, std::move(value));
  }

  /// As `set`, the waiters being woken through `done` (for a caller that holds a lock).
  /// When copying the value for a waiter throws, nothing is set (waiters woken before it keep
  /// their copy) and the exception propagates: the caller may set something else.
  bool set(deferred_completions& done, T value) {
    std::lock_guard lock(mutex_);
    if (value_)
      return false;
    value_.emplace(std::move(value));
    try {
      waiters_.complete_all(done, {}, *value_);
    } catch (...) {
      value_.reset();
      throw;
    }
    return true;
  }

  bool is_set() const {
    std::lock_guard lock(mutex_);
    return value_.has_value();
  }

  std::optional<T> get() const {
    std::lock_guard lock(mutex_);
    return value_;
  }

  /// Completes with `(error_code, T)` once the value is set (at once, posted, if it already is).
  /// Cancellation: terminal, partial, total → `asio::error::operation_aborted`.
  template <class CompletionToken>
  auto async_wait(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, T)>(
        [this](auto handler) {
          deferred_completions done;
          std::lock_guard lock(mutex_);
          if (value_)
            done.post(std::move(handler), std::error_code{}, *value_);
          else
            waiters_.push(std::move(handler));
        },
        token);
  }

 private:
  mutable std::mutex mutex_;
  std::optional<T> value_;
  wait_queue<T> waiters_{mutex_};
};

}  // namespace vigil::detail
