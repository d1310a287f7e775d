#pragma once

// Shared helpers of vigil's tests: run a test body on an io_context (with the number of threads
// the preset asks for), read events, and small task bodies.
//
// Never co_await inside CHECK/REQUIRE: Catch2 v2 also expands the argument inside
// __builtin_constant_p, and GCC 12 evaluates a co_await there, so the operation would run twice.
// Await into a local, then assert.

#include "catch.hpp"

#include <vigil/vigil.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace vigil_test {

using namespace std::chrono_literals;

/// Threads that run each test's io_context: VIGIL_TEST_THREADS (the tsan preset sets 4).
inline int io_threads() {
  static const int threads = [] {
    const char* value = std::getenv("VIGIL_TEST_THREADS");
    const int parsed = value != nullptr ? std::atoi(value) : 1;
    return parsed > 0 ? parsed : 1;
  }();
  return threads;
}

/// Runs `body` on a strand of `io` with `io_threads()` threads, then lets `io` drain. Fails when
/// the body throws (Catch failures inside it included), does not finish within `limit`, or leaves
/// work behind (a supervisor not shut down, a coroutine never resumed).
///
/// The body runs on one strand: its assertions never run concurrently with each other.
inline void run(asio::io_context& io, asio::awaitable<void> body,
                std::chrono::steady_clock::duration limit = 20s) {
  std::atomic<bool> finished{false};
  std::exception_ptr failure;
  asio::co_spawn(asio::make_strand(io), std::move(body), [&](std::exception_ptr e) {
    failure = e;
    finished.store(true);
    if (e)
      io.stop();  // a failed body leaves its supervisor running: do not wait for it
  });
  std::vector<std::thread> helpers;
  for (int i = 1; i < io_threads(); ++i)
    helpers.emplace_back([&] { io.run_for(limit); });
  io.run_for(limit);
  for (auto& t : helpers)
    t.join();
  if (failure)
    std::rethrow_exception(failure);
  INFO("the test body did not finish within the time limit");
  REQUIRE(finished.load());
  INFO("the io_context still had work after the test body: something was not shut down");
  REQUIRE(io.stopped());
}

/// Reads events until `stop` returns true for one (included in the result).
template <class Predicate>
asio::awaitable<std::vector<vigil::event>> read_until(vigil::subscription& events, Predicate stop) {
  std::vector<vigil::event> seen;
  for (;;) {
    seen.push_back(co_await events.next());
    if (stop(seen.back()))
      co_return seen;
  }
}

/// Reads events until `kind` is published for `task` (an empty task matches supervisor events).
inline asio::awaitable<std::vector<vigil::event>> read_until(vigil::subscription& events,
                                                             vigil::event_kind kind,
                                                             std::string task = {}) {
  std::vector<vigil::event> seen;
  for (;;) {
    seen.push_back(co_await events.next());
    if (seen.back().kind == kind && seen.back().task == task)
      co_return seen;
  }
}

/// "kind task" ("kind" for supervisor-wide steps) for the events of the listed kinds, in order.
inline std::vector<std::string> trace(const std::vector<vigil::event>& events,
                                      std::initializer_list<vigil::event_kind> of) {
  std::vector<std::string> lines;
  for (const auto& e : events)
    if (std::find(of.begin(), of.end(), e.kind) != of.end())
      lines.push_back(std::string(vigil::to_string(e.kind)) + (e.task.empty() ? "" : " ") + e.task);
  return lines;
}

/// The kinds of `events`, in order.
inline std::vector<vigil::event_kind> kinds(const std::vector<vigil::event>& events) {
  std::vector<vigil::event_kind> result;
  for (const auto& e : events)
    result.push_back(e.kind);
  return result;
}

/// The code of a `std::system_error` in `error`; an empty code for anything else.
inline std::error_code error_code_of(const std::exception_ptr& error) {
  try {
    if (error)
      std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    return e.code();
  } catch (...) {
  }
  return {};
}

/// How a bus's run ended: the crash's what(), or "" after a clean stop.
inline asio::awaitable<std::string> crash_of(vigil::running_handle run) {
  try {
    co_await run.wait();
  } catch (const std::exception& e) {
    co_return std::string(e.what());
  }
  co_return std::string();
}

