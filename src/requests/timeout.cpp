#include <vigil/requests/timeout.hpp>

#include <vigil/detail/first_of.hpp>

#include "../text.hpp"

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
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  asio::awaitable<detail::first_of_result> race =
      detail::first_of(executor, next(), sleep_for(limit_));
  const detail::first_of_result ended = co_await std::move(race);
  if (!ended.a_error)
    co_return;  // it succeeded, even if just past the limit: sending it again would duplicate it
  if (ended.first == 0 || ended.b_error)
    std::rethrow_exception(ended.a_error);  // its own failure, or the caller's cancellation
  throw request_timeout(limit_);
}

}  // namespace vigil
