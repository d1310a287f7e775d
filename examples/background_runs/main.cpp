// background_runs: work started in the background as tracked runs. Six "reports" start at once
// on a task_manager that runs two at a time; one fails, one is cancelled while running and one
// while still queued; then wait_all, and the status table after each step.
//
//   background_runs [--journal PATH]
//
// With --journal the runs are journaled to PATH: run it twice and the second run lists the first
// one's runs too (and compacts the journal before it ends).

#include <vigil/vigil.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// A report that takes `pages` × 40 ms; page 3 of a "broken" report throws.
asio::awaitable<std::string> make_report(std::string month, int pages, bool broken) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int page = 1; page <= pages; ++page) {
    timer.expires_after(40ms);
    co_await timer.async_wait(asio::use_awaitable);  // where a cancellation lands
    if (broken && page == 3)
      throw std::runtime_error(fmt::format("page {}: no sales data for {}", page, month));
  }
  co_return fmt::format("report-{}.pdf ({} pages)", month, pages);
}

void print_table(std::string_view title, const vigil::run_registry& registry) {
  fmt::print("\n{}\n{:<10} {:<8} {:<9} {:<11} {:>8}  {}\n", title, "id", "name", "month", "status",
             "took", "result / error");
  for (const vigil::run& r : registry.list()) {
    std::string took = "-";
    if (r.started_at && r.finished_at)
      took = fmt::format("{}ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                     *r.finished_at - *r.started_at)
                                     .count());
    const auto month = r.parameters.find("month");
    fmt::print("{:<10} {:<8} {:<9} {:<11} {:>8}  {}\n", r.id.substr(0, 8), r.name,
               month != r.parameters.end() ? month->second : "", vigil::to_string(r.status), took,
               r.status == vigil::run_status::completed ? r.result : r.error_message);
  }
}

asio::awaitable<void> demo(vigil::task_manager& manager) {
  vigil::run_registry& registry = manager.registry();
  vigil::subscription events = registry.events().subscribe(64);  // transitions, as they happen
  const std::string months[] = {"2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"};
  const int pages[] = {12, 3, 4, 5, 6, 7};
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(manager.start({.name = "report", .parameters = {{"month", months[i]}}},
                                make_report(months[i], pages[i], /*broken=*/i == 1)));
  print_table("started six reports, two at a time:", registry);

  for (;;) {  // the first report has started: cancel it, and the last one, still queued
    const vigil::event e = co_await events.next();
    if (e.kind == vigil::event_kind::run_started && e.task == ids[0])
      break;
  }
  const bool cancelled_running = co_await manager.cancel(ids[0]);  // running by now
  const bool cancelled_queued = co_await manager.cancel(ids[5]);   // still queued
  std::vector<std::string> active;
  for (const std::string& id : manager.active_ids())
    active.push_back(id.substr(0, 8));
  fmt::print("\ncancel({}): {}, cancel({}): {}; {} still active: {}\n", ids[0].substr(0, 8),
             cancelled_running, ids[5].substr(0, 8), cancelled_queued, active.size(),
             fmt::join(active, ", "));
  print_table("after two cancels:", registry);

  co_await manager.wait_all();
  print_table("after wait_all:", registry);
  registry.compact();  // one line per run: a journal only grows otherwise
}

}  // namespace

int main(int argc, char** argv) {
  std::shared_ptr<vigil::run_registry> registry;
  if (argc == 3 && std::string_view(argv[1]) == "--journal") {
    registry = std::make_shared<vigil::run_registry>(vigil::run_journal_options{.path = argv[2]});
    const vigil::journal_recovery& found = registry->recovery();
    fmt::print("journal {}: {} runs restored, {} interrupted\n", argv[2], found.runs,
               found.interrupted.size());
  } else if (argc == 1) {
    registry = std::make_shared<vigil::run_registry>();
  } else {
    fmt::print(stderr, "usage: background_runs [--journal PATH]\n");
    return 2;
  }

  asio::io_context io;
  vigil::task_manager manager(io.get_executor(), registry, {.max_running = 2});
  bool ok = false;
  asio::co_spawn(io, demo(manager), [&](std::exception_ptr error) {
    if (error)
      std::rethrow_exception(error);
    ok = true;
  });
  io.run();
  return ok ? 0 : 1;
}