/// A gate tasks wait on; `open()` from anywhere releases every waiter. `wait_ignoring_cancel`
/// waits without honouring cancellation: the way to write a task that is stuck.
class gate {
 public:
  void open() const { state_->set(true); }

  asio::awaitable<void> wait() const {
    auto state = state_;
    co_await state->async_wait(asio::use_awaitable);
  }

  asio::awaitable<void> wait_ignoring_cancel() const {
    auto state = state_;
    co_await state->async_wait(
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  }

 private:
  std::shared_ptr<vigil::detail::oneshot<bool>> state_ =
      std::make_shared<vigil::detail::oneshot<bool>>();
};

/// Sleeps on the attempt's executor; cancellation throws as usual.
inline asio::awaitable<void> sleep_for(vigil::task_context ctx,
                                       std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(ctx.executor(), d);
  co_await timer.async_wait(asio::use_awaitable);
}

/// A task body that waits until cancelled.
inline asio::awaitable<void> sleep_forever(vigil::task_context ctx) {
  co_await sleep_for(ctx, 24h);
}

/// Calls `ready()`, then waits until cancelled.
inline asio::awaitable<void> ready_then_wait(vigil::task_context ctx) {
  ctx.ready();
  co_await sleep_forever(ctx);
}

/// A stuck task: ignores cancellation until `release` opens.
inline asio::awaitable<void> stuck_until(vigil::task_context, gate release) {
  co_await release.wait_ignoring_cancel();
}

inline vigil::task_fn stuck_task(gate release) {
  return [release](vigil::task_context ctx) { return stuck_until(std::move(ctx), release); };
}

/// Succeeds at once.
inline asio::awaitable<void> succeed(vigil::task_context) {
  co_return;
}

/// Throws `std::runtime_error("boom N")` on attempts 1..failures, then succeeds.
inline asio::awaitable<void> fail_first(vigil::task_context ctx, std::uint32_t failures) {
  if (ctx.attempt() <= failures)
    throw std::runtime_error("boom " + std::to_string(ctx.attempt()));
  co_return;
}

inline vigil::task_fn failing_first(std::uint32_t failures) {
  return [failures](vigil::task_context ctx) { return fail_first(std::move(ctx), failures); };
}

/// Always throws `std::runtime_error("boom N")`.
inline vigil::task_fn always_failing() {
  return failing_first(1'000'000'000);
}

/// A spec with fast, deterministic backoff (no jitter) for event-sequence tests.
inline vigil::task_spec quick_spec(std::string name, vigil::task_fn fn) {
  vigil::task_spec spec;
  spec.name = std::move(name);
  spec.fn = std::move(fn);
  spec.backoff = vigil::backoff_policy::exponential(1ms, 10ms, 2.0);
  spec.backoff.jitter = vigil::jitter::none;
  return spec;
}

/// An io_context, a supervisor on it and a subscription that sees every event.
struct harness {
  explicit harness(vigil::supervisor_options options = {})
      : sup(io.get_executor(), std::move(options)), events(sup.events().subscribe(1 << 16)) {}

  void run(asio::awaitable<void> body, std::chrono::steady_clock::duration limit = 20s) {
    vigil_test::run(io, std::move(body), limit);
  }

  asio::io_context io;
  vigil::supervisor sup;
  vigil::subscription events;
};

}  // namespace vigil_test

// Readable values in assertion messages.
namespace Catch {
template <>
struct StringMaker<vigil::event_kind> {
  static std::string convert(vigil::event_kind kind) { return std::string(vigil::to_string(kind)); }
};
template <>
struct StringMaker<vigil::task_outcome::code> {
  static std::string convert(vigil::task_outcome::code kind) {
    return std::string(vigil::to_string(kind));
  }
};
template <>
struct StringMaker<vigil::task_outcome> {
  static std::string convert(const vigil::task_outcome& outcome) {
    return std::string(vigil::to_string(outcome.kind)) + " (" + outcome.reason + ")";
  }
};
}  // namespace Catch
