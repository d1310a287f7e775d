#pragma once

/// @file
/// The registry of tracked runs: their status, thread-safe, with every transition broadcast.

#include <vigil/chrono.hpp>
#include <vigil/event_bus.hpp>
#include <vigil/runs/run.hpp>
#include <vigil/runs/run_journal.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vigil {

namespace detail {
class journal_file;
}

/// Every run a service started, in creation order, and where each one is. `task_manager`
/// drives the transitions of the runs it starts; a registry also works alone.
///
/// Each transition is published on `events()` as it is made, under the registry's lock, so a
/// subscriber sees a run's transitions in order: `run_queued`, `run_started`, then one of
/// `run_completed`, `run_failed`, `run_cancelled`, with `task` = the run's id and `reason` = its
/// `error_message` where it has one. Publishing never blocks (the supervisor's event style).
/// A `task_manager` that cannot journal a transition publishes `run_unrecorded` here too.
///
/// With a journal (`run_registry(run_journal_options)`), every add, transition and cleanup is
/// written to the file before the registry changes, and replayed when it is opened again.
///
/// @par Thread safety
/// Every member may be called from any thread.
class run_registry {
 public:
  /// A registry in memory only.
  run_registry();

  /// A registry journaled to `journal.path`: opens the file (creating it when missing) and
  /// replays it. Runs the journal left `queued` or `running` (their process died) come back
  /// `failed` with `error_message` "interrupted"; an unfinished last line is ignored and cut
  /// off. Both are reported by `recovery()`. No event is published for what the replay restores.
  /// @throws std::invalid_argument for bad options.
  /// @throws std::system_error when the file cannot be opened or read, or another registry
  ///         (in any process) has it open.
  /// @throws std::runtime_error when a line other than the last is not a journal record: a
  ///         journal damaged in the middle is not silently half-read.
  explicit run_registry(run_journal_options journal);

  ~run_registry();
  run_registry(const run_registry&) = delete;
  run_registry& operator=(const run_registry&) = delete;

  /// Adds a new run and returns it as stored: `id` generated when empty (32 hex digits),
  /// `created_at` set to now when left empty, status `queued`. `started_at`, `finished_at`,
  /// `error_message` and `result` are cleared: only transitions set them.
  /// @throws std::invalid_argument when the id is taken or `r.status` is not `queued`.
  /// @throws std::system_error when the journal cannot be written; nothing is added.
  run add(run r);

  /// The run with this id, if any.
  std::optional<run> get(std::string_view id) const;

  /// Every run, or those in `status`, in creation order.
  std::vector<run> list(std::optional<run_status> status = std::nullopt) const;

  /// Moves a run to `to` and returns it as stored. Sets `started_at` on `running` and
  /// `finished_at` on a finished status; `detail` becomes `result` on `completed` and
  /// `error_message` on `failed` or `cancelled`.
  /// @throws std::out_of_range when no run has this id.
  /// @throws vigil::invalid_transition when the diagram has no such transition; the run is
  ///         left as it was.
  /// @throws std::system_error when the journal cannot be written; the run is left as it was.
  run update(std::string_view id, run_status to, std::string detail = {});

  /// Forgets finished runs that finished at least `age` ago; how many it forgot. Runs still
  /// queued or running are never forgotten.
  /// @throws std::invalid_argument when `age` is negative.
  /// @throws std::system_error when the journal cannot be written; nothing is forgotten.
  std::size_t cleanup_older_than(duration age);

  /// Rewrites the journal as one line per run it holds, atomically (a new file, fsynced, renamed
  /// over the old one): a journal only grows otherwise, by a line per transition. Nothing
  /// without a journal.
  /// @throws std::system_error when the new file cannot be written; the old one stays.
  void compact();

  /// Makes every journaled line durable now (`fdatasync`), for `sync_every` above 1. Nothing
  /// without a journal.
  void flush();

  /// What opening the journal found; all zero and empty without a journal.
  const journal_recovery& recovery() const noexcept { return recovery_; }

  /// How many runs it holds.
  std::size_t size() const;

  /// Where transitions are published.
  event_bus& events() noexcept { return events_; }

 private:
  std::string new_id();            // under mutex_
  run* find(std::string_view id);  // under mutex_
  void journal(const run& r);      // under mutex_; before the change it records

  mutable std::mutex mutex_;
  std::map<std::uint64_t, run> runs_;                     // by creation order
  std::unordered_map<std::string, std::uint64_t> by_id_;  // id -> key in runs_
  std::uint64_t next_ = 0;
  std::mt19937_64 random_;
  std::unique_ptr<detail::journal_file> journal_;
  journal_recovery recovery_;
  event_bus events_;
};

}  // namespace vigil
