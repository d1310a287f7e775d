// Health: the stall watchdog, failure classification and snapshots.

#include "support.hpp"

#include <atomic>

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

using steady = std::chrono::steady_clock;

/// Attempt 1 heart-beats five times, noting when, then hangs; attempt 2 stops the test.
asio::awaitable<void> goes_silent(vigil::task_context ctx,
                                  std::shared_ptr<std::atomic<steady::rep>> last_beat) {
  if (ctx.attempt() > 1)
    throw vigil::fatal_error("done");
  for (int i = 0; i < 5; ++i) {
    // Noted before the beat: the measured silence can only be longer than the real one.
    last_beat->store(steady::now().time_since_epoch().count());
    ctx.heartbeat();
    co_await sleep_for(ctx, 5ms);
  }
  co_await sleep_forever(ctx);
}

asio::awaitable<void> stall_is_detected(harness& h) {
  auto last_beat = std::make_shared<std::atomic<steady::rep>>(0);
  auto spec = quick_spec("silent", [last_beat](vigil::task_context ctx) {
    return goes_silent(std::move(ctx), last_beat);
  });
  spec.stall_timeout = 60ms;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::attempt_stalled, "silent");
  const auto silence = steady::now() - steady::time_point(steady::duration(last_beat->load()));
  CHECK(silence >= 60ms);      // never before the timeout
  CHECK(silence < 60ms + 5s);  // and soon after it (loose: sanitizers are slow)
  CHECK(seen.back().delay == 60ms);
  CHECK(seen.back().reason == "attempt 1 sent no heartbeat for 60ms");
  const auto rest = co_await read_until(h.events, K::task_removed, "silent");
  std::vector<K> tail;
  for (const auto& e : rest)
    tail.push_back(e.kind);
  CHECK(tail == std::vector{K::backoff_scheduled, K::attempt_starting, K::attempt_failed,
                            K::task_finished, K::task_removed});
  const auto result = co_await handle.wait();
  CHECK(result == outcome::fatal);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("an attempt that stops heart-beating is stalled, cancelled and restarted",
          "[supervisor][health][stall]") {
  harness h;
  h.run(stall_is_detected(h));
}

namespace {

asio::awaitable<void> beats_for(vigil::task_context ctx, std::chrono::milliseconds total) {
  for (auto waited = 0ms; waited < total; waited += 10ms) {
    ctx.heartbeat();
    co_await sleep_for(ctx, 10ms);
  }
}

asio::awaitable<void> heartbeats_keep_it_alive(harness& h) {
  auto spec = quick_spec("busy", [](vigil::task_context ctx) { return beats_for(ctx, 300ms); });
  spec.stall_timeout = 250ms;  // far above the 10 ms beat, far below the 300 ms run
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "busy");
  for (const auto& e : seen)
    CHECK(e.kind != K::attempt_stalled);
  const auto result = co_await handle.wait();
  CHECK(result == outcome::completed);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("regular heartbeats keep a long attempt from being stalled",
          "[supervisor][health][stall]") {
  harness h;
  h.run(heartbeats_keep_it_alive(h));
}

namespace {

/// Throws what attempt N of the script says.
asio::awaitable<void> scripted(vigil::task_context ctx) {
  switch (ctx.attempt()) {
    case 1:
      throw std::system_error(make_error_code(std::errc::connection_refused), "connect");
    case 2:
      throw std::runtime_error("transient");
    default:
      throw std::system_error(make_error_code(std::errc::permission_denied), "open");
  }
  co_return;
}

vigil::failure_decision by_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::connection_refused)
      return vigil::failure_decision::restart_after(7ms);
    if (e.code() == std::errc::permission_denied)
      return vigil::failure_decision::give_up();
  } catch (...) {
  }
  return vigil::failure_decision::restart();
}

asio::awaitable<void> classified(harness& h) {
  auto spec = quick_spec("classy", scripted);
  spec.classify = by_error;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "classy");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_failed, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_failed, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_failed, K::task_finished, K::task_removed});
  CHECK(seen[4].delay == 7ms);  // restart_after: its own delay
  CHECK(seen[7].delay == 2ms);  // restart: the policy's b(2)
  const auto result = co_await handle.wait();
  CHECK(result == outcome::failed);  // give_up
  CHECK(result.attempts == 3);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("classify decides between restart, restart_after and give_up",
          "[supervisor][health][classify]") {
  harness h;
  h.run(classified(h));
}

