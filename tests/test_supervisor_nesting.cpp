// Nesting: a supervisor runs as a task of another (supervisor::as_task), is restarted by it with
// backoff, counts in its intensity, and forwards its events with a path.

#include "support.hpp"

#include <algorithm>

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

/// The steps that show how levels start and stop, in order.
std::vector<std::string> trace(const std::vector<vigil::event>& events) {
  return vigil_test::trace(
      events, {K::attempt_starting, K::task_ready, K::attempt_canceled, K::attempt_failed,
               K::shutdown_requested, K::all_stopped_within_grace, K::grace_exceeded,
               K::intensity_exceeded, K::task_finished});
}

std::size_t count(const std::vector<vigil::event>& events, K kind, const std::string& task) {
  return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](const auto& e) {
    return e.kind == kind && e.task == task;
  }));
}

/// The spec of a task that runs `child`, with a grace longer than the child's shutdown grace.
vigil::task_spec nested(std::string name, vigil::supervisor& child) {
  vigil::task_spec spec = quick_spec(std::move(name), child.as_task());
  spec.stop_grace = 10s;
  return spec;
}

/// Becomes ready once `go` opens, then waits until cancelled.
asio::awaitable<void> ready_when(vigil::task_context ctx, gate go) {
  co_await go.wait();
  ctx.ready();
  co_await sleep_forever(ctx);
}

}  // namespace

TEST_CASE("a nested supervisor starts its children with the parent's attempt and forwards events",
          "[supervisor][nesting]") {
  harness h;
  vigil::supervisor payments(h.io.get_executor());
  vigil::task_fn body = payments.as_task();  // before the children start: they wait for it
  payments.add(quick_spec("poller", ready_then_wait));
  payments.add(quick_spec("ledger", ready_then_wait));
  vigil::task_spec spec = quick_spec("payments", std::move(body));
  spec.stop_grace = 10s;
  h.run([&]() -> asio::awaitable<void> {
    h.sup.add(std::move(spec));
    const auto up = co_await read_until(h.events, K::task_ready, "payments");
    // The nested children start inside the parent's attempt, and the nested supervisor is ready
    // once both are (they get ready in any order).
    auto lines = trace(up);
    REQUIRE(lines.size() == 6);
    std::sort(lines.begin() + 3, lines.begin() + 5);
    CHECK(lines ==
          std::vector<std::string>{"attempt_starting payments", "attempt_starting payments/poller",
                                   "attempt_starting payments/ledger", "task_ready payments/ledger",
                                   "task_ready payments/poller", "task_ready payments"});
    for (const auto& e : up)
      CHECK(e.depth == (e.task.find('/') != std::string::npos ? 1u : 0u));
    CHECK(payments.list() == std::vector<std::string>{"poller", "ledger"});

    h.sup.shutdown();
    const auto down = co_await read_until(h.events, K::all_stopped_within_grace);
    // One level at a time: the leaves stop (in any order under one_for_one), then payments.
    lines = trace(down);
    REQUIRE(lines.size() == 10);
    std::sort(lines.begin() + 2, lines.begin() + 6);
    CHECK(lines == std::vector<std::string>{
                       "shutdown_requested", "shutdown_requested payments",
                       "attempt_canceled payments/ledger", "attempt_canceled payments/poller",
                       "task_finished payments/ledger", "task_finished payments/poller",
                       "all_stopped_within_grace payments", "attempt_canceled payments",
                       "task_finished payments", "all_stopped_within_grace"});
    const auto report = co_await h.sup.run();
    CHECK(report.within_grace);
    // The nested supervisor is parked again with its children, for a next run.
    const auto parked = co_await payments.snapshot();
    REQUIRE(parked.size() == 2);
    for (const auto& t : parked) {
      CHECK(t.state == vigil::task_phase::starting);
      CHECK(t.attempt == 0);
    }
  }());
}

