#pragma once

/// @file
/// One tracked unit of background work (`docs/runs.md`): its status and what it produced.

#include <vigil/detail/enum_formatter.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vigil {

/// Where a run is. The only transitions are `queued → running → completed | failed |
/// cancelled` and `queued → cancelled`.
enum class run_status : std::uint8_t {
  queued,     ///< accepted, not started (waiting for a slot)
  running,    ///< its work is under way
  completed,  ///< the work returned; `result` holds what it produced
  failed,     ///< the work threw, or was interrupted; `error_message` says why
  cancelled,  ///< cancelled before or while running
};

/// The stable lowercase label of a status, the same as its enumerator.
std::string_view to_string(run_status status) noexcept;

/// The status named `label` (`"running"`), if any.
std::optional<run_status> run_status_from_string(std::string_view label) noexcept;

/// True for `completed`, `failed` and `cancelled`: nothing follows.
constexpr bool is_finished(run_status status) noexcept {
  return status == run_status::completed || status == run_status::failed ||
         status == run_status::cancelled;
}

/// True when a run may go from `from` to `to`.
constexpr bool can_transition(run_status from, run_status to) noexcept {
  switch (from) {
    case run_status::queued:
      return to == run_status::running || to == run_status::cancelled;
    case run_status::running:
      return is_finished(to);
    default:
      return false;
  }
}

/// Thrown for a transition the status diagram does not have (`completed → running`); the run
/// is left as it was.
class invalid_transition : public std::logic_error {
 public:
  invalid_transition(std::string id, run_status from, run_status to);

  const std::string& id() const noexcept { return id_; }
  run_status from() const noexcept { return from_; }
  run_status to() const noexcept { return to_; }

 private:
  std::string id_;
  run_status from_;
  run_status to_;
};

/// One tracked run. Times are wall-clock (`system_clock`): they are shown to people and
/// written to the journal.
struct run {
  using clock = std::chrono::system_clock;

  std::string id{};    ///< unique in its registry; generated when empty
  std::string name{};  ///< what kind of work (`nightly-report`); need not be unique
  std::map<std::string, std::string> parameters{};
  run_status status = run_status::queued;
  clock::time_point created_at{};                 ///< set by the registry when left empty
  std::optional<clock::time_point> started_at{};  ///< when it became `running`
  std::optional<clock::time_point> finished_at{};
  std::string error_message{};  ///< `failed` or `cancelled`: why
  std::string result{};         ///< `completed`: what the work returned
};

}  // namespace vigil

template <>
struct fmt::formatter<vigil::run_status> : vigil::detail::enum_formatter<vigil::run_status> {};
