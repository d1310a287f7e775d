// (1b) lifecycle_floor, (2b) start_idle_floor and (4b) shutdown_floor: what the ratio targets
// allow, measured.
//
// vigil gives every task its own strand (an attempt's cancellation is emitted there, so it
// never races the attempt's operations on a multi-threaded io_context), catches a failure
// where it is thrown, and reports the end to the supervisor's strand. These figures build
// just that shape in raw Asio, with nothing else (no registry, no events, no policy), and run
// `lifecycle`'s, `start_idle`'s and `shutdown_error_codes`'s work through it. Per task, the shape
// makes a shared record holding the task's name (formatted as vigil's figures name them), a new
// strand and a cancellation_signal, and `co_spawn`s onto the strand a frame that awaits the body
// inside try/catch, bound to the signal's slot; the completion dispatches to one common strand,
// which releases the record. The shape stops its idle tasks as vigil's shutdown does: the common
// strand posts a terminal cancellation to every task's strand.
//
// Each figure runs, interleaved: the shape, vigil (the figure's vigil side), raw Asio (its
// baseline) and, for the lifecycle, the shape without its strand (attempts on the io_context's
// executor): what the strand per task costs. Interleaved because how fast raw Asio allocates
// its frames depends on the heap the run before it left; raw Asio runs right after vigil, as
// in `lifecycle` and `start_idle`.
//
// No supervisor built on a strand per task does the work faster than the shape: its ratio is
// the ceiling of the figure's ratio.

#include "../figures.hpp"
#include "../workloads.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace bench {

namespace {

/// The strand the ends are reported to, standing for the supervisor's.
using common_strand = asio::strand<asio::io_context::executor_type>;

struct shape_record {
  std::string name;
  asio::any_io_executor strand;
  asio::cancellation_signal signal;
  std::exception_ptr error;
};

asio::awaitable<void> caught(asio::awaitable<void> body, shape_record* record) {
  try {
    co_await std::move(body);
  } catch (...) {
    record->error = std::current_exception();
  }
}

/// Starts `body` the way vigil starts an attempt, reduced to its shape; `ended` runs on
/// `common` once the body is over.
template <class Body, class Ended>
std::shared_ptr<shape_record> spawn_shaped(asio::io_context& io, const common_strand& common,
                                           std::string name, bool own_strand, Body body,
                                           Ended ended) {
  auto record = std::make_shared<shape_record>();
  record->name = std::move(name);
  if (own_strand)
    record->strand = asio::make_strand(io.get_executor());
  else
    record->strand = io.get_executor();
  auto slot = record->signal.slot();
  auto end = [common = &common, record, ended](const std::exception_ptr&) mutable {
    asio::dispatch(*common, [record = std::move(record), ended]() mutable { ended(); });
  };
  asio::co_spawn(record->strand, caught(std::move(body), record.get()),
                 asio::bind_cancellation_slot(slot, std::move(end)));
  return record;
}

double shape_lifecycle_seconds(std::size_t n, bool own_strand) {
  asio::io_context io;
  const common_strand common = asio::make_strand(io.get_executor());
  steady::time_point t0;
  steady::time_point t1;
  std::size_t done = 0;
  auto ended = [&] {
    if (++done == n)
      t1 = steady::now();
  };
  auto submit = [&] {
    t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      spawn_shaped(io, common, fmt::format("t{}", i), own_strand, asio_trivial(), ended);
  };
  asio::post(common, submit);
  io.run();
  expect(done == n, "lifecycle_floor: the shape finished {} of {} tasks", done, n);
  return seconds_between(t0, t1);
}

/// What the shape's idle fleet took: to start (submission to the last one waiting) and to
/// stop (the stop request to the last end reported).
struct idle_timings {
  double start_seconds = 0;
  double stop_ms = 0;
};

/// Starts `n` idle tasks (error-code waits) through the shape, then stops them as vigil's
/// shutdown does: the common strand posts a terminal cancellation to every task's strand.
idle_timings shape_idle(std::size_t n) {
  asio::io_context io;
  const common_strand common = asio::make_strand(io.get_executor());
  idle_fleet fleet{.target = n};
  std::vector<std::shared_ptr<shape_record>> records;
  records.reserve(n);
  steady::time_point submitted;
  steady::time_point all_waiting;
  steady::time_point stop_requested;
  steady::time_point all_ended;
  std::size_t ended = 0;
  auto stop_all = [&] {
    stop_requested = steady::now();
    for (const auto& record : records)
      asio::post(record->strand,
                 [record] { record->signal.emit(asio::cancellation_type::terminal); });
  };
  fleet.on_all_started = [&] {
    all_waiting = steady::now();
    asio::post(common, stop_all);  // once the last one waits too
  };
  auto on_end = [&] {
    if (++ended == n)
      all_ended = steady::now();
  };
  auto submit = [&] {
    submitted = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      records.push_back(spawn_shaped(io, common, fmt::format("idle{}", i), true,
                                     asio_idle(&fleet, cancel_style::error_codes), on_end));
  };
  asio::post(common, submit);
  io.run();
  expect(fleet.started == n && ended == n, "the shape started {} and ended {} of {} idle tasks",
         fleet.started, ended, n);
  return {seconds_between(submitted, all_waiting),
          seconds_between(stop_requested, all_ended) * 1e3};
}

}  // namespace

