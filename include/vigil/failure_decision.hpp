#pragma once

/// @file
/// What a task's failure means: the answer of `task_spec::classify`.

#include <vigil/chrono.hpp>
#include <vigil/detail/enum_formatter.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <string_view>

namespace vigil {

/// What the supervisor does with a failed attempt.
enum class failure_action : std::uint8_t {
  restart,        ///< restart after the backoff policy's delay (the default)
  restart_after,  ///< restart after the decision's own `delay`
  give_up,        ///< do not restart: the task ends `failed`
  escalate,       ///< treat as a restart-intensity breach: the supervisor gives up
};

/// The stable lowercase label of an action, the same as its enumerator.
constexpr std::string_view to_string(failure_action action) noexcept {
  switch (action) {
    case failure_action::restart:
      return "restart";
    case failure_action::restart_after:
      return "restart_after";
    case failure_action::give_up:
      return "give_up";
    case failure_action::escalate:
      return "escalate";
  }
  return "unknown";
}

/// The answer of a `task_spec::classify` function for one failure.
///
/// A restart still counts toward `task_spec::max_retries` and the supervisor's
/// `restart_intensity`. `vigil::fatal_error` is never classified: it always gives up.
///
/// @par Example
/// @code
/// spec.classify = [](const std::exception_ptr& error) {
///   try {
///     std::rethrow_exception(error);
///   } catch (const std::system_error& e) {
///     if (e.code() == std::errc::connection_refused)
///       return vigil::failure_decision::restart_after(std::chrono::seconds(30));
///     if (e.code() == std::errc::permission_denied) return vigil::failure_decision::give_up();
///   } catch (...) {
///   }
///   return vigil::failure_decision::restart();
/// };
/// @endcode
struct failure_decision {
  failure_action action = failure_action::restart;
  duration delay{};  ///< `restart_after` only; a negative delay counts as zero

  static constexpr failure_decision restart() noexcept { return {}; }
  static constexpr failure_decision restart_after(duration d) noexcept {
    return {failure_action::restart_after, d};
  }
  static constexpr failure_decision give_up() noexcept { return {failure_action::give_up, {}}; }
  static constexpr failure_decision escalate() noexcept { return {failure_action::escalate, {}}; }
};

/// Maps a failure (never null) to a decision; called on the supervisor's strand, so keep it
/// quick and non-blocking. An exception thrown by it counts as `restart` and is named in the
/// reason of the `backoff_scheduled` event that follows.
using classify_fn = std::function<failure_decision(const std::exception_ptr&)>;

}  // namespace vigil

template <>
struct fmt::formatter<vigil::failure_action>
    : vigil::detail::enum_formatter<vigil::failure_action> {};
