// Bad input is refused synchronously with std::invalid_argument naming the field and the value,
// and leaves no trace.

#include "support.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

using namespace vigil_test;
using Catch::Matchers::Message;

namespace {

vigil::task_spec valid_spec() {
  return quick_spec("job", succeed);
}

/// add(spec) must throw invalid_argument whose message contains every fragment, and leave the
/// supervisor untouched.
void require_refused(vigil::task_spec spec, std::initializer_list<std::string> fragments) {
  asio::io_context io;
  vigil::supervisor sup{io.get_executor()};
  auto events = sup.events().subscribe(16);
  std::string message;
  try {
    sup.add(std::move(spec));
    FAIL("add() accepted an invalid spec");
  } catch (const std::invalid_argument& e) {
    message = e.what();
  }
  for (const auto& fragment : fragments) {
    INFO("message: " << message);
    CHECK(message.find(fragment) != std::string::npos);
  }
  CHECK(sup.list().empty());
  io.poll();
  CHECK_FALSE(events.try_next().has_value());  // nothing was published
  sup.shutdown();
  io.run();
}

}  // namespace

TEST_CASE("a spec without a name is refused", "[validation]") {
  auto spec = valid_spec();
  spec.name.clear();
  require_refused(spec, {"task_spec.name", "empty"});
}

TEST_CASE("a spec without a function is refused", "[validation]") {
  auto spec = valid_spec();
  spec.fn = nullptr;
  require_refused(spec, {"task_spec.fn", "\"job\""});
}

TEST_CASE("a backoff factor below 1 or not finite is refused", "[validation]") {
  auto spec = valid_spec();
  spec.backoff.factor = 0.5;
  require_refused(spec, {"vigil: task \"job\": task_spec.backoff.factor", "0.5"});
  spec.backoff.factor = std::numeric_limits<double>::quiet_NaN();
  require_refused(spec, {"backoff.factor", "nan"});
  spec.backoff.factor = std::numeric_limits<double>::infinity();
  require_refused(spec, {"backoff.factor", "inf"});
}

TEST_CASE("a backoff whose first delay exceeds its max is refused", "[validation]") {
  auto spec = valid_spec();
  spec.backoff = vigil::backoff_policy::exponential(10s, 1s);
  require_refused(spec, {"backoff.first", "10s", "1s"});
}

TEST_CASE("negative durations are refused", "[validation]") {
  auto spec = valid_spec();
  spec.backoff.first = -5ms;
  require_refused(spec, {"backoff.first", "-5ms"});
  spec = valid_spec();
  spec.backoff.reset_after = -1s;
  require_refused(spec, {"backoff.reset_after", "-1s"});
  spec = valid_spec();
  spec.timeout = -250ms;
  require_refused(spec, {"task_spec.timeout", "-250ms"});
  spec = valid_spec();
  spec.timeout = 0ms;
  require_refused(spec, {"task_spec.timeout", "positive", "0s"});
  spec = valid_spec();
  spec.stall_timeout = 0s;
  require_refused(spec, {"task_spec.stall_timeout", "positive", "0s"});
  spec = valid_spec();
  spec.stop_grace = -1ms;
  require_refused(spec, {"task_spec.stop_grace", "-1ms"});
}

TEST_CASE("bad supervisor options are refused by the constructor", "[validation]") {
  asio::io_context io;
  const auto refused = [&](vigil::supervisor_options options, const std::string& fragment) {
    try {
      vigil::supervisor sup{io.get_executor(), std::move(options)};
      FAIL("the supervisor accepted invalid options");
    } catch (const std::invalid_argument& e) {
      INFO("message: " << e.what());
      CHECK(std::string(e.what()).find(fragment) != std::string::npos);
    }
  };
  vigil::supervisor_options options;
  options.bus_capacity = 0;
  refused(options, "supervisor_options.bus_capacity must be at least 1, got 0");
  options = {};
  options.shutdown_grace = -1s;
  refused(options, "supervisor_options.shutdown_grace must not be negative, got -1s");
  options = {};
  options.intensity = vigil::restart_intensity{3, 0s};
  refused(options, "supervisor_options.intensity.period must be positive, got 0s");
  options = {};
  options.subscribers.push_back(nullptr);
  refused(options, "supervisor_options.subscribers[0] must not be null");
  options = {};
  options.readiness_timeout = 0ms;
  refused(options, "supervisor_options.readiness_timeout must be positive, got 0s");
  CHECK(io.poll() == 0);  // a refused supervisor leaves nothing behind
}

TEST_CASE("event_bus::subscribe refuses a zero capacity", "[validation][event_bus]") {
  vigil::event_bus bus;
  REQUIRE_THROWS_MATCHES(
      bus.subscribe(0), std::invalid_argument,
      Message("vigil: event_bus::subscribe: capacity must be at least 1, got 0"));
}

namespace {

asio::awaitable<void> wait_at_gate(vigil::task_context, gate g) {
  co_await g.wait();
}

asio::awaitable<void> all_start_at_once(harness& h) {
  // max_concurrent = 0 (the default) is "unlimited", not "nothing may run": all 50 attempts
  // start while none has finished.
  gate release;
  std::vector<vigil::task_handle> handles;
  for (int i = 0; i < 50; ++i)
    handles.push_back(
        h.sup.add(quick_spec("t" + std::to_string(i), [release](vigil::task_context ctx) {
          return wait_at_gate(std::move(ctx), release);
        })));
  int started = 0;
  while (started < 50) {
    const auto e = co_await h.events.next();
    REQUIRE(e.kind != vigil::event_kind::attempt_succeeded);
    if (e.kind == vigil::event_kind::attempt_starting)
      ++started;
  }
  release.open();
  for (auto& handle : handles) {
    const auto result = co_await handle.wait();
    CHECK(result == vigil::task_outcome::completed);
  }
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("max_concurrent 0 means unlimited", "[validation][concurrency]") {
  harness h;
  h.run(all_start_at_once(h));
}
