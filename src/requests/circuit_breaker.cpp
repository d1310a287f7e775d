#include <vigil/requests/circuit_breaker.hpp>

#include <vigil/detail/deadline.hpp>

#include "../text.hpp"

#include <asio/cancellation_type.hpp>
#include <asio/this_coro.hpp>

#include <fmt/format.h>

#include <exception>

namespace vigil {

std::string_view to_string(breaker_state state) noexcept {
  switch (state) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      break;
  }
  return "half_open";
}

circuit_open::circuit_open(duration retry_after)
    : std::runtime_error(
          retry_after > duration::zero()
              ? fmt::format("vigil: circuit breaker open: not calling for another {}",
                            detail::to_text(retry_after))
              : std::string("vigil: circuit breaker half-open: a trial call is under way")),
      retry_after_(retry_after) {}

circuit_breaker::circuit_breaker(circuit_breaker_options options) : options_(options) {
  if (options_.failure_threshold == 0)
    throw std::invalid_argument(
        "vigil: circuit_breaker_options::failure_threshold must be at least 1, got 0");
  if (options_.cooldown <= duration::zero())
    throw std::invalid_argument(
        fmt::format("vigil: circuit_breaker_options::cooldown must be positive, got {}",
                    detail::to_text(options_.cooldown)));
}

breaker_state circuit_breaker::state() const {
  std::lock_guard lock(mutex_);
  if (state_ == breaker_state::open &&
      clock::now() >= detail::deadline_after(opened_at_, options_.cooldown))
    return breaker_state::half_open;
  return state_;
}

void circuit_breaker::enter(breaker_state next) {
  state_ = next;
  ++generation_;
  failures_ = 0;
  if (next == breaker_state::open)
    opened_at_ = clock::now();
}

circuit_breaker::admission circuit_breaker::admit() {
  std::lock_guard lock(mutex_);
  if (state_ == breaker_state::closed)
    return {false, generation_};
  if (state_ == breaker_state::open) {
    const auto now = clock::now();
    const auto reopen = detail::deadline_after(opened_at_, options_.cooldown);
    if (now < reopen)
      throw circuit_open(std::chrono::duration_cast<duration>(reopen - now));
    enter(breaker_state::half_open);
  }
  if (trial_under_way_)
    throw circuit_open(duration::zero());
  trial_under_way_ = true;
  return {true, generation_};
}

void circuit_breaker::record(admission call, bool failed) {
  std::lock_guard lock(mutex_);
  if (call.trial) {
    trial_under_way_ = false;
    enter(failed ? breaker_state::open : breaker_state::closed);
    return;
  }
  if (call.generation != generation_)
    return;  // admitted before the breaker last changed: stale news
  if (!failed)
    failures_ = 0;
  else if (++failures_ >= options_.failure_threshold)
    enter(breaker_state::open);
}

asio::awaitable<void> circuit_breaker::invoke(const request_call& next) {
  const admission call = admit();
  std::exception_ptr failure;
  try {
    co_await next();
  } catch (...) {
    failure = std::current_exception();
  }
  // Cancelled by the caller (a timeout around the breaker, say), not an `operation_aborted` the
  // sender threw on its own: that one is a failure of the peer like any other.
  const asio::cancellation_type cancel = (co_await asio::this_coro::cancellation_state).cancelled();
  if (failure && cancel != asio::cancellation_type::none) {
    if (call.trial) {
      std::lock_guard lock(mutex_);
      trial_under_way_ = false;  // still half-open: the next call is the trial
    }
  } else {
    record(call, failure != nullptr);
  }
  if (failure)
    std::rethrow_exception(failure);
}

}  // namespace vigil