namespace {

asio::awaitable<void> escalated(harness& h) {
  auto spec = quick_spec("critical", always_failing());
  spec.classify = [](const std::exception_ptr&) { return vigil::failure_decision::escalate(); };
  // "other" first: "critical" escalates at once, and the supervisor then rejects new tasks.
  auto other = h.sup.add(quick_spec("other", sleep_forever));
  co_await read_until(h.events, K::attempt_starting, "other");
  auto handle = h.sup.add(std::move(spec));
  try {
    co_await h.sup.run();
    FAIL("run() did not throw");
  } catch (const vigil::intensity_exceeded& e) {
    CHECK(std::string(e.what()).find("critical escalated its failure: boom 1") !=
          std::string::npos);
  }
  const auto result = co_await handle.wait();
  CHECK(result == outcome::failed);
  CHECK(result.attempts == 1);
  const auto other_result = co_await other.wait();
  CHECK(other_result == outcome::canceled);
}

}  // namespace

TEST_CASE("classify can escalate a failure to the supervisor", "[supervisor][health][classify]") {
  harness h;  // no restart_intensity configured: escalation does not need one
  h.run(escalated(h));
}

namespace {

asio::awaitable<void> classify_throws(harness& h) {
  auto spec = quick_spec("odd", failing_first(1));
  spec.classify = [](const std::exception_ptr&) -> vigil::failure_decision {
    throw std::runtime_error("classifier bug");
  };
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::backoff_scheduled, "odd");
  CHECK(seen.back().reason == "classify threw (classifier bug); restarting by policy");
  const auto result = co_await handle.wait();
  CHECK(result == outcome::completed);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("a classify function that throws restarts by policy and says so",
          "[supervisor][health][classify]") {
  harness h;
  h.run(classify_throws(h));
}

namespace {

asio::awaitable<void> throw_fatal(vigil::task_context) {
  throw vigil::fatal_error("no");
  co_return;
}

asio::awaitable<void> fatal_bypasses_classify(harness& h) {
  auto asked = std::make_shared<std::atomic<int>>(0);
  auto spec = quick_spec("fatal", throw_fatal);
  spec.classify = [asked](const std::exception_ptr&) {
    ++*asked;
    return vigil::failure_decision::restart();
  };
  auto handle = h.sup.add(std::move(spec));
  const auto result = co_await handle.wait();
  CHECK(result == outcome::fatal);
  CHECK(asked->load() == 0);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("fatal_error is never given to classify", "[supervisor][health][classify]") {
  harness h;
  h.run(fatal_bypasses_classify(h));
}

namespace {

asio::awaitable<void> snapshot_phases(harness& h) {
  // Two permits: "a" (ready) and "c" (running) hold them; "b" is in backoff; "d" waits.
  h.sup.add(quick_spec("a", ready_then_wait));
  co_await read_until(h.events, K::task_ready, "a");
  auto failing = quick_spec("b", always_failing());
  failing.backoff = vigil::backoff_policy::constant(1h);
  h.sup.add(std::move(failing));
  co_await read_until(h.events, K::backoff_scheduled, "b");
  h.sup.add(quick_spec("c", sleep_forever));
  co_await read_until(h.events, K::attempt_starting, "c");
  h.sup.add(quick_spec("d", sleep_forever));
  co_await read_until(h.events, K::task_added, "d");

  const auto tasks = co_await h.sup.snapshot();
  REQUIRE(tasks.size() == 4);
  CHECK(tasks[0].name == "a");
  CHECK(tasks[0].state == vigil::task_phase::ready);
  CHECK(tasks[0].attempt == 1);
  CHECK(tasks[1].name == "b");
  CHECK(tasks[1].state == vigil::task_phase::backoff);
  CHECK(tasks[1].last_failure == "boom 1");
  CHECK(tasks[1].restarts == 0);
  CHECK(tasks[2].state == vigil::task_phase::running);
  CHECK(tasks[3].name == "d");
  CHECK(tasks[3].state == vigil::task_phase::starting);
  CHECK(tasks[3].attempt == 0);
  for (const auto& t : tasks) {
    CHECK(t.in_state >= 0s);
    CHECK(t.in_state < 1min);
  }
  co_await h.sup.shutdown().wait();
  const auto after = co_await h.sup.snapshot();
  CHECK(after.empty());
}

}  // namespace

TEST_CASE("snapshot reports each task's phase, attempt and last failure",
          "[supervisor][health][snapshot]") {
  vigil::supervisor_options options;
  options.max_concurrent = 2;
  harness h(options);
  h.run(snapshot_phases(h));
}

namespace {

asio::awaitable<void> ready_when_open(vigil::task_context ctx, gate open) {
  co_await open.wait();
  ctx.ready();
  co_await sleep_forever(ctx);
}

asio::awaitable<void> starts_in_order(harness& h) {
  gate first_ready;
  h.sup.add(quick_spec("a", [first_ready](vigil::task_context ctx) {
    return ready_when_open(std::move(ctx), first_ready);
  }));
  h.sup.add(quick_spec("b", ready_then_wait));
  h.sup.add(quick_spec("c", ready_then_wait));
  co_await read_until(h.events, K::task_added, "c");
  // "a" runs but is not ready: "b" and "c" must wait.
  const auto before = co_await h.sup.snapshot();
  REQUIRE(before.size() == 3);
  CHECK(before[0].state == vigil::task_phase::running);
  CHECK(before[1].state == vigil::task_phase::starting);
  CHECK(before[2].state == vigil::task_phase::starting);
  first_ready.open();
  const auto seen = co_await read_until(h.events, K::task_ready, "c");
  std::vector<std::string> order;
  for (const auto& e : seen)
    if (e.kind == K::attempt_starting || e.kind == K::task_ready)
      order.push_back(std::string(vigil::to_string(e.kind)) + " " + e.task);
  CHECK(order == std::vector<std::string>{"task_ready a", "attempt_starting b", "task_ready b",
                                          "attempt_starting c", "task_ready c"});
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("ordered_start starts each child once the previous one is ready",
          "[supervisor][health][readiness]") {
  vigil::supervisor_options options;
  options.ordered_start = true;
  harness h(options);
  h.run(starts_in_order(h));
}

namespace {

asio::awaitable<void> never_ready(harness& h) {
  auto spec = quick_spec("mute", sleep_forever);
  spec.max_retries = 1;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "mute");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_timed_out, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_timed_out, K::retries_exhausted, K::task_finished,
                                   K::task_removed});
  CHECK(seen[3].reason == "attempt 1 was not ready within 30ms");
  const auto result = co_await handle.wait();
  CHECK(result == outcome::failed);
  CHECK(error_code_of(result.error) == vigil::errc::readiness_timed_out);
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> ready_in_time(harness& h) {
  auto handle = h.sup.add(quick_spec("prompt", ready_then_wait));
  co_await read_until(h.events, K::task_ready, "prompt");
  // Well past the readiness timeout: a ready attempt is not cut short.
  asio::steady_timer wait(co_await asio::this_coro::executor, 400ms);
  co_await wait.async_wait(asio::use_awaitable);
  const auto tasks = co_await h.sup.snapshot();
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].state == vigil::task_phase::ready);
  CHECK(tasks[0].attempt == 1);
  co_await h.sup.shutdown().wait();
  const auto result = co_await handle.wait();
  CHECK(result == outcome::canceled);
}

}  // namespace

TEST_CASE("an attempt that is not ready within readiness_timeout fails",
          "[supervisor][health][readiness]") {
  vigil::supervisor_options options;
  options.readiness_timeout = 30ms;
  harness h(options);
  h.run(never_ready(h));
}

TEST_CASE("a ready attempt outlives readiness_timeout", "[supervisor][health][readiness]") {
  vigil::supervisor_options options;
  options.readiness_timeout = 300ms;  // room for a slow first resume under sanitizers
  harness h(options);
  h.run(ready_in_time(h));
}
