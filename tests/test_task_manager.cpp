// task_manager: status tracked from the work's end, cancel of queued and running runs, the
// concurrency limit and its queue order, wait_all, shutdown with a grace, and what the
// destructor leaves behind.

#include "support.hpp"

#include <vigil/runs/task_manager.hpp>

#include <asio/this_coro.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace vigil_test;
using S = vigil::run_status;
using K = vigil::event_kind;

namespace {

/// Waits for `g` (cancellable), then returns `result`.
asio::awaitable<std::string> after(gate g, std::string result) {
  co_await g.wait();
  co_return result;
}

asio::awaitable<std::string> throws_after(gate g, std::string message) {
  co_await g.wait();
  throw std::runtime_error(message);
}

/// Ignores cancellation until `g` opens; counts its ends in `ended`.
asio::awaitable<void> stuck(gate g, std::shared_ptr<std::atomic<int>> ended) {
  co_await g.wait_ignoring_cancel();
  ++*ended;
}

/// Catches the cancellation and completes anyway.
asio::awaitable<std::string> stubborn(gate g) {
  try {
    co_await g.wait();
  } catch (const std::system_error&) {
    co_return "finished regardless";
  }
  co_return "finished";
}

/// Records when it begins and ends, in `log`, and the peak of concurrently running work.
struct concurrency_probe {
  std::mutex mutex;
  std::vector<std::string> began;
  int running = 0;
  int peak = 0;

  asio::awaitable<std::string> work(std::string name, std::chrono::milliseconds hold) {
    {
      std::lock_guard lock(mutex);
      began.push_back(name);
      peak = std::max(peak, ++running);
    }
    asio::steady_timer timer(co_await asio::this_coro::executor, hold);
    co_await timer.async_wait(asio::use_awaitable);
    {
      std::lock_guard lock(mutex);
      --running;
    }
    co_return name;
  }
};

/// Reads registry events until run `id` reaches a finished status; returns the last event.
asio::awaitable<vigil::event> finished_event(vigil::subscription& events, const std::string& id) {
  const auto seen = co_await read_until(events, [&](const vigil::event& e) {
    return e.task == id &&
           (e.kind == K::run_completed || e.kind == K::run_failed || e.kind == K::run_cancelled);
  });
  co_return seen.back();
}

/// Reads registry events until every run in `ids` has started, in whatever order.
asio::awaitable<void> all_started(vigil::subscription& events, std::set<std::string> ids) {
  while (!ids.empty()) {
    const vigil::event e = co_await events.next();
    if (e.kind == K::run_started)
      ids.erase(e.task);
  }
}

}  // namespace

TEST_CASE("task_manager tracks the status of its runs from their work", "[runs][task_manager]") {
  asio::io_context io;
  vigil::task_manager manager(io.get_executor());
  auto events = manager.registry().events().subscribe(1024);
  gate go;

  const std::string ok = manager.start({.name = "report"}, after(go, "report.pdf"));
  const std::string bad = manager.start({.name = "import"}, throws_after(go, "no such table"));
  CHECK(manager.registry().get(ok)->status == S::queued);  // nothing has run yet
  CHECK(manager.active_count() == 2);
  CHECK(manager.active_ids() == std::vector<std::string>{ok, bad});

  run(io, [&]() -> asio::awaitable<void> {
    const std::set<std::string> starting = {ok, bad};
    co_await all_started(events, starting);
    CHECK(manager.registry().get(ok)->status == S::running);
    CHECK(manager.registry().get(ok)->started_at.has_value());
    go.open();
    co_await manager.wait_all();

    const vigil::run done = *manager.registry().get(ok);
    CHECK(done.status == S::completed);
    CHECK(done.result == "report.pdf");
    CHECK(done.finished_at.has_value());
    const vigil::run failed = *manager.registry().get(bad);
    CHECK(failed.status == S::failed);
    CHECK(failed.error_message == "no such table");
    CHECK(manager.active_count() == 0);
    CHECK_FALSE(manager.is_active(ok));
    co_await manager.wait_all();  // at once when nothing is active
  }());
}

