#pragma once

/// @file
/// Options and the replay report of a `run_registry`'s durable journal.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace vigil {

/// Where a `run_registry` journals its runs, and how often it makes them durable.
///
/// Every add, transition and cleanup is appended to `path` as one JSON line before the
/// registry changes, so what the registry says has reached the file. `fdatasync` makes it
/// survive a power loss too: after every line with `sync_every = 1`, after every
/// `sync_every` lines otherwise (and on `run_registry::flush()` and destruction). Lines not
/// yet synced survive a crash of the process (they are in the kernel), not one of the machine.
struct run_journal_options {
  std::filesystem::path path{};
  std::size_t sync_every = 1;  ///< lines per `fdatasync`; 1: each transition is durable
};

/// What opening a journal found.
struct journal_recovery {
  std::size_t lines = 0;  ///< records read
  std::size_t runs = 0;   ///< runs restored (interrupted ones included)
  /// Runs that were `queued` or `running` when the journal's last writer stopped: now
  /// `failed` with `error_message` "interrupted".
  std::vector<std::string> interrupted{};
  /// An unfinished last line (a write cut short by a crash), ignored and cut off the file;
  /// empty when there was none.
  std::string torn_tail{};
};

}  // namespace vigil