TEST_CASE(
    "a nested supervisor that gives up is restarted by its parent and counts in its intensity",
    "[supervisor][nesting][intensity]") {
  vigil::supervisor_options root_options;
  root_options.intensity = vigil::restart_intensity{1, 60s};
  harness h(root_options);
  vigil::supervisor_options payments_options;
  payments_options.intensity = vigil::restart_intensity{1, 60s};
  vigil::supervisor payments(h.io.get_executor(), payments_options);
  vigil::task_spec spec = nested("payments", payments);
  payments.add(quick_spec("cache", ready_then_wait));
  payments.add(quick_spec("db", always_failing()));
  h.run([&]() -> asio::awaitable<void> {
    h.sup.add(std::move(spec));
    std::exception_ptr gave_up;
    try {
      co_await h.sup.run();
    } catch (...) {
      gave_up = std::current_exception();
    }
    const auto seen = co_await read_until(h.events, K::all_stopped_within_grace);
    // Each run of payments: db fails, restarts once, fails again and breaks payments' limit;
    // payments stops cache and fails. The root restarts payments once, then its own limit breaks.
    CHECK(count(seen, K::attempt_starting, "payments") == 2);
    CHECK(count(seen, K::attempt_starting, "payments/cache") == 2);  // its spec was kept
    CHECK(count(seen, K::attempt_starting, "payments/db") == 4);
    CHECK(count(seen, K::intensity_exceeded, "payments/db") == 2);
    CHECK(count(seen, K::attempt_failed, "payments") == 2);
    CHECK(count(seen, K::backoff_scheduled, "payments") == 1);
    CHECK(count(seen, K::intensity_exceeded, "payments") == 1);
    // db never got ready, so neither did payments: not even when db left a ready cache alone.
    CHECK(count(seen, K::task_ready, "payments/cache") == 2);
    CHECK(count(seen, K::task_ready, "payments") == 0);
    const auto failed = std::find_if(seen.begin(), seen.end(), [](const auto& e) {
      return e.kind == K::attempt_failed && e.task == "payments";
    });
    REQUIRE(failed != seen.end());
    CHECK(failed->reason.find("more than 1 restarts within") != std::string::npos);
    CHECK(failed->reason.find("db") != std::string::npos);
    REQUIRE(gave_up);
    try {
      std::rethrow_exception(gave_up);
    } catch (const vigil::intensity_exceeded& e) {
      // The root's last failure is payments' own escalation.
      REQUIRE(e.last_failure());
      CHECK_THROWS_AS(std::rethrow_exception(e.last_failure()), vigil::intensity_exceeded);
    }
  }());
}

TEST_CASE("shutdown of the root reaches every leaf with each level's grace",
          "[supervisor][nesting][shutdown]") {
  harness h;
  vigil::supervisor region(h.io.get_executor());
  vigil::supervisor_options payments_options;
  payments_options.shutdown_grace = 500ms;  // room for the poller to stop under sanitizers
  vigil::supervisor payments(h.io.get_executor(), payments_options);
  gate release;
  vigil::task_spec region_spec = nested("region", region);
  region.add(nested("payments", payments));
  payments.add(quick_spec("poller", ready_then_wait));
  payments.add(quick_spec("stuck", stuck_task(release)));
  h.run([&]() -> asio::awaitable<void> {
    h.sup.add(std::move(region_spec));
    const auto up = co_await read_until(h.events, K::task_ready, "region/payments/poller");
    CHECK(up.back().depth == 2);
    CHECK(count(up, K::attempt_starting, "region/payments/stuck") == 1);

    h.sup.shutdown();
    const auto down = co_await read_until(h.events, K::all_stopped_within_grace);
    // payments abandons its stuck task after its own 500 ms; the levels above stop in time.
    const auto exceeded = std::find_if(down.begin(), down.end(), [](const auto& e) {
      return e.kind == K::grace_exceeded && e.task == "region/payments";
    });
    REQUIRE(exceeded != down.end());
    CHECK(exceeded->reason == "stuck");
    CHECK(exceeded->depth == 2);
    CHECK(count(down, K::attempt_canceled, "region/payments/poller") == 1);
    CHECK(count(down, K::task_finished, "region/payments") == 1);
    CHECK(count(down, K::all_stopped_within_grace, "region") == 1);
    const auto report = co_await h.sup.run();
    CHECK(report.within_grace);
    CHECK(report.took >= 500ms);
    CHECK(report.took < 5s);
    release.open();  // the abandoned coroutine ends, so the io_context drains
  }());
}

