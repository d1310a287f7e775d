#include <vigil/requests/rate_limit.hpp>

#include "../text.hpp"

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace vigil {

namespace {

double checked_interval(std::size_t calls, duration period, std::size_t burst) {
  if (calls == 0)
    throw std::invalid_argument("vigil: rate_limit: calls must be at least 1, got 0");
  if (period <= duration::zero())
    throw std::invalid_argument(
        fmt::format("vigil: rate_limit: period must be positive, got {}", detail::to_text(period)));
  if (burst == 0)
    throw std::invalid_argument("vigil: rate_limit: burst must be at least 1, got 0");
  return static_cast<double>(std::chrono::nanoseconds(period).count()) / static_cast<double>(calls);
}

}  // namespace

rate_limit::rate_limit(std::size_t calls, duration period, std::size_t burst)
    : interval_ns_(checked_interval(calls, period, burst)),
      burst_(static_cast<double>(burst)),
      tokens_(static_cast<double>(burst)),
      updated_(clock::now()) {}

duration rate_limit::take() {
  std::lock_guard lock(mutex_);
  const auto now = clock::now();
  const double elapsed = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - updated_).count());
  tokens_ = std::min(burst_, tokens_ + elapsed / interval_ns_);
  updated_ = now;
  tokens_ -= 1.0;
  if (tokens_ >= 0.0)
    return duration::zero();
  // Booked: the token that makes the balance whole again is `-tokens_` intervals away.
  return std::chrono::duration_cast<duration>(
      std::chrono::nanoseconds(static_cast<std::int64_t>(-tokens_ * interval_ns_ + 0.5)));
}

asio::awaitable<void> rate_limit::invoke(const request_call& next) {
  const duration wait = take();
  if (wait > duration::zero()) {
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor, wait);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_await next();
}

}  // namespace vigil
