// The event bus: ordering, bounded queues with exact overflow counts, closing, cancellation,
// isolated user subscribers, and the readable forms of events.

#include "support.hpp"

#include <asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <thread>

using namespace vigil_test;
using K = vigil::event_kind;

namespace {

vigil::event make(K kind, std::string task = {}) {
  vigil::event e;
  e.kind = kind;
  e.task = std::move(task);
  return e;
}

}  // namespace

TEST_CASE("publishing stamps strictly increasing seq numbers", "[event_bus]") {
  vigil::event_bus bus;
  CHECK(bus.publish(make(K::task_added)) == 1);  // no subscriber: fine, goes nowhere
  auto sub = bus.subscribe(8);
  CHECK(bus.publish(make(K::task_added, "a")) == 2);
  CHECK(bus.publish(make(K::task_removed, "a")) == 3);
  const auto first = sub.try_next();
  const auto second = sub.try_next();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->seq == 2);
  CHECK(first->task == "a");
  CHECK(second->seq == 3);
  CHECK(second->kind == K::task_removed);
  CHECK(first->at.time_since_epoch().count() != 0);
  CHECK_FALSE(sub.try_next());
}

TEST_CASE("a full subscription drops the oldest and reports the exact count once",
          "[event_bus][overflow]") {
  vigil::event_bus bus;
  auto sub = bus.subscribe(4);
  for (int i = 0; i < 10; ++i)
    bus.publish(make(K::attempt_starting, std::to_string(i)));
  const auto overflow = sub.try_next();
  REQUIRE(overflow);
  CHECK(overflow->kind == K::subscriber_overflow);
  CHECK(overflow->dropped == 6);
  CHECK(overflow->seq == 6);  // the last one lost: seq still increases for the reader
  for (int i = 6; i < 10; ++i) {
    const auto e = sub.try_next();
    REQUIRE(e);
    CHECK(e->task == std::to_string(i));
    CHECK(e->seq == static_cast<std::uint64_t>(i + 1));
  }
  CHECK_FALSE(sub.try_next());
  // A second overflow is counted from zero again.
  for (int i = 0; i < 5; ++i)
    bus.publish(make(K::attempt_starting));
  const auto again = sub.try_next();
  REQUIRE(again);
  CHECK(again->kind == K::subscriber_overflow);
  CHECK(again->dropped == 1);
}

TEST_CASE("a lagging subscription does not affect another", "[event_bus][overflow]") {
  vigil::event_bus bus;
  auto small = bus.subscribe(1);
  auto large = bus.subscribe(100);
  for (int i = 0; i < 50; ++i)
    bus.publish(make(K::task_added));
  int received = 0;
  while (auto e = large.try_next()) {
    CHECK(e->kind == K::task_added);
    ++received;
  }
  CHECK(received == 50);
  CHECK(small.try_next()->dropped == 49);
}

namespace {

asio::awaitable<void> read_then_closed(vigil::event_bus& bus, vigil::subscription& sub) {
  bus.publish(make(K::task_added, "x"));
  bus.close();
  bus.publish(make(K::task_removed, "x"));  // after close: goes nowhere
  const auto e = co_await sub.next();
  CHECK(e.task == "x");
  CHECK(e.kind == K::task_added);
  try {
    co_await sub.next();
    FAIL("next() returned after the bus closed");
  } catch (const std::system_error& error) {
    CHECK(error.code() == vigil::errc::bus_closed);
  }
}

}  // namespace

TEST_CASE("after close, readers drain what is buffered and then get bus_closed",
          "[event_bus][close]") {
  asio::io_context io;
  vigil::event_bus bus;
  auto sub = bus.subscribe(8);
  run(io, read_then_closed(bus, sub));
}

namespace {

asio::awaitable<void> parked_reader(vigil::event_bus& bus, vigil::subscription& sub) {
  std::thread publisher([&bus] {
    for (int i = 0; i < 100; ++i)
      bus.publish(make(K::attempt_starting, std::to_string(i)));
  });
  for (int i = 0; i < 100; ++i) {
    const auto e = co_await sub.next();
    REQUIRE(e.task == std::to_string(i));
  }
  publisher.join();
}

}  // namespace

TEST_CASE("a parked reader is woken by publishes from another thread", "[event_bus][threads]") {
  asio::io_context io;
  vigil::event_bus bus;
  auto sub = bus.subscribe(1000);
  run(io, parked_reader(bus, sub));
}

namespace {

asio::awaitable<void> cancelled_wait(vigil::event_bus& bus, vigil::subscription& sub) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, 10ms);
  // The timer wins: the parked next() is cancelled and must not swallow an event.
  auto winner = co_await (sub.next() || timer.async_wait(asio::use_awaitable));
  CHECK(winner.index() == 1);
  bus.publish(make(K::task_added, "after"));
  const auto e = co_await sub.next();
  CHECK(e.task == "after");
}

}  // namespace

TEST_CASE("cancelling a parked next() loses no event", "[event_bus][cancel]") {
  asio::io_context io;
  vigil::event_bus bus;
  auto sub = bus.subscribe(8);
  run(io, cancelled_wait(bus, sub));
}

