// Graceful shutdown: cancel everything, one shared grace, report the stuck, idempotence,
// signals, escalation, and batch work with wait_until_empty.

#include "support.hpp"

#include <csignal>
#include <ctime>

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

asio::awaitable<void> stops_everything(harness& h) {
  auto a = h.sup.add(quick_spec("a", sleep_forever));
  auto b = h.sup.add(quick_spec("b", sleep_forever));
  auto waiting = quick_spec("c", always_failing());
  waiting.backoff = vigil::backoff_policy::constant(1h);
  auto c = h.sup.add(std::move(waiting));
  co_await read_until(h.events, K::backoff_scheduled, "c");
  const auto report = co_await h.sup.shutdown().wait();
  CHECK(report.within_grace);
  CHECK(report.abandoned.empty());
  CHECK(report.took < 10s);
  CHECK(!report.escalation);
  for (auto* handle : {&a, &b, &c}) {
    const auto result = co_await handle->wait();
    CHECK(result == outcome::canceled);
  }
  const auto seen = co_await read_until(h.events, K::all_stopped_within_grace);
  int canceled = 0, finished = 0;
  for (const auto& e : seen) {
    canceled += e.kind == K::attempt_canceled;
    finished += e.kind == K::task_finished;
  }
  CHECK(canceled == 2);  // a and b were running; c was in backoff
  CHECK(finished == 3);
  CHECK(seen.front().kind == K::shutdown_requested);
  CHECK(h.sup.list().empty());
}

}  // namespace

TEST_CASE("shutdown cancels running tasks and tasks in backoff", "[supervisor][shutdown]") {
  harness h;
  h.run(stops_everything(h));
}

namespace {

asio::awaitable<void> reports_the_stuck(harness& h, gate release) {
  auto stubborn = h.sup.add(quick_spec("stubborn", stuck_task(release)));
  auto polite = h.sup.add(quick_spec("polite", sleep_forever));
  co_await read_until(h.events, K::attempt_starting, "polite");
  const auto report = co_await h.sup.shutdown().wait();
  CHECK_FALSE(report.within_grace);
  CHECK(report.abandoned == std::vector<std::string>{"stubborn"});
  const auto seen = co_await read_until(h.events, K::task_removed, "stubborn");
  std::vector<K> tail;
  for (const auto& e : seen)
    if (e.task.empty() || e.task == "stubborn")
      tail.push_back(e.kind);
  CHECK(tail ==
        std::vector{K::shutdown_requested, K::grace_exceeded, K::task_finished, K::task_removed});
  for (const auto& e : seen)
    if (e.kind == K::grace_exceeded) {
      CHECK(e.reason == "stubborn");
      CHECK(e.delay == 500ms);
    }
  const auto stubborn_result = co_await stubborn.wait();
  CHECK(stubborn_result == outcome::abandoned);
  const auto polite_result = co_await polite.wait();
  CHECK(polite_result == outcome::canceled);
  // The abandoned coroutine is still alive; letting it go must not disturb anything.
  release.open();
}

}  // namespace

TEST_CASE("a task that ignores cancellation past the grace is reported and abandoned",
          "[supervisor][shutdown]") {
  vigil::supervisor_options options;
  options.shutdown_grace = 500ms;  // "polite" stops well within it, even under sanitizers
  harness h(options);
  h.run(reports_the_stuck(h, gate{}));
}

namespace {

asio::awaitable<void> shutdown_is_idempotent(harness& h) {
  h.sup.add(quick_spec("a", sleep_forever));
  auto first = h.sup.shutdown();
  auto second = h.sup.shutdown();
  const auto one = co_await first.wait();
  const auto two = co_await second.wait();
  const auto three = co_await h.sup.shutdown().wait();
  const auto from_run = co_await h.sup.run();
  CHECK(one.took == two.took);
  CHECK(one.took == three.took);
  CHECK(one.took == from_run.took);
  CHECK(first.done());
  const auto seen = co_await read_until(h.events, K::all_stopped_within_grace);
  int requests = 0;
  for (const auto& e : seen)
    requests += e.kind == K::shutdown_requested;
  CHECK(requests == 1);
}

}  // namespace

