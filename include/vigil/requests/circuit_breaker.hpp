#pragma once

/// @file
/// A request strategy that stops calling a peer that keeps failing, and tries it again later.

#include <vigil/chrono.hpp>
#include <vigil/detail/enum_formatter.hpp>
#include <vigil/requests/request_strategy.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string_view>

namespace vigil {

enum class breaker_state : std::uint8_t {
  closed,     ///< calls go through; consecutive failures are counted
  open,       ///< calls fail fast with `circuit_open` until the cooldown has passed
  half_open,  ///< the cooldown passed: one trial call goes through, the others fail fast
};

std::string_view to_string(breaker_state state) noexcept;

/// What a `circuit_breaker` throws instead of calling while it is open.
class circuit_open : public std::runtime_error {
 public:
  explicit circuit_open(duration retry_after);
  /// How long until the breaker lets a trial call through (zero while a trial is under way).
  duration retry_after() const noexcept { return retry_after_; }

 private:
  duration retry_after_;
};

struct circuit_breaker_options {
  std::size_t failure_threshold = 5;             ///< consecutive failures that open it; >= 1
  duration cooldown = std::chrono::seconds(30);  ///< open for this long, then half-open; > 0
};

/// Opens after `failure_threshold` consecutive failed calls and fails every call fast with
/// `circuit_open` for `cooldown`; then lets one trial call through (half-open): its success
/// closes the breaker, its failure opens it for another cooldown. A cancelled call counts as
/// neither (an `operation_aborted` the sender threw without being cancelled is a failure). Under
/// `retry`, a request that finds it open waits for the cooldown to pass (`retry` waits at least
/// `retry_after()` after `circuit_open`); over `retry` or alone, the requests fail fast while it is
/// open.
class circuit_breaker final : public request_strategy {
 public:
  /// @throws std::invalid_argument for a `failure_threshold` of 0 or a non-positive cooldown.
  explicit circuit_breaker(circuit_breaker_options options = {});

  asio::awaitable<void> invoke(const request_call& next) override;

  /// Where it stands now: `half_open` as soon as an open breaker's cooldown has passed.
  breaker_state state() const;

 private:
  using clock = std::chrono::steady_clock;

  struct admission {
    bool trial;                // the half-open trial call
    std::uint64_t generation;  // of the state it was admitted in
  };
  /// Lets the call through or throws `circuit_open`.
  admission admit();
  void record(admission call, bool failed);
  void enter(breaker_state next);  // under mutex_

  const circuit_breaker_options options_;
  mutable std::mutex mutex_;
  breaker_state state_ = breaker_state::closed;
  std::size_t failures_ = 0;  // consecutive, while closed
  clock::time_point opened_at_{};
  bool trial_under_way_ = false;
  /// Bumped by every change of state: the outcome of a call admitted in an earlier state (one
  /// that was slow, with concurrency above 1) says nothing about the peer now.
  std::uint64_t generation_ = 0;
};

}  // namespace vigil

template <>
struct fmt::formatter<vigil::breaker_state> : vigil::detail::enum_formatter<vigil::breaker_state> {
};
