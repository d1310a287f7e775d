// redis_bus against a real redis-server (tests/redis_server.hpp): the consumer group, XACK
// after success only, pending entries taken back and claimed, and Redis killed mid-stream under
// a supervisor: the bus crashes, the worker backs off, and every entry is handled at least once.

#include "redis_server.hpp"
#include "support.hpp"

#include <vigil/message_bus_worker.hpp>
#include <vigil/redis_bus.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace vigil_test;
using K = vigil::event_kind;

namespace {

/// What a handler saw, shared with the test across threads: every delivery of every ID.
struct deliveries {
  mutable std::mutex mutex;
  std::vector<std::string> ids;               // in delivery order, redeliveries included
  std::map<std::string, std::string> values;  // id -> field n
  gate all;                                   // opens once `expected` distinct IDs were seen
  std::size_t expected = 0;

  explicit deliveries(std::size_t n) : expected(n) {}

  /// Records a delivery; true when it is the first of its ID.
  bool record(const vigil::redis_message& m) {
    std::lock_guard lock(mutex);
    ids.push_back(m.id);
    const bool first = values.emplace(m.id, std::string(m.get("n").value_or("?"))).second;
    if (values.size() == expected)
      all.open();
    return first;
  }

  std::size_t times(const std::string& id) const {
    std::lock_guard lock(mutex);
    return static_cast<std::size_t>(std::count(ids.begin(), ids.end(), id));
  }

  std::string value(const std::string& id) const {
    std::lock_guard lock(mutex);
    const auto found = values.find(id);
    return found == values.end() ? std::string() : found->second;
  }

  std::vector<std::string> order() const {
    std::lock_guard lock(mutex);
    return ids;
  }
};

vigil::message_handler<vigil::redis_message> recorder(std::shared_ptr<deliveries> d) {
  return [d](std::string_view, vigil::redis_message m) -> asio::awaitable<void> {
    d->record(m);
    co_return;
  };
}

vigil::redis_bus_options local(const redis_server& server) {
  return {.port = server.port(), .stream = "jobs", .group = "workers", .consumer = "c1"};
}

/// What start() threw, or "started".
asio::awaitable<std::string> start_failure(asio::any_io_executor executor,
                                           vigil::redis_bus_options options) {
  vigil::redis_bus bus{std::move(executor), std::move(options)};
  auto handler = recorder(std::make_shared<deliveries>(1));
  try {
    co_await bus.start(std::move(handler));
  } catch (const std::system_error& e) {
    co_return std::string(e.what());
  }
  co_return std::string("started");
}

}  // namespace

