#pragma once

/// @file
/// The building block of a request runner's chain: a strategy wraps the call after it.

#include <asio/awaitable.hpp>

#include <functional>
#include <memory>

namespace vigil {

/// The rest of a request's chain: the next strategy, or the sender at the end. Each call sends
/// the request once more; it returns when that succeeded and throws how it failed.
using request_call = std::function<asio::awaitable<void>()>;

/// One link of a `request_runner`'s chain. `invoke` makes the call through `next` (once or more,
/// with whatever waits it decides), returns once a call succeeded, and throws the failure it
/// gives up with (or its own, such as `circuit_open`, without calling at all). Returning
/// without a successful call fails the request with `std::logic_error`: there is no response.
/// Strategies are listed outermost first.
///
/// One strategy object serves every request of its runner, from the runner's workers: with a
/// `concurrency` above 1, `invoke` runs concurrently with itself, on different threads.
///
/// @code
/// // A strategy of your own: log each failure, change nothing.
/// class log_failures final : public vigil::request_strategy {
///  public:
///   asio::awaitable<void> invoke(const vigil::request_call& next) override {
///     try {
///       co_await next();
///     } catch (const std::exception& e) {
///       fmt::print(stderr, "request failed: {}\n", e.what());
///       throw;
///     }
///   }
/// };
/// @endcode
class request_strategy {
 public:
  virtual ~request_strategy() = default;
  virtual asio::awaitable<void> invoke(const request_call& next) = 0;
};

using request_strategy_ptr = std::shared_ptr<request_strategy>;

}  // namespace vigil
