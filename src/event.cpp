#include <vigil/event.hpp>

#include "text.hpp"

#include <fmt/format.h>

namespace vigil {

std::string_view to_string(event_kind kind) noexcept {
  switch (kind) {
    case event_kind::attempt_starting:
      return "attempt_starting";
    case event_kind::task_ready:
      return "task_ready";
    case event_kind::attempt_succeeded:
      return "attempt_succeeded";
    case event_kind::attempt_failed:
      return "attempt_failed";
    case event_kind::attempt_canceled:
      return "attempt_canceled";
    case event_kind::attempt_timed_out:
      return "attempt_timed_out";
    case event_kind::attempt_stalled:
      return "attempt_stalled";
    case event_kind::backoff_scheduled:
      return "backoff_scheduled";
    case event_kind::task_add_requested:
      return "task_add_requested";
    case event_kind::task_added:
      return "task_added";
    case event_kind::task_add_failed:
      return "task_add_failed";
    case event_kind::task_remove_requested:
      return "task_remove_requested";
    case event_kind::task_finished:
      return "task_finished";
    case event_kind::task_removed:
      return "task_removed";
    case event_kind::retries_exhausted:
      return "retries_exhausted";
    case event_kind::intensity_exceeded:
      return "intensity_exceeded";
    case event_kind::shutdown_requested:
      return "shutdown_requested";
    case event_kind::all_stopped_within_grace:
      return "all_stopped_within_grace";
    case event_kind::grace_exceeded:
      return "grace_exceeded";
    case event_kind::subscriber_overflow:
      return "subscriber_overflow";
    case event_kind::subscriber_panicked:
      return "subscriber_panicked";
    case event_kind::bus_started:
      return "bus_started";
    case event_kind::bus_stopped:
      return "bus_stopped";
    case event_kind::bus_crashed:
      return "bus_crashed";
    case event_kind::message_failed:
      return "message_failed";
    case event_kind::run_queued:
      return "run_queued";
    case event_kind::run_started:
      return "run_started";
    case event_kind::run_completed:
      return "run_completed";
    case event_kind::run_failed:
      return "run_failed";
    case event_kind::run_cancelled:
      return "run_cancelled";
    case event_kind::run_unrecorded:
      return "run_unrecorded";
    case event_kind::process_spawned:
      return "process_spawned";
    case event_kind::process_output:
      return "process_output";
  }
  return "unknown";
}

}  // namespace vigil

auto fmt::formatter<vigil::event>::format(const vigil::event& e, fmt::format_context& ctx) const
    -> decltype(ctx.out()) {
  fmt::memory_buffer line;
  auto out = std::back_inserter(line);
  fmt::format_to(out, "#{} {}", e.seq, vigil::to_string(e.kind));
  if (!e.task.empty())
    fmt::format_to(out, " task={}", e.task);
  if (e.attempt != 0)
    fmt::format_to(out, " attempt={}", e.attempt);
  if (e.delay != vigil::duration::zero())
    fmt::format_to(out, " delay={}", vigil::detail::to_text(e.delay));
  if (e.dropped != 0)
    fmt::format_to(out, " dropped={}", e.dropped);
  if (!e.reason.empty())
    fmt::format_to(out, " reason=\"{}\"", e.reason);
  return fmt::formatter<std::string_view>::format(std::string_view(line.data(), line.size()), ctx);
}
