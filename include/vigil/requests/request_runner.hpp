#pragma once

/// @file
/// Queued requests to one peer, sent through a chain of strategies (retry, rate limit, timeout,
/// circuit breaker, your own), with their responses awaited one by one or read as a stream.

#include <vigil/chrono.hpp>
#include <vigil/detail/deadline.hpp>
#include <vigil/detail/first_of.hpp>
#include <vigil/detail/oneshot.hpp>
#include <vigil/detail/wait_queue.hpp>
#include <vigil/requests/request_strategy.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace vigil {

struct request_runner_options {
  /// Requests sent at once. 1 (the default): one at a time, in the order they were queued.
  std::size_t concurrency = 1;
  /// Requests waiting to be sent; `request()` waits for room beyond it (back-pressure).
  std::size_t queue_capacity = 1024;
  /// Responses kept for `results()` until read; beyond it the oldest is dropped (and counted
  /// in `dropped_results()`). Each `request()` still gets its own response.
  std::size_t results_capacity = 1024;
};

/// Sends queued requests to one peer through a chain of strategies.
///
/// `request(r)` queues `r` and resolves with its response, or throws the failure the chain
/// gave up with. Successful responses also go, in completion order, to `results()`; failed
/// requests do not (their failure reaches their own awaiter only). `close()` refuses new
/// requests, sends what is queued, and ends `results()`.
///
/// The chain is applied in order, the first strategy outermost: `{retry, circuit_breaker,
/// rate_limit, timeout}` retries calls that a breaker lets through, rate-limited, each within
/// its timeout. Requests are sent by up to `concurrency` workers, each on a strand of its own,
/// started when there is work and gone when there is none (an idle runner holds no work on its
/// io_context).
///
/// `Request` must be copyable (each call under `retry` sends a copy), `Response` too (it goes
/// to the awaiter and to `results()`).
///
/// @par Thread safety
/// Every member may be called from any thread. The sender and the strategies are called from
/// the workers: concurrently, on several threads, when `concurrency` is above 1.
template <class Request, class Response>
class request_runner {
  static_assert(std::is_copy_constructible_v<Request>, "request_runner: Request must be copyable");
  static_assert(std::is_copy_constructible_v<Response>,
                "request_runner: Response must be copyable");
  struct state;

 public:
  using sender = std::function<asio::awaitable<Response>(Request)>;

  /// @throws std::invalid_argument for an empty sender, a null strategy, a `concurrency`,
  ///         `queue_capacity` or `results_capacity` of 0.
  request_runner(asio::any_io_executor executor, sender send,
                 std::vector<request_strategy_ptr> strategies = {},
                 request_runner_options options = {})
      : state_(std::make_shared<state>(std::move(executor), std::move(send), std::move(strategies),
                                       options)) {}

  /// Refuses new requests; what is queued is still sent, in the background (`close()` waits
  /// for it). Destroy the runner before its io_context, as any Asio object.
  ~request_runner() { state_->close_now(); }

  request_runner(const request_runner&) = delete;
  request_runner& operator=(const request_runner&) = delete;

  /// Queues `r` (waiting for room when `queue_capacity` requests are queued, behind the callers
  /// that began to wait before it) and resolves with its response, or rethrows the failure the
  /// chain gave up with.
  /// @throws std::logic_error when the runner is closed (also for a request waiting for room
  ///         when `close()` came).
  /// Cancellation: a request still queued is taken out of the queue and never sent; one
  /// already being sent goes on (its response goes to `results()`). Either way this throws
  /// `asio::error::operation_aborted`.
  asio::awaitable<Response> request(Request r) { return state::request(state_, std::move(r)); }

  /// The responses of successful requests, in completion order, as an async stream.
  class result_stream {
   public:
    /// The next response; `std::nullopt` once the runner is closed, drained and every response
    /// read. Responses are shared by every reader: each one goes to one `next()`.
    /// Cancellation: throws `asio::error::operation_aborted`; no response is lost by it.
    asio::awaitable<std::optional<Response>> next() { return state::next_result(state_); }