namespace {

/// Throws on every attempt_starting; records everything it sees.
class grumpy final : public vigil::subscriber {
 public:
  void on_event(const vigil::event& e) override {
    std::lock_guard lock(mutex_);
    seen_.push_back(e.kind);
    if (e.kind == K::attempt_starting)
      throw std::runtime_error("I do not like starts");
  }
  std::string name() const override { return "grumpy"; }
  std::vector<K> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<K> seen_;
};

asio::awaitable<void> panic_is_reported(harness& h) {
  h.sup.add(quick_spec("a", succeed));
  // The panic comes from the subscriber's strand: read until both it and the end of "a" passed.
  bool panicked = false, removed = false;
  while (!panicked || !removed) {
    const auto e = co_await h.events.next();
    removed = removed || (e.kind == K::task_removed && e.task == "a");
    if (e.kind == K::subscriber_panicked) {
      panicked = true;
      CHECK(e.task == "grumpy");
      CHECK(e.reason.find("I do not like starts") != std::string::npos);
      CHECK(e.reason.find("attempt_starting") != std::string::npos);
    }
  }
  co_await h.sup.shutdown().wait();
  co_await read_until(h.events, K::all_stopped_within_grace);
}

}  // namespace

TEST_CASE("a throwing subscriber is reported and keeps receiving", "[event_bus][subscriber]") {
  auto subscriber = std::make_shared<grumpy>();
  vigil::supervisor_options options;
  options.subscribers.push_back(subscriber);
  {
    harness h(options);
    h.run(panic_is_reported(h));
  }
  // It saw the whole life of "a" after throwing on its start, and the shutdown. Its own panic
  // is published from its strand, so it may come anywhere after the start: compare without it.
  const auto seen = subscriber->seen();
  std::vector<K> without_panic;
  for (K k : seen)
    if (k != K::subscriber_panicked)
      without_panic.push_back(k);
  CHECK(std::count(seen.begin(), seen.end(), K::subscriber_panicked) == 1);
  CHECK(without_panic == std::vector<K>{K::task_add_requested, K::task_added, K::attempt_starting,
                                        K::attempt_succeeded, K::task_finished, K::task_removed,
                                        K::shutdown_requested, K::all_stopped_within_grace});
}

TEST_CASE("a slow subscriber is told how many events it lost",
          "[event_bus][subscriber][overflow]") {
  std::vector<vigil::event> received;
  std::mutex mutex;
  vigil::supervisor_options options;
  options.bus_capacity = 2;
  options.subscribers.push_back(vigil::make_subscriber("slow", [&](const vigil::event& e) {
    std::lock_guard lock(mutex);
    received.push_back(e);
  }));
  asio::io_context io;
  {
    vigil::supervisor sup{io.get_executor(), options};
    // Published before the io_context runs: the subscriber cannot keep up with 10 events.
    for (int i = 0; i < 10; ++i)
      sup.events().publish(make(K::task_added, std::to_string(i)));
    sup.shutdown();
  }
  io.run();
  std::lock_guard lock(mutex);
  REQUIRE(received.size() >= 2);
  CHECK(received.front().kind == K::subscriber_overflow);
  std::uint64_t lost = received.front().dropped;
  // Everything published (10 + shutdown_requested + all_stopped_within_grace) is either received
  // or counted as lost.
  for (std::size_t i = 1; i < received.size(); ++i)
    if (received[i].kind == K::subscriber_overflow)
      lost += received[i].dropped;
  std::size_t delivered = 0;
  for (const auto& e : received)
    delivered += e.kind != K::subscriber_overflow;
  CHECK(delivered + lost == 12);
}

TEST_CASE("events format as one readable line", "[event_bus][format]") {
  vigil::event e;
  e.seq = 12;
  e.kind = K::attempt_failed;
  e.task = "db";
  e.attempt = 3;
  e.reason = "connection refused";
  CHECK(fmt::format("{}", e) ==
        "#12 attempt_failed task=db attempt=3 reason=\"connection refused\"");
  e.kind = K::backoff_scheduled;
  e.reason.clear();
  e.delay = 1500ms;
  CHECK(fmt::format("{}", e) == "#12 backoff_scheduled task=db attempt=3 delay=1.5s");
  e.delay = std::chrono::nanoseconds(156'009'473);
  CHECK(fmt::format("{}", e) == "#12 backoff_scheduled task=db attempt=3 delay=156.009ms");
  e.delay = 40us;
  CHECK(fmt::format("{}", e) == "#12 backoff_scheduled task=db attempt=3 delay=40us");
}

TEST_CASE("log_subscriber prints one timestamped line per event", "[event_bus][format]") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out != nullptr);
  vigil::log_subscriber log(out);
  vigil::event e;
  e.seq = 1;
  e.kind = K::task_added;
  e.task = "web";
  e.at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  log.on_event(e);
  std::rewind(out);
  char line[256] = {};
  REQUIRE(std::fgets(line, sizeof line, out) != nullptr);
  std::fclose(out);
  CHECK(std::string(line) == "2023-11-14 22:13:20.123 #1 task_added task=web\n");
  CHECK(log.name() == "log");
}