namespace {

/// `duration::max()` means "never" for every time span of a spec: added to the clock as it
/// is, it would overflow into the past and fire at once.
asio::awaitable<void> max_durations_never_fire(harness& h, gate release) {
  auto patient = quick_spec("patient", stuck_task(release));
  patient.timeout = vigil::duration::max();
  patient.stall_timeout = vigil::duration::max();
  patient.stop_grace = vigil::duration::max();
  auto handle = h.sup.add(std::move(patient));
  co_await read_until(h.events, K::attempt_starting, "patient");
  // A watchdog deadline in the past re-arms itself at once, over and over: the idle
  // supervisor would burn the CPU while it waits.
  const std::clock_t cpu_before = std::clock();
  asio::steady_timer settle(co_await asio::this_coro::executor, 60ms);
  co_await settle.async_wait(asio::use_awaitable);
  const double cpu_ms = 1000.0 * static_cast<double>(std::clock() - cpu_before) / CLOCKS_PER_SEC;
  CHECK(cpu_ms < 30.0);
  const std::vector<vigil::task_snapshot> tasks = co_await h.sup.snapshot();
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].state == vigil::task_phase::running);
  CHECK(tasks[0].attempt == 1);

  // Removed, it ignores the cancellation for a while: a max stop_grace waits for it.
  CHECK(h.sup.remove("patient"));
  settle.expires_after(30ms);
  co_await settle.async_wait(asio::use_awaitable);
  release.open();
  const vigil::task_outcome ended = co_await handle.wait();
  CHECK(ended != outcome::abandoned);
}

}  // namespace

TEST_CASE("duration::max() timeouts and grace periods never fire", "[supervisor][shutdown]") {
  harness h;
  h.run(max_durations_never_fire(h, gate{}));
}

TEST_CASE("every shutdown call returns the same result", "[supervisor][shutdown]") {
  harness h;
  h.run(shutdown_is_idempotent(h));
}

namespace {

asio::awaitable<void> rejects_after_shutdown(harness& h) {
  h.sup.shutdown();
  auto late = h.sup.add(quick_spec("late", succeed));
  const auto result = co_await late.wait();
  CHECK(result == outcome::rejected);
  CHECK(result.reason == "shutting_down");
  CHECK_FALSE(h.sup.contains("late"));
  co_await h.sup.run();
}

}  // namespace

TEST_CASE("a task added after shutdown is rejected", "[supervisor][shutdown]") {
  harness h;
  h.run(rejects_after_shutdown(h));
}

namespace {

asio::awaitable<void> sigterm_shuts_down(harness& h) {
  auto handle = h.sup.add(quick_spec("server", sleep_forever));
  co_await read_until(h.events, K::attempt_starting, "server");
  std::raise(SIGTERM);
  const auto report = co_await h.sup.run();
  CHECK(report.within_grace);
  const auto result = co_await handle.wait();
  CHECK(result == outcome::canceled);
}

}  // namespace

TEST_CASE("handle_signals turns SIGTERM into a graceful shutdown",
          "[supervisor][shutdown][signals]") {
  vigil::supervisor_options options;
  options.handle_signals = true;
  harness h(options);
  h.run(sigterm_shuts_down(h));
}

namespace {

asio::awaitable<void> second_signal_stops_waiting(harness& h, gate release) {
  auto handle = h.sup.add(quick_spec("stuck", stuck_task(release)));
  co_await read_until(h.events, K::attempt_starting, "stuck");
  std::raise(SIGTERM);
  co_await read_until(h.events, K::shutdown_requested);
  std::raise(SIGTERM);  // not waiting an hour for "stuck"
  const auto report = co_await h.sup.run();
  CHECK_FALSE(report.within_grace);
  CHECK(report.abandoned == std::vector<std::string>{"stuck"});
  CHECK(report.took < 1h);
  const auto result = co_await handle.wait();
  CHECK(result == outcome::abandoned);
  release.open();  // the abandoned coroutine ends; the io_context must then drain
}

}  // namespace

