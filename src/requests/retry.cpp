#include <vigil/requests/retry.hpp>

#include <vigil/errors.hpp>
#include <vigil/requests/circuit_breaker.hpp>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace vigil {

retry::retry(retry_options options)
    : options_(std::move(options)), random_(std::random_device{}()) {
  if (options_.max_attempts == 0)
    throw std::invalid_argument("vigil: retry_options::max_attempts must be at least 1, got 0");
  options_.backoff.validate("retry_options::backoff");
}

bool retry::worth_retrying(const std::exception_ptr& error) const {
  if (options_.retry_on)
    return options_.retry_on(error);
  try {
    std::rethrow_exception(error);
  } catch (const fatal_error&) {
    return false;
  } catch (...) {
    return true;
  }
}

asio::awaitable<void> retry::invoke(const request_call& next) {
  for (std::uint32_t attempt = 1;; ++attempt) {
    std::exception_ptr failure;
    try {
      co_await next();
      co_return;
    } catch (...) {
      failure = std::current_exception();
    }
    // The caller's cancellation, not an `operation_aborted` the sender threw on its own (its
    // socket closed under it, say): that one is a failure like any other.
    const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
    if (attempt >= options_.max_attempts || cancelled != asio::cancellation_type::none ||
        !worth_retrying(failure))
      std::rethrow_exception(failure);
    duration delay;
    {
      std::lock_guard lock(random_mutex_);
      delay = options_.backoff.delay(attempt, random_);
    }
    try {  // an open breaker says when it is worth asking again
      std::rethrow_exception(failure);
    } catch (const circuit_open& open) {
      delay = std::max(delay, open.retry_after());
    } catch (...) {
    }
    retries_.fetch_add(1, std::memory_order_relaxed);
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor, delay);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

}  // namespace vigil