TEST_CASE("task_manager::cancel cancels a running run and says whether it did",
          "[runs][task_manager]") {
  asio::io_context io;
  vigil::task_manager manager(io.get_executor());
  auto events = manager.registry().events().subscribe(1024);
  gate never;
  gate release;

  const std::string id = manager.start({.name = "long"}, after(never, "unreachable"));
  const std::string keeps = manager.start({.name = "stubborn"}, stubborn(release));
  const std::string quick = manager.start({.name = "quick"}, after(release, "done"));

  run(io, [&]() -> asio::awaitable<void> {
    const std::set<std::string> starting = {id, keeps, quick};
    co_await all_started(events, starting);
    CHECK(manager.is_active(id));

    // The id's string is gone before the cancel first runs: cancel() keeps its own copy.
    asio::awaitable<bool> cancelling = manager.cancel(std::string(id));
    const bool cancelled_it = co_await std::move(cancelling);
    CHECK(cancelled_it);
    const vigil::run cancelled = *manager.registry().get(id);
    CHECK(cancelled.status == S::cancelled);
    CHECK(cancelled.error_message == "cancelled by task_manager::cancel()");
    CHECK_FALSE(manager.is_active(id));
    const bool again = co_await manager.cancel(id);
    CHECK_FALSE(again);  // finished already
    const bool unknown = co_await manager.cancel("no-such");
    CHECK_FALSE(unknown);

    // Work that catches the cancellation and returns has completed: the call did not cancel it.
    const bool caught = co_await manager.cancel(keeps);
    CHECK_FALSE(caught);
    CHECK(manager.registry().get(keeps)->status == S::completed);
    CHECK(manager.registry().get(keeps)->result == "finished regardless");

    release.open();
    co_await manager.wait_all();
    CHECK(manager.registry().get(quick)->status == S::completed);
  }());
}

TEST_CASE("task_manager runs at most max_running at once and starts the rest in order",
          "[runs][task_manager]") {
  asio::io_context io;
  SECTION("one at a time keeps the start order") {
    vigil::task_manager manager(io.get_executor(), {.max_running = 1});
    auto probe = std::make_shared<concurrency_probe>();
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i)
      ids.push_back(manager.start({.name = fmt::format("job-{}", i)},
                                  probe->work(fmt::format("job-{}", i), 2ms)));
    CHECK(manager.active_ids() == ids);
    run(io, [&]() -> asio::awaitable<void> {
      co_await manager.wait_all();
      CHECK(probe->peak == 1);
      CHECK(probe->began ==
            std::vector<std::string>{"job-0", "job-1", "job-2", "job-3", "job-4", "job-5"});
      for (const std::string& id : ids)
        CHECK(manager.registry().get(id)->status == S::completed);
    }());
  }
  SECTION("a limit of three with twelve runs") {
    vigil::task_manager manager(io.get_executor(), {.max_running = 3});
    auto probe = std::make_shared<concurrency_probe>();
    for (int i = 0; i < 12; ++i)
      manager.start({.name = "job"}, probe->work(fmt::format("job-{}", i), 5ms));
    run(io, [&]() -> asio::awaitable<void> {
      co_await manager.wait_all();
      CHECK(probe->peak <= 3);
      CHECK(probe->began.size() == 12);
      CHECK(manager.registry().list(S::completed).size() == 12);
    }());
  }
}

TEST_CASE("task_manager cancels a queued run at once, before its work ever runs",
          "[runs][task_manager]") {
  asio::io_context io;
  vigil::task_manager manager(io.get_executor(), {.max_running = 1});
  auto events = manager.registry().events().subscribe(1024);
  gate go;
  auto ran = std::make_shared<std::atomic<int>>(0);
  auto counted = [ran](gate g) -> asio::awaitable<std::string> {
    ++*ran;
    co_await g.wait();
    co_return "ran";
  };

  const std::string first = manager.start({.name = "first"}, counted(go));
  const std::string second = manager.start({.name = "second"}, counted(go));
  const std::string third = manager.start({.name = "third"}, counted(go));

  run(io, [&]() -> asio::awaitable<void> {
    co_await read_until(events, K::run_started, first);
    CHECK(manager.registry().get(second)->status == S::queued);
    const bool cancelled_it = co_await manager.cancel(second);
    CHECK(cancelled_it);
    const vigil::run cancelled = *manager.registry().get(second);
    CHECK(cancelled.status == S::cancelled);
    CHECK_FALSE(cancelled.started_at.has_value());
    CHECK(manager.active_ids() == std::vector<std::string>{first, third});

    go.open();
    co_await manager.wait_all();
    CHECK(*ran == 2);
    CHECK(manager.registry().get(third)->status == S::completed);
  }());
}

TEST_CASE("task_manager::shutdown cancels everything and marks work that ignores it",
          "[runs][task_manager]") {
  asio::io_context io;
  vigil::task_manager manager(io.get_executor(), {.max_running = 2});
  auto events = manager.registry().events().subscribe(1024);
  gate never;
  gate release;
  auto ended = std::make_shared<std::atomic<int>>(0);

  const std::string polite = manager.start({.name = "polite"}, after(never, "unreachable"));
  const std::string deaf = manager.start({.name = "deaf"}, stuck(release, ended));
  const std::string queued = manager.start({.name = "queued"}, after(never, "unreachable"));

  run(io, [&]() -> asio::awaitable<void> {
    const std::set<std::string> starting = {polite, deaf};
    co_await all_started(events, starting);
    co_await manager.shutdown(50ms);

    CHECK(manager.registry().get(polite)->status == S::cancelled);
    CHECK(manager.registry().get(polite)->error_message == "cancelled: the task_manager shut down");
    CHECK(manager.registry().get(queued)->status == S::cancelled);
    const vigil::run abandoned = *manager.registry().get(deaf);
    CHECK(abandoned.status == S::failed);
    CHECK(abandoned.error_message == "ignored cancellation past the shutdown grace of 50ms");
    CHECK(manager.active_count() == 0);
    CHECK_THROWS_WITH(manager.start({.name = "late"}, after(never, "")),
                      Catch::Matchers::Contains("the manager is shut down"));
    CHECK(manager.registry().size() == 3);  // the refused run was not added

    release.open();  // the deaf work ends at last: the registry keeps what shutdown recorded
    while (*ended == 0) {
      asio::steady_timer tick(co_await asio::this_coro::executor, 1ms);
      co_await tick.async_wait(asio::use_awaitable);
    }
    CHECK(manager.registry().get(deaf)->status == S::failed);
  }());
}

