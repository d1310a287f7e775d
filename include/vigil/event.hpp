#pragma once

/// @file
/// What the supervisor tells its observers: one `event` per lifecycle step.

#include <vigil/chrono.hpp>
#include <vigil/detail/enum_formatter.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace vigil {

/// Every lifecycle step the supervisor publishes. `docs/events.md` says when each fires and
/// which `event` fields it fills.
enum class event_kind : std::uint8_t {
  // One attempt of a task.
  attempt_starting,   ///< an attempt is about to run (`attempt` is its number, from 1)
  task_ready,         ///< the attempt called `task_context::ready()`
  attempt_succeeded,  ///< the attempt returned normally
  attempt_failed,     ///< the attempt threw; `reason` is `what()`
  attempt_canceled,   ///< the attempt ended after a remove, shutdown or group restart stopped it
  attempt_timed_out,  ///< past `task_spec::timeout` or `readiness_timeout`: being stopped
  attempt_stalled,    ///< no heartbeat within `task_spec::stall_timeout`
  backoff_scheduled,  ///< the next attempt starts after `delay`
  // The registry.
  task_add_requested,     ///< `supervisor::add` was called with a valid spec
  task_added,             ///< the task is registered
  task_add_failed,        ///< refused; `reason` is `already_exists` or `shutting_down`
  task_remove_requested,  ///< `supervisor::remove` was called for a registered task
  task_finished,  ///< the task ended for good, exactly once; `reason` starts with the outcome
  task_removed,   ///< the task left the registry (always right after `task_finished`)
  // Escalation.
  retries_exhausted,   ///< the failure streak went past `task_spec::max_retries`
  intensity_exceeded,  ///< too many restarts, or `classify` escalated: the supervisor gives up
  // Shutdown.
  shutdown_requested,        ///< `shutdown()` started; `delay` is the grace period
  all_stopped_within_grace,  ///< every task stopped in time; the supervisor is done
  grace_exceeded,            ///< tasks ignored cancellation past their grace; `reason` names them
  // Diagnostics.
  subscriber_overflow,  ///< this subscription lost `dropped` events (oldest first)
  subscriber_panicked,  ///< a subscriber's `on_event` threw; `task` names the subscriber
  // Message buses of a `message_bus_worker` task; `task` is `<worker task>/<bus name>`.
  bus_started,     ///< the bus listens: its `start()` returned
  bus_stopped,     ///< the bus's run ended cleanly
  bus_crashed,     ///< its run crashed, or its `stop()` threw; `reason` is `what()`
  message_failed,  ///< a handler threw on one message; `reason` is `what()`
  // Tracked runs of a `run_registry` (its own bus); `task` is the run's id.
  run_queued,      ///< the run was added
  run_started,     ///< the run is running
  run_completed,   ///< its work returned
  run_failed,      ///< its work threw or was interrupted; `reason` is its `error_message`
  run_cancelled,   ///< it was cancelled; `reason` is its `error_message`, if any
  run_unrecorded,  ///< a `task_manager` could not journal a transition; `reason` is `<to>: what()`
  // Child processes of a `process_task`; `task` is the task, or `<task>/stdout|stderr`.
  process_spawned,  ///< the program runs; `reason` is `pid <pid>: <argv[0]>`
  process_output,   ///< a line the child wrote; `task` is `<task>/stdout` or `<task>/stderr`
};

/// The stable lowercase label of a kind, the same as its enumerator.
std::string_view to_string(event_kind kind) noexcept;

/// One lifecycle step. Cheap to copy for short names: both strings fit the small-string buffer
/// of common task names.
struct event {
  std::uint64_t seq = 0;                       ///< strictly increasing per event bus (supervisor)
  std::chrono::system_clock::time_point at{};  ///< wall-clock time of publication
  event_kind kind{};                           ///< what happened
  /// The task (or subscriber) concerned; empty for supervisor-wide steps. An event of a nested
  /// supervisor carries its path from this bus's supervisor: `payments/poller`, or `payments`
  /// for the nested supervisor's own supervisor-wide steps.
  std::string task;
  std::uint32_t attempt = 0;  ///< attempt number (from 1) where one is concerned, else 0
  duration delay{};           ///< backoff delay, timeout or grace period where one applies
  std::string reason;         ///< failure text, outcome, or stuck task names; may be empty
  std::uint64_t dropped = 0;  ///< `subscriber_overflow` only: how many events were lost
  /// How many supervisor levels below this bus's supervisor it happened: 0 for its own tasks
  /// and steps, 1 for those of a supervisor nested in one of its tasks (`supervisor::as_task`).
  std::uint32_t depth = 0;
};

}  // namespace vigil

template <>
struct fmt::formatter<vigil::event_kind> : vigil::detail::enum_formatter<vigil::event_kind> {};

/// Formats an event as one readable line without the timestamp, for example
/// `#12 attempt_failed task=db attempt=3 reason="connection refused"`.
template <>
struct fmt::formatter<vigil::event> : fmt::formatter<std::string_view> {
  auto format(const vigil::event& e, fmt::format_context& ctx) const -> decltype(ctx.out());
};