void lifecycle_floor(const options& opt) {
  const std::size_t n = opt.size(1'000'000);
  auto rate = [n](double seconds) { return static_cast<double>(n) / seconds; };
  const auto m = measure_sides(
      count_label(n) + " tasks", "tasks/s", repetitions, opt.warm_up(),
      {
          {"shape", [&] { return rate(shape_lifecycle_seconds(n, true)); }},
          {"vigil", [&] { return rate(vigil_lifecycle_seconds(n)); }},
          {"asio", [&] { return rate(asio_lifecycle_seconds(n)); }},
          {"shape without its strand", [&] { return rate(shape_lifecycle_seconds(n, false)); }},
      });
  fmt::print(
      "lifecycle_floor: shape {} tasks/s, asio {} tasks/s, ratio {:.2f} (vigil {} tasks/s, "
      "{:.2f} of the shape; the shape without its strand {} tasks/s, {:.2f} of asio)\n",
      number(m[0]), number(m[2]), throughput_ratio(m[0], m[2]), number(m[1]),
      throughput_ratio(m[1], m[0]), number(m[3]), throughput_ratio(m[3], m[2]));
  std::fflush(stdout);
}

void start_idle_floor(const options& opt) {
  const std::size_t n = opt.size(100'000);
  auto rate = [n](double seconds) { return static_cast<double>(n) / seconds; };
  const auto m =
      measure_sides(count_label(n) + " idle tasks", "tasks/s", repetitions, opt.warm_up(),
                    {
                        {"shape", [&] { return rate(shape_idle(n).start_seconds); }},
                        {"vigil", [&] { return rate(vigil_start_seconds(n)); }},
                        {"asio", [&] { return rate(asio_start_seconds(n)); }},
                    });
  fmt::print(
      "start_idle_floor: shape {} tasks/s, asio {} tasks/s, ratio {:.2f} (vigil {} "
      "tasks/s, {:.2f} of the shape)\n",
      number(m[0]), number(m[2]), throughput_ratio(m[0], m[2]), number(m[1]),
      throughput_ratio(m[1], m[0]));
  std::fflush(stdout);
}

void shutdown_floor(const options& opt) {
  const std::size_t n = opt.size(100'000);
  const auto m = measure_sides(
      fmt::format("shutdown_error_codes stop {}", count_label(n)), "ms", repetitions, opt.warm_up(),
      {
          {"shape", [&] { return shape_idle(n).stop_ms; }},
          {"vigil", [&] { return vigil_shutdown_ms(n, cancel_style::error_codes); }},
          {"asio", [&] { return asio_shutdown_ms(n, cancel_style::error_codes); }},
      });
  fmt::print(
      "shutdown_floor: shape {} ms, asio {} ms, ratio {:.2f} (vigil {} ms, {:.2f} of the "
      "shape)\n",
      number(m[0]), number(m[2]), cost_ratio(m[0], m[2]), number(m[1]), cost_ratio(m[1], m[0]));
  std::fflush(stdout);
}

}  // namespace bench