TEST_CASE("task_manager::shutdown returns as soon as the work has stopped",
          "[runs][task_manager]") {
  asio::io_context io;
  vigil::task_manager manager(io.get_executor());
  auto events = manager.registry().events().subscribe(1024);
  gate never;
  const std::string id = manager.start({.name = "polite"}, after(never, ""));
  run(io, [&]() -> asio::awaitable<void> {
    co_await read_until(events, K::run_started, id);
    const auto began = std::chrono::steady_clock::now();
    co_await manager.shutdown(1h);  // a grace the test would never outlive
    CHECK(std::chrono::steady_clock::now() - began < 10min);
    CHECK(manager.registry().get(id)->status == S::cancelled);
  }());
}

TEST_CASE("task_manager publishes each run's transitions in order", "[runs][task_manager]") {
  asio::io_context io;
  auto registry = std::make_shared<vigil::run_registry>();
  vigil::task_manager manager(io.get_executor(), registry, {.max_running = 2});
  auto events = registry->events().subscribe(1 << 12);
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    gate open;
    open.open();
    ids.push_back(manager.start({.name = "job"},
                                i % 3 == 0 ? throws_after(open, "odd") : after(open, "even")));
  }
  run(io, [&]() -> asio::awaitable<void> {
    co_await manager.wait_all();
    std::map<std::string, std::vector<K>> per_run;
    std::size_t finished = 0;
    while (finished < ids.size()) {
      const vigil::event e = co_await events.next();
      per_run[e.task].push_back(e.kind);
      if (e.kind == K::run_completed || e.kind == K::run_failed)
        ++finished;
    }
    for (std::size_t i = 0; i < ids.size(); ++i)
      CHECK(per_run[ids[i]] == std::vector<K>{K::run_queued, K::run_started,
                                              i % 3 == 0 ? K::run_failed : K::run_completed});
  }());
}

TEST_CASE("destroying a task_manager cancels its runs into the shared registry",
          "[runs][task_manager]") {
  asio::io_context io;
  auto registry = std::make_shared<vigil::run_registry>();
  auto events = registry->events().subscribe(1024);
  gate never;
  auto manager = std::make_unique<vigil::task_manager>(
      io.get_executor(), registry, vigil::task_manager_options{.max_running = 1});
  const std::string running = manager->start({.name = "running"}, after(never, ""));
  const std::string queued = manager->start({.name = "queued"}, after(never, ""));
  run(io, [&]() -> asio::awaitable<void> {
    co_await read_until(events, K::run_started, running);
    manager.reset();
    const vigil::event end = co_await finished_event(events, running);
    CHECK(end.kind == K::run_cancelled);
    CHECK(end.reason == "cancelled: the task_manager was destroyed");
    CHECK(registry->get(queued)->status == S::cancelled);
  }());
}

TEST_CASE("task_manager refuses bad input with clear errors", "[runs][task_manager][validation]") {
  asio::io_context io;
  CHECK_THROWS_WITH(vigil::task_manager(io.get_executor(), nullptr),
                    Catch::Matchers::Contains("the registry is null"));
  vigil::task_manager manager(io.get_executor());
  CHECK_THROWS_WITH(manager.start({.name = "empty"}, asio::awaitable<void>{}),
                    Catch::Matchers::Contains("the work is an empty awaitable"));
  gate g;
  const std::string id = manager.start({.id = "fixed"}, after(g, ""));
  CHECK_THROWS_WITH(manager.start({.id = "fixed"}, after(g, "")),
                    Catch::Matchers::Contains("a run with id 'fixed' exists already"));
  CHECK(manager.active_ids() == std::vector<std::string>{id});
  run(io, [&]() -> asio::awaitable<void> {
    std::string refused;
    try {
      co_await manager.shutdown(-1ms);
    } catch (const std::invalid_argument& e) {
      refused = e.what();
    }
    CHECK_THAT(refused, Catch::Matchers::Contains("grace must not be negative, got -1ms"));
    g.open();
    co_await manager.wait_all();
  }());
}
