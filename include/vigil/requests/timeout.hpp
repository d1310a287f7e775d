#pragma once

/// @file
/// A request strategy that bounds each call's duration.

#include <vigil/chrono.hpp>
#include <vigil/requests/request_strategy.hpp>

#include <stdexcept>
#include <string>

namespace vigil {

/// What `timeout` throws when a call ran past its limit.
class request_timeout : public std::runtime_error {
 public:
  explicit request_timeout(duration limit);
  duration limit() const noexcept { return limit_; }

 private:
  duration limit_;
};

/// Gives each call `limit` to finish; past it, the call is cancelled (Asio's terminal
/// cancellation), awaited until it has ended, and `request_timeout` thrown. Under `retry`, it
/// bounds each attempt; over it, the whole request.
class timeout final : public request_strategy {
 public:
  /// @throws std::invalid_argument when `limit` is not positive.
  explicit timeout(duration limit);

  asio::awaitable<void> invoke(const request_call& next) override;

 private:
  duration limit_;
};

}  // namespace vigil
