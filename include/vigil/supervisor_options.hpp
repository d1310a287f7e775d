#pragma once

/// @file
/// How a supervisor behaves as a whole.

#include <vigil/chrono.hpp>
#include <vigil/detail/enum_formatter.hpp>
#include <vigil/restart_intensity.hpp>
#include <vigil/subscriber.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace vigil {

/// Which children restart when one fails (Erlang's restart strategies).
enum class strategy : std::uint8_t {
  one_for_one,   ///< only the failed child restarts; the default
  one_for_all,   ///< every child stops (reverse start order) and all restart (start order)
  rest_for_one,  ///< the failed child and every child added after it stop and restart
};

/// The stable lowercase label of a strategy, the same as its enumerator.
constexpr std::string_view to_string(strategy kind) noexcept {
  switch (kind) {
    case strategy::one_for_one:
      return "one_for_one";
    case strategy::one_for_all:
      return "one_for_all";
    case strategy::rest_for_one:
      return "rest_for_one";
  }
  return "unknown";
}

/// Options of a `supervisor`, validated by its constructor (`std::invalid_argument` naming the
/// field and the value).
struct supervisor_options {
  /// Which children restart when one fails (see `docs/strategies.md`). Under `one_for_all` and
  /// `rest_for_one` the children also stop one at a time at shutdown, the last started first.
  vigil::strategy strategy = vigil::strategy::one_for_one;
  /// Restarts tolerated before the supervisor gives up; no limit when unset.
  std::optional<restart_intensity> intensity{};
  /// At most this many attempts run at once; 0 means unlimited. A task holds its permit only
  /// while an attempt runs, never during backoff; waiting tasks start in the order they queued.
  std::size_t max_concurrent = 0;
  /// Start children one at a time, like systemd's `Type=notify` units: a child (first start,
  /// restart or group restart) starts only once every child added before it is ready
  /// (`task_context::ready()`). Meant for trees of tens of children.
  bool ordered_start = false;
  /// An attempt that has not called `task_context::ready()` this long after it started is cut
  /// short (`attempt_timed_out`, error `vigil::errc::readiness_timed_out`) and counted as a
  /// failure. Positive; no limit when unset.
  std::optional<duration> readiness_timeout{};
  /// How long a shutdown may take; must not be negative. Under one_for_one it is the one grace
  /// shared by every task; under one_for_all and rest_for_one each task also has its own
  /// `stop_grace` while the children stop one at a time, all within this bound.
  duration shutdown_grace = std::chrono::seconds(10);
  /// Bound of each subscriber's queue (see `subscription`); at least 1.
  std::size_t bus_capacity = 1024;
  /// SIGINT and SIGTERM start a graceful shutdown (through an `asio::signal_set`); a second
  /// signal during it abandons the tasks still stopping at once. When the shutdown is over the
  /// signals get their default disposition back.
  bool handle_signals = false;
  /// Observers fed with every event, each isolated on its own strand and queue.
  std::vector<std::shared_ptr<subscriber>> subscribers{};
  /// Seed of the jitter generator; random when unset. Set it to make delays reproducible.
  std::optional<std::uint64_t> seed{};
};

}  // namespace vigil

template <>
struct fmt::formatter<vigil::strategy> : vigil::detail::enum_formatter<vigil::strategy> {};