   private:
    friend class request_runner;
    explicit result_stream(std::shared_ptr<state> s) : state_(std::move(s)) {}
    std::shared_ptr<state> state_;
  };

  result_stream results() { return result_stream(state_); }

  /// The next response, waiting at most `limit`; `std::nullopt` when none came in time, or
  /// when the stream has ended (`results().next()` tells the two apart).
  asio::awaitable<std::optional<Response>> result(duration limit) {
    return state::result_within(state_, limit);
  }

  /// Refuses new requests, waits until every queued request has been sent and answered, and
  /// ends `results()` (its readers get what is left, then `std::nullopt`).
  asio::awaitable<void> close() { return state::close(state_); }

  /// Requests waiting to be sent.
  std::size_t queued() const {
    std::lock_guard lock(state_->mutex);
    return state_->queue.size();
  }

  /// Requests being sent now.
  std::size_t in_flight() const {
    std::lock_guard lock(state_->mutex);
    return state_->in_flight;
  }

  /// Responses dropped from `results()` unread (`results_capacity`).
  std::uint64_t dropped_results() const {
    std::lock_guard lock(state_->mutex);
    return state_->dropped;
  }

 private:
  struct state : std::enable_shared_from_this<state> {
    struct outcome {
      std::optional<Response> response;
      std::exception_ptr error;
    };

    struct item {
      explicit item(Request r) : request(std::move(r)) {}
      Request request;
      detail::oneshot<bool> admitted;  // true once queued; false when close() refused it
      detail::oneshot<outcome> done;
    };
    using item_ptr = std::shared_ptr<item>;

    state(asio::any_io_executor ex, sender s, std::vector<request_strategy_ptr> chain,
          request_runner_options opts)
        : executor(std::move(ex)), send(std::move(s)), strategies(std::move(chain)), options(opts) {
      if (!send)
        throw std::invalid_argument("vigil: request_runner: the sender is empty");
      for (std::size_t i = 0; i < strategies.size(); ++i)
        if (!strategies[i])
          throw std::invalid_argument(
              fmt::format("vigil: request_runner: strategy {} of the chain is null", i));
      if (options.concurrency == 0)
        throw std::invalid_argument(
            "vigil: request_runner_options::concurrency must be at least 1");
      if (options.queue_capacity == 0)
        throw std::invalid_argument(
            "vigil: request_runner_options::queue_capacity must be at least 1");
      if (options.results_capacity == 0)
        throw std::invalid_argument(
            "vigil: request_runner_options::results_capacity must be at least 1");
    }

    const asio::any_io_executor executor;
    const sender send;
    const std::vector<request_strategy_ptr> strategies;
    const request_runner_options options;

    std::mutex mutex;
    // Lists, so that a request moves from `blocked` to `queue` by a splice, which cannot throw:
    // a hand-off that failed half-way would lose the request or hang its caller.
    std::list<item_ptr> queue;
    std::list<item_ptr> blocked;  // waiting for room in `queue`, oldest first
    std::size_t in_flight = 0;
    std::size_t workers = 0;
    bool closed = false;
    std::deque<Response> results;
    std::uint64_t dropped = 0;
    detail::wait_queue<bool> result_waiters{mutex};   // readers: "look again"
    detail::wait_queue<bool> drained_waiters{mutex};  // close()

    bool drained() const noexcept { return closed && queue.empty() && in_flight == 0; }

    /// Queues `it`, or lines it up behind the requests already waiting for room: `it->admitted`
    /// is set once it is queued. Room goes to the oldest waiter, never to a later caller. True
    /// when it was queued at once.
    /// @throws std::logic_error when closed.
    bool enqueue(const item_ptr& it) {
      std::size_t new_workers = 0;
      bool queued = false;
      {
        detail::deferred_completions done;
        std::lock_guard lock(mutex);
        if (closed)
          throw std::logic_error("vigil: request_runner: closed, the request was not queued");
        blocked.push_back(it);
        new_workers = admit(done);
        queued = blocked.empty();  // it was the last in line
      }
      spawn_workers(new_workers);
      return queued;
    }

