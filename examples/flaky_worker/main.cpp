// flaky_worker: a worker that fails at random, restarted by a supervisor with jittered
// exponential backoff. Every lifecycle event is printed as it happens; after --seconds N
// (default 5) or on Ctrl-C the supervisor shuts down gracefully and a summary is printed.
//
//   flaky_worker [--seconds N] [--seed S]

#include <vigil/vigil.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string_view>

using namespace std::chrono_literals;

namespace {

/// Processes "jobs" of 20-80 ms; each fails with a 25 % chance, which ends the attempt.
asio::awaitable<void> flaky_work(vigil::task_context ctx, std::uint64_t seed) {
  std::mt19937_64 rng(seed + ctx.attempt());
  asio::steady_timer timer(ctx.executor());
  for (int job = 1;; ++job) {
    timer.expires_after(std::chrono::milliseconds(20 + rng() % 60));
    co_await timer.async_wait(asio::use_awaitable);
    if (rng() % 4 == 0)
      throw std::runtime_error(fmt::format("job {} failed", job));
    if (job == 1)
      ctx.ready();  // up once the first job went through
  }
}

/// Counts events per kind for the summary. Called on its own strand, read after io.run().
class tally final : public vigil::subscriber {
 public:
  void on_event(const vigil::event& e) override { ++counts_[static_cast<std::size_t>(e.kind)]; }
  std::string name() const override { return "tally"; }
  std::size_t operator[](vigil::event_kind kind) const {
    return counts_[static_cast<std::size_t>(kind)];
  }

 private:
  std::array<std::size_t, 64> counts_{};  // more than there are event kinds
};

struct arguments {
  std::chrono::seconds run_for = 5s;
  std::uint64_t seed = std::random_device{}();
};

arguments parse(int argc, char** argv) {
  arguments args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--seconds")
      args.run_for = std::chrono::seconds(std::strtol(argv[i + 1], nullptr, 10));
    else if (flag == "--seed")
      args.seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  const arguments args = parse(argc, argv);
  asio::io_context io;

  auto counts = std::make_shared<tally>();
  vigil::supervisor_options options;
  options.handle_signals = true;  // Ctrl-C: graceful shutdown
  options.shutdown_grace = 2s;
  options.seed = args.seed;
  options.subscribers = {std::make_shared<vigil::log_subscriber>(stdout), counts};
  vigil::supervisor sup{io.get_executor(), options};

  vigil::task_spec spec;
  spec.name = "flaky_worker";
  spec.fn = [seed = args.seed](vigil::task_context ctx) {
    return flaky_work(std::move(ctx), seed);
  };
  spec.backoff = vigil::backoff_policy::exponential(50ms, 1s, 2.0);
  spec.backoff.jitter = vigil::jitter::full;
  spec.backoff.reset_after = 300ms;  // a worker that ran 300 ms is healthy again
  vigil::task_handle worker = sup.add(std::move(spec));

  asio::steady_timer deadline(io, args.run_for);
  deadline.async_wait([&sup](std::error_code ec) {
    if (!ec)
      sup.shutdown();
  });

  int status = 0;
  asio::co_spawn(io, sup.run(),
                 [&](const std::exception_ptr& error, const vigil::shutdown_report& report) {
                   deadline.cancel();
                   if (error) {
                     status = 1;
                     return;
                   }
                   if (!report.within_grace)
                     status = 2;
                 });
  io.run();  // until the shutdown is over and the event subscribers have drained

  using K = vigil::event_kind;
  const auto outcome = worker.try_outcome();
  fmt::print(
      "\nsummary (seed {}): {} attempts, {} failures, {} restarts, {} times ready; "
      "worker {}\n",
      args.seed, (*counts)[K::attempt_starting], (*counts)[K::attempt_failed],
      (*counts)[K::backoff_scheduled], (*counts)[K::task_ready],
      outcome ? to_string(outcome->kind) : "still running");
  return status;
}
