// (1) lifecycle: add -> run -> done of 1 M trivial tasks.
//
// Shape, identical for both: one handler posted to a fresh io_context submits all n tasks up
// front (vigil: `sup.add()` with `restart_policy::never` and a body that only `co_return`s;
// raw Asio: `co_spawn` of a coroutine that only `co_return`s), then the io_context runs them.
// The clock starts in that handler before the first submission and stops when the last task
// is done: vigil's `wait_until_empty()` completes / the n-th co_spawn completion handler runs.
// Constructing and destroying the io_context and the supervisor is not timed; making each
// task's unique name (`t<i>`, short enough for the small-string buffer) is, as part of add().
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

double vigil_lifecycle_seconds(std::size_t n) {
  asio::io_context io;
  vigil::supervisor sup{io.get_executor()};
  steady::time_point t0;
  steady::time_point t1;
  bool empty = false;
  auto submit = [&] {
    t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      sup.add({.name = fmt::format("t{}", i),
               .fn = vigil_trivial,
               .restart = vigil::restart_policy::never});
    asio::co_spawn(io, sup.wait_until_empty(), [&](const std::exception_ptr& error) {
      if (error)
        std::rethrow_exception(error);
      t1 = steady::now();
      empty = true;
      sup.shutdown();
    });
  };
  asio::post(io, submit);
  io.run();
  expect(empty && sup.list().empty(), "lifecycle: vigil did not finish its {} tasks", n);
  return seconds_between(t0, t1);
}

double asio_lifecycle_seconds(std::size_t n) {
  asio::io_context io;
  steady::time_point t0;
  steady::time_point t1;
  std::size_t done = 0;
  auto submit = [&] {
    t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      asio::co_spawn(io, asio_trivial(), [&](const std::exception_ptr& error) {
        if (error)
          std::rethrow_exception(error);
        if (++done == n)
          t1 = steady::now();
      });
  };
  asio::post(io, submit);
  io.run();
  expect(done == n, "lifecycle: asio finished {} of {} coroutines", done, n);
  return seconds_between(t0, t1);
}

void lifecycle(const options& opt) {
  const std::size_t n = opt.size(1'000'000);
  const medians m = measure(
      count_label(n) + " tasks", "tasks/s", repetitions, opt.warm_up(),
      [n] { return static_cast<double>(n) / vigil_lifecycle_seconds(n); },
      [n] { return static_cast<double>(n) / asio_lifecycle_seconds(n); });
  print_summary("lifecycle", m.vigil, m.asio, "tasks/s", throughput_ratio(m.vigil, m.asio));
}

}  // namespace bench
