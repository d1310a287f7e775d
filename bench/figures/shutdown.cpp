// (4) shutdown: stop 100 K idle tasks and wait until every one has ended.
//
// Both start n idle tasks (see start_idle.cpp), and once the n-th waits, a posted handler
// starts the clock and stops them all:
// - vigil: `sup.shutdown()`, until `shutdown_handle::wait()` completes (every task ended and the
//   shutdown is over);
// - raw Asio: each coroutine was co_spawned bound (`asio::bind_cancellation_slot`) to a
//   cancellation_signal of its own; emit terminal cancellation on each, until the n-th
//   co_spawn completion handler has run.
// The same cancellation style on both sides, two summary lines:
//   shutdown:              the tasks wait with `asio::use_awaitable`: cancellation throws
//   shutdown_error_codes:  they wait with `asio::experimental::as_tuple(asio::use_awaitable)`,
//                          so cancellation is an error code, no exception
//
// Prints milliseconds; ratio = asio ms / vigil ms (a cost ratio: higher is better for vigil).

#include "../figures.hpp"
#include "../workloads.hpp"

#include <vigil/supervisor.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bench {

double vigil_shutdown_ms(std::size_t n, cancel_style style) {
  asio::io_context io;
  vigil::supervisor sup{io.get_executor()};
  idle_fleet fleet{.target = n};
  steady::time_point t0;
  steady::time_point t1;
  std::optional<vigil::shutdown_handle> handle;  // outlives the wait() coroutine
  std::optional<vigil::shutdown_report> report;
  auto stop_all = [&] {
    t0 = steady::now();
    handle = sup.shutdown();
    asio::co_spawn(io, handle->wait(),
                   [&](const std::exception_ptr& error, vigil::shutdown_report r) {
                     if (error)
                       std::rethrow_exception(error);
                     t1 = steady::now();
                     report = std::move(r);
                   });
  };
  fleet.on_all_started = [&] { asio::post(io, stop_all); };  // once the n-th waits too
  auto submit = [&] { add_idle_tasks(sup, fleet, n, style); };
  asio::post(io, submit);
  io.run();
  expect(fleet.started == n && report && report->within_grace,
         "shutdown: vigil started {} of {} tasks and did not stop them all in time", fleet.started,
         n);
  return seconds_between(t0, t1) * 1e3;
}

double asio_shutdown_ms(std::size_t n, cancel_style style) {
  asio::io_context io;
  idle_fleet fleet{.target = n};
  const auto signals = std::make_unique<asio::cancellation_signal[]>(n);
  steady::time_point t0;
  steady::time_point t1;
  std::size_t ended = 0;
  std::size_t threw = 0;
  auto stop_all = [&] {
    t0 = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      signals[i].emit(asio::cancellation_type::terminal);
  };
  fleet.on_all_started = [&] { asio::post(io, stop_all); };
  auto on_end = [&](const std::exception_ptr& error) {
    threw += error ? 1 : 0;
    if (++ended == n)
      t1 = steady::now();
  };
  auto submit = [&] {
    for (std::size_t i = 0; i < n; ++i)
      asio::co_spawn(io, asio_idle(&fleet, style),
                     asio::bind_cancellation_slot(signals[i].slot(), on_end));
  };
  asio::post(io, submit);
  io.run();
  const std::size_t expected_throws = style == cancel_style::exceptions ? n : 0;
  expect(fleet.started == n && ended == n && threw == expected_throws,
         "shutdown: asio started {}, ended {} ({} threw) of {} coroutines", fleet.started, ended,
         threw, n);
  return seconds_between(t0, t1) * 1e3;
}

namespace {

void one_style(const options& opt, std::string_view figure, std::size_t n, cancel_style style) {
  const medians m = measure(
      fmt::format("{} stop {}", figure, count_label(n)), "ms", repetitions, opt.warm_up(),
      [=] { return vigil_shutdown_ms(n, style); }, [=] { return asio_shutdown_ms(n, style); });
  print_summary(figure, m.vigil, m.asio, "ms", cost_ratio(m.vigil, m.asio));
}

}  // namespace

void shutdown(const options& opt) {
  const std::size_t n = opt.size(100'000);
  one_style(opt, "shutdown", n, cancel_style::exceptions);
  one_style(opt, "shutdown_error_codes", n, cancel_style::error_codes);
}

}  // namespace bench
