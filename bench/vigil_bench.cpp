// vigil_bench: the benchmark suite of issue 4. Every figure measures vigil and the raw-Asio
// baseline for the same work in the same run, on one io_context thread, and prints its
// repetitions (lines starting with two spaces) then one summary line
//   <figure>: vigil X <unit>, asio Y <unit>, ratio R
// with medians of at least 3 repetitions and R oriented so that higher is better for vigil.
// Each figure but memory and the restart storms first runs one untimed warm-up round, and the
// process keeps the memory it frees (bench::keep_heap_warm), so vigil and raw Asio both run on
// a warm heap whatever order they run in.
//
//   vigil_bench [--quick] all | <figure>...
//
// --quick shrinks sizes and durations ~100x: a smoke test (ctest bench.vigil_bench), not figures.
// Figures: see `figure_table` below and bench/figures/<figure>.cpp. Take figures from a release
// build (scripts/bench).

#include "figures.hpp"

#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct figure {
  std::string_view name;
  void (*run)(const bench::options&);
  std::string_view what;
};

constexpr figure figure_table[] = {
    {"lifecycle", bench::lifecycle, "add -> run -> done of 1M trivial tasks"},
    {"lifecycle_floor", bench::lifecycle_floor, "lifecycle through a bare strand-per-task shape"},
    {"start_idle", bench::start_idle, "start 100K idle tasks (24 h timer each)"},
    {"start_idle_floor", bench::start_idle_floor, "start_idle through the same bare shape"},
    {"memory", bench::memory, "bytes per idle task (peak RSS, fresh processes)"},
    {"shutdown", bench::shutdown, "stop 100K idle tasks (exceptions, then error codes)"},
    {"shutdown_floor", bench::shutdown_floor, "shutdown_error_codes through the same bare shape"},
    {"restart_throw", bench::restart_throw, "100 throwing tasks restarted at once, 10 s"},
    {"restart_error", bench::restart_error, "100 tasks failing without throwing, 10 s"},
    {"fanout", bench::fanout, "1M events to 8 subscribers"},
    {"scaling", bench::scaling, "lifecycle cost per task at 1K, 10K, 100K, 1M tasks"},
    {"spawn", bench::spawn, "spawn + wait of /bin/true, 500 in a row"},
};

int usage(int status) {
  fmt::print(status == 0 ? stdout : stderr,
             "usage: vigil_bench [--quick] all | <figure>...\n"
             "  --quick  sizes and durations ~100x smaller (smoke test)\n"
             "figures:\n");
  for (const figure& f : figure_table)
    fmt::print(status == 0 ? stdout : stderr, "  {:<17} {}\n", f.name, f.what);
  return status;
}

const figure* find_figure(std::string_view name) {
  for (const figure& f : figure_table)
    if (f.name == name)
      return &f;
  return nullptr;
}

void run_figure(const figure& f, const bench::options& opt) {
  fmt::print("== {}: {}{}\n", f.name, f.what, opt.quick ? " (--quick: ~1/100)" : "");
  std::fflush(stdout);
  const auto start = bench::steady::now();
  f.run(opt);
  fmt::print("  ({} took {:.1f} s)\n", f.name, bench::seconds_between(start, bench::steady::now()));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    // Hidden: `memory-child <vigil|asio> <n>`, the fresh process of the memory figure.
    if (args.size() == 3 && args[0] == "memory-child")
      return bench::memory_child(args[1], std::stoul(std::string(args[2])));

    bench::keep_heap_warm();  // not in memory-child: it measures a fresh process
    bench::options opt;
    std::vector<const figure*> selected;
    for (const std::string_view arg : args) {
      if (arg == "--quick") {
        opt.quick = true;
      } else if (arg == "--help" || arg == "-h") {
        return usage(0);
      } else if (arg == "all") {
        for (const figure& f : figure_table)
          selected.push_back(&f);
      } else if (const figure* f = find_figure(arg)) {
        selected.push_back(f);
      } else {
        fmt::print(stderr, "vigil_bench: unknown figure or option '{}'\n", arg);
        return usage(2);
      }
    }
    if (selected.empty())
      return usage(2);

#ifndef NDEBUG
    if (!opt.quick)
      fmt::print("  note: assertions are on: not a release build, these are not figures\n");
#endif
    const auto start = bench::steady::now();
    for (const figure* f : selected)
      run_figure(*f, opt);
    fmt::print("  (vigil_bench took {:.1f} s)\n",
               bench::seconds_between(start, bench::steady::now()));
    return 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "vigil_bench: {}\n", e.what());
    return 1;
  }
}
