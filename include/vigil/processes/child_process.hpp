#pragma once

/// @file
/// A running child process: wait for it, read its output, stop it and its whole group.

#include <vigil/chrono.hpp>
#include <vigil/processes/exit_status.hpp>
#include <vigil/processes/process_options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace vigil {

namespace detail {
struct process_state;
}

/// A child process started by `vigil::spawn`: owns it until it has been waited for.
///
/// The process is reaped (no `<defunct>` entry remains) by `wait()`, `stop()` or, at the
/// latest, the destructor, which kills the process group of a child still running. Once
/// reaped, `terminate()` and `kill()` do nothing: its ids may belong to other processes then.
///
/// @par Thread safety
/// Like an Asio I/O object: use one `child_process` from one strand at a time. One read per
/// output stream and one write may be outstanding; `wait()` may be awaited by several
/// coroutines at once. `pid()`, `terminate()`, `kill()` and `last_output()` may be called from
/// any thread.
///
/// @par Example
/// @code
/// vigil::process_options opts{.argv = {"/usr/bin/find", "/etc", "-name", "*.conf"}};
/// opts.out = vigil::stdio::pipe;
/// vigil::child_process child = co_await vigil::spawn(ex, opts);
/// while (auto line = co_await child.read_line()) fmt::print("{}\n", *line);
/// vigil::exit_status status = co_await child.wait();
/// @endcode
class child_process {
 public:
  /// No process.
  child_process() noexcept;
  explicit child_process(std::shared_ptr<detail::process_state> state) noexcept;
  child_process(child_process&&) noexcept;
  /// Kills and reaps the process this one owned, if it still runs, then takes `other`'s.
  child_process& operator=(child_process&& other) noexcept;
  /// Kills the process group with SIGKILL if the child still runs, then reaps the child
  /// (waiting the moment SIGKILL takes).
  ~child_process();

  /// True when this object owns a process (spawned, not moved from).
  explicit operator bool() const noexcept { return state_ != nullptr; }

  /// The child's process id (also its process group's id with `new_process_group`).
  int pid() const noexcept;

  /// How it ended, once it was reaped; `std::nullopt` before.
  std::optional<exit_status> status() const;

  /// Waits until the process exits and reaps it. Cancellation leaves the process running.
  /// During a `stop()`, returns what the stop returns, once the whole group is gone. With
  /// `on_output`, returns once the last line was delivered.
  asio::awaitable<exit_status> wait();

  /// As `wait()`, but gives up after `timeout`: `std::nullopt`, and the process keeps running.
  asio::awaitable<std::optional<exit_status>> wait_for(duration timeout);

  /// Sends SIGTERM to the process group (to the child alone without `new_process_group`).
  void terminate();
  /// Sends SIGKILL to the process group (to the child alone without `new_process_group`).
  void kill();
  /// Sends `signal` as `terminate()` does.
  void send_signal(int signal);

  /// The stop sequence: SIGTERM to the group; waits up to `grace` for the child and every
  /// process left in its group to end; then SIGKILL to the group. Returns the child's status
  /// once it is reaped and its group is gone. Not cancellable: a cancelled caller stops
  /// waiting, the sequence runs on. A second call waits for the first.
  asio::awaitable<exit_status> stop(duration grace);

  /// The next line of a piped output stream without its `\n`; `std::nullopt` at the end of the
  /// stream. A line longer than `process_options::max_line` comes in pieces.
  asio::awaitable<std::optional<std::string>> read_line(output_stream from = output_stream::out);

  /// Some bytes of a piped output stream into `buffer`; 0 at the end of the stream.
  asio::awaitable<std::size_t> read_some(output_stream from, asio::mutable_buffer buffer);

  /// Writes all of `data` (copied first) to the child's piped standard input. Throws
  /// `std::system_error`
  /// (`broken_pipe`) when the child closed it, without raising SIGPIPE in the parent.
  asio::awaitable<void> write(std::string_view data);

  /// Closes the child's standard input: it reads end-of-file.
  void close_input();

  /// When the child last wrote to one of its piped output streams (read by this process);
  /// its spawn time before it wrote anything.
  time_point last_output() const noexcept;

  /// The shared state, for vigil's own users of the process (`process_task`).
  const std::shared_ptr<detail::process_state>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<detail::process_state> state_;
};

/// Starts `options.argv` as a child process on `executor` (its I/O and waits run there) and
/// completes once the program runs (`exec` succeeded).
///
/// Throws `std::invalid_argument` for unusable options (see `validate`), and
/// `std::system_error` naming the program and the step when it cannot start: a program not
/// found in `PATH` or not executable, a missing `cwd`, too many open files.
asio::awaitable<child_process> spawn(asio::any_io_executor executor, process_options options);

}  // namespace vigil
