// The exact lifecycle event sequence of each basic task scenario.

#include "support.hpp"

#include <string>
#include <vector>

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

asio::awaitable<void> succeeds_once(harness& h) {
  auto handle = h.sup.add(quick_spec("once", succeed));
  const auto seen = co_await read_until(h.events, K::task_removed, "once");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_succeeded, K::task_finished, K::task_removed});
  CHECK(seen[2].attempt == 1);
  const auto result = co_await handle.wait();
  CHECK(result == outcome::completed);
  CHECK(result.attempts == 1);
  CHECK(!result.error);
  CHECK_FALSE(h.sup.contains("once"));
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> fails_twice_then_succeeds(harness& h) {
  auto handle = h.sup.add(quick_spec("flaky", failing_first(2)));
  const auto seen = co_await read_until(h.events, K::task_removed, "flaky");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_failed, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_failed, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_succeeded, K::task_finished, K::task_removed});
  CHECK(seen[3].reason == "boom 1");
  CHECK(seen[4].delay == 1ms);  // exponential(1ms, 10ms, 2), no jitter
  CHECK(seen[7].delay == 2ms);
  CHECK(seen[8].attempt == 3);
  const auto result = co_await handle.wait();
  CHECK(result == outcome::completed);
  CHECK(result.attempts == 3);
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> fails_under_never(harness& h) {
  auto spec = quick_spec("once", always_failing());
  spec.restart = vigil::restart_policy::never;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "once");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_failed, K::task_finished, K::task_removed});
  CHECK(seen[4].reason == "failed: boom 1");
  const auto result = co_await handle.wait();
  CHECK(result == outcome::failed);
  CHECK(result.reason == "boom 1");
  REQUIRE(result.error);
  CHECK_THROWS_WITH(std::rethrow_exception(result.error), "boom 1");
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> stop_on_fourth(vigil::task_context ctx) {
  if (ctx.attempt() == 4)
    throw vigil::fatal_error("enough");
  co_return;
}

asio::awaitable<void> runs_periodically(harness& h) {
  auto spec = quick_spec("tick", stop_on_fourth);
  spec.restart = vigil::restart_policy::always;
  spec.backoff = vigil::backoff_policy::constant(5ms);
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "tick");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_succeeded, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_succeeded, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_succeeded, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_failed, K::task_finished, K::task_removed});
  for (const auto& e : seen)
    if (e.kind == K::backoff_scheduled)
      CHECK(e.delay == 5ms);
  const auto ended = co_await handle.wait();
  CHECK(ended == outcome::fatal);
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> times_out(harness& h) {
  auto spec = quick_spec("slow", sleep_forever);
  spec.timeout = 20ms;
  spec.max_retries = 1;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "slow");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_timed_out, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_timed_out, K::retries_exhausted, K::task_finished,
                                   K::task_removed});
  CHECK(seen[3].delay == 20ms);
  const auto result = co_await handle.wait();
  CHECK(result == outcome::failed);
  CHECK(error_code_of(result.error) == vigil::errc::attempt_timed_out);
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> exhausts_retries(harness& h) {
  auto spec = quick_spec("doomed", always_failing());
  spec.max_retries = 2;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "doomed");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_failed, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_failed, K::backoff_scheduled, K::attempt_starting,
                                   K::attempt_failed, K::retries_exhausted, K::task_finished,
                                   K::task_removed});
  const auto result = co_await handle.wait();
  CHECK(result == outcome::failed);
  CHECK(result.attempts == 3);
  CHECK(result.reason == "boom 3");
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> throw_fatal(vigil::task_context) {
  throw vigil::fatal_error("config is broken");
  co_return;
}

asio::awaitable<void> fatal_is_never_restarted(harness& h) {
  auto spec = quick_spec("fatal", throw_fatal);
  spec.restart = vigil::restart_policy::always;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "fatal");
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_failed, K::task_finished, K::task_removed});
  const auto result = co_await handle.wait();
  CHECK(result == outcome::fatal);
  CHECK(result.reason == "config is broken");
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> removed_during_backoff(harness& h) {
  auto spec = quick_spec("waiting", always_failing());
  spec.backoff = vigil::backoff_policy::constant(1h);
  auto handle = h.sup.add(std::move(spec));
  auto seen = co_await read_until(h.events, K::backoff_scheduled, "waiting");
  CHECK(h.sup.remove("waiting"));
  const auto rest = co_await read_until(h.events, K::task_removed, "waiting");
  seen.insert(seen.end(), rest.begin(), rest.end());
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::attempt_failed, K::backoff_scheduled,
                                   K::task_remove_requested, K::task_finished, K::task_removed});
  const auto result = co_await handle.wait();
  CHECK(result == outcome::canceled);
  CHECK(result.reason == "boom 1");  // the last failure stays attached
  CHECK_FALSE(h.sup.contains("waiting"));
  CHECK_FALSE(h.sup.remove("waiting"));
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> removed_mid_attempt(harness& h) {
  auto handle = h.sup.add(quick_spec("busy", sleep_forever));
  auto seen = co_await read_until(h.events, K::attempt_starting, "busy");
  CHECK(h.sup.remove("busy"));
  const auto rest = co_await read_until(h.events, K::task_removed, "busy");
  seen.insert(seen.end(), rest.begin(), rest.end());
  CHECK(kinds(seen) == std::vector{K::task_add_requested, K::task_added, K::attempt_starting,
                                   K::task_remove_requested, K::attempt_canceled, K::task_finished,
                                   K::task_removed});
  const auto result = co_await handle.wait();
  CHECK(result == outcome::canceled);
  CHECK(result.attempts == 1);
  co_await h.sup.shutdown().wait();
}

