#pragma once

/// @file
/// A request strategy that spaces calls out: a token bucket.

#include <vigil/chrono.hpp>
#include <vigil/requests/request_strategy.hpp>

#include <chrono>
#include <cstddef>
#include <mutex>

namespace vigil {

/// At most `calls` calls per `period` on average, and at most `burst` back to back: a token
/// bucket of `burst` tokens, refilled by one every `period / calls`. A call takes a token or
/// waits for the next one; waiting calls are served in the order they came, each at its own
/// instant, so a queue of calls goes out evenly spaced. A call cancelled while it waits leaves
/// its instant unused (giving it back could put two calls on one instant). Under `retry`, every
/// call counts.
class rate_limit final : public request_strategy {
 public:
  /// @throws std::invalid_argument when `calls` or `burst` is 0, or `period` is not positive.
  rate_limit(std::size_t calls, duration period, std::size_t burst = 1);

  asio::awaitable<void> invoke(const request_call& next) override;

 private:
  /// Takes a token, or books the next one; how long to wait for it.
  duration take();

  using clock = std::chrono::steady_clock;
  const double interval_ns_;  // one token per interval
  const double burst_;
  std::mutex mutex_;
  double tokens_;  // may go below 0: tokens booked by waiting calls
  clock::time_point updated_;
};

}  // namespace vigil
