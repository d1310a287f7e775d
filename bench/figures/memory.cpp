// (3) memory: bytes per idle task, the user's coroutine frame and its timer included.
//
// Each measurement runs in a fresh process: this program re-executes itself (the path behind
// /proc/self/exe) with the hidden subcommand `memory-child <vigil|asio> <n>`. The child builds
// its io_context (and supervisor), reads its RSS (VmRSS), starts n idle tasks as start_idle
// does, and once the n-th waits reads its peak RSS (VmHWM): (peak - before) / n. Three
// processes each for vigil and raw Asio, alternating; the figure is the median.
//
// The raw-Asio child also keeps a pointer to each timer (8 bytes a task) so it can stop them.
//
// Prints bytes per task; ratio = asio bytes / vigil bytes (a cost ratio: higher is better).

#include "../figures.hpp"
#include "../workloads.hpp"

#include <vigil/supervisor.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

namespace bench {

namespace {

constexpr std::string_view result_prefix = "bytes_per_task ";

double bytes_per_task(std::uint64_t before, std::uint64_t peak, std::size_t n) {
  return peak > before ? static_cast<double>(peak - before) / static_cast<double>(n) : 0.0;
}

double vigil_bytes(std::size_t n) {
  asio::io_context io;
  vigil::supervisor sup{io.get_executor()};
  idle_fleet fleet{.target = n};
  const std::uint64_t before = proc_status_bytes("VmRSS");
  std::uint64_t peak = 0;
  fleet.on_all_started = [&] {
    peak = proc_status_bytes("VmHWM");
    sup.shutdown();
  };
  auto submit = [&] { add_idle_tasks(sup, fleet, n, cancel_style::error_codes); };
  asio::post(io, submit);
  io.run();
  expect(fleet.started == n, "memory: {} of {} vigil tasks started", fleet.started, n);
  return bytes_per_task(before, peak, n);
}

double asio_bytes(std::size_t n) {
  asio::io_context io;
  idle_fleet fleet{.target = n, .keep_timers = true};
  fleet.timers.reserve(n);
  const std::uint64_t before = proc_status_bytes("VmRSS");
  std::uint64_t peak = 0;
  std::size_t ended = 0;
  fleet.on_all_started = [&] {
    peak = proc_status_bytes("VmHWM");
    asio::post(io, [&] { fleet.cancel_all(); });
  };
  auto submit = [&] {
    for (std::size_t i = 0; i < n; ++i)
      asio::co_spawn(io, asio_idle(&fleet, cancel_style::error_codes),
                     [&](const std::exception_ptr&) { ++ended; });
  };
  asio::post(io, submit);
  io.run();
  expect(fleet.started == n && ended == n, "memory: {} of {} asio coroutines started",
         fleet.started, n);
  return bytes_per_task(before, peak, n);
}

/// Runs `memory-child <which> <n>` in a fresh process and returns what it measured.
double measure_in_child(const std::string& self, std::string_view which, std::size_t n) {
  const std::string command = fmt::format("'{}' memory-child {} {}", self, which, n);
  std::FILE* child = ::popen(command.c_str(), "r");
  expect(child != nullptr, "memory: cannot run {}", command);
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, child) != nullptr)
    output += buffer;
  const int status = ::pclose(child);
  const std::size_t at = output.find(result_prefix);
  expect(status == 0 && at != std::string::npos, "memory: `{}` failed (status {}): {}", command,
         status, output);
  return std::strtod(output.c_str() + at + result_prefix.size(), nullptr);
}

}  // namespace

int memory_child(std::string_view which, std::size_t n) {
  double bytes = 0;
  if (which == "vigil")
    bytes = vigil_bytes(n);
  else if (which == "asio")
    bytes = asio_bytes(n);
  else
    return 2;
  fmt::print("{}{:.1f}\n", result_prefix, bytes);
  return 0;
}

void memory(const options& opt) {
  const std::size_t n = opt.size(100'000);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  constexpr bool warm_up = false;  // each measurement is a fresh process
  const medians m = measure(
      count_label(n) + " idle tasks", "bytes/task", repetitions, warm_up,
      [&] { return measure_in_child(self, "vigil", n); },
      [&] { return measure_in_child(self, "asio", n); });
  print_summary("memory", m.vigil, m.asio, "bytes/task", cost_ratio(m.vigil, m.asio));
}

}  // namespace bench
