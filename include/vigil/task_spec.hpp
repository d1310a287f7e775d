#pragma once

/// @file
/// What to supervise and how: the description of one task.

#include <vigil/backoff_policy.hpp>
#include <vigil/chrono.hpp>
#include <vigil/failure_decision.hpp>
#include <vigil/restart_policy.hpp>
#include <vigil/task_context.hpp>

#include <asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace vigil {

/// The body of a task: called once per attempt, returns the attempt's coroutine.
///
/// The function object lives in the supervisor until the task's last attempt has ended, so a
/// lambda's captures stay valid for every attempt. Parameters of the coroutine itself are best
/// taken by value.
using task_fn = std::function<asio::awaitable<void>(task_context)>;

/// The description of one supervised task, validated by `supervisor::add`.
///
/// @par Example
/// @code
/// vigil::task_spec spec{.name = "poller", .fn = poll};
/// spec.restart = vigil::restart_policy::always;
/// spec.backoff = vigil::backoff_policy::constant(5s);  // every 5 s: a periodic task
/// spec.timeout = 2s;                                   // each run gets 2 s
/// @endcode
struct task_spec {
  std::string name;                                     ///< unique within the supervisor; not empty
  task_fn fn;                                           ///< the attempt's body; required
  restart_policy restart = restart_policy::on_failure;  ///< when to run it again
  backoff_policy backoff{};                             ///< delay before each restart
  /// Each attempt is cancelled once it ran this long, and counted as a failure
  /// (`attempt_timed_out`). Positive; `std::nullopt` (the default) means no limit.
  std::optional<duration> timeout{};
  /// How many restarts in a row after failures before giving up (`retries_exhausted`, outcome
  /// `failed`). A success or a run of `backoff.reset_after` ends the streak. No limit by default.
  std::optional<std::uint32_t> max_retries{};
  /// How long a cancelled attempt may take to stop (remove, timeout, stall, readiness timeout,
  /// group restart, sequential shutdown) before it is reported as `grace_exceeded` and
  /// abandoned. A one_for_one shutdown uses `supervisor_options::shutdown_grace` instead.
  duration stop_grace = std::chrono::seconds(5);
  /// Hang detection: an attempt that calls `task_context::heartbeat()` less often than this is
  /// stalled (`attempt_stalled`), cancelled and counted as a failure. Positive; `std::nullopt`
  /// (the default) disables the watchdog.
  std::optional<duration> stall_timeout{};
  /// What a failure means (restart, restart after a delay, give up, escalate); restart by policy
  /// when unset. Never consulted for `vigil::fatal_error`, which always gives up.
  classify_fn classify{};
};

/// Throws `std::invalid_argument` naming the field and the value when `spec` is unusable: an
/// empty name, no function, a bad backoff, a non-positive timeout, a negative grace.
void validate(const task_spec& spec);

}  // namespace vigil