TEST_CASE("redis_bus refuses unusable options", "[bus][redis]") {
  asio::io_context io;
  const auto refused = [&](vigil::redis_bus_options o) {
    try {
      vigil::redis_bus bus(io.get_executor(), std::move(o));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  using Catch::Matchers::Contains;
  CHECK_THAT(refused({.group = "g"}), Contains("redis_bus_options.stream must not be empty"));
  CHECK_THAT(refused({.stream = "s"}), Contains("redis_bus_options.group must not be empty"));
  CHECK_THAT(refused({.port = 0, .stream = "s", .group = "g"}), Contains("port must not be 0"));
  CHECK_THAT(refused({.stream = "s", .group = "g", .batch = 0}),
             Contains("batch must be between 1 and 10000, got 0"));
  CHECK_THAT(refused({.stream = "s", .group = "g", .block = 0ms}),
             Contains("block must be at least 1ms, got 0s"));
  CHECK_THAT(refused({.stream = "s", .group = "g", .claim_idle = 500us}),
             Contains("claim_idle must be at least 1ms, got 500us"));
  CHECK_THAT(refused({.stream = "s", .group = "g", .connect_timeout = 0s}),
             Contains("connect_timeout must be positive"));
  const vigil::redis_bus bus(io.get_executor(), {.stream = "s", .group = "g"});
  CHECK(bus.name() == "redis:s/g");
  CHECK_THAT(bus.consumer(), Contains(":" + std::to_string(::getpid())));  // <host>:<pid>
}

TEST_CASE("redis_bus start() throws when nothing listens", "[bus][redis]") {
  asio::io_context io;
  std::uint16_t port = 0;
  {
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  run(io, [&]() -> asio::awaitable<void> {
    vigil::redis_bus bus{io.get_executor(), {.port = port, .stream = "s", .group = "g"}};
    std::string refused;
    try {
      co_await bus.start(recorder(std::make_shared<deliveries>(1)));
    } catch (const std::system_error& e) {
      refused = e.what();
    }
    CHECK_THAT(refused, Catch::Matchers::Contains("redis_bus 'redis:s/g': cannot connect to"));
    co_await bus.stop();
  }());
}

TEST_CASE("redis_bus delivers in order with fields, acknowledges, stops and starts again",
          "[bus][redis]") {
  redis_server server;
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::redis_bus bus{io.get_executor(), local(server)};
    auto seen = std::make_shared<deliveries>(3);
    const auto handle = co_await bus.start(recorder(seen));  // creates the group and stream
    const auto same = co_await bus.start(recorder(seen));
    CHECK(same == handle);  // idempotent while running
    const auto ids = server.add("jobs", 0, 3);
    co_await seen->all.wait();
    CHECK(seen->order() == ids);
    CHECK(seen->value(ids[2]) == "2");
    // The recorder returns right after opening `all`: its XACK goes out in the same strand
    // turn, and stop() lets an acknowledgement in flight complete, so none is pending after.
    co_await bus.stop();
    CHECK(handle.done());
    CHECK_FALSE(handle.crashed());
    CHECK(server.pending("jobs", "workers") == 0);  // every entry acknowledged
    const auto counters = bus.counters();
    CHECK(counters.received == 3);
    CHECK(counters.delivered == 3);

    auto later = std::make_shared<deliveries>(1);  // a new run reads what came in between
    const auto next_id = server.add("jobs", 3, 4);
    const auto again = co_await bus.start(recorder(later));
    CHECK(again != handle);
    co_await later->all.wait();
    CHECK(later->order() == next_id);
    co_await bus.stop();
  }());
}

TEST_CASE("redis_bus start() fails when Redis does not answer, or refuses AUTH", "[bus][redis]") {
  asio::io_context io;
  // Listening without ever accepting: the kernel completes the connect, nobody answers.
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  redis_server server;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::redis_bus_options unanswered{.port = silent.local_endpoint().port(),
                                        .stream = "s",
                                        .group = "g",
                                        .connect_timeout = 200ms};
    const std::string unanswered_failure = co_await start_failure(io.get_executor(), unanswered);
    CHECK_THAT(unanswered_failure, Catch::Matchers::Contains("no reply to INFO within"));
    auto with_password = local(server);  // this server has no password
    with_password.password = "secret";
    const std::string auth_failure = co_await start_failure(io.get_executor(), with_password);
    CHECK_THAT(auth_failure, Catch::Matchers::Contains("AUTH refused"));
  }());
}

TEST_CASE(
    "redis_bus stop() during a handler: a cancelled entry stays pending, a handled one is "
    "acknowledged",
    "[bus][redis]") {
  redis_server server;
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::redis_bus bus{io.get_executor(), local(server)};
    gate entered;
    gate never;
    // Lets the cancellation of stop() through: the entry was not handled.
    auto cancelled = [&](std::string_view, vigil::redis_message) -> asio::awaitable<void> {
      entered.open();
      co_await never.wait();
    };
    const auto first = co_await bus.start(cancelled);
    const auto ids = server.add("jobs", 0, 1);
    co_await entered.wait();
    co_await bus.stop();
    CHECK_FALSE(first.crashed());
    CHECK(server.pending("jobs", "workers") == 1);
    CHECK(bus.counters().failed == 0);  // cancelled by stop(): not a failure

    // Catches the cancellation and returns: handled, so acknowledged despite the stop.
    gate entered_again;
    auto caught = [&](std::string_view, vigil::redis_message m) -> asio::awaitable<void> {
      CHECK(m.id == ids[0]);  // its own pending entry, first
      entered_again.open();
      try {
        co_await never.wait();
      } catch (const std::system_error&) {
      }
    };
    const auto second = co_await bus.start(caught);
    co_await entered_again.wait();
    co_await bus.stop();
    CHECK_FALSE(second.crashed());
    CHECK(server.pending("jobs", "workers") == 0);
    CHECK(bus.counters().delivered == 1);
  }());
}

TEST_CASE("redis_bus delivers a failed entry again after claim_idle, then acknowledges it",
          "[bus][redis]") {
  redis_server server;
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto options = local(server);
    options.claim_idle = 100ms;
    options.block = 50ms;
    vigil::redis_bus bus{io.get_executor(), options};
    auto seen = std::make_shared<deliveries>(0);  // `all` is opened by the second delivery
    auto handler = [seen](std::string_view, vigil::redis_message m) -> asio::awaitable<void> {
      if (seen->record(m))
        throw std::runtime_error("first try fails");
      seen->all.open();
      co_return;
    };
    co_await bus.start(handler);
    const auto ids = server.add("jobs", 0, 1);
    co_await seen->all.wait();
    CHECK(seen->order() == std::vector<std::string>{ids[0], ids[0]});
    co_await bus.stop();
    CHECK(server.pending("jobs", "workers") == 0);
    CHECK(bus.counters().failed == 1);
    CHECK(bus.counters().delivered == 1);
  }());
}

