#pragma once

/// @file
/// A subscriber that tells systemd about the supervisor: readiness, stopping and the watchdog,
/// over the `sd_notify` datagram protocol, without libsystemd. Linux only (AF_UNIX datagrams).

#include <vigil/chrono.hpp>
#include <vigil/subscriber.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vigil {

/// Speaks `sd_notify(3)` for a `Type=notify` service: sends `READY=1` once every task of the
/// supervisor is ready, `STOPPING=1` when its shutdown starts, and `WATCHDOG=1` keep-alives
/// while it is healthy. Attach it with `supervisor_options::subscribers`.
///
/// Each message is one datagram, sent without blocking on an `AF_UNIX` `SOCK_DGRAM` socket
/// (close-on-exec) to `options::socket`: a file system path, or an abstract socket when it starts
/// with `@`. As with `sd_notify`, sending is fire-and-forget: a failed send is counted
/// (`failed_sends()`), never retried and never thrown. With an empty `socket` (not started by
/// systemd) the notifier does nothing at all: no socket, no timer.
///
/// **Readiness.** The notifier tracks the tasks it hears of: `task_added` and `attempt_starting`
/// make a task not ready (a new attempt must call `task_context::ready()` again), `task_ready`
/// makes it ready, the end of an attempt (`attempt_succeeded`, `attempt_failed`,
/// `attempt_canceled`, `attempt_timed_out`, `attempt_stalled`) makes it not ready until its next
/// attempt is, and `task_removed` forgets it. When at least one task is tracked and all are
/// ready, `READY=1` is sent, once in the notifier's life. It is never sent after the shutdown
/// started or the supervisor gave up (`intensity_exceeded`). A task that never calls `ready()`
/// therefore holds `READY=1` back. Events lost to an overflow of the notifier's queue
/// (`supervisor_options::bus_capacity`) are not recovered. No `STATUS=` lines are sent: the
/// supervisor's events are the place for detail.
///
/// **Stopping.** `shutdown_requested` sends `STOPPING=1` (once) and ends the watchdog.
///
/// **Watchdog.** With `options::watchdog` set, `WATCHDOG=1` goes out as soon as the executor
/// runs the notifier's strand after `create()`, then every `watchdog / 2` (systemd's advice),
/// while the supervisor is healthy: the pings end for good at `shutdown_requested` (after
/// `STOPPING=1`, never before it) or `intensity_exceeded` (a crash loop: systemd's watchdog may
/// then act). The timer holds the notifier only weakly: once the pings end, or once the last
/// `shared_ptr` to the notifier is gone, it leaves the execution context free to run out of work.
/// A watchdog tick that finds the notifier gone sends nothing.
///
/// @par Thread safety
/// `on_event` may be called from any thread, concurrently too; the watchdog runs on a strand of
/// its own over the executor; `failed_sends()` may be called from any thread. Destroy the
/// notifier before its execution context.
///
/// @par Example
/// @code
/// asio::io_context io;
/// vigil::supervisor_options options;
/// // $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, as systemd sets them:
/// options.subscribers.push_back(vigil::systemd_notifier::from_environment(io.get_executor()));
/// vigil::supervisor sup{io.get_executor(), std::move(options)};
/// @endcode
class systemd_notifier final : public subscriber,
                               public std::enable_shared_from_this<systemd_notifier> {
 public:
  /// Where to send and how often to ping. The defaults come from the environment when the
  /// options are created, as systemd sets it for the service's main process.
  struct options {
    /// Where the notifications go: an absolute path, or `@name` for the abstract socket `name`.
    /// Empty: the notifier does nothing. Default: `$NOTIFY_SOCKET` (empty when unset).
    std::string socket = socket_from_environment();
    /// The service's watchdog timeout (`WatchdogSec=`); pings go out every half of it. No pings
    /// when unset. Default: `$WATCHDOG_USEC` microseconds, when it is set to a positive number
    /// and `$WATCHDOG_PID` is unset or this process's id.
    std::optional<duration> watchdog = watchdog_from_environment();

    /// `$NOTIFY_SOCKET`, or an empty string when it is unset.
    static std::string socket_from_environment();
    /// `$WATCHDOG_USEC` read as `sd_watchdog_enabled(3)` reads it; unset when it is unset,
    /// not a positive number, or meant for another process (`$WATCHDOG_PID`).
    static std::optional<duration> watchdog_from_environment();
  };

  /// Creates a notifier and, when `opts.socket` is set and `opts.watchdog` too, starts its
  /// watchdog on a strand over `executor`.
  ///
  /// @throws std::invalid_argument naming the field and its value when `opts.watchdog` is not
  /// positive, or `opts.socket` is neither an absolute path nor `@name`, or too long for a
  /// `sockaddr_un` (a path: 107 bytes; `@name`: 108, the `@` included).
  static std::shared_ptr<systemd_notifier> create(asio::any_io_executor executor, options opts);

  /// `create(executor, options{})`: configured by systemd's environment variables.
  /// @throws std::invalid_argument as `create` does, for an unusable `$NOTIFY_SOCKET`.
  static std::shared_ptr<systemd_notifier> from_environment(asio::any_io_executor executor);

  systemd_notifier(const systemd_notifier&) = delete;
  systemd_notifier& operator=(const systemd_notifier&) = delete;
  /// Closes the socket and cancels the watchdog timer.
  ~systemd_notifier() override;

  /// Updates the readiness picture and sends what it calls for; never throws on a failed send.
  void on_event(const event& e) override;

  /// `"systemd"`.
  std::string name() const override { return "systemd"; }

  /// How many notifications could not be sent (socket missing, peer's queue full, ...).
  std::size_t failed_sends() const noexcept {
    return failed_sends_.load(std::memory_order_relaxed);
  }

 private:
  systemd_notifier(asio::any_io_executor executor, options opts);

  void tick();                          // the watchdog's strand only
  void end_health();                    // under mutex_: no more READY=1 nor WATCHDOG=1
  void send(std::string_view message);  // under mutex_
  void mark(const std::string& task, bool ready);

  const std::string address_;  // `options::socket` with a leading '@' turned into '\0'
  const std::optional<duration> watchdog_;
  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer timer_;  // on strand_

  mutable std::mutex mutex_;                     // guards everything below, and the socket's sends
  int descriptor_ = -1;                          // opened on the first send
  std::unordered_map<std::string, bool> ready_;  // tracked tasks: ready or not
  std::size_t not_ready_ = 0;                    // how many of ready_ are false
  bool ready_sent_ = false;
  bool stopping_ = false;  // shutdown_requested seen: STOPPING=1 went out
  bool healthy_ = true;    // neither stopping nor intensity_exceeded: READY=1, WATCHDOG=1 allowed

  std::atomic<std::size_t> failed_sends_{0};
};

}  // namespace vigil
