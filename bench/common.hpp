#pragma once

// Shared helpers of vigil_bench: options, clocks, medians, the report lines, /proc readings.
//
// Every figure prints its repetitions on lines that start with two spaces, then exactly one
// summary line
//   <figure>: vigil X <unit>, asio Y <unit>, ratio R
// where X and Y are medians and R is oriented so that higher is better for vigil (each figure
// says whether it is vigil/asio throughput or asio/vigil cost). The floor figures
// (`lifecycle_floor`, `start_idle_floor`) compare vigil's bare shape with raw Asio: they print
// `shape` in its place.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bench {

using steady = std::chrono::steady_clock;

/// Repetitions behind every median.
inline constexpr int repetitions = 3;

struct options {
  bool quick = false;  ///< --quick: sizes and durations ~100x smaller, for the smoke test

  /// Whether measurements start with an uncounted warm-up round (not with --quick).
  bool warm_up() const { return !quick; }

  /// `n`, or `n / 100` (at least 1) with --quick.
  std::size_t size(std::size_t n) const { return quick ? std::max<std::size_t>(1, n / 100) : n; }
};

inline double seconds_between(steady::time_point from, steady::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

inline double median(std::vector<double> values) {
  if (values.empty())
    return 0.0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

/// "1000000" -> "1M", "100000" -> "100K", for labels.
inline std::string count_label(std::size_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0)
    return fmt::format("{}M", n / 1'000'000);
  if (n >= 1'000 && n % 1'000 == 0)
    return fmt::format("{}K", n / 1'000);
  return fmt::format("{}", n);
}

/// A value with enough significant digits whatever its magnitude.
inline std::string number(double v) {
  if (v >= 100.0)
    return fmt::format("{:.0f}", v);
  if (v >= 10.0)
    return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

/// One repetition: `  <label> rep <i>: vigil X <unit>, asio Y <unit>`.
inline void print_rep(std::string_view label, int rep, double vigil, double asio,
                      std::string_view unit) {
  fmt::print("  {} rep {}: vigil {} {}, asio {} {}\n", label, rep, number(vigil), unit,
             number(asio), unit);
}

/// The summary line. `ratio` is computed by the caller, oriented so that higher is better.
inline void print_summary(std::string_view figure, double vigil, double asio, std::string_view unit,
                          double ratio) {
  fmt::print("{}: vigil {} {}, asio {} {}, ratio {:.2f}\n", figure, number(vigil), unit,
             number(asio), unit, ratio);
  std::fflush(stdout);
}

/// Throughput ratio (higher is better for vigil): vigil / asio.
inline double throughput_ratio(double vigil, double asio) {
  return asio > 0 ? vigil / asio : 0.0;
}

/// Cost ratio (higher is better for vigil): asio / vigil.
inline double cost_ratio(double vigil, double asio) {
  return vigil > 0 ? asio / vigil : 0.0;
}

/// One side of a measurement: its name and a function that makes one measurement.
struct side {
  std::string_view name;
  std::function<double()> measure;
};

/// Runs the sides in turn, `reps` rounds, prints every round as
/// `  <label> rep <i>: <name> X <unit>, ...` and returns each side's median, in the sides'
/// order. Interleaved, so that a slower stretch of the machine hits every side alike. With
/// `warm_up`, one more round runs first and is printed but not counted: it grows the heap to
/// the size the work needs (see `keep_heap_warm`), so that no side pays first-touch page
/// faults the others do not.
inline std::vector<double> measure_sides(std::string_view label, std::string_view unit, int reps,
                                         bool warm_up, const std::vector<side>& sides) {
  auto round = [&] {
    std::vector<double> values;
    for (const side& s : sides)
      values.push_back(s.measure());
    return values;
  };
  auto line = [&](const std::vector<double>& values) {
    std::string text;
    for (std::size_t i = 0; i < sides.size(); ++i)
      text += fmt::format("{}{} {} {}", i == 0 ? "" : ", ", sides[i].name, number(values[i]), unit);
    return text;
  };
  if (warm_up)
    fmt::print("  {} warm-up: {} (not counted)\n", label, line(round()));
  std::vector<std::vector<double>> values(sides.size());
  for (int rep = 1; rep <= reps; ++rep) {
    const std::vector<double> measured = round();
    fmt::print("  {} rep {}: {}\n", label, rep, line(measured));
    for (std::size_t i = 0; i < sides.size(); ++i)
      values[i].push_back(measured[i]);
  }
  std::vector<double> medians;
  for (auto& side_values : values)
    medians.push_back(median(std::move(side_values)));
  return medians;
}

/// The medians of one measurement.
struct medians {
  double vigil = 0;
  double asio = 0;
};

/// `measure_sides` for the usual two sides, vigil first.
inline medians measure(std::string_view label, std::string_view unit, int reps, bool warm_up,
                       std::function<double()> vigil_rep, std::function<double()> asio_rep) {
  const auto m = measure_sides(label, unit, reps, warm_up,
                               {{"vigil", std::move(vigil_rep)}, {"asio", std::move(asio_rep)}});
  return {m[0], m[1]};
}

/// Makes glibc keep the memory the process frees (no trimming of the heap's top, no mmap below
/// 32 MiB), so a repetition reuses the pages of the one before instead of faulting them in
/// again. Without it, whether a run starts on a warm heap depends on what the previous run
/// left at the heap's top, and first-touch page faults can make up half of raw Asio's cost.
/// The figures measure a warm process; the memory figure measures footprint in fresh ones.
void keep_heap_warm();

/// A field of /proc/self/status in bytes (`VmHWM`: peak RSS, `VmRSS`: current RSS); 0 where
/// there is no such file or field.
inline std::uint64_t proc_status_bytes(std::string_view field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    // "VmHWM:\t  123456 kB"
    if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
        line[field.size()] == ':')
      return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

/// Throws std::runtime_error with a formatted message unless `ok`: a benchmark that did not do
/// its work must fail, not print a figure.
template <typename... Args>
void expect(bool ok, fmt::format_string<Args...> format, Args&&... args) {
  if (!ok)
    throw std::runtime_error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace bench
