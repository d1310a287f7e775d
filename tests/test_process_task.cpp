// process_task: child processes supervised like coroutines. Exit codes and signals as outcomes,
// success and fatal codes, stall detection on output, the core's timeout, remove and shutdown
// stopping the whole group within the grace, output forwarded as events and to a callback.

#include "process_support.hpp"

#include <vigil/processes/process_task.hpp>

#include <csignal>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

/// A spec running the helper program in `args` under `name`, restarted quickly.
vigil::task_spec process_spec(std::string name, std::vector<std::string> args,
                              vigil::process_task_options task_options = {}) {
  vigil::process_options options = helper_options(std::move(args));
  return quick_spec(std::move(name), vigil::process_task(options, std::move(task_options)));
}

/// The pid in a `process_spawned` event's reason ("pid 42: ...").
int spawned_pid(const vigil::event& e) {
  return std::stoi(e.reason.substr(4));
}

const vigil::event* find(const std::vector<vigil::event>& events, K kind) {
  for (const auto& e : events)
    if (e.kind == kind)
      return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("process_task: exit code 0 completes the task", "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto handle = h.sup.add(process_spec("ok", {"exit", "0"}));
    const auto seen = co_await read_until(h.events, K::task_removed, "ok");
    CHECK(trace(seen, {K::attempt_starting, K::process_spawned, K::task_ready, K::attempt_succeeded,
                       K::task_finished}) ==
          std::vector<std::string>{"attempt_starting ok", "process_spawned ok", "task_ready ok",
                                   "attempt_succeeded ok", "task_finished ok"});
    const auto result = co_await handle.wait();
    CHECK(result == outcome::completed);
    co_await h.sup.shutdown().wait();
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("process_task: a non-zero exit or a signal is a failure, restarted by policy",
          "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto three = process_spec("three", {"exit", "3"});
    three.max_retries = 1;
    auto handle = h.sup.add(std::move(three));
    const auto seen = co_await read_until(h.events, K::task_removed, "three");
    CHECK(trace(seen, {K::attempt_starting, K::attempt_failed, K::retries_exhausted}) ==
          std::vector<std::string>{"attempt_starting three", "attempt_failed three",
                                   "attempt_starting three", "attempt_failed three",
                                   "retries_exhausted three"});
    const auto* failed = find(seen, K::attempt_failed);
    REQUIRE(failed);
    CHECK(failed->reason == "exit code 3");
    const auto result = co_await handle.wait();
    CHECK(result == outcome::failed);
    REQUIRE(result.error);
    try {
      std::rethrow_exception(result.error);
    } catch (const vigil::process_error& e) {
      CHECK(e.status() == vigil::exit_status::exited(3));
      CHECK(e.program() == helper);
    }

    auto segv = process_spec("segv", {"segv"});
    segv.restart = vigil::restart_policy::never;
    auto crashed = h.sup.add(std::move(segv));
    const auto crash = co_await crashed.wait();
    CHECK(crash == outcome::failed);
    CHECK(crash.reason == "killed by SIGSEGV");
    co_await h.sup.shutdown().wait();
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("process_task: listed exit codes are success or fatal", "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    vigil::process_task_options lenient;
    lenient.success_codes = {0, 3};
    auto handle = h.sup.add(process_spec("lenient", {"exit", "3"}, lenient));
    const auto result = co_await handle.wait();
    CHECK(result == outcome::completed);

    vigil::process_task_options strict;
    strict.fatal_codes = {78};
    auto config = process_spec("config", {"exit", "78"}, strict);
    config.restart = vigil::restart_policy::always;
    auto fatal = h.sup.add(std::move(config));
    const auto end = co_await fatal.wait();
    CHECK(end == outcome::fatal);
    CHECK(end.attempts == 1);
    CHECK(end.reason == "exit code 78");
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("process_task: a child that goes silent is stalled, stopped and restarted", "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    vigil::process_task_options watched;
    watched.output_timeout = 300ms;
    // 50 lines 10 ms apart: talking longer than output_timeout, then silent.
    auto spec = process_spec("quiet", {"silent-after", "50"}, watched);
    spec.stop_grace = 1s;
    auto handle = h.sup.add(std::move(spec));
    const auto seen = co_await read_until(h.events, [](const vigil::event& e) {
      return e.kind == K::process_spawned && e.attempt == 2;
    });
    CHECK(trace(seen, {K::attempt_starting, K::attempt_stalled, K::attempt_failed,
                       K::backoff_scheduled}) ==
          std::vector<std::string>{"attempt_starting quiet", "attempt_stalled quiet",
                                   "attempt_failed quiet", "backoff_scheduled quiet",
                                   "attempt_starting quiet"});
    const auto* stalled = find(seen, K::attempt_stalled);
    REQUIRE(stalled);
    CHECK(stalled->delay == 300ms);
    CHECK(stalled->reason == "no output for 300ms");
    const auto* first = find(seen, K::process_spawned);
    REQUIRE(first);
    CHECK(stalled->at - first->at >= 600ms);   // output kept it alive; only silence stalled it
    CHECK(process_gone(spawned_pid(*first)));  // stopped before the restart
    h.sup.remove("quiet");
    const auto result = co_await handle.wait();
    CHECK(result == outcome::canceled);
    co_await h.sup.shutdown().wait();
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("process_task: the core's per-attempt timeout stops the process", "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto spec = process_spec("slow", {"sleep", "60000"});
    spec.timeout = 200ms;
    spec.restart = vigil::restart_policy::never;
    auto handle = h.sup.add(std::move(spec));
    const auto seen = co_await read_until(h.events, K::task_removed, "slow");
    CHECK(find(seen, K::attempt_timed_out));
    const auto result = co_await handle.wait();
    CHECK(result == outcome::failed);
    CHECK(error_code_of(result.error) == vigil::errc::attempt_timed_out);
    const auto* spawned = find(seen, K::process_spawned);
    REQUIRE(spawned);
    CHECK(process_gone(spawned_pid(*spawned)));
    co_await h.sup.shutdown().wait();
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("process_task: remove kills a child that ignores SIGTERM within the stop_grace",
          "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    vigil::process_task_options forwarded;
    forwarded.output_events = true;
    auto spec = process_spec("stubborn", {"ignore-term"}, forwarded);
    spec.stop_grace = 500ms;
    auto handle = h.sup.add(std::move(spec));
    // "ready" on stdout: SIGTERM is ignored from here on.
    const auto up = co_await read_until(h.events, K::process_output, "stubborn/stdout");
    const auto* spawned = find(up, K::process_spawned);
    REQUIRE(spawned);
    const int pid = spawned_pid(*spawned);
    const auto started = std::chrono::steady_clock::now();
    h.sup.remove("stubborn");
    const auto result = co_await handle.wait();
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(result == outcome::canceled);  // killed in time: not abandoned
    CHECK(took >= 300ms);                // SIGTERM was given its chance
    CHECK(took < 500ms + 1s);
    CHECK(process_gone(pid));
    const auto rest = co_await read_until(h.events, K::task_removed, "stubborn");
    CHECK_FALSE(find(rest, K::grace_exceeded));
    co_await h.sup.shutdown().wait();
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("process_task: shutdown takes the grandchildren too", "[process]") {
  vigil::supervisor_options options;
  options.shutdown_grace = 500ms;
  harness h(options);
  int grandchild = 0;
  std::mutex mutex;
  std::vector<std::string> lines;
  h.run([&]() -> asio::awaitable<void> {
    vigil::process_task_options watched;
    watched.on_output = [&](std::string_view task, vigil::output_stream s, std::string_view line) {
      std::lock_guard lock(mutex);
      lines.push_back(fmt::format("{} {} {}", task, vigil::to_string(s), line));
    };
    watched.output_events = true;
    h.sup.add(process_spec("family", {"grandchild"}, watched));
    const auto up = co_await read_until(h.events, K::process_output, "family/stdout");
    grandchild = std::stoi(up.back().reason);
    CHECK(process_state(grandchild) != 0);
    auto report = co_await h.sup.shutdown().wait();
    CHECK(report.within_grace);
    CHECK(process_gone(grandchild));
  }());
  CHECK(zombie_children().empty());
  std::lock_guard lock(mutex);
  CHECK(lines == std::vector<std::string>{fmt::format("family stdout {}", grandchild)});
}

TEST_CASE("process_task: unusable options are refused when the task is made", "[process]") {
  CHECK_THROWS_AS(vigil::process_task({}), std::invalid_argument);
  vigil::process_task_options zero;
  zero.output_timeout = vigil::duration::zero();
  CHECK_THROWS_WITH(vigil::process_task(helper_options({"exit", "0"}), zero),
                    Catch::Matchers::Contains("output_timeout"));
  vigil::process_options silent = helper_options({"exit", "0"});
  silent.out = vigil::stdio::null;
  silent.err = vigil::stdio::null;
  vigil::process_task_options deaf;
  deaf.output_timeout = 1s;
  CHECK_THROWS_WITH(vigil::process_task(silent, deaf),
                    Catch::Matchers::Contains("output_timeout needs stdout or stderr"));
  vigil::process_task_options both;
  both.fatal_codes = {0};
  CHECK_THROWS_WITH(vigil::process_task(helper_options({"exit", "0"}), both),
                    Catch::Matchers::Contains("exit code 0"));
}

TEST_CASE("process_task: a piped stream nobody asked about is read, so the child never blocks",
          "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    vigil::process_options flood = helper_options({"flood", "2000000", "100"});
    flood.out = vigil::stdio::pipe;  // more than a pipe holds, and no reader was asked for
    auto spec = quick_spec("flood", vigil::process_task(flood));
    spec.restart = vigil::restart_policy::never;
    auto handle = h.sup.add(std::move(spec));
    const auto result = co_await handle.wait();
    CHECK(result == outcome::completed);
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("process_task: a program that cannot start fails the attempt, saying why", "[process]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    vigil::process_options missing{.argv = {"vigil-no-such-program"}};
    auto spec = quick_spec("missing", vigil::process_task(missing));
    spec.restart = vigil::restart_policy::never;
    auto handle = h.sup.add(std::move(spec));
    const auto result = co_await handle.wait();
    CHECK(result == outcome::failed);
    CHECK_THAT(result.reason, Catch::Matchers::Contains("vigil-no-such-program"));
    CHECK_THAT(result.reason, Catch::Matchers::Contains("not found in PATH"));
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("task_context tells the grace and, once stopping, the deadline", "[process]") {
  harness h;
  std::atomic<bool> before_ok{false};
  h.run([&]() -> asio::awaitable<void> {
    auto body = [&](vigil::task_context ctx) -> asio::awaitable<void> {
      before_ok = ctx.stop_deadline() == vigil::time_point::max() && ctx.stop_grace() == 700ms;
      const auto asked = vigil::clock::now();
      try {
        co_await sleep_forever(ctx);
      } catch (...) {
      }
      const auto deadline = ctx.stop_deadline();
      if (deadline < asked + 600ms || deadline > vigil::clock::now() + 700ms)
        throw std::runtime_error("unexpected deadline");
    };
    auto spec = quick_spec("graceful", body);
    spec.stop_grace = 700ms;
    auto handle = h.sup.add(std::move(spec));
    co_await read_until(h.events, K::attempt_starting, "graceful");
    h.sup.remove("graceful");
    const auto result = co_await handle.wait();
    CHECK(result == outcome::canceled);
    CHECK(before_ok.load());
    co_await h.sup.shutdown().wait();
  }());
}