TEST_CASE("a second signal during the shutdown abandons stuck tasks at once",
          "[supervisor][shutdown][signals]") {
  vigil::supervisor_options options;
  options.handle_signals = true;
  options.shutdown_grace = 1h;
  harness h(options);
  h.run(second_signal_stops_waiting(h, gate{}));
}

namespace {

asio::awaitable<void> crash_loop_escalates(harness& h) {
  auto spec = quick_spec("crashy", always_failing());
  spec.backoff = vigil::backoff_policy::constant(0ms);
  // The bystander first: "crashy" escalates within a few attempts, and the supervisor then
  // rejects new tasks.
  auto bystander = h.sup.add(quick_spec("bystander", sleep_forever));
  co_await read_until(h.events, K::attempt_starting, "bystander");
  auto handle = h.sup.add(std::move(spec));
  try {
    co_await h.sup.run();
    FAIL("run() did not throw");
  } catch (const vigil::intensity_exceeded& e) {
    CHECK(std::string(e.what()).find("supervisor gave up: more than 2 restarts within 10s") !=
          std::string::npos);
    REQUIRE(e.last_failure());
    CHECK_THROWS_WITH(std::rethrow_exception(e.last_failure()), "boom 3");
  }
  const auto result = co_await handle.wait();
  CHECK(result == outcome::failed);
  CHECK(result.attempts == 3);  // two restarts allowed, the third refused
  const auto other = co_await bystander.wait();
  CHECK(other == outcome::canceled);
  const auto seen = co_await read_until(h.events, K::intensity_exceeded, "crashy");
  CHECK(seen.back().delay == 10s);
  const auto report = co_await h.sup.shutdown().wait();  // the report does not throw
  CHECK(report.escalation);
}

}  // namespace

TEST_CASE("more restarts than the intensity allows make run() throw", "[supervisor][intensity]") {
  vigil::supervisor_options options;
  options.intensity = vigil::restart_intensity{2, 10s};
  harness h(options);
  h.run(crash_loop_escalates(h));
}

namespace {

/// Fails `failures` times, then finishes once `release` opens.
asio::awaitable<void> job(vigil::task_context ctx, std::uint32_t failures, gate release) {
  if (ctx.attempt() <= failures)
    throw std::runtime_error("boom");
  co_await release.wait();
}

asio::awaitable<void> batch(harness& h) {
  co_await h.sup.wait_until_empty();  // empty at once
  gate release;
  std::vector<vigil::task_handle> handles;
  for (std::uint32_t i = 0; i < 10; ++i)
    handles.push_back(
        h.sup.add(quick_spec("job" + std::to_string(i), [i, release](vigil::task_context ctx) {
          return job(std::move(ctx), i % 3, release);
        })));
  CHECK(h.sup.list().size() == 10);  // none can finish before the gate opens
  release.open();
  co_await h.sup.wait_until_empty();
  CHECK(h.sup.list().empty());
  for (auto& handle : handles) {
    REQUIRE(handle.done());
    CHECK(handle.try_outcome()->kind == outcome::completed);
  }
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("wait_until_empty completes when every task has ended", "[supervisor][batch]") {
  harness h;
  h.run(batch(h));
}

TEST_CASE("destroying a supervisor shuts it down", "[supervisor][shutdown]") {
  asio::io_context io;
  vigil::task_handle handle;
  {
    vigil::supervisor sup{io.get_executor()};
    handle = sup.add(quick_spec("orphan", sleep_forever));
    io.poll();  // the attempt is running
  }
  io.run_for(20s);
  CHECK(io.stopped());
  REQUIRE(handle.done());
  CHECK(handle.try_outcome()->kind == outcome::canceled);
}

TEST_CASE("list names the registered tasks in add order", "[supervisor][registry]") {
  asio::io_context io;
  vigil::supervisor sup{io.get_executor()};
  for (const char* name : {"zeta", "alpha", "mid"})
    sup.add(quick_spec(name, sleep_forever));
  CHECK(sup.list() == std::vector<std::string>{"zeta", "alpha", "mid"});
  CHECK(sup.contains("alpha"));
  CHECK_FALSE(sup.contains("beta"));
  sup.shutdown();
  io.run_for(20s);
  CHECK(io.stopped());
  CHECK(sup.list().empty());
}