    /// Moves waiting requests into the queue while there is room, oldest first; how many
    /// workers to start for them (`spawn_workers`, once the lock is released).
    std::size_t admit(detail::deferred_completions& done) {  // under mutex
      std::size_t new_workers = 0;
      while (!blocked.empty() && queue.size() < options.queue_capacity) {
        queue.splice(queue.end(), blocked, blocked.begin());
        queue.back()->admitted.set(done, true);  // for a caller that waits for it
        if (workers < options.concurrency) {
          ++workers;
          ++new_workers;
        }
      }
      return new_workers;
    }

    void spawn_workers(std::size_t n) {
      while (n-- > 0)
        spawn_worker();
    }

    void spawn_worker() {
      asio::co_spawn(asio::make_strand(executor), work(this->shared_from_this()), asio::detached);
    }

    /// The next request to send, or null (and the worker is gone) when none is queued.
    item_ptr pop() {
      item_ptr next;
      std::size_t new_workers = 0;
      {
        detail::deferred_completions done;
        std::lock_guard lock(mutex);
        if (queue.empty()) {
          --workers;
          return nullptr;
        }
        next = std::move(queue.front());
        queue.pop_front();
        ++in_flight;
        new_workers = admit(done);  // the room it made goes to the oldest waiting request
      }
      spawn_workers(new_workers);
      return next;
    }

    void finish(const item_ptr& it, outcome result) {
      detail::deferred_completions done;
      std::lock_guard lock(mutex);
      --in_flight;
      try {
        if (result.response) {
          if (results.size() >= options.results_capacity) {
            results.pop_front();
            ++dropped;
          }
          results.push_back(*result.response);
        }
        it->done.set(done, std::move(result));
      } catch (...) {
        // The response could not be copied (its copy threw, or memory ran out): the request
        // fails with why, and the worker goes on to the next one.
        it->done.set(done, outcome{std::nullopt, std::current_exception()});
      }
      result_waiters.complete_all(done, {}, true);
      if (drained())
        drained_waiters.complete_all(done, {}, true);
    }

    /// A cancelled request(): takes its item out of the line for room, or out of the queue,
    /// if it is still there.
    void withdraw(const item_ptr& it) {
      std::size_t new_workers = 0;
      {
        detail::deferred_completions done;
        std::lock_guard lock(mutex);
        if (const auto waiting = std::find(blocked.begin(), blocked.end(), it);
            waiting != blocked.end()) {
          blocked.erase(waiting);
          return;
        }
        const auto found = std::find(queue.begin(), queue.end(), it);
        if (found == queue.end())
          return;
        queue.erase(found);
        new_workers = admit(done);
        if (drained()) {
          result_waiters.complete_all(done, {}, true);
          drained_waiters.complete_all(done, {}, true);
        }
      }
      spawn_workers(new_workers);
    }

    void close_now() {
      detail::deferred_completions done;
      std::lock_guard lock(mutex);
      closed = true;
      for (const item_ptr& it : blocked)  // still waiting for room: refused
        it->admitted.set(done, false);
      blocked.clear();
      if (drained()) {
        result_waiters.complete_all(done, {}, true);
        drained_waiters.complete_all(done, {}, true);
      }
    }

    /// The oldest unread response; none, with `ended` set, once the stream is over.
    std::optional<Response> take_result(bool& ended) {
      std::lock_guard lock(mutex);
      ended = results.empty() && drained();
      if (results.empty())
        return std::nullopt;
      Response next = std::move(results.front());
      results.pop_front();
      return next;
    }

    /// Until there may be a response to take, or the stream has ended: "look again". It never
    /// takes a response itself, so a reader that stops waiting (a timeout) loses none.
    asio::awaitable<void> async_wait_results() {
      auto initiate = [this](auto handler) {
        detail::deferred_completions done;
        std::lock_guard lock(mutex);
        if (!results.empty() || drained())
          done.post(std::move(handler), std::error_code{}, true);
        else
          result_waiters.push(std::move(handler));
      };
      co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::error_code, bool)>(
          initiate, asio::use_awaitable);
    }

