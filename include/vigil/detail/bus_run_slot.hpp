#pragma once

/// @file
/// The run bookkeeping every message-bus adapter shares: one run at a time, the stop flag its
/// loop polls, and the counters.

#include <vigil/message_bus.hpp>
#include <vigil/running_handle.hpp>

#include <asio/awaitable.hpp>

#include <exception>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

namespace vigil::detail {

/// One bus's current run and counters, guarded by `mutex` (which the adapter may lock for its
/// own state too). The adapter calls `claim()` in `start()`, `request_stop()` in `stop()` and
/// its destructor, `deliver()` for each message and `end()` when the run's loop is over.
struct bus_run_slot {
  mutable std::mutex mutex;  // guards everything below
  bool running = false;      // from start() until the run ended
  bool stopping = false;     // stop() was called for this run
  bus_run run;               // the current or the last run
  bus_counters counters;

  /// For `start()`: null once `fresh` is the current run (the caller starts it); otherwise the
  /// handle of a run already going on, to return. A run being stopped is waited for first.
  asio::awaitable<std::optional<running_handle>> claim(const bus_run& fresh) {
    for (;;) {
      running_handle stopped;
      {
        std::lock_guard lock(mutex);
        if (running && !stopping)
          co_return run.handle();  // listening, or still connecting for an earlier start()
        if (!running) {
          running = true;
          run = fresh;
          co_return std::nullopt;
        }
        stopped = run.handle();
      }
      co_await stopped.join();
    }
  }

  /// For `stop()`: marks the current run as stopping; its handle, or null without a run. The
  /// adapter then wakes its loop, which sees `stop_requested()`.
  std::optional<running_handle> request_stop() {
    std::lock_guard lock(mutex);
    if (!running)
      return std::nullopt;
    stopping = true;
    return run.handle();
  }

  /// Whether the current run is stopping. The adapter's loop asks it; so does the work that
  /// `stop()` posts to the adapter's strand: by the time it runs, the run it was for may have
  /// ended (it saw `stopping` first) and a new `start()` may have begun another, whose
  /// connection a stale stop would cut.
  bool stop_requested() const {
    std::lock_guard lock(mutex);
    return stopping;
  }

  /// Hands one message to `handler` and counts how it went (a handler cancelled by `stop()`
  /// did not fail). True when the handler returned; `crash` is set when its failure must end
  /// the run under `policy`.
  template <class T>
  asio::awaitable<bool> deliver(const message_handler<T>& handler, std::string_view source,
                                T message, handler_failure policy, std::exception_ptr& crash) {
    std::exception_ptr failure;
    try {
      co_await handler(source, std::move(message));
    } catch (...) {
      failure = std::current_exception();
    }
    std::lock_guard lock(mutex);
    if (!failure) {
      ++counters.delivered;
      co_return true;
    }
    if (!stopping) {
      ++counters.failed;
      if (policy == handler_failure::crash)
        crash = std::move(failure);
    }
    co_return false;
  }

  /// The run's loop is over: the bus may start again, and waiters complete (a crash when
  /// `crash` is set).
  void end(bus_run ended, std::exception_ptr crash) {
    {
      std::lock_guard lock(mutex);
      running = false;
      stopping = false;
    }
    if (crash)
      ended.fail(std::move(crash));
    else
      ended.finish();
  }

  bus_counters snapshot() const {
    std::lock_guard lock(mutex);
    return counters;
  }
};

}  // namespace vigil::detail
