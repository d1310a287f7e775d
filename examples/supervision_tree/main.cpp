// supervision_tree: a root supervisor with two nested ones.
//
//   root (one_for_one)
//   ├── payments (rest_for_one): db → ledger → poller     poller hangs: the stall watchdog
//   │                                                      restarts it (only it: it is last)
//   └── billing (one_for_all): invoicer, mailer           mailer crashes: both restart
//
// Notable events are printed as they reach the root (with their paths), and a table of every
// task from snapshot() once a second. After --seconds N (default 6) or on Ctrl-C the root shuts
// down; the shutdown reaches every leaf, each level within its own grace.
//
//   supervision_tree [--seconds N]

#include <vigil/vigil.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <string_view>

using namespace std::chrono_literals;

namespace {

/// Waits `d` on the attempt's executor.
asio::awaitable<void> pause(const vigil::task_context& ctx, std::chrono::milliseconds d) {
  asio::steady_timer timer(ctx.executor(), d);
  co_await timer.async_wait(asio::use_awaitable);
}

/// A dependency that connects, says it is ready, and then serves until stopped.
asio::awaitable<void> service(vigil::task_context ctx) {
  co_await pause(ctx, 50ms);  // "connecting"
  ctx.ready();
  for (;;)
    co_await pause(ctx, 1h);
}

/// Polls every 100 ms with a heartbeat; after 1.2 s it waits on a reply that never comes.
asio::awaitable<void> poller(vigil::task_context ctx) {
  ctx.ready();
  for (int poll = 0; poll < 12; ++poll) {
    co_await pause(ctx, 100ms);
    ctx.heartbeat();
  }
  co_await pause(ctx, 24h);  // hung: no more heartbeats
}

/// Sends mail for 2 s, then loses its connection.
asio::awaitable<void> mailer(vigil::task_context ctx) {
  ctx.ready();
  co_await pause(ctx, 2s);
  throw std::runtime_error("SMTP connection reset");
}

vigil::task_spec spec(std::string name, vigil::task_fn fn) {
  vigil::task_spec s;
  s.name = std::move(name);
  s.fn = std::move(fn);
  s.backoff = vigil::backoff_policy::exponential(100ms, 2s, 2.0);
  return s;
}

/// A task running a nested supervisor: its stop grace covers the nested shutdown grace.
vigil::task_spec nested(std::string name, vigil::supervisor& child) {
  vigil::task_spec s = spec(std::move(name), child.as_task());
  s.stop_grace = 3s;
  return s;
}

/// Prints the events worth a line: failures, stalls, readiness, shutdown.
class notable_events final : public vigil::subscriber {
 public:
  void on_event(const vigil::event& e) override {
    using K = vigil::event_kind;
    switch (e.kind) {
      case K::task_ready:
      case K::attempt_failed:
      case K::attempt_stalled:
      case K::intensity_exceeded:
      case K::shutdown_requested:
      case K::all_stopped_within_grace:
      case K::grace_exceeded:
        fmt::print("  {}\n", e);
        break;
      default:
        break;
    }
  }
  std::string name() const override { return "notable_events"; }
};

/// One row per task, the nested ones under their path.
void print_rows(std::string_view prefix, const std::vector<vigil::task_snapshot>& tasks) {
  for (const auto& t : tasks)
    fmt::print("  {:<18} {:<9} {:>7} {:>8} {:>8.1f}s  {}\n",
               prefix.empty() ? t.name : fmt::format("{}/{}", prefix, t.name), t.state, t.attempt,
               t.restarts, std::chrono::duration<double>(t.in_state).count(), t.last_failure);
}

struct tree {
  vigil::supervisor& root;
  vigil::supervisor& payments;
  vigil::supervisor& billing;
};

/// A one-second clock for the table; `stop()` ends the printing whether it waits or prints.
struct ticker {
  asio::steady_timer timer;
  bool stopped = false;
  void stop() {
    stopped = true;
    timer.cancel();
  }
};

/// Prints the table every second until the ticker stops.
asio::awaitable<void> print_tables(tree t, ticker& clock) {
  for (int second = 1; !clock.stopped; ++second) {
    clock.timer.expires_after(1s);
    try {
      co_await clock.timer.async_wait(asio::use_awaitable);
    } catch (const std::system_error&) {
      co_return;  // stopped: the tree is down
    }
    fmt::print("\n  after {} s\n  {:<18} {:<9} {:>7} {:>8} {:>9}  {}\n", second, "task", "state",
               "attempt", "restarts", "in state", "last failure");
    print_rows("", co_await t.root.snapshot());
    print_rows("payments", co_await t.payments.snapshot());
    print_rows("billing", co_await t.billing.snapshot());
    fmt::print("\n");
  }
}

std::chrono::seconds parse_seconds(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string_view(argv[i]) == "--seconds")
      return std::chrono::seconds(std::strtol(argv[i + 1], nullptr, 10));
  return 6s;
}

}  // namespace

int main(int argc, char** argv) {
  const auto run_for = parse_seconds(argc, argv);
  asio::io_context io;

  vigil::supervisor_options root_options;
  root_options.handle_signals = true;  // Ctrl-C: the whole tree shuts down gracefully
  root_options.shutdown_grace = 5s;
  root_options.intensity = vigil::restart_intensity{5, 10s};
  root_options.subscribers = {std::make_shared<notable_events>()};
  vigil::supervisor root{io.get_executor(), root_options};

  vigil::supervisor_options payments_options;
  payments_options.strategy = vigil::strategy::rest_for_one;
  payments_options.ordered_start = true;  // db, then ledger, then poller: each once ready
  payments_options.shutdown_grace = 2s;
  vigil::supervisor payments{io.get_executor(), payments_options};

  vigil::supervisor_options billing_options;
  billing_options.strategy = vigil::strategy::one_for_all;
  billing_options.shutdown_grace = 2s;
  vigil::supervisor billing{io.get_executor(), billing_options};

  // as_task() first: the nested children then wait for their parent's attempt to start them.
  root.add(nested("payments", payments));
  root.add(nested("billing", billing));

  payments.add(spec("db", service));
  payments.add(spec("ledger", service));
  vigil::task_spec poll = spec("poller", poller);
  poll.stall_timeout = 400ms;
  payments.add(std::move(poll));

  billing.add(spec("invoicer", service));
  billing.add(spec("mailer", mailer));

  asio::steady_timer deadline(io, run_for);
  deadline.async_wait([&](std::error_code ec) {
    if (!ec)
      root.shutdown();
  });
  ticker clock{asio::steady_timer(io)};
  asio::co_spawn(io, print_tables(tree{root, payments, billing}, clock), asio::detached);

  int status = 0;
  asio::co_spawn(io, root.run(),
                 [&](const std::exception_ptr& error, const vigil::shutdown_report& report) {
                   deadline.cancel();
                   clock.stop();
                   if (error) {
                     status = 1;
                     return;
                   }
                   fmt::print("\nthe tree stopped in {:.0f} ms{}\n",
                              std::chrono::duration<double, std::milli>(report.took).count(),
                              report.within_grace ? ", every level within its grace" : "");
                   if (!report.within_grace)
                     status = 2;
                 });
  io.run();
  return status;
}