    asio::awaitable<void> async_wait_drained() {
      auto initiate = [this](auto handler) {
        detail::deferred_completions done;
        std::lock_guard lock(mutex);
        if (drained())
          done.post(std::move(handler), std::error_code{}, true);
        else
          drained_waiters.push(std::move(handler));
      };
      co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::error_code, bool)>(
          initiate, asio::use_awaitable);
    }

    // The public coroutines are plain functions that hand the state to these: an awaitable
    // starts suspended, and may first run after the runner is gone.

    static asio::awaitable<Response> request(std::shared_ptr<state> s, Request r) {
      auto it = std::make_shared<item>(std::move(r));
      const bool queued_at_once = s->enqueue(it);
      outcome result;
      try {
        if (!queued_at_once) {  // waits for room, behind the requests that waited first
          const bool queued = co_await it->admitted.async_wait(asio::use_awaitable);
          if (!queued)
            throw std::logic_error("vigil: request_runner: closed, the request was not queued");
        }
        result = co_await it->done.async_wait(asio::use_awaitable);
      } catch (const std::system_error&) {
        s->withdraw(it);  // cancelled: if still unsent, it never will be
        throw;
      }
      if (result.error)
        std::rethrow_exception(result.error);
      co_return std::move(*result.response);
    }

    static asio::awaitable<std::optional<Response>> next_result(std::shared_ptr<state> s) {
      for (;;) {
        bool ended = false;
        if (auto ready = s->take_result(ended))
          co_return ready;
        if (ended)
          co_return std::nullopt;
        co_await s->async_wait_results();
      }
    }

    static asio::awaitable<std::optional<Response>> result_within(std::shared_ptr<state> s,
                                                                  duration limit) {
      const asio::any_io_executor executor = co_await asio::this_coro::executor;
      const time_point deadline = detail::deadline_after(clock::now(), limit);
      for (;;) {
        bool ended = false;
        if (auto ready = s->take_result(ended))
          co_return ready;
        if (ended)
          co_return std::nullopt;
        // The wait only says "look again": whichever side ends first, it takes no response.
        asio::awaitable<detail::first_of_result> race =
            detail::first_of(executor, s->async_wait_results(), sleep_until(deadline));
        const detail::first_of_result woken = co_await std::move(race);
        if (woken.a_error && woken.b_error)
          std::rethrow_exception(woken.a_error);  // the caller cancelled
        if (woken.first == 1)
          co_return s->take_result(ended);
      }
    }

    static asio::awaitable<void> sleep_until(std::chrono::steady_clock::time_point when) {
      const asio::any_io_executor executor = co_await asio::this_coro::executor;
      asio::steady_timer timer(executor, when);
      co_await timer.async_wait(asio::use_awaitable);
    }

    static asio::awaitable<void> close(std::shared_ptr<state> s) {
      s->close_now();
      co_await s->async_wait_drained();
    }

    /// One worker: sends queued requests until there are none left.
    static asio::awaitable<void> work(std::shared_ptr<state> self) {
      while (item_ptr it = self->pop()) {
        outcome result;
        try {
          std::optional<Response> response;
          request_call innermost = [&self, &it, &response]() -> asio::awaitable<void> {
            Request copy = it->request;
            asio::awaitable<Response> call = self->send(std::move(copy));
            response.emplace(co_await std::move(call));
          };
          co_await self->call_through(0, innermost);
          if (!response)
            throw std::logic_error(
                "vigil: request_runner: the strategy chain returned without a response (a "
                "strategy returned without a successful call of its next)");
          result.response = std::move(response);
        } catch (...) {
          result.error = std::current_exception();
        }
        self->finish(it, std::move(result));
      }
    }

    /// The chain from strategy `i` on, ending in `innermost`.
    asio::awaitable<void> call_through(std::size_t i, const request_call& innermost) {
      if (i == strategies.size()) {
        co_await innermost();
        co_return;
      }
      request_call next = [this, i, &innermost]() { return call_through(i + 1, innermost); };
      co_await strategies[i]->invoke(next);
    }
  };

  std::shared_ptr<state> state_;
};

}  // namespace vigil
