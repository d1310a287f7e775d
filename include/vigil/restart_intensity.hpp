#pragma once

/// @file
/// How many restarts a supervisor tolerates before it gives up (Erlang's MaxR within MaxT).

#include <vigil/chrono.hpp>

#include <cstdint>

namespace vigil {

/// At most `max_restarts` restarts after failures within any window of `period`.
///
/// Backoff already paces a single crashing child; intensity catches crash loops across many
/// children. One restart more than allowed makes the supervisor publish `intensity_exceeded`,
/// stop every child and fail `run()` with `vigil::intensity_exceeded`. Restarts of a periodic
/// task after a success (`restart_policy::always`) do not count. `max_restarts = 0` escalates on
/// the first failure. The bookkeeping is a ring of `max_restarts` timestamps: O(1) per restart.
///
/// Not set in `supervisor_options` (the default): no limit.
struct restart_intensity {
  std::uint32_t max_restarts = 3;             ///< restarts allowed within `period`
  duration period = std::chrono::seconds(5);  ///< the sliding window; must be positive
};

}  // namespace vigil
