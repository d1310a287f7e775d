#include <vigil/event_bus.hpp>

#include <vigil/detail/wait_queue.hpp>
#include <vigil/errors.hpp>

#include <asio/async_result.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace vigil {
namespace detail {

// One mutex per bus guards the sequence counter, the subscriber list and every subscription's
// queue: publish takes it once per event, a reader once per event or batch.
struct bus_state {
  mutable std::mutex mutex;
  std::uint64_t next_seq = 1;
  bool closed = false;
  std::vector<subscription_state*> subscribers;
  /// `subscribers.size()`, readable without the lock: a publisher with nobody listening skips
  /// building its event.
  std::atomic<std::size_t> count{0};
};

struct subscription_state {
  subscription_state(std::shared_ptr<bus_state> owner, std::size_t bound)
      : bus(std::move(owner)), capacity(bound) {}

  // Declared first: destroyed last, after `waiters` has used its mutex.
  const std::shared_ptr<bus_state> bus;
  const std::size_t capacity;

  // Guarded by bus->mutex. A ring of `size` events starting at `head`; `slots` grows up to
  // `capacity`, so an idle subscription costs little.
  std::vector<event> slots;
  std::size_t head = 0;
  std::size_t size = 0;
  std::uint64_t dropped = 0;
  std::uint64_t last_dropped_seq = 0;
  wait_queue<event> waiters{bus->mutex};

  void push(const event& e) {
    if (size == slots.size() && slots.size() < capacity)
      grow();
    if (size == slots.size()) {  // full: the oldest goes
      ++dropped;
      last_dropped_seq = slots[head].seq;
      slots[head] = e;
      head = (head + 1) % slots.size();
      return;
    }
    slots[(head + size) % slots.size()] = e;
    ++size;
  }

  std::optional<event> pop() {
    if (dropped != 0) {
      event overflow;
      overflow.seq = last_dropped_seq;
      overflow.at = std::chrono::system_clock::now();
      overflow.kind = event_kind::subscriber_overflow;
      overflow.dropped = std::exchange(dropped, 0);
      overflow.reason = fmt::format("{} events lost", overflow.dropped);
      return overflow;
    }
    if (size == 0)
      return std::nullopt;
    std::optional<event> e(std::move(slots[head]));
    head = (head + 1) % slots.size();
    --size;
    return e;
  }

 private:
  void grow() {
    const std::size_t count = std::min(capacity, std::max<std::size_t>(8, slots.size() * 2));
    std::vector<event> bigger;
    bigger.reserve(count);
    for (std::size_t i = 0; i < size; ++i)
      bigger.push_back(std::move(slots[(head + i) % slots.size()]));
    bigger.resize(count);
    slots = std::move(bigger);
    head = 0;
  }
};

}  // namespace detail

// ---- subscription ----------------------------------------------------------------------------

subscription& subscription::operator=(subscription&& other) noexcept {
  if (this != &other) {
    reset();
    state_ = std::move(other.state_);
  }
  return *this;
}

subscription::~subscription() {
  reset();
}

void subscription::reset() noexcept {
  if (!state_)
    return;
  {
    detail::deferred_completions done;
    std::lock_guard lock(state_->bus->mutex);
    auto& list = state_->bus->subscribers;
    list.erase(std::remove(list.begin(), list.end(), state_.get()), list.end());
    state_->bus->count.store(list.size(), std::memory_order_relaxed);
    state_->waiters.complete_all(done, asio::error::operation_aborted, event{});
  }
  state_.reset();
}

std::size_t subscription::capacity() const noexcept {
  return state_ ? state_->capacity : 0;
}

std::optional<event> subscription::try_next() {
  if (!state_)
    return std::nullopt;
  std::lock_guard lock(state_->bus->mutex);
  return state_->pop();
}

asio::awaitable<event> subscription::next() {
  if (!state_)
    throw std::logic_error("vigil: subscription::next() on an empty subscription");
  auto state = state_;
  {
    std::lock_guard lock(state->bus->mutex);
    if (auto e = state->pop())
      co_return std::move(*e);
  }
  // A named initiation, not a lambda temporary inside the co_await expression: GCC 12 destroys
  // such a lambda's captures twice.
  auto park = [state](auto handler) {
    detail::deferred_completions done;
    std::lock_guard lock(state->bus->mutex);
    if (auto e = state->pop())
      done.post(std::move(handler), std::error_code{}, std::move(*e));
    else if (state->bus->closed)
      done.post(std::move(handler), make_error_code(errc::bus_closed), event{});
    else
      state->waiters.push(std::move(handler));
  };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                          void(std::error_code, event)>(park, asio::use_awaitable);
}

// ---- event_bus -------------------------------------------------------------------------------

event_bus::event_bus() : state_(std::make_shared<detail::bus_state>()) {}

event_bus::~event_bus() {
  close();
}

std::uint64_t event_bus::publish(event e) {
  if (e.at == std::chrono::system_clock::time_point{})
    e.at = std::chrono::system_clock::now();
  detail::deferred_completions done;  // parked readers are woken after the unlock
  std::lock_guard lock(state_->mutex);
  if (state_->closed)
    return 0;
  e.seq = state_->next_seq++;
  for (detail::subscription_state* sub : state_->subscribers) {
    if (!sub->waiters.empty())
      sub->waiters.complete_one(done, {}, e);  // a parked reader: hand the event over directly
    else
      sub->push(e);
  }
  return e.seq;
}

subscription event_bus::subscribe(std::size_t capacity) {
  if (capacity == 0)
    throw std::invalid_argument("vigil: event_bus::subscribe: capacity must be at least 1, got 0");
  auto state = std::make_shared<detail::subscription_state>(state_, capacity);
  std::lock_guard lock(state_->mutex);
  state_->subscribers.push_back(state.get());
  state_->count.store(state_->subscribers.size(), std::memory_order_relaxed);
  return subscription(std::move(state));
}

void event_bus::close() {
  detail::deferred_completions done;
  std::lock_guard lock(state_->mutex);
  if (state_->closed)
    return;
  state_->closed = true;
  for (detail::subscription_state* sub : state_->subscribers)
    sub->waiters.complete_all(done, make_error_code(errc::bus_closed), event{});
}

bool event_bus::closed() const {
  std::lock_guard lock(state_->mutex);
  return state_->closed;
}

std::size_t event_bus::subscriber_count() const noexcept {
  return state_->count.load(std::memory_order_relaxed);
}

}  // namespace vigil
