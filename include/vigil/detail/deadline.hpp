#pragma once

#include <vigil/chrono.hpp>

namespace vigil::detail {

/// `from + span`, held to the clock's range. Users say "never" with `duration::max()` (a
/// timeout, a grace period, a cooldown); added plainly to a point on the clock it overflows
/// into the past and fires at once. Asio's own `expires_after` saturates the same way.
constexpr time_point deadline_after(time_point from, duration span) noexcept {
  const duration since_epoch = from.time_since_epoch();
  if (span > duration::zero() && since_epoch > duration::max() - span)
    return time_point::max();
  if (span < duration::zero() && since_epoch < duration::min() - span)
    return time_point::min();
  return from + span;
}

}  // namespace vigil::detail
