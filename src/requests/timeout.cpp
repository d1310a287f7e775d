#include <vigil/requests/timeout.hpp>

#include "../text.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

namespace vigil {

namespace {

asio::awaitable<void> sleep_for(duration d) {
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace

request_timeout::request_timeout(duration limit)
    : std::runtime_error(
          fmt::format("vigil: the request did not complete within {}", detail::to_text(limit))),
      limit_(limit) {}

timeout::timeout(duration limit) : limit_(limit) {
  if (limit <= duration::zero())
    throw std::invalid_argument(
        fmt::format("vigil: timeout: the limit must be positive, got {}", detail::to_text(limit)));
}

asio::awaitable<void> timeout::invoke(const request_call& next) {
  using namespace asio::experimental::awaitable_operators;
  // Both operands named: GCC 12 destroys a temporary in a co_await expression twice.
  asio::awaitable<void> call = next();
  asio::awaitable<void> deadline = sleep_for(limit_);
  const auto first = co_await (std::move(call) || std::move(deadline));
  if (first.index() == 1)
    throw request_timeout(limit_);
}

}  // namespace vigil
