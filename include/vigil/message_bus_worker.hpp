#pragma once

/// @file
/// Several message buses as one supervised task that fails fast.

#include <vigil/message_bus.hpp>
#include <vigil/running_handle.hpp>
#include <vigil/task_context.hpp>

#include <asio/awaitable.hpp>
#include <asio/cancellation_state.hpp>
#include <asio/this_coro.hpp>

#include <concepts>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vigil {

/// The body of a task that consumes several buses: each attempt starts every bus, reports the
/// task ready, and waits on every `running_handle`. When one bus crashes, the attempt stops the
/// others and rethrows the crash, so the supervisor restarts the whole worker with its backoff
/// (fail fast: never a worker with half of its buses). When the supervisor stops the task, every
/// bus stops cleanly and the attempt ends `canceled`. A bus stopped by someone else ends the
/// attempt normally, after the others were stopped.
///
/// Publishes `bus_started`, `bus_stopped`, `bus_crashed` and `message_failed` on the
/// supervisor's event bus under `<task>/<bus name>`. A handler's exception is reported, then
/// handed on to the bus, whose `handler_failure` policy decides between skipping the message
/// and crashing.
///
/// Copies share the same buses.
///
/// @par Example
/// @code
/// vigil::message_bus_worker worker;
/// worker.add(orders, handle_order).add(prices, handle_price);
/// sup.add({.name = "consumer", .fn = worker, .backoff = vigil::backoff_policy::exponential(1s,
/// 30s)});
/// @endcode
///
/// @par Thread safety
/// Add every bus before the task starts; attempts may then run on any thread.
class message_bus_worker {
 public:
  /// Adds a bus and the handler of its messages (any `message_bus<T>`: the handler's type
  /// follows from the bus, so a lambda converts).
  /// @throws std::invalid_argument when `bus` or `handler` is empty.
  template <class Bus>
  requires std::derived_from<Bus, message_bus<typename Bus::message_type>> message_bus_worker& add(
      std::shared_ptr<Bus> bus, message_handler<typename Bus::message_type> handler) {
    using T = typename Bus::message_type;
    if (!bus)
      throw std::invalid_argument("vigil: message_bus_worker::add: the bus must not be null");
    if (!handler)
      throw std::invalid_argument("vigil: message_bus_worker::add: the handler of bus '" +
                                  bus->name() + "' must not be empty");
    entry e;
    e.name = bus->name();
    e.start = [bus, handler = std::move(handler)](failure_report on_failure) {
      return bus->start(reporting<T>(handler, std::move(on_failure)));
    };
    e.stop = [bus] { return bus->stop(); };
    entries_->push_back(std::move(e));
    return *this;
  }

  /// How many buses were added.
  std::size_t size() const noexcept { return entries_->size(); }

  /// One attempt: what the supervisor runs (`.fn = worker`).
  asio::awaitable<void> operator()(task_context ctx) const;

 private:
  using failure_report = std::function<void(std::string)>;

  struct entry {
    std::string name;
    std::function<asio::awaitable<running_handle>(failure_report)> start;
    std::function<asio::awaitable<void>()> stop;
  };

  /// Wraps a handler so that its exception is reported before it goes on to the bus; not when
  /// it is the bus's own cancellation (`stop()`).
  template <class T>
  static message_handler<T> reporting(message_handler<T> handler, failure_report on_failure) {
    return [handler = std::move(handler), on_failure = std::move(on_failure)](
               std::string_view source, T message) -> asio::awaitable<void> {
      std::exception_ptr failure;
      try {
        co_await handler(source, std::move(message));
      } catch (...) {
        failure = std::current_exception();
      }
      if (!failure)
        co_return;
      const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() == asio::cancellation_type::none)
        on_failure(what_of(failure));
      std::rethrow_exception(failure);
    };
  }

  static std::string what_of(const std::exception_ptr& failure);

  std::shared_ptr<std::vector<entry>> entries_ = std::make_shared<std::vector<entry>>();
};

}  // namespace vigil
