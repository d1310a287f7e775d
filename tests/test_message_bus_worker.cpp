// message_bus_worker: several buses as one supervised task that fails fast, with the buses'
// lifecycle on the supervisor's event bus.

#include "support.hpp"

#include <vigil/memory_bus.hpp>
#include <vigil/message_bus_worker.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace vigil_test;
using K = vigil::event_kind;

namespace {

using bus = vigil::memory_bus<std::string>;

/// Throws on "poison", opens `handled` on "ok".
vigil::message_handler<std::string> picky(gate handled) {
  return [handled](std::string_view, std::string message) -> asio::awaitable<void> {
    if (message == "poison")
      throw std::runtime_error("poison");
    if (message == "ok")
      handled.open();
    co_return;
  };
}

/// Reads events until the `n`-th `kind` for `task`.
asio::awaitable<std::vector<vigil::event>> read_until_nth(vigil::subscription& events, K kind,
                                                          std::string task, int n) {
  int seen = 0;
  auto nth = [&](const vigil::event& e) { return e.kind == kind && e.task == task && ++seen == n; };
  co_return co_await read_until(events, nth);
}

/// A memory bus whose stop() stops it, then throws: a bus breaking its contract.
class throwing_stop final : public vigil::message_bus<std::string> {
 public:
  explicit throwing_stop(std::shared_ptr<bus> inner) : inner_(std::move(inner)) {}
  const std::string& name() const noexcept override { return inner_->name(); }
  asio::awaitable<vigil::running_handle> start(handler_type handler) override {
    return inner_->start(std::move(handler));
  }
  asio::awaitable<void> stop() override {
    co_await inner_->stop();
    throw std::runtime_error("the broker hung up on the unsubscribe");
  }
  vigil::bus_counters counters() const override { return inner_->counters(); }

 private:
  std::shared_ptr<bus> inner_;
};

const std::initializer_list<K> bus_kinds = {
    K::attempt_starting, K::task_ready,     K::bus_started,    K::bus_stopped,
    K::bus_crashed,      K::message_failed, K::attempt_failed, K::attempt_canceled};

}  // namespace

TEST_CASE("message_bus_worker refuses a null bus or an empty handler", "[bus][worker]") {
  asio::io_context io;
  vigil::message_bus_worker worker;
  CHECK_THROWS_WITH(worker.add(std::shared_ptr<vigil::message_bus<int>>(), {}),
                    Catch::Matchers::Contains("the bus must not be null"));
  auto b = std::make_shared<bus>(io.get_executor(), vigil::memory_bus_options{.name = "b"});
  CHECK_THROWS_WITH(worker.add(b, {}),
                    Catch::Matchers::Contains("the handler of bus 'b' must not be empty"));
  CHECK(worker.size() == 0);
}

TEST_CASE("one crashing bus stops the others and the worker restarts with backoff",
          "[bus][worker]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto a = std::make_shared<bus>(
        h.io.get_executor(), vigil::memory_bus_options{
                                 .name = "a", .on_handler_failure = vigil::handler_failure::crash});
    auto b = std::make_shared<bus>(h.io.get_executor(), vigil::memory_bus_options{.name = "b"});
    gate handled;
    vigil::message_bus_worker worker;
    worker.add(a, picky(handled)).add(b, picky(handled));
    auto handle = h.sup.add(quick_spec("worker", worker));

    auto seen = co_await read_until(h.events, K::task_ready, "worker");
    a->publish("web", "poison");
    auto restarted = co_await read_until_nth(h.events, K::task_ready, "worker", 1);
    seen.insert(seen.end(), restarted.begin(), restarted.end());
    CHECK(trace(seen, bus_kinds) ==
          std::vector<std::string>{
              "attempt_starting worker", "bus_started worker/a", "bus_started worker/b",
              "task_ready worker", "message_failed worker/a", "bus_crashed worker/a",
              "bus_stopped worker/b", "attempt_failed worker", "attempt_starting worker",
              "bus_started worker/a", "bus_started worker/b", "task_ready worker"});
    std::vector<std::uint32_t> started_in;  // the worker's attempt of each bus_started
    for (const auto& e : seen) {
      if (e.kind == K::bus_crashed || e.kind == K::attempt_failed)
        CHECK(e.reason == "poison");
      if (e.kind == K::bus_started)
        started_in.push_back(e.attempt);
    }
    CHECK(started_in == std::vector<std::uint32_t>{1, 1, 2, 2});
    CHECK(std::count_if(seen.begin(), seen.end(),
                        [](const vigil::event& e) { return e.kind == K::backoff_scheduled; }) == 1);

    b->publish("cli", "ok");  // the restarted worker consumes again
    co_await handled.wait();

    co_await h.sup.shutdown().wait();
    const auto outcome = co_await handle.wait();
    CHECK(outcome.kind == vigil::task_outcome::canceled);
    const auto stopped = co_await read_until(h.events, K::all_stopped_within_grace);
    CHECK(trace(stopped, bus_kinds) == std::vector<std::string>{"bus_stopped worker/b",
                                                                "bus_stopped worker/a",
                                                                "attempt_canceled worker"});
  }());
}

