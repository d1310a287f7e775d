#pragma once

// The task bodies the figures share, each in a vigil form (a task_fn body) and a raw-Asio form
// (a coroutine for co_spawn) that do the same work, and the counters that tell a figure when
// every task got where it is measured to.
//
// Everything runs on one io_context thread: the counters are plain integers.

#include <vigil/supervisor.hpp>
#include <vigil/task_context.hpp>

#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <tuple>
#include <vector>

namespace bench {

// ---- trivial tasks (lifecycle, scaling) ---------------------------------------------------

inline asio::awaitable<void> vigil_trivial(vigil::task_context) {
  co_return;
}

inline asio::awaitable<void> asio_trivial() {
  co_return;
}

// ---- idle tasks (start_idle, memory, shutdown) ----------------------------------------------

/// How an idle task waits, hence how it sees cancellation.
enum class cancel_style {
  exceptions,   ///< `asio::use_awaitable`: cancellation throws `operation_aborted`
  error_codes,  ///< `asio::experimental::as_tuple(asio::use_awaitable)`: no exception
};

/// Counts idle tasks that started waiting and calls `on_all_started` when the `target`-th does.
/// With `keep_timers`, it also keeps a pointer to each task's timer so that raw-Asio tasks,
/// which have no supervisor to stop them, can be cancelled once the figure is measured.
struct idle_fleet {
  std::size_t target = 0;
  std::size_t started = 0;
  bool keep_timers = false;
  std::vector<asio::steady_timer*> timers{};
  std::function<void()> on_all_started{};

  /// Called by each task right before it waits.
  void start(asio::steady_timer& timer) {
    if (keep_timers)
      timers.push_back(&timer);
    if (++started == target && on_all_started)
      on_all_started();
  }

  /// Cancels every kept timer (raw Asio only); the tasks then end.
  void cancel_all() {
    for (asio::steady_timer* timer : timers)
      timer->cancel();
    timers.clear();
  }
};

inline constexpr std::chrono::hours idle_wait{24};

// The two idle bodies repeat their wait on purpose: a shared helper coroutine would add a
// frame to every idle task of both sides and skew the memory figure.

/// A supervised idle task: a 24 h timer on the task's own executor.
inline asio::awaitable<void> vigil_idle(vigil::task_context ctx, idle_fleet* fleet,
                                        cancel_style style) {
  asio::steady_timer timer(ctx.executor(), idle_wait);
  fleet->start(timer);
  if (style == cancel_style::exceptions) {
    co_await timer.async_wait(asio::use_awaitable);
  } else {
    auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    std::ignore = ec;
  }
}

/// The same idle coroutine for co_spawn: a 24 h timer on the coroutine's executor.
inline asio::awaitable<void> asio_idle(idle_fleet* fleet, cancel_style style) {
  asio::steady_timer timer(co_await asio::this_coro::executor, idle_wait);
  fleet->start(timer);
  if (style == cancel_style::exceptions) {
    co_await timer.async_wait(asio::use_awaitable);
  } else {
    auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    std::ignore = ec;
  }
}

/// Adds `n` supervised idle tasks (`never` restarted) counted by `fleet`.
inline void add_idle_tasks(vigil::supervisor& sup, idle_fleet& fleet, std::size_t n,
                           cancel_style style) {
  for (std::size_t i = 0; i < n; ++i)
    sup.add({.name = fmt::format("idle{}", i),
             .fn = [f = &fleet, style](
                       vigil::task_context ctx) { return vigil_idle(std::move(ctx), f, style); },
             .restart = vigil::restart_policy::never});
}

}  // namespace bench
