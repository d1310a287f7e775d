#pragma once

/// @file
/// What to run and how: the description of one child process.

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

/// Where one of the child's standard streams goes.
enum class stdio : unsigned char {
  inherit,  ///< the parent's own descriptor
  null,     ///< `/dev/null`
  pipe,     ///< a pipe to the parent: `child_process::read_line()`, `write()`
};

/// One of the child's two output streams.
enum class output_stream : unsigned char {
  out,  ///< standard output
  err,  ///< standard error
};

/// The stable lowercase label of a stream: `stdout` or `stderr`.
std::string_view to_string(output_stream stream) noexcept;

/// Called with each line the child writes on a piped output stream, without its `\n`.
using output_fn = std::function<void(output_stream stream, std::string_view line)>;

/// What to run and how. Nothing goes through a shell, ever: `argv` reaches the program as it is.
///
/// @code
/// vigil::process_options opts{.argv = {"convert", "in file.png", "out.webp"}};
/// opts.out = vigil::stdio::pipe;
/// opts.env = {{"LANG", "C"}};  // added to the parent's environment
/// @endcode
struct process_options {
  /// The program and its arguments; not empty. A program without a `/` is looked up in the
  /// `PATH` of the child's environment; one with a `/` is a path (relative to `cwd` when set).
  std::vector<std::string> argv{};
  /// Variables for the child. Added to the parent's environment (replacing those of the same
  /// name) when `inherit_env` is true, the child's whole environment otherwise.
  std::map<std::string, std::string> env{};
  /// Start from the parent's environment (true) or from `env` alone (false).
  bool inherit_env = true;
  /// The child's working directory; the parent's when empty.
  std::string cwd{};
  stdio in = stdio::null;      ///< standard input
  stdio out = stdio::inherit;  ///< standard output
  stdio err = stdio::inherit;  ///< standard error
  /// The child leads a process group of its own: signals reach it and everything it starts
  /// (unless they leave the group), and a terminal's Ctrl-C does not.
  bool new_process_group = true;
  /// The child gets SIGKILL when the parent dies (`PR_SET_PDEATHSIG`). Linux ties this to the
  /// thread that spawned it: spawn from threads that live as long as the process.
  bool kill_on_parent_death = true;
  /// The longest line `read_line()` and `on_output` hand out; a longer one comes in pieces of
  /// this many bytes (nothing is lost, memory stays bounded). Positive.
  std::size_t max_line = 64 * 1024;
  /// When set, vigil reads every piped output stream itself and calls this with each line, on
  /// one strand of the spawn's executor; `read_line()` and `read_some()` are then not
  /// available. `wait()` and `stop()` return once the last line was delivered; it is never
  /// called once the `child_process` is destroyed. An exception it throws is rethrown by
  /// `wait()`, and no more lines are delivered to it.
  output_fn on_output{};
};

/// Throws `std::invalid_argument` naming the field when `options` is unusable: an empty `argv`
/// or program name, a NUL byte in an argument or variable, a `=` in a variable name, a zero
/// `max_line`.
void validate(const process_options& options);

}  // namespace vigil
