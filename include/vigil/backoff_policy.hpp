#pragma once

/// @file
/// How long to wait before restarting a failed task: exponential backoff with jitter.

#include <vigil/chrono.hpp>
#include <vigil/detail/enum_formatter.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace vigil {

/// How a backoff delay is randomised so that many tasks failing together do not restart in
/// lockstep. `b(n)` is the un-jittered delay of retry `n` (see `backoff_policy`).
enum class jitter : std::uint8_t {
  none,          ///< exactly `b(n)`
  full,          ///< uniform in `[0, b(n)]`
  equal,         ///< uniform in `[b(n)/2, b(n)]`
  decorrelated,  ///< uniform in `[first, min(max, 3·b(n-1))]`, with `b(0) = first`
};

/// The stable lowercase label of a jitter kind, the same as its enumerator.
constexpr std::string_view to_string(jitter kind) noexcept {
  switch (kind) {
    case jitter::none:
      return "none";
    case jitter::full:
      return "full";
    case jitter::equal:
      return "equal";
    case jitter::decorrelated:
      return "decorrelated";
  }
  return "unknown";
}

/// Delay before restart number `n` of a failure streak (`n = 1` after the first failure).
///
/// The un-jittered delay is `b(n) = min(max, first · factor^(n-1))`; `jitter` then picks the
/// actual delay within the bounds documented on `vigil::jitter`. A success, or an attempt that
/// ran for at least `reset_after` before failing, ends the streak: the next delay is `b(1)` again.
///
/// `delay(n, rng)` is a pure function of `n` and the state of `rng`, so tests can pin it with a
/// seeded generator. The defaults give 100 ms, 200 ms, 400 ms, … capped at 30 s, with equal jitter.
///
/// @par Example
/// @code
/// auto poll_every_5s = vigil::backoff_policy::constant(std::chrono::seconds(5));
/// auto backoff = vigil::backoff_policy::exponential(10ms, 1s, 3.0);
/// backoff.jitter = vigil::jitter::full;
/// @endcode
struct backoff_policy {
  duration first = std::chrono::milliseconds(100);  ///< `b(1)`; must be >= 0 and <= `max`
  duration max = std::chrono::seconds(30);          ///< cap of every delay; must be >= `first`
  double factor = 2.0;                              ///< growth per retry; finite and >= 1
  vigil::jitter jitter = vigil::jitter::equal;      ///< randomisation of each delay
  /// An attempt that ran at least this long before failing resets the streak (and with it the
  /// backoff and `task_spec::max_retries` counts). `std::nullopt` never resets on time.
  std::optional<duration> reset_after = std::chrono::seconds(60);

  /// The same delay `d` every time, no jitter: with `restart_policy::always`, a periodic task.
  static constexpr backoff_policy constant(duration d) noexcept {
    backoff_policy policy;
    policy.first = d;
    policy.max = d;
    policy.factor = 1.0;
    policy.jitter = vigil::jitter::none;
    return policy;
  }

  /// `first`, `first·factor`, `first·factor²`, … capped at `max`, with the default jitter.
  static constexpr backoff_policy exponential(duration first, duration max,
                                              double factor = 2.0) noexcept {
    backoff_policy policy;
    policy.first = first;
    policy.max = max;
    policy.factor = factor;
    return policy;
  }

  /// The un-jittered delay `b(retry)`; `retry` 0 is treated as 1. Never overflows.
  duration base_delay(std::uint32_t retry) const noexcept {
    if (retry <= 1 || factor <= 1.0)
      return std::min(first, max);
    const double grown =
        static_cast<double>(first.count()) * std::pow(factor, static_cast<double>(retry - 1));
    if (!(grown < static_cast<double>(max.count())))
      return max;  // also catches inf and nan
    return duration(static_cast<duration::rep>(grown));
  }

  /// The delay before restart number `retry` of a streak, drawn with `rng` (any
  /// UniformRandomBitGenerator). Bounds per jitter kind are documented on `vigil::jitter`.
  template <class UniformRandomBitGenerator>
  duration delay(std::uint32_t retry, UniformRandomBitGenerator& rng) const {
    const duration base = base_delay(retry);
    switch (jitter) {
      case vigil::jitter::none:
        return base;
      case vigil::jitter::full:
        return uniform(duration::zero(), base, rng);
      case vigil::jitter::equal:
        return uniform(base / 2, base, rng);
      case vigil::jitter::decorrelated: {
        const duration previous = retry <= 1 ? first : base_delay(retry - 1);
        const duration high = previous > max / 3 ? max : std::min(max, previous * 3);
        return uniform(std::min(first, high), high, rng);
      }
    }
    return base;
  }

  /// Throws `std::invalid_argument` naming the field and the value when the policy is unusable;
  /// `where` prefixes the field name (for example `task "db": backoff`).
  void validate(std::string_view where = "backoff") const;

 private:
  template <class UniformRandomBitGenerator>
  static duration uniform(duration low, duration high, UniformRandomBitGenerator& rng) {
    if (high <= low)
      return low;
    std::uniform_int_distribution<duration::rep> pick(low.count(), high.count());
    return duration(pick(rng));
  }
};

}  // namespace vigil

template <>
struct fmt::formatter<vigil::jitter> : vigil::detail::enum_formatter<vigil::jitter> {};
