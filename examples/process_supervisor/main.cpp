// process_supervisor: two child processes supervised like coroutines. "converter" crashes now
// and then (exit code 3, or SIGSEGV) and is restarted with backoff; "indexer" hangs without a
// word and ignores SIGTERM, so its stall is detected from its silence and its process group is
// stopped with SIGTERM, then SIGKILL. Their output lines arrive as events. After --seconds N
// (default 6) or on Ctrl-C everything shuts down and no process is left behind.
//
//   process_supervisor [--seconds N]
//
// The children are this same program run with --child <kind>: no shell, no helper files.

#include <vigil/vigil.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <random>
#include <string_view>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

/// converter: converts a few "files", then crashes one way or another.
int converter() {
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  const int files = 2 + static_cast<int>(rng() % 4);
  for (int i = 1; i <= files; ++i) {
    fmt::print("converted file {}\n", i);
    std::fflush(stdout);
    std::this_thread::sleep_for(150ms);
  }
  if (rng() % 3 == 0) {
    fmt::print(stderr, "converter: bad input, crashing hard\n");
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    std::raise(SIGSEGV);
  }
  fmt::print(stderr, "converter: out of disk space\n");
  return 3;
}

/// indexer: indexes a little, then hangs for good, deaf to SIGTERM.
int indexer() {
  std::signal(SIGTERM, SIG_IGN);
  for (int i = 1; i <= 3; ++i) {
    fmt::print("indexed batch {}\n", i);
    std::fflush(stdout);
    std::this_thread::sleep_for(100ms);
  }
  for (;;)
    ::pause();  // stuck: no output, no exit
}

vigil::process_options self(std::string_view kind) {
  // Another copy of this program; argv reaches it as is.
  return vigil::process_options{.argv = {"/proc/self/exe", "--child", std::string(kind)}};
}

}  // namespace

int main(int argc, char** argv) {
  std::chrono::seconds run_for = 6s;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--child")
      return std::string_view(argv[i + 1]) == "converter" ? converter() : indexer();
    if (flag == "--seconds")
      run_for = std::chrono::seconds(std::strtol(argv[i + 1], nullptr, 10));
  }

  asio::io_context io;
  vigil::supervisor_options options;
  options.handle_signals = true;  // Ctrl-C: graceful shutdown
  options.shutdown_grace = 2s;
  options.subscribers = {std::make_shared<vigil::log_subscriber>(stdout)};
  vigil::supervisor sup{io.get_executor(), options};

  vigil::task_spec converter_spec{
      .name = "converter",
      .fn = vigil::process_task(self("converter"), {.output_events = true}),
      .restart = vigil::restart_policy::on_failure,
      .backoff = vigil::backoff_policy::exponential(200ms, 2s, 2.0),
  };
  sup.add(std::move(converter_spec));

  vigil::task_spec indexer_spec{
      .name = "indexer",
      .fn = vigil::process_task(self("indexer"), {.output_timeout = 1s, .output_events = true}),
      .restart = vigil::restart_policy::on_failure,
      .backoff = vigil::backoff_policy::constant(300ms),
  };
  indexer_spec.stop_grace = 500ms;  // SIGTERM is ignored: SIGKILL comes within 500 ms
  sup.add(std::move(indexer_spec));

  asio::steady_timer deadline(io, run_for);
  deadline.async_wait([&sup](std::error_code ec) {
    if (!ec)
      sup.shutdown();
  });
  int status = 0;
  asio::co_spawn(
      io, sup.run(), [&](const std::exception_ptr& error, const vigil::shutdown_report& report) {
        deadline.cancel();
        if (error || !report.within_grace)
          status = 1;
        fmt::print("\nshutdown {} in {} ms; every child process is gone\n",
                   report.within_grace ? "within grace" : "past grace",
                   std::chrono::duration_cast<std::chrono::milliseconds>(report.took).count());
      });
  io.run();
  return status;
}
