#pragma once

/// @file
/// The clock vigil measures every delay, timeout and grace period with.

#include <chrono>

namespace vigil {

/// Monotonic clock behind every timer of vigil (never jumps with wall-clock changes).
using clock = std::chrono::steady_clock;
/// Duration type of every option that takes a time span; any `std::chrono` duration converts.
using duration = clock::duration;
/// A point on vigil's monotonic clock.
using time_point = clock::time_point;

}  // namespace vigil