TEST_CASE("redis_bus claims the entries a dead consumer left pending, deleted ones dropped",
          "[bus][redis]") {
  redis_server server;
  server.command({"XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"});
  const auto ids = server.add("jobs", 0, 5);
  // Consumer "dead" reads all five and never acknowledges them.
  server.command({"XREADGROUP", "GROUP", "workers", "dead", "COUNT", "10", "STREAMS", "jobs", ">"});
  REQUIRE(server.pending("jobs", "workers") == 5);
  server.command({"XDEL", "jobs", ids[4]});  // deleted while pending: dropped, not delivered
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto options = local(server);
    options.claim_idle = 100ms;
    options.block = 20ms;
    vigil::redis_bus bus{io.get_executor(), options};
    auto seen = std::make_shared<deliveries>(4);
    co_await bus.start(recorder(seen));
    co_await seen->all.wait();
    CHECK(seen->order() == std::vector<std::string>(ids.begin(), ids.begin() + 4));
    co_await bus.stop();
    CHECK(server.pending("jobs", "workers") == 0);
    CHECK(bus.counters().dropped == 1);
  }());
}

TEST_CASE("redis_bus takes back its own pending entries first when it starts again",
          "[bus][redis]") {
  redis_server server;
  server.command({"XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"});
  const auto ids = server.add("jobs", 0, 3);
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto options = local(server);
    options.on_handler_failure = vigil::handler_failure::crash;
    options.batch = 10;  // one read takes all three: the two unhandled ones stay pending
    vigil::redis_bus bus{io.get_executor(), options};
    auto seen = std::make_shared<deliveries>(3);
    auto crashing = [seen](std::string_view, vigil::redis_message m) -> asio::awaitable<void> {
      seen->record(m);
      throw std::runtime_error("handler gave up");
    };
    const auto first = co_await bus.start(crashing);
    const std::string reason = co_await crash_of(first);
    CHECK_THAT(reason, Catch::Matchers::Contains("handler gave up"));
    CHECK(server.pending("jobs", "workers") == 3);

    // claim_idle is 30 s: only reading its own history can bring them back this soon.
    co_await bus.start(recorder(seen));
    co_await seen->all.wait();
    CHECK(seen->order() == std::vector<std::string>{ids[0], ids[0], ids[1], ids[2]});
    co_await bus.stop();
    CHECK(server.pending("jobs", "workers") == 0);
  }());
}

TEST_CASE("redis killed mid-stream: the worker crashes, backs off, and every entry is handled",
          "[bus][redis][worker]") {
  redis_server server;
  vigil::supervisor_options so;
  so.intensity = vigil::restart_intensity{.max_restarts = 1000, .period = 1s};
  harness h(std::move(so));
  h.run(
      [&]() -> asio::awaitable<void> {
        constexpr int total = 200;
        auto bus = std::make_shared<vigil::redis_bus>(h.io.get_executor(), local(server));
        auto seen = std::make_shared<deliveries>(total);
        gate twentieth;  // the handler is holding the 20th entry
        gate release;    // ... until Redis is dead
        vigil::message_bus_worker worker;
        worker.add(bus, [=](std::string_view, vigil::redis_message m) -> asio::awaitable<void> {
          if (seen->record(m) && m.get("n") == "19") {
            twentieth.open();
            co_await release.wait();
          }
        });
        auto spec = quick_spec("worker", worker);
        spec.backoff = vigil::backoff_policy::exponential(20ms, 200ms, 2.0);
        h.sup.add(spec);
        co_await read_until(h.events, K::task_ready, "worker");

        const auto ids = server.add("jobs", 0, total);
        co_await twentieth.wait();
        server.kill();
        release.open();  // its XACK cannot reach Redis: the run crashes
        const auto crashed =
            co_await read_until(h.events, K::bus_crashed, "worker/redis:jobs/workers");
        CHECK_FALSE(crashed.back().reason.empty());
        co_await read_until(h.events, K::backoff_scheduled, "worker");

        server.start();  // from its append-only file: the stream, the group, the pending list
        co_await seen->all.wait();
        CHECK(seen->times(ids[19]) >= 2);  // handled, not acknowledged, delivered again
        {
          std::lock_guard lock(seen->mutex);
          CHECK(seen->values.size() == static_cast<std::size_t>(total));
        }
        co_await h.sup.shutdown().wait();
        CHECK(server.pending("jobs", "workers") == 0);
      }(),
      60s);
}