TEST_CASE("a skipped handler failure is reported and the worker goes on", "[bus][worker]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto b = std::make_shared<bus>(h.io.get_executor(), vigil::memory_bus_options{.name = "b"});
    gate handled;
    vigil::message_bus_worker worker;
    worker.add(b, picky(handled));
    h.sup.add(quick_spec("worker", worker));
    co_await read_until(h.events, K::task_ready, "worker");
    b->publish("web", "poison");
    b->publish("web", "ok");
    co_await handled.wait();
    co_await h.sup.shutdown().wait();
    const auto seen = co_await read_until(h.events, K::all_stopped_within_grace);
    CHECK(trace(seen, bus_kinds) == std::vector<std::string>{"message_failed worker/b",
                                                             "bus_stopped worker/b",
                                                             "attempt_canceled worker"});
    CHECK(b->counters().failed == 1);
  }());
}

TEST_CASE("the supervisor's stop ends every bus cleanly within the grace", "[bus][worker]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto a = std::make_shared<bus>(h.io.get_executor(), vigil::memory_bus_options{.name = "a"});
    auto b = std::make_shared<bus>(h.io.get_executor(), vigil::memory_bus_options{.name = "b"});
    gate in_handler;
    // A handler that waits forever: the stop must cancel it.
    vigil::message_handler<std::string> slow = [in_handler](std::string_view,
                                                            std::string) -> asio::awaitable<void> {
      in_handler.open();
      co_await gate{}.wait();
    };
    vigil::message_bus_worker worker;
    worker.add(a, slow).add(b, slow);
    vigil::task_spec spec = quick_spec("worker", worker);
    spec.stop_grace = 5s;
    auto handle = h.sup.add(std::move(spec));
    co_await read_until(h.events, K::task_ready, "worker");
    a->publish("web", "stuck");
    co_await in_handler.wait();
    CHECK(h.sup.remove("worker"));
    const auto outcome = co_await handle.wait();
    CHECK(outcome.kind == vigil::task_outcome::canceled);
    const auto seen = co_await read_until(h.events, K::task_removed, "worker");
    CHECK(trace(seen, bus_kinds) == std::vector<std::string>{"bus_stopped worker/b",
                                                             "bus_stopped worker/a",
                                                             "attempt_canceled worker"});
    // Both buses can start again: nothing was left half-running.
    gate again;
    const auto run = co_await a->start(picky(again));
    CHECK_FALSE(run.done());
    co_await a->stop();
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("a bus whose stop() throws is reported as crashed, and the others still stop",
          "[bus][worker]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto a = std::make_shared<bus>(h.io.get_executor(), vigil::memory_bus_options{.name = "a"});
    auto b = std::make_shared<throwing_stop>(
        std::make_shared<bus>(h.io.get_executor(), vigil::memory_bus_options{.name = "b"}));
    auto c = std::make_shared<bus>(h.io.get_executor(), vigil::memory_bus_options{.name = "c"});
    gate handled;
    vigil::message_bus_worker worker;
    worker.add(a, picky(handled)).add(b, picky(handled)).add(c, picky(handled));
    auto handle = h.sup.add(quick_spec("worker", worker));
    co_await read_until(h.events, K::task_ready, "worker");
    co_await h.sup.shutdown().wait();
    const auto outcome = co_await handle.wait();
    CHECK(outcome.kind == vigil::task_outcome::canceled);
    const auto seen = co_await read_until(h.events, K::all_stopped_within_grace);
    CHECK(trace(seen, bus_kinds) ==
          std::vector<std::string>{"bus_stopped worker/c", "bus_crashed worker/b",
                                   "bus_stopped worker/a", "attempt_canceled worker"});
    for (const auto& e : seen)
      if (e.kind == K::bus_crashed)
        CHECK(e.reason == "stop() threw: the broker hung up on the unsubscribe");
  }());
}
