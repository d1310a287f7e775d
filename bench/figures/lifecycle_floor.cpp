// (1b) lifecycle_floor: what the lifecycle figure's target allows, measured.
//
// vigil gives every task its own strand (an attempt's cancellation is emitted there, so it
// never races the attempt's operations on a multi-threaded io_context), catches a failure
// where it is thrown, and reports the end to the supervisor's strand. This figure builds
// just that shape in raw Asio, with nothing else (no registry, no events, no policy), and
// runs `lifecycle`'s work through it:
// - shape: per task, a shared record holding the task's name (formatted as `lifecycle` names
//   them), a new strand and a cancellation_signal; `co_spawn` onto the strand of a frame that
//   awaits the trivial body inside try/catch, bound to the signal's slot; the completion
//   dispatches to one common strand, which counts the task and releases its record;
// - raw Asio: `lifecycle`'s baseline (a bare `co_spawn` per task);
// - vigil: `lifecycle`'s vigil side, for the distance between vigil and its shape;
// - the shape without its strand (the attempt runs on the io_context's executor): what the
//   strand per task costs.
// No supervisor built on a strand per task can do the lifecycle faster than `shape`: its ratio
// is the ceiling of `lifecycle`'s ratio.

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

double shape_lifecycle_seconds(std::size_t n, bool own_strand = true) {
  asio::io_context io;
  const auto common = asio::make_strand(io.get_executor());
  steady::time_point t0;
  steady::time_point t1;
  std::size_t done = 0;
  auto submit = [&] {
    t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i) {
      auto record = std::make_shared<shape_record>();
      record->name = fmt::format("t{}", i);
      if (own_strand)
        record->strand = asio::make_strand(io.get_executor());
      else
        record->strand = io.get_executor();
      auto slot = record->signal.slot();
      auto end = [&, record](const std::exception_ptr&) mutable {
        asio::dispatch(common, [&, record = std::move(record)] {
          if (++done == n)
            t1 = steady::now();
        });
      };
      asio::co_spawn(record->strand, caught(asio_trivial(), record.get()),
                     asio::bind_cancellation_slot(slot, std::move(end)));
    }
  };
  asio::post(common, submit);
  io.run();
  expect(done == n, "lifecycle_floor: the shape finished {} of {} tasks", done, n);
  return seconds_between(t0, t1);
}

}  // namespace

void lifecycle_floor(const options& opt) {
  const std::size_t n = opt.size(1'000'000);
  const std::string label = count_label(n) + " tasks";
  // vigil runs too, interleaved: how fast raw Asio's frames allocate depends on the heap the
  // run before left, so the sides share one sequence of heap states.
  auto rate = [n](double seconds) { return static_cast<double>(n) / seconds; };
  if (opt.warm_up()) {
    shape_lifecycle_seconds(n);
    vigil_lifecycle_seconds(n);
    asio_lifecycle_seconds(n);
  }
  std::vector<double> vigil;
  std::vector<double> shape;
  std::vector<double> raw;
  std::vector<double> no_strand;
  for (int rep = 1; rep <= repetitions; ++rep) {
    shape.push_back(rate(shape_lifecycle_seconds(n)));
    vigil.push_back(rate(vigil_lifecycle_seconds(n)));
    raw.push_back(rate(asio_lifecycle_seconds(n)));
    no_strand.push_back(rate(shape_lifecycle_seconds(n, false)));
    fmt::print(
        "  {} rep {}: vigil {} tasks/s, shape {} tasks/s, asio {} tasks/s, shape without "
        "its strand {} tasks/s\n",
        label, rep, number(vigil.back()), number(shape.back()), number(raw.back()),
        number(no_strand.back()));
  }
  const double v = median(vigil);
  const double s = median(shape);
  const double a = median(raw);
  const double w = median(no_strand);
  fmt::print(
      "lifecycle_floor: shape {} tasks/s, asio {} tasks/s, ratio {:.2f} (vigil {} tasks/s, "
      "{:.2f} of the shape; the shape without its strand {} tasks/s, {:.2f} of asio)\n",
      number(s), number(a), throughput_ratio(s, a), number(v), throughput_ratio(v, s), number(w),
      throughput_ratio(w, a));
  std::fflush(stdout);
}

}  // namespace bench
