#pragma once

/// @file
/// A child process as a supervised task: restarts, stall detection on its output, and a stop
/// that takes its whole process group.

#include <vigil/chrono.hpp>
#include <vigil/processes/exit_status.hpp>
#include <vigil/processes/process_options.hpp>
#include <vigil/task_spec.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

/// Called with each line a `process_task`'s child writes, tagged with the task's name.
using task_output_fn =
    std::function<void(std::string_view task, output_stream stream, std::string_view line)>;

/// How a `process_task` judges and watches its process.
struct process_task_options {
  /// Exit codes that end the attempt as a success. Any other code, or a signal, is a failure.
  std::vector<int> success_codes{0};
  /// Exit codes that mean "restarting cannot help": the task ends `fatal`, never restarted
  /// (a bad configuration, `EX_CONFIG`).
  std::vector<int> fatal_codes{};
  /// Hang detection without the child's help: no output on stdout or stderr for this long
  /// → `attempt_stalled`, the process group is stopped (the task's `stop_grace`), and the
  /// attempt fails through the restart policy. Positive; `std::nullopt` disables it.
  std::optional<duration> output_timeout{};
  /// Publish every line the child writes as a `process_output` event.
  bool output_events = false;
  /// Called with every line the child writes, on the task's strand. An exception it throws is
  /// reported (`subscriber_panicked`) and the lines keep coming.
  task_output_fn on_output{};
};

/// A process that ended in a way `process_task_options` calls a failure. `what()` is the
/// status: `exit code 3`, `killed by SIGSEGV`.
class process_error : public std::runtime_error {
 public:
  process_error(std::string program, exit_status status);

  const std::string& program() const noexcept { return program_; }
  exit_status status() const noexcept { return status_; }

 private:
  std::string program_;
  exit_status status_;
};

/// A task body that runs `options` once per attempt, for `task_spec::fn`.
///
/// - Each attempt spawns the program (`process_spawned`), is ready once it runs, and ends when
///   it exits: a code in `success_codes` is a success; one in `fatal_codes` throws
///   `vigil::fatal_error`; anything else throws `process_error`.
/// - Whatever remains of the child's process group when it exits gets SIGTERM, then SIGKILL
///   after the task's `stop_grace`: nothing it started outlives the attempt.
/// - A stop from the supervisor (remove, shutdown, timeout, stall, group restart) sends SIGTERM
///   to the group and SIGKILL a quarter of the time left (at most 250 ms) before the
///   supervisor's deadline (`task_context::stop_deadline()`), so the attempt ends within it.
/// - With `output_timeout`, `output_events` or `on_output`, stdout and stderr set to
///   `stdio::inherit` are piped. Whatever is piped is read by the task (a full pipe never
///   blocks the child); every chunk read is also a heartbeat (`task_spec::stall_timeout` sees
///   output as progress). A piped stdin is closed at once.
///
/// Throws `std::invalid_argument` naming the field for unusable options (see
/// `validate(process_options)`), a non-positive `output_timeout` or one with both output
/// streams at `stdio::null`, or a code both in `success_codes` and `fatal_codes`.
///
/// @code
/// vigil::process_options converter{.argv = {"/usr/bin/convertd", "--port", "7001"}};
/// sup.add({.name = "convertd",
///          .fn = vigil::process_task(converter, {.output_timeout = 30s, .output_events = true}),
///          .restart = vigil::restart_policy::always});
/// @endcode
task_fn process_task(process_options options, process_task_options task_options = {});

}  // namespace vigil
