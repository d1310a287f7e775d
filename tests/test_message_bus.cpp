// running_handle / bus_run (one run of a bus) and memory_bus, the in-process adapter: the
// message_bus contract of docs/message-bus.md.

#include "support.hpp"

#include <vigil/memory_bus.hpp>

#include <asio/experimental/as_tuple.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace vigil_test;

namespace {

/// A handler that records every message and opens `all_in` at the `expected`-th.
struct recorder {
  explicit recorder(std::size_t n) : expected(n) {}

  std::shared_ptr<std::vector<std::string>> seen = std::make_shared<std::vector<std::string>>();
  gate all_in;
  std::size_t expected;

  vigil::message_handler<int> handler() const {
    return [seen = seen, all_in = all_in, expected = expected](
               std::string_view source, int message) -> asio::awaitable<void> {
      seen->push_back(std::string(source) + ":" + std::to_string(message));
      if (seen->size() == expected)
        all_in.open();
      co_return;
    };
  }
};

}  // namespace

// ---- running_handle and bus_run -------------------------------------------------------------

TEST_CASE("an empty running_handle refuses to be used", "[bus][running_handle]") {
  const vigil::running_handle empty;
  CHECK_FALSE(empty.valid());
  CHECK_THROWS_AS(empty.done(), std::logic_error);
  CHECK_THROWS_AS(empty.error(), std::logic_error);
  CHECK_THROWS_AS(empty.wait(), std::logic_error);
  vigil::bus_run run;
  CHECK_THROWS_AS(run.fail(nullptr), std::invalid_argument);
  CHECK_FALSE(run.done());
}

TEST_CASE("a finished run completes waiters before and after, first end wins",
          "[bus][running_handle]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::bus_run run;
    const vigil::running_handle handle = run.handle();
    CHECK(handle == run.handle());
    CHECK(handle != vigil::bus_run{}.handle());
    CHECK_FALSE(handle.done());

    // Ten waiters before the end, on their own strands.
    auto ended = std::make_shared<std::atomic<int>>(0);
    for (int i = 0; i < 10; ++i)
      asio::co_spawn(asio::make_strand(io), crash_of(handle),
                     [ended](std::exception_ptr, std::string what) {
                       if (what.empty())
                         ++*ended;
                     });
    CHECK(run.finish());
    CHECK_FALSE(run.finish());
    CHECK_FALSE(run.fail(std::make_exception_ptr(std::runtime_error("late"))));
    CHECK(handle.done());
    CHECK_FALSE(handle.crashed());
    CHECK(handle.error() == nullptr);
    const std::string late = co_await crash_of(handle);  // a waiter after the end
    CHECK(late.empty());

    asio::steady_timer poll(co_await asio::this_coro::executor);
    for (int i = 0; i < 500 && ended->load() < 10; ++i) {
      poll.expires_after(10ms);
      co_await poll.async_wait(asio::use_awaitable);
    }
    CHECK(ended->load() == 10);
  }());
}

TEST_CASE("a crashed run rethrows its exception to every waiter", "[bus][running_handle]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::bus_run run;
    const auto handle = run.handle();
    std::string before;
    asio::co_spawn(co_await asio::this_coro::executor, crash_of(handle),
                   [&](std::exception_ptr, std::string what) { before = std::move(what); });
    const auto crash = std::make_exception_ptr(std::runtime_error("connection lost"));
    CHECK(run.fail(crash));
    CHECK_FALSE(run.finish());
    CHECK(handle.crashed());
    CHECK(handle.error() == crash);
    const std::string reason = co_await crash_of(handle);
    CHECK(reason == "connection lost");
    co_await handle.join();  // the end, without the crash rethrown
    asio::steady_timer poll(co_await asio::this_coro::executor);
    for (int i = 0; i < 500 && before.empty(); ++i) {
      poll.expires_after(10ms);
      co_await poll.async_wait(asio::use_awaitable);
    }
    CHECK(before == "connection lost");
  }());
}

TEST_CASE("a run ended on another thread wakes a waiter, and a waiter can be cancelled",
          "[bus][running_handle]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::bus_run run;
    const auto handle = run.handle();

    // Cancelling one waiter leaves the run alone.
    asio::cancellation_signal cancel;
    std::error_code cancelled;
    asio::co_spawn(co_await asio::this_coro::executor, handle.wait(),
                   asio::bind_cancellation_slot(
                       cancel.slot(), [&](std::exception_ptr e) { cancelled = error_code_of(e); }));
    asio::steady_timer pause(co_await asio::this_coro::executor, 5ms);
    co_await pause.async_wait(asio::use_awaitable);
    cancel.emit(asio::cancellation_type::terminal);
    pause.expires_after(5ms);
    co_await pause.async_wait(asio::use_awaitable);
    CHECK(cancelled == asio::error::operation_aborted);
    CHECK_FALSE(handle.done());

    std::thread ender([run]() mutable { run.finish(); });
    co_await handle.wait();
    ender.join();
    CHECK(handle.done());
  }());
}

