#include <vigil/message_bus_worker.hpp>

#include <vigil/detail/oneshot.hpp>
#include <vigil/event.hpp>

#include "text.hpp"

#include <asio/co_spawn.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <string>
#include <utility>

namespace vigil {
namespace {

void report(const task_context& ctx, event_kind kind, const std::string& bus,
            std::string reason = {}) {
  event e;
  e.kind = kind;
  e.task = bus;
  e.reason = std::move(reason);
  detail::report(ctx, std::move(e));
}

/// Awaits a bus's `stop()`; what it threw, if it threw.
asio::awaitable<std::exception_ptr> failure_of(asio::awaitable<void> stopping) {
  std::exception_ptr failure;
  try {
    co_await std::move(stopping);
  } catch (...) {
    failure = std::current_exception();
  }
  co_return failure;
}

/// Which run ended first, and how.
struct first_end {
  std::size_t index = 0;
  std::exception_ptr crash;
};

}  // namespace

std::string message_bus_worker::what_of(const std::exception_ptr& failure) {
  return detail::to_text(failure);
}

asio::awaitable<void> message_bus_worker::operator()(task_context ctx) const {
  const auto entries = entries_;  // copies of the worker may go away during the attempt
  std::vector<running_handle> runs;
  std::exception_ptr failure;
  std::size_t ended = entries->size();  // the run that ended first, if one did
  try {
    for (const entry& e : *entries) {
      // Named before the co_await: GCC 12 destroys a capturing lambda temporary inside a
      // co_await expression twice.
      failure_report on_failure = [ctx, name = e.name](std::string what) {
        report(ctx, event_kind::message_failed, name, std::move(what));
      };
      runs.push_back(co_await e.start(std::move(on_failure)));
      report(ctx, event_kind::bus_started, e.name);
    }
    ctx.ready();
    // One waiter per run; the first to see its run end decides.
    auto first = std::make_shared<detail::oneshot<first_end>>();
    for (std::size_t i = 0; i < runs.size(); ++i)
      asio::co_spawn(ctx.executor(), runs[i].wait(), [first, i](std::exception_ptr crash) {
        first->set(first_end{i, std::move(crash)});
      });
    const first_end end = co_await first->async_wait(asio::use_awaitable);
    ended = end.index;
    failure = end.crash;
    report(ctx, failure ? event_kind::bus_crashed : event_kind::bus_stopped, (*entries)[ended].name,
           failure ? what_of(failure) : std::string());
  } catch (...) {
    failure = std::current_exception();  // a start() that threw, or the supervisor's stop
  }
  // Stop every bus that started, the last first, whatever happens: neither the cancellation
  // that brought us here nor a later one (a shutdown during a crash) may cut the stops short.
  // Past its stop_grace the supervisor abandons the attempt anyway.
  co_await asio::this_coro::reset_cancellation_state(
      [](asio::cancellation_type) { return asio::cancellation_type::none; });
  // A stop() that throws breaks the bus's contract: it is reported as a crash of that bus (with
  // its run's own crash, if it had one), and the next bus still gets its stop.
  for (std::size_t i = runs.size(); i-- > 0;) {
    if (i == ended)
      continue;
    asio::awaitable<std::exception_ptr> stopping = failure_of((*entries)[i].stop());
    const std::exception_ptr refused = co_await std::move(stopping);
    std::string reason = runs[i].crashed() ? what_of(runs[i].error()) : std::string();
    if (refused)
      reason += (reason.empty() ? "stop() threw: " : "; stop() threw: ") + what_of(refused);
    if (runs[i].crashed() || refused)
      report(ctx, event_kind::bus_crashed, (*entries)[i].name, std::move(reason));
    else
      report(ctx, event_kind::bus_stopped, (*entries)[i].name);
  }
  if (ended < runs.size()) {
    // Leaves a crashed bus ready for the next attempt. Its end was reported already: a stop()
    // that throws here is one more event.
    asio::awaitable<std::exception_ptr> stopping = failure_of((*entries)[ended].stop());
    if (const std::exception_ptr refused = co_await std::move(stopping))
      report(ctx, event_kind::bus_crashed, (*entries)[ended].name,
             "stop() threw: " + what_of(refused));
  }
  if (failure)
    std::rethrow_exception(failure);
}

}  // namespace vigil