TEST_CASE("a nested supervisor is ready once its children are: ordered start waits for it",
          "[supervisor][nesting][readiness]") {
  vigil::supervisor_options options;
  options.ordered_start = true;
  harness h(options);
  vigil::supervisor payments(h.io.get_executor());
  gate go;
  vigil::task_spec spec = nested("payments", payments);
  payments.add(quick_spec("db", [go](vigil::task_context ctx) { return ready_when(ctx, go); }));
  h.run([&]() -> asio::awaitable<void> {
    h.sup.add(std::move(spec));
    h.sup.add(quick_spec("api", ready_then_wait));
    co_await read_until(h.events, K::attempt_starting, "payments/db");
    auto tasks = co_await h.sup.snapshot();
    REQUIRE(tasks.size() == 2);
    CHECK(tasks[1].state == vigil::task_phase::starting);  // api waits for payments
    go.open();
    const auto seen = co_await read_until(h.events, K::task_ready, "api");
    CHECK(trace(seen) == std::vector<std::string>{"task_ready payments/db", "task_ready payments",
                                                  "attempt_starting api", "task_ready api"});
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("a nested supervisor stopped by a group restart of its parent restarts its children",
          "[supervisor][nesting][strategy]") {
  vigil::supervisor_options options;
  options.strategy = vigil::strategy::one_for_all;
  harness h(options);
  vigil::supervisor payments(h.io.get_executor());
  gate trigger;
  vigil::task_spec spec = nested("payments", payments);
  payments.add(quick_spec("poller", ready_then_wait));
  h.run([&]() -> asio::awaitable<void> {
    h.sup.add(std::move(spec));
    h.sup.add(quick_spec("api", [trigger](vigil::task_context ctx) -> asio::awaitable<void> {
      if (ctx.attempt() == 1) {
        co_await trigger.wait();
        throw std::runtime_error("api broke");
      }
      co_await sleep_forever(ctx);
    }));
    co_await read_until(h.events, K::task_ready, "payments");
    trigger.open();
    const auto seen = co_await read_until(h.events, K::task_ready, "payments");
    // The group stops (payments runs its own shutdown), then restarts in start order; payments
    // starts its children again (while api starts: their events interleave).
    auto lines = trace(seen);
    const auto api = std::find(lines.begin(), lines.end(), "attempt_starting api");
    REQUIRE(api != lines.end());
    CHECK(api > std::find(lines.begin(), lines.end(), "attempt_starting payments"));
    lines.erase(api);
    CHECK(lines == std::vector<std::string>{
                       "attempt_failed api", "shutdown_requested payments",
                       "attempt_canceled payments/poller", "task_finished payments/poller",
                       "all_stopped_within_grace payments", "attempt_canceled payments",
                       "attempt_starting payments", "attempt_starting payments/poller",
                       "task_ready payments/poller", "task_ready payments"});
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("nesting refuses what cannot work", "[supervisor][nesting][validation]") {
  asio::io_context io;
  SECTION("a nested supervisor must not handle signals") {
    vigil::supervisor_options options;
    options.handle_signals = true;
    vigil::supervisor child(io.get_executor(), options);
    CHECK_THROWS_AS(child.as_task(), std::logic_error);
    child.shutdown();
    io.run();
  }
  SECTION("task names cannot contain the path separator") {
    vigil::supervisor sup(io.get_executor());
    CHECK_THROWS_WITH(sup.add(quick_spec("a/b", succeed)),
                      Catch::Matchers::Contains("must not contain '/'"));
  }
}

TEST_CASE("one supervisor nested in two tasks runs in the first only",
          "[supervisor][nesting][validation]") {
  harness h;
  vigil::supervisor payments(h.io.get_executor());
  vigil::task_spec first = nested("first", payments);
  vigil::task_spec second = nested("second", payments);
  payments.add(quick_spec("poller", ready_then_wait));
  h.run([&]() -> asio::awaitable<void> {
    h.sup.add(std::move(first));
    co_await read_until(h.events, K::task_ready, "first");
    const auto result = co_await h.sup.add(std::move(second)).wait();
    CHECK(result.kind == outcome::fatal);
    CHECK(result.reason.find("already runs as task \"first\"") != std::string::npos);
    const auto tasks = co_await payments.snapshot();  // the first run goes on
    REQUIRE(tasks.size() == 1);
    CHECK(tasks[0].state == vigil::task_phase::ready);
    CHECK(tasks[0].attempt == 1);
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("destroying a nested supervisor ends its run; later attempts fail for good",
          "[supervisor][nesting]") {
  harness h;
  auto payments = std::make_unique<vigil::supervisor>(h.io.get_executor());
  vigil::task_spec spec = nested("payments", *payments);
  spec.restart = vigil::restart_policy::always;
  payments->add(quick_spec("poller", ready_then_wait));
  h.run([&]() -> asio::awaitable<void> {
    auto handle = h.sup.add(std::move(spec));
    co_await read_until(h.events, K::task_ready, "payments");
    payments.reset();
    const auto result = co_await handle.wait();
    const auto seen = co_await read_until(h.events, K::task_finished, "payments");
    CHECK(count(seen, K::attempt_succeeded, "payments") == 1);  // a clean stop of the run
    CHECK(result.kind == outcome::fatal);
    CHECK(result.reason.find("was destroyed") != std::string::npos);
    CHECK(result.attempts == 2);
    co_await h.sup.shutdown().wait();
  }());
}
