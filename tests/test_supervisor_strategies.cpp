// Restart strategies: one_for_all and rest_for_one stop the group one child at a time, the last
// started first, then restart it in start order; their shutdown is sequential too.

#include "support.hpp"

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

/// The steps of a group restart, in order.
std::vector<std::string> trace(const std::vector<vigil::event>& events) {
  return vigil_test::trace(events, {K::attempt_failed, K::attempt_canceled, K::attempt_starting,
                                    K::backoff_scheduled, K::task_finished, K::grace_exceeded});
}

/// Fails on its first attempt once `trigger` opens; later attempts run until cancelled.
asio::awaitable<void> fails_on_signal(vigil::task_context ctx, gate trigger) {
  if (ctx.attempt() == 1) {
    co_await trigger.wait();
    throw std::runtime_error("boom");
  }
  co_await sleep_forever(ctx);
}

vigil::task_fn failing_when(gate trigger) {
  return [trigger](vigil::task_context ctx) { return fails_on_signal(std::move(ctx), trigger); };
}

asio::awaitable<void> group_restart(harness& h, std::vector<std::string> names, std::string failing,
                                    std::vector<std::string> expected) {
  gate trigger;
  for (const auto& name : names)
    h.sup.add(quick_spec(name, name == failing ? failing_when(trigger) : sleep_forever));
  co_await read_until(h.events, K::attempt_starting, names.back());
  trigger.open();
  // Until the last child started for the second time.
  std::vector<vigil::event> seen;
  int last_starts = 0;
  while (last_starts < 1) {
    seen.push_back(co_await h.events.next());
    if (seen.back().kind == K::attempt_starting && seen.back().task == names.back())
      ++last_starts;
  }
  CHECK(trace(seen) == expected);
  const auto tasks = co_await h.sup.snapshot();
  for (const auto& t : tasks)
    CHECK(t.state == vigil::task_phase::running);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("one_for_all stops every other child last-first and restarts all in order",
          "[supervisor][strategy]") {
  vigil::supervisor_options options;
  options.strategy = vigil::strategy::one_for_all;
  harness h(options);
  h.run(group_restart(
      h, {"a", "b", "c"}, "b",
      {"attempt_failed b", "backoff_scheduled b", "attempt_canceled c", "attempt_canceled a",
       "attempt_starting a", "attempt_starting b", "attempt_starting c"}));
}

TEST_CASE("rest_for_one restarts the failed child and the children added after it",
          "[supervisor][strategy]") {
  vigil::supervisor_options options;
  options.strategy = vigil::strategy::rest_for_one;
  harness h(options);
  h.run(group_restart(
      h, {"a", "b", "c", "d"}, "b",
      {"attempt_failed b", "backoff_scheduled b", "attempt_canceled d", "attempt_canceled c",
       "attempt_starting b", "attempt_starting c", "attempt_starting d"}));
}

namespace {

asio::awaitable<void> temporary_child_is_not_restarted(harness& h) {
  gate trigger;
  auto temporary = quick_spec("temp", sleep_forever);
  temporary.restart = vigil::restart_policy::never;
  auto temp = h.sup.add(std::move(temporary));
  h.sup.add(quick_spec("worker", failing_when(trigger)));
  co_await read_until(h.events, K::attempt_starting, "worker");
  trigger.open();
  co_await read_until(h.events, K::attempt_starting, "worker");  // the restart
  const auto result = co_await temp.wait();
  CHECK(result == outcome::canceled);
  CHECK(result.reason == "stopped with its group");
  CHECK(h.sup.list() == std::vector<std::string>{"worker"});
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("a restart_policy::never child stopped by a group restart is not restarted",
          "[supervisor][strategy]") {
  vigil::supervisor_options options;
  options.strategy = vigil::strategy::one_for_all;
  harness h(options);
  h.run(temporary_child_is_not_restarted(h));
}

namespace {

asio::awaitable<void> stops_in_reverse(harness& h) {
  for (const char* name : {"a", "b", "c", "d"})
    h.sup.add(quick_spec(name, sleep_forever));
  co_await read_until(h.events, K::attempt_starting, "d");
  const auto report = co_await h.sup.shutdown().wait();
  CHECK(report.within_grace);
  const auto seen = co_await read_until(h.events, K::all_stopped_within_grace);
  std::vector<std::string> canceled;
  for (const auto& e : seen)
    if (e.kind == K::attempt_canceled)
      canceled.push_back(e.task);
  CHECK(canceled == std::vector<std::string>{"d", "c", "b", "a"});
}

}  // namespace

TEST_CASE("children of a rest_for_one supervisor stop one at a time in reverse order",
          "[supervisor][strategy][shutdown]") {
  vigil::supervisor_options options;
  options.strategy = vigil::strategy::rest_for_one;
  harness h(options);
  h.run(stops_in_reverse(h));
}

namespace {

asio::awaitable<void> stuck_sibling(harness& h, gate release) {
  gate trigger;
  h.sup.add(quick_spec("first", sleep_forever));
  h.sup.add(quick_spec("crashy", failing_when(trigger)));
  auto stubborn_spec = quick_spec("stubborn", stuck_task(release));
  stubborn_spec.stop_grace = 30ms;
  auto stubborn = h.sup.add(std::move(stubborn_spec));
  co_await read_until(h.events, K::attempt_starting, "stubborn");
  trigger.open();
  const auto seen = co_await read_until(h.events, K::attempt_starting, "crashy");
  CHECK(trace(seen) == std::vector<std::string>{"attempt_failed crashy", "backoff_scheduled crashy",
                                                "grace_exceeded stubborn", "task_finished stubborn",
                                                "attempt_canceled first", "attempt_starting first",
                                                "attempt_starting crashy"});
  const auto result = co_await stubborn.wait();
  CHECK(result == outcome::abandoned);
  co_await h.sup.shutdown().wait();
  release.open();
}

}  // namespace

TEST_CASE("a child that ignores the group's stop is abandoned and the group restarts",
          "[supervisor][strategy]") {
  vigil::supervisor_options options;
  options.strategy = vigil::strategy::one_for_all;
  harness h(options);
  h.run(stuck_sibling(h, gate{}));
}
