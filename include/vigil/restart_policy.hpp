#pragma once

/// @file
/// When a finished attempt is started again.

#include <vigil/detail/enum_formatter.hpp>

#include <cstdint>
#include <string_view>

namespace vigil {

/// When the supervisor starts a task again after an attempt ends.
///
/// | policy       | attempt succeeded          | attempt failed or timed out |
/// |--------------|----------------------------|-----------------------------|
/// | `never`      | task completes             | task fails                  |
/// | `on_failure` | task completes             | restart after backoff       |
/// | `always`     | restart after backoff      | restart after backoff       |
///
/// `always` with `backoff_policy::constant(d)` is a periodic task. A task that throws
/// `vigil::fatal_error` is never restarted, whatever the policy.
enum class restart_policy : std::uint8_t {
  never,       ///< run once (Erlang's `temporary`)
  always,      ///< restart after success too (Erlang's `permanent`)
  on_failure,  ///< restart only after a failure (Erlang's `transient`); the default
};

/// The stable lowercase label of a policy, the same as its enumerator.
constexpr std::string_view to_string(restart_policy policy) noexcept {
  switch (policy) {
    case restart_policy::never:
      return "never";
    case restart_policy::always:
      return "always";
    case restart_policy::on_failure:
      return "on_failure";
  }
  return "unknown";
}

}  // namespace vigil

template <>
struct fmt::formatter<vigil::restart_policy>
    : vigil::detail::enum_formatter<vigil::restart_policy> {};