TEST_CASE("a waiter cancelled after the run ended, before it resumed, sees the end",
          "[bus][running_handle]") {
  // The end is decided and the waiter's completion posted, then the cancellation comes, on the
  // waiter's own executor: it must find the waiter (not freed memory) and change nothing.
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::bus_run run;
    asio::cancellation_signal cancel;
    std::string outcome = "not resumed";
    asio::co_spawn(
        co_await asio::this_coro::executor, crash_of(run.handle()),
        asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr, std::string what) {
          outcome = std::move(what);
        }));
    asio::steady_timer pause(co_await asio::this_coro::executor, 5ms);
    co_await pause.async_wait(asio::use_awaitable);  // the waiter is parked
    run.finish();
    cancel.emit(asio::cancellation_type::terminal);
    pause.expires_after(5ms);
    co_await pause.async_wait(asio::use_awaitable);
    CHECK(outcome.empty());  // ended normally, not aborted
  }());
}

// ---- memory_bus ---------------------------------------------------------------------------

TEST_CASE("memory_bus refuses unusable options and an empty handler", "[bus][memory_bus]") {
  asio::io_context io;
  CHECK_THROWS_WITH(vigil::memory_bus<int>(io.get_executor(), {.capacity = 0}),
                    Catch::Matchers::Contains("capacity must be at least 1, got 0"));
  CHECK_THROWS_WITH(
      vigil::memory_bus<int>(io.get_executor(), {.when_full = static_cast<vigil::queue_full>(7)}),
      Catch::Matchers::Contains("when_full is not a policy, got 7"));
  run(io, [&]() -> asio::awaitable<void> {
    vigil::memory_bus<int> bus{io.get_executor()};
    bool refused = false;
    try {
      co_await bus.start({});
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    CHECK(refused);
    co_await bus.stop();  // never started: a no-op
  }());
}

TEST_CASE("memory_bus delivers in order what was queued before and after start, once",
          "[bus][memory_bus]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::memory_bus<int> bus{io.get_executor(), {.name = "orders"}};
    CHECK(bus.name() == "orders");
    CHECK(bus.publish("web", 1));
    CHECK(bus.publish("cli", 2));
    CHECK(bus.queued() == 2);
    recorder r{4};
    const auto handle = co_await bus.start(r.handler());
    const auto same = co_await bus.start(r.handler());
    CHECK(same == handle);  // idempotent while running
    CHECK(bus.publish("web", 3));
    CHECK(bus.publish("web", 4));
    co_await r.all_in.wait();
    CHECK(*r.seen == std::vector<std::string>{"web:1", "cli:2", "web:3", "web:4"});
    co_await bus.stop();
    CHECK(handle.done());
    CHECK_FALSE(handle.crashed());
    const auto counters = bus.counters();
    CHECK(counters.received == 4);
    CHECK(counters.delivered == 4);
    CHECK(counters.failed == 0);
    CHECK(counters.dropped == 0);
  }());
}

TEST_CASE("memory_bus stop cancels the handler in flight, keeps the queue, and starts again",
          "[bus][memory_bus]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::memory_bus<int> bus{io.get_executor()};
    gate in_handler;
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    auto delivered = std::make_shared<std::vector<int>>();
    gate second_done;
    vigil::message_handler<int> handler = [&, cancelled, delivered](
                                              std::string_view, int m) -> asio::awaitable<void> {
      delivered->push_back(m);
      if (m == 1) {  // blocks until cancelled
        in_handler.open();
        try {
          co_await gate{}.wait();
        } catch (const std::system_error&) {
          cancelled->store(true);
          throw;
        }
      }
      if (m == 3)
        second_done.open();
    };
    bus.publish("t", 1);
    bus.publish("t", 2);
    const auto first = co_await bus.start(handler);
    co_await in_handler.wait();
    co_await bus.stop();
    CHECK(cancelled->load());
    CHECK(first.done());
    CHECK_FALSE(first.crashed());  // a stop is never a crash, even with a cancelled handler
    CHECK(bus.queued() == 1);      // message 2 stays for the next run
    CHECK(bus.counters().failed == 0);

    bus.publish("t", 3);
    const auto second = co_await bus.start(handler);
    CHECK(second != first);
    co_await second_done.wait();
    CHECK(*delivered == std::vector<int>{1, 2, 3});
    co_await bus.stop();
    co_await bus.stop();  // already stopped: a no-op
  }());
}

