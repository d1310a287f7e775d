#pragma once

/// @file
/// An in-process message bus: a bounded queue that any thread publishes to.

#include <vigil/detail/bus_run_slot.hpp>
#include <vigil/message_bus.hpp>
#include <vigil/running_handle.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace vigil {

/// What `memory_bus::publish` does when the queue is full.
enum class queue_full : std::uint8_t {
  reject,       ///< refuse the new message: `publish` returns false (the default)
  drop_oldest,  ///< make room by dropping the oldest queued message
};

/// How a `memory_bus` behaves.
struct memory_bus_options {
  std::string name = "memory";  ///< for events and logs
  std::size_t capacity = 1024;  ///< queued messages at most; at least 1
  queue_full when_full = queue_full::reject;
  handler_failure on_handler_failure = handler_failure::skip;
};

/// Wires components inside one process: `publish(source, message)` from any thread queues the
/// message, and the run delivers the queue in order, one message at a time, to its handler.
///
/// @par Delivery guarantee
/// At most once. The queue belongs to the bus, not to a run: messages published while no run
/// goes on (before `start()`, between a crash and the restart) wait in the queue and go to the
/// next run. A message whose handler was cancelled by `stop()` or failed is not delivered
/// again. Everything queued is lost when the process ends.
///
/// @par Stopping
/// `stop()` cancels the handler in flight (Asio's per-operation cancellation, terminal) and
/// ends the run cleanly; what is still queued stays queued.
///
/// Destroy the bus before its execution context, like any Asio I/O object.
///
/// @par Example
/// @code
/// vigil::memory_bus<order> orders{io.get_executor(), {.name = "orders"}};
/// orders.publish("web", order{42});  // from any thread
/// vigil::running_handle run = co_await orders.start(handle_order);
/// co_await run.wait();  // until orders.stop(), or rethrows the crash
/// @endcode
template <class T>
class memory_bus final : public message_bus<T> {
 public:
  using handler_type = typename message_bus<T>::handler_type;

  /// @throws std::invalid_argument when `options.capacity` is 0 or `when_full` is not a policy.
  memory_bus(asio::any_io_executor executor, memory_bus_options options = {})
      : state_(std::make_shared<state>(std::move(executor), validated(std::move(options)))) {}

  /// Requests the end of a run in progress and returns at once; the run ends cleanly on the
  /// bus's strand.
  ~memory_bus() override { request_stop(state_); }

  memory_bus(const memory_bus&) = delete;
  memory_bus& operator=(const memory_bus&) = delete;

  const std::string& name() const noexcept override { return state_->options.name; }

  /// Queues a message. False when the queue is full and `when_full` is `reject`.
  bool publish(std::string source, T message) {
    state& s = *state_;
    bool wake = false;
    {
      std::lock_guard lock(s.slot.mutex);
      ++s.slot.counters.received;
      if (s.queue.size() >= s.options.capacity) {
        ++s.slot.counters.dropped;
        if (s.options.when_full == queue_full::reject)
          return false;
        s.queue.pop_front();
      }
      s.queue.emplace_back(std::move(source), std::move(message));
      wake = std::exchange(s.waiting, false);
    }
    if (wake)  // the run sleeps on its timer: wake it on its strand
      asio::post(s.strand, [st = state_] { st->wake.cancel(); });
    return true;
  }

  /// Messages waiting for a handler.
  std::size_t queued() const {
    std::lock_guard lock(state_->slot.mutex);
    return state_->queue.size();
  }

  /// @throws std::invalid_argument when `handler` is empty.
  asio::awaitable<running_handle> start(handler_type handler) override {
    if (!handler)
      throw std::invalid_argument("vigil: memory_bus::start: the handler must not be empty");
    const std::shared_ptr<state> s = state_;
    bus_run run;
    if (std::optional<running_handle> going_on = co_await s->slot.claim(run))
      co_return *going_on;
    // Spawned from the strand, where stop() emits the cancellation: a slot is connected and
    // emitted on the same strand, as Asio requires.
    asio::post(s->strand, [s, run, handler = std::move(handler)]() mutable {
      asio::co_spawn(
          s->strand, deliver(s, std::move(run), std::move(handler)),
          asio::bind_cancellation_slot(s->stop_signal.slot(), [](const std::exception_ptr&) {}));
    });
    co_return run.handle();
  }

  asio::awaitable<void> stop() override {
    const std::shared_ptr<state> s = state_;
    const std::optional<running_handle> run = request_stop(s);
    if (run)
      co_await run->join();  // a crash that already happened is not rethrown
  }

  bus_counters counters() const override { return state_->slot.snapshot(); }

 private:
  struct state {
    state(asio::any_io_executor executor, memory_bus_options o)
        : strand(asio::make_strand(std::move(executor))), wake(strand), options(std::move(o)) {}

    const asio::strand<asio::any_io_executor> strand;
    asio::steady_timer wake;                // strand only: the run sleeps on it when idle
    asio::cancellation_signal stop_signal;  // strand only: bound to the run
    const memory_bus_options options;

    detail::bus_run_slot slot;  // its mutex also guards the two below
    std::deque<std::pair<std::string, T>> queue;
    bool waiting = false;  // the run sleeps on `wake`
  };

  static memory_bus_options validated(memory_bus_options options) {
    if (options.capacity == 0)
      throw std::invalid_argument("vigil: memory_bus_options.capacity must be at least 1, got 0");
    if (options.when_full != queue_full::reject && options.when_full != queue_full::drop_oldest)
      throw std::invalid_argument("vigil: memory_bus_options.when_full is not a policy, got " +
                                  std::to_string(static_cast<unsigned>(options.when_full)));
    if (options.on_handler_failure != handler_failure::skip &&
        options.on_handler_failure != handler_failure::crash)
      throw std::invalid_argument(
          "vigil: memory_bus_options.on_handler_failure is not a policy, got " +
          std::to_string(static_cast<unsigned>(options.on_handler_failure)));
    return options;
  }

  /// Marks the run as stopping and cancels it on its strand; the run to wait for, if any.
  static std::optional<running_handle> request_stop(const std::shared_ptr<state>& s) {
    std::optional<running_handle> run = s->slot.request_stop();
    if (run)
      asio::post(s->strand, [s] {
        if (!s->slot.stop_requested())
          return;  // that run ended, and a later one must not get this stop (see bus_run_slot)
        s->stop_signal.emit(asio::cancellation_type::terminal);
        s->wake.cancel();
      });
    return run;
  }

  /// One run: delivers the queue in order until stop() or a crash.
  static asio::awaitable<void> deliver(std::shared_ptr<state> s, bus_run run,
                                       handler_type handler) {
    std::exception_ptr crash;
    while (!crash) {
      std::optional<std::pair<std::string, T>> item;
      {
        std::lock_guard lock(s->slot.mutex);
        // `stopping` is set before the cancellation is emitted: once it is seen here, no
        // cancelled operation is awaited again.
        if (s->slot.stopping)
          break;
        if (!s->queue.empty()) {
          item.emplace(std::move(s->queue.front()));
          s->queue.pop_front();
        } else {
          s->waiting = true;
        }
      }
      if (!item) {  // woken by publish() or stop()
        s->wake.expires_at(asio::steady_timer::time_point::max());
        co_await s->wake.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
        continue;
      }
      co_await s->slot.deliver(handler, item->first, std::move(item->second),
                               s->options.on_handler_failure, crash);
    }
    {
      std::lock_guard lock(s->slot.mutex);
      s->waiting = false;
    }
    s->slot.end(std::move(run), std::move(crash));
  }

  std::shared_ptr<state> state_;
};

}  // namespace vigil