asio::awaitable<void> duplicate_is_rejected(harness& h) {
  auto first = h.sup.add(quick_spec("same", sleep_forever));
  auto second = h.sup.add(quick_spec("same", succeed));
  const auto result = co_await second.wait();
  CHECK(result == outcome::rejected);
  CHECK(result.reason == "already_exists");
  const auto seen = co_await read_until(h.events, K::task_add_failed, "same");
  CHECK(seen.back().task == "same");
  CHECK(seen.back().reason == "already_exists");
  CHECK(h.sup.list() == std::vector<std::string>{"same"});
  co_await h.sup.shutdown().wait();
  const auto ended = co_await first.wait();
  CHECK(ended == outcome::canceled);
}

asio::awaitable<void> ready_twice_then_wait(vigil::task_context ctx) {
  ctx.ready();
  ctx.ready();  // once per attempt
  co_await sleep_forever(ctx);
}

asio::awaitable<void> ready_is_published(harness& h) {
  h.sup.add(quick_spec("server", ready_twice_then_wait));
  const auto seen = co_await read_until(h.events, K::task_ready, "server");
  CHECK(kinds(seen) ==
        std::vector{K::task_add_requested, K::task_added, K::attempt_starting, K::task_ready});
  CHECK(seen.back().attempt == 1);
  co_await h.sup.shutdown().wait();
  const auto rest = co_await read_until(h.events, K::all_stopped_within_grace);
  for (const auto& e : rest)
    CHECK(e.kind != K::task_ready);
}

// attempt 1, 2 fail; 3 succeeds; 4, 5 fail; 6 stops the test with a fatal error.
asio::awaitable<void> streak_pattern(vigil::task_context ctx) {
  switch (ctx.attempt()) {
    case 3:
      co_return;
    case 6:
      throw vigil::fatal_error("done");
    default:
      throw std::runtime_error("boom");
  }
}

asio::awaitable<void> success_resets_retries(harness& h) {
  auto spec = quick_spec("streaky", streak_pattern);
  spec.restart = vigil::restart_policy::always;
  spec.max_retries = 2;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "streaky");
  std::vector<vigil::duration> delays;
  for (const auto& e : seen) {
    CHECK(e.kind != K::retries_exhausted);
    if (e.kind == K::backoff_scheduled)
      delays.push_back(e.delay);
  }
  // Streaks restart at b(1) after the success: 1, 2, (success) 1, 1, 2.
  CHECK(delays == std::vector<vigil::duration>{1ms, 2ms, 1ms, 1ms, 2ms});
  const auto ended = co_await handle.wait();
  CHECK(ended == outcome::fatal);
  co_await h.sup.shutdown().wait();
}

// Attempts 1 and 2 fail at once; 3 runs 50 ms (longer than reset_after) and fails; 4 stops.
asio::awaitable<void> healthy_then_fail(vigil::task_context ctx) {
  if (ctx.attempt() == 3)
    co_await sleep_for(ctx, 50ms);
  if (ctx.attempt() == 4)
    throw vigil::fatal_error("done");
  throw std::runtime_error("boom");
}

asio::awaitable<void> long_run_resets_backoff(harness& h) {
  auto spec = quick_spec("healthy", healthy_then_fail);
  spec.backoff.reset_after = 30ms;
  auto handle = h.sup.add(std::move(spec));
  const auto seen = co_await read_until(h.events, K::task_removed, "healthy");
  std::vector<vigil::duration> delays;
  for (const auto& e : seen)
    if (e.kind == K::backoff_scheduled)
      delays.push_back(e.delay);
  CHECK(delays == std::vector<vigil::duration>{1ms, 2ms, 1ms});
  const auto ended = co_await handle.wait();
  CHECK(ended == outcome::fatal);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("a task that succeeds once completes", "[supervisor][events]") {
  harness h;
  h.run(succeeds_once(h));
}

TEST_CASE("a task that fails twice then succeeds is restarted with backoff",
          "[supervisor][events]") {
  harness h;
  h.run(fails_twice_then_succeeds(h));
}

TEST_CASE("a failing task under restart_policy::never is not restarted", "[supervisor][events]") {
  harness h;
  h.run(fails_under_never(h));
}

TEST_CASE("restart_policy::always with a constant backoff runs a task periodically",
          "[supervisor][events]") {
  harness h;
  h.run(runs_periodically(h));
}

TEST_CASE("an attempt that runs past its timeout is cancelled and counted as a failure",
          "[supervisor][events]") {
  harness h;
  h.run(times_out(h));
}

TEST_CASE("a task that keeps failing gives up after max_retries", "[supervisor][events]") {
  harness h;
  h.run(exhausts_retries(h));
}

TEST_CASE("a task that throws fatal_error is never restarted", "[supervisor][events]") {
  harness h;
  h.run(fatal_is_never_restarted(h));
}

TEST_CASE("a task removed during its backoff ends at once", "[supervisor][events][remove]") {
  harness h;
  h.run(removed_during_backoff(h));
}

TEST_CASE("a task removed mid-attempt is cancelled", "[supervisor][events][remove]") {
  harness h;
  h.run(removed_mid_attempt(h));
}

TEST_CASE("a duplicate name is rejected without an exception", "[supervisor][events]") {
  harness h;
  h.run(duplicate_is_rejected(h));
}

TEST_CASE("task_context::ready publishes task_ready once per attempt", "[supervisor][events]") {
  harness h;
  h.run(ready_is_published(h));
}

TEST_CASE("a success ends the failure streak counted by max_retries",
          "[supervisor][events][backoff]") {
  harness h;
  h.run(success_resets_retries(h));
}

TEST_CASE("an attempt that ran longer than reset_after restarts the backoff sequence",
          "[supervisor][events][backoff]") {
  harness h;
  h.run(long_run_resets_backoff(h));
}
