#pragma once

/// @file
/// A request strategy that calls again after a failure, with backoff.

#include <vigil/backoff_policy.hpp>
#include <vigil/requests/request_strategy.hpp>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <random>

namespace vigil {

struct retry_options {
  /// Calls per request, the first included; at least 1.
  std::uint32_t max_attempts = 3;
  /// The wait before call n + 1 is `backoff.delay(n)` (validated as a task's backoff is).
  backoff_policy backoff =
      backoff_policy::exponential(std::chrono::milliseconds(100), std::chrono::seconds(5));
  /// Which failures are worth another call. Empty: every one except `fatal_error`.
  /// Cancellation of the call never retries, whatever this says (an `operation_aborted` the
  /// sender threw without being cancelled is a failure like any other).
  std::function<bool(const std::exception_ptr&)> retry_on{};
};

/// Calls again after a failure, up to `max_attempts` calls, waiting the backoff's delay
/// between them; then throws the last failure. After `circuit_open` (a breaker under it is
/// open) it waits at least the breaker's `retry_after()`, so retries wait an outage out
/// instead of spending their attempts on it. A cancelled request is never called again.
class retry final : public request_strategy {
 public:
  /// @throws std::invalid_argument for `max_attempts` 0 or a bad backoff.
  explicit retry(retry_options options = {});

  asio::awaitable<void> invoke(const request_call& next) override;

  /// Calls made again after a failure, over every request so far.
  std::uint64_t retries() const noexcept { return retries_.load(std::memory_order_relaxed); }

 private:
  bool worth_retrying(const std::exception_ptr& error) const;

  retry_options options_;
  std::mutex random_mutex_;
  std::mt19937_64 random_;
  std::atomic<std::uint64_t> retries_{0};
};

}  // namespace vigil