TEST_CASE("memory_bus handler failures: skipped and counted, or a crash", "[bus][memory_bus]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto picky = [](std::string_view, int m) -> asio::awaitable<void> {
      if (m % 2 == 0)
        throw std::runtime_error("even message " + std::to_string(m));
      co_return;
    };

    vigil::memory_bus<int> skipping{io.get_executor()};
    for (int m = 1; m <= 4; ++m)
      skipping.publish("t", m);
    gate last;
    // Handlers are named before the co_await: GCC 12 destroys a capturing lambda temporary
    // inside a co_await expression twice.
    vigil::message_handler<int> until_five = [&, picky](std::string_view s,
                                                        int m) -> asio::awaitable<void> {
      if (m == 5)
        last.open();
      co_await picky(s, m);
    };
    co_await skipping.start(until_five);
    skipping.publish("t", 5);
    co_await last.wait();
    co_await skipping.stop();
    CHECK(skipping.counters().failed == 2);
    CHECK(skipping.counters().delivered == 3);

    vigil::memory_bus<int> crashing{io.get_executor(),
                                    {.on_handler_failure = vigil::handler_failure::crash}};
    crashing.publish("t", 1);
    crashing.publish("t", 2);
    crashing.publish("t", 3);
    const auto run = co_await crashing.start(picky);
    const std::string reason = co_await crash_of(run);
    CHECK(reason == "even message 2");
    CHECK(run.crashed());
    CHECK(crashing.queued() == 1);  // 3 waits for the next run
    co_await crashing.stop();       // after a crash: no rethrow
    gate third;
    vigil::message_handler<int> until_three = [&, picky](std::string_view s,
                                                         int m) -> asio::awaitable<void> {
      co_await picky(s, m);
      if (m == 3)
        third.open();
    };
    const auto again = co_await crashing.start(until_three);
    CHECK(again != run);
    co_await third.wait();
    CHECK_FALSE(again.done());
    co_await crashing.stop();
    CHECK(crashing.counters().delivered == 2);
    CHECK(crashing.counters().failed == 1);
  }());
}

TEST_CASE("memory_bus full queue: reject refuses, drop_oldest drops", "[bus][memory_bus]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::memory_bus<int> rejecting{io.get_executor(), {.capacity = 2}};
    CHECK(rejecting.publish("t", 1));
    CHECK(rejecting.publish("t", 2));
    CHECK_FALSE(rejecting.publish("t", 3));
    CHECK(rejecting.counters().dropped == 1);

    vigil::memory_bus<int> dropping{io.get_executor(),
                                    {.capacity = 2, .when_full = vigil::queue_full::drop_oldest}};
    for (int m = 1; m <= 3; ++m)
      CHECK(dropping.publish("t", m));
    recorder r{2};
    co_await dropping.start(r.handler());
    co_await r.all_in.wait();
    CHECK(*r.seen == std::vector<std::string>{"t:2", "t:3"});
    CHECK(dropping.counters().dropped == 1);
    co_await dropping.stop();
    co_await rejecting.stop();
  }());
}

TEST_CASE("memory_bus takes messages from many threads and loses none", "[bus][memory_bus]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    constexpr int threads = 4;
    constexpr int each = 2'000;
    vigil::memory_bus<int> bus{io.get_executor(), {.capacity = threads * each}};
    auto count = std::make_shared<std::atomic<int>>(0);
    gate all_in;
    vigil::message_handler<int> counting = [count, all_in](std::string_view,
                                                           int) -> asio::awaitable<void> {
      if (++*count == threads * each)
        all_in.open();
      co_return;
    };
    co_await bus.start(counting);
    std::vector<std::thread> publishers;
    for (int t = 0; t < threads; ++t)
      publishers.emplace_back([&bus, t] {
        for (int i = 0; i < each; ++i)
          bus.publish("thread" + std::to_string(t), i);
      });
    for (auto& p : publishers)
      p.join();
    co_await all_in.wait();
    CHECK(count->load() == threads * each);
    co_await bus.stop();  // the run counts a delivery after its handler returns
    CHECK(bus.counters().delivered == threads * each);
  }());
}
