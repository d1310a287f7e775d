// (2) start_idle: start 100 K idle tasks, each waiting on a 24 h steady_timer created on its
// own executor (see workloads.hpp).
//
// Same shape as lifecycle: one handler posted to a fresh io_context submits all n tasks up
// front (vigil: `sup.add()`; raw Asio: `co_spawn`). The clock starts before the first
// submission and stops when the n-th task has reached its wait (counted in the body right
// before `async_wait`). Stopping the tasks afterwards is not timed (that is the shutdown
// figure).
//
// Prints tasks per second; ratio = vigil throughput / asio throughput (higher is better).

#include "../figures.hpp"
#include "../workloads.hpp"

#include <vigil/supervisor.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <exception>
#include <string>
#include <vector>

namespace bench {

double vigil_start_seconds(std::size_t n) {
  asio::io_context io;
  vigil::supervisor sup{io.get_executor()};
  idle_fleet fleet{.target = n};
  steady::time_point t0;
  steady::time_point t1;
  fleet.on_all_started = [&] {
    t1 = steady::now();
    sup.shutdown();
  };
  auto submit = [&] {
    t0 = steady::now();
    add_idle_tasks(sup, fleet, n, cancel_style::error_codes);
  };
  asio::post(io, submit);
  io.run();
  expect(fleet.started == n, "start_idle: {} of {} vigil tasks started", fleet.started, n);
  return seconds_between(t0, t1);
}

double asio_start_seconds(std::size_t n) {
  asio::io_context io;
  idle_fleet fleet{.target = n, .keep_timers = true};
  fleet.timers.reserve(n);
  steady::time_point t0;
  steady::time_point t1;
  std::size_t ended = 0;
  fleet.on_all_started = [&] {
    t1 = steady::now();
    asio::post(io, [&] { fleet.cancel_all(); });  // once the last one waits too
  };
  auto submit = [&] {
    t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      asio::co_spawn(io, asio_idle(&fleet, cancel_style::error_codes),
                     [&](const std::exception_ptr&) { ++ended; });
  };
  asio::post(io, submit);
  io.run();
  expect(fleet.started == n && ended == n, "start_idle: {} of {} asio coroutines started",
         fleet.started, n);
  return seconds_between(t0, t1);
}

void start_idle(const options& opt) {
  const std::size_t n = opt.size(100'000);
  const medians m = measure(
      count_label(n) + " idle tasks", "tasks/s", repetitions, opt.warm_up(),
      [n] { return static_cast<double>(n) / vigil_start_seconds(n); },
      [n] { return static_cast<double>(n) / asio_start_seconds(n); });
  print_summary("start_idle", m.vigil, m.asio, "tasks/s", throughput_ratio(m.vigil, m.asio));
}

}  // namespace bench
