// A process the journal test kills with SIGKILL mid-run: a task_manager on a journaled registry
// that keeps starting short runs, printing "finished <id> <result>" for each completed one.
// Each line is printed after the run's transition was journaled and fdatasynced, so every
// printed run must come back completed when the journal is reopened.

#include <vigil/runs/task_manager.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

using namespace std::chrono_literals;

namespace {

asio::awaitable<std::string> short_work(int n) {
  asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
  co_await timer.async_wait(asio::use_awaitable);
  co_return fmt::format("result-{}", n);
}

asio::awaitable<void> report(std::shared_ptr<vigil::run_registry> registry,
                             vigil::subscription events) {
  for (;;) {
    const vigil::event e = co_await events.next();
    if (e.kind != vigil::event_kind::run_completed)
      continue;
    const auto r = registry->get(e.task);
    std::fputs(fmt::format("finished {} {}\n", e.task, r ? r->result : "?").c_str(), stdout);
    std::fflush(stdout);
  }
}

asio::awaitable<void> keep_starting(vigil::task_manager& manager) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  for (int n = 0;; ++n) {
    while (manager.active_count() >= 8) {
      tick.expires_after(200us);
      co_await tick.async_wait(asio::use_awaitable);
    }
    manager.start({.name = "short", .parameters = {{"n", std::to_string(n)}}}, short_work(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fputs("usage: journal_writer <journal path>\n", stderr);
    return 2;
  }
  asio::io_context io;
  auto registry =
      std::make_shared<vigil::run_registry>(vigil::run_journal_options{.path = argv[1]});
  vigil::task_manager manager(io.get_executor(), registry, {.max_running = 4});
  asio::co_spawn(io, report(registry, registry->events().subscribe(1 << 16)), asio::detached);
  asio::co_spawn(io, keep_starting(manager), asio::detached);
  io.run();  // until killed
}
