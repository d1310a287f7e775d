#pragma once

/// @file
/// A consistent picture of one supervised task, taken by `supervisor::snapshot()`.

#include <vigil/chrono.hpp>
#include <vigil/detail/enum_formatter.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil {

/// Where a registered task stands.
enum class task_phase : std::uint8_t {
  starting,  ///< its attempt not started yet: waiting for a `max_concurrent` permit, or for the
             ///< children added before it to be ready (`ordered_start`)
  running,   ///< an attempt runs
  ready,     ///< an attempt runs and called `task_context::ready()`
  backoff,   ///< between attempts, or stopped by a group restart and waiting for the group
  stopping,  ///< asked to stop (remove, shutdown, timeout, stall, readiness, group restart); its
             ///< attempt has not ended yet
};

/// The stable lowercase label of a phase, the same as its enumerator.
constexpr std::string_view to_string(task_phase phase) noexcept {
  switch (phase) {
    case task_phase::starting:
      return "starting";
    case task_phase::running:
      return "running";
    case task_phase::ready:
      return "ready";
    case task_phase::backoff:
      return "backoff";
    case task_phase::stopping:
      return "stopping";
  }
  return "unknown";
}

/// One task in a `supervisor::snapshot()`.
struct task_snapshot {
  std::string name;
  task_phase state = task_phase::starting;
  std::uint32_t attempt = 0;   ///< the current (or last) attempt's number; 0 before the first
  std::uint32_t restarts = 0;  ///< attempts started after the first
  duration in_state{};         ///< how long it has been in `state`
  std::string last_failure;    ///< `what()` of its last failure; empty when it never failed
};

}  // namespace vigil

template <>
struct fmt::formatter<vigil::task_phase> : vigil::detail::enum_formatter<vigil::task_phase> {};
