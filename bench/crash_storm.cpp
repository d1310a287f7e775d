// crash_storm: 100 tasks that throw as soon as they start, restarted at once (zero backoff)
// under a restart intensity generous enough never to trip, for N seconds (default 20) on one
// io_context thread. The raw-Asio baseline does the same work in the same process: 100
// coroutines, each re-spawned from the completion handler of the one that threw.
//
// Prints the restarts of every second for both, then
//   crash_storm: vigil X restarts/s, asio Y restarts/s, ratio R      (medians of the seconds)
//   crash_storm flatness: vigil last/first second F, asio G
// A restart path whose cost grew with the restarts behind it (OTP keeps a list of restart
// times) would show as a falling vigil column and a flatness well below 1.
//
//   crash_storm [--seconds N]

#include <vigil/vigil.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr int tasks = 100;

/// Attempts per whole second since `start`. One io_context thread: plain counters.
struct per_second {
  explicit per_second(int seconds) : counts(static_cast<std::size_t>(seconds), 0) {}

  void tick() {
    const auto second = static_cast<std::size_t>((steady::now() - start) / 1s);
    if (second < counts.size())
      ++counts[second];
  }

  double median() const {
    std::vector<std::uint64_t> sorted = counts;
    std::sort(sorted.begin(), sorted.end());
    const std::size_t n = sorted.size();
    return n % 2 == 1 ? static_cast<double>(sorted[n / 2])
                      : (static_cast<double>(sorted[n / 2 - 1]) + sorted[n / 2]) / 2.0;
  }

  steady::time_point start = steady::now();
  std::vector<std::uint64_t> counts;
};

asio::awaitable<void> crash(per_second& rate) {
  rate.tick();
  throw std::runtime_error("crash");
  co_return;
}

// ---- raw Asio: the completion handler of a crashed coroutine spawns the next one ----------

struct raw_storm {
  asio::io_context& io;
  per_second& rate;
  bool stopping = false;

  void spawn() {
    asio::co_spawn(io, crash(rate), [this](const std::exception_ptr& error) {
      if (error && !stopping)
        spawn();
    });
  }
};

void run_raw(per_second& rate, std::chrono::seconds duration) {
  asio::io_context io;
  raw_storm storm{io, rate};
  asio::steady_timer stop(io, duration);
  stop.async_wait([&](std::error_code) { storm.stopping = true; });
  rate.start = steady::now();
  for (int i = 0; i < tasks; ++i)
    storm.spawn();
  io.run();
}

// ---- vigil: 100 supervised tasks, restart on failure with zero backoff ------------------------

void run_vigil(per_second& rate, std::chrono::seconds duration) {
  asio::io_context io;
  vigil::supervisor_options options;
  options.intensity = vigil::restart_intensity{1'000'000, 100ms};  // 10 M/s: never reached
  vigil::supervisor sup{io.get_executor(), options};
  asio::steady_timer stop(io, duration);
  stop.async_wait([&](std::error_code) { sup.shutdown(); });
  rate.start = steady::now();
  for (int i = 0; i < tasks; ++i) {
    vigil::task_spec spec;
    spec.name = fmt::format("crashy{}", i);
    spec.fn = [&rate](vigil::task_context) { return crash(rate); };
    spec.backoff = vigil::backoff_policy::constant(0ms);
    sup.add(std::move(spec));
  }
  io.run();
}

int parse_seconds(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string_view(argv[i]) == "--seconds")
      return std::max(1, std::atoi(argv[i + 1]));
  return 20;
}

double flatness(const per_second& rate) {
  return rate.counts.front() == 0
             ? 0.0
             : static_cast<double>(rate.counts.back()) / static_cast<double>(rate.counts.front());
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = parse_seconds(argc, argv);
  per_second vigil_rate(seconds);
  per_second asio_rate(seconds);
  run_raw(asio_rate, std::chrono::seconds(seconds));
  run_vigil(vigil_rate, std::chrono::seconds(seconds));

  fmt::print("{:>6} {:>12} {:>12}\n", "second", "vigil", "asio");
  for (int s = 0; s < seconds; ++s)
    fmt::print("{:>6} {:>12} {:>12}\n", s + 1, vigil_rate.counts[static_cast<std::size_t>(s)],
               asio_rate.counts[static_cast<std::size_t>(s)]);
  const double v = vigil_rate.median();
  const double a = asio_rate.median();
  fmt::print("crash_storm: vigil {:.0f} restarts/s, asio {:.0f} restarts/s, ratio {:.2f}\n", v, a,
             a > 0 ? v / a : 0.0);
  fmt::print("crash_storm flatness: vigil last/first second {:.2f}, asio {:.2f}\n",
             flatness(vigil_rate), flatness(asio_rate));
}
