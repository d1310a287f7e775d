#pragma once

// Internal: the run journal's line format. Each line is one JSON object:
//   {"v":1,"op":"run","id":"…","name":"…","parameters":{"k":"v"},"status":"running",
//    "created_at":NS,"started_at":NS|null,"finished_at":NS|null,"error_message":"…","result":"…"}
// a whole run as it stands after a transition (the last line of an id wins on replay), or
//   {"v":1,"op":"forget","id":"…"}
// for a run `cleanup_older_than` forgot. Times are nanoseconds since the Unix epoch.

#include <vigil/runs/run.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace vigil::detail {

/// `r` as one journal line, '\n' included.
std::string journal_run_line(const run& r);

/// A `forget` line for `id`, '\n' included.
std::string journal_forget_line(std::string_view id);

/// What one journal line says.
struct journal_record {
  bool forget = false;  // else: `r` is the run as it stands
  run r;
};

/// A line of a format version this code does not know: written by a newer vigil.
struct journal_version_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Parses one line (without its '\n').
/// @throws journal_version_error for another format version.
/// @throws std::runtime_error saying what else is wrong with it.
journal_record parse_journal_line(std::string_view line);

}  // namespace vigil::detail
