#pragma once

// The shared state behind a child_process, and the POSIX steps vigil's process code shares.

#include <vigil/chrono.hpp>
#include <vigil/detail/oneshot.hpp>
#include <vigil/processes/exit_status.hpp>
#include <vigil/processes/process_options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/strand.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace vigil::detail {

/// Bytes read from one output pipe and not handed out yet.
struct output_pipe {
  std::optional<asio::posix::stream_descriptor> fd;  ///< empty: not piped
  std::string buffer;
  std::size_t start = 0;  ///< where the unread bytes begin in `buffer`
  bool eof = false;
  bool closed = false;  ///< closed by vigil: reads see the end of the stream
};

/// How a stop sequence ended, for whoever awaits it.
struct stop_result {
  std::exception_ptr error;
  exit_status status = exit_status::exited(0);
};

/// Shared by the child_process, its exit watcher and its output readers.
struct process_state {
  explicit process_state(asio::any_io_executor ex)
      : executor(std::move(ex)), strand(asio::make_strand(executor)) {}

  const asio::any_io_executor executor;
  /// The exit watcher, the `on_output` readers and `stop()` run here.
  const asio::strand<asio::any_io_executor> strand;

  int pid = -1;
  bool group = true;  ///< the child leads its own process group (id `pid`)
  std::size_t max_line = 0;
  std::string program;  ///< argv[0], for messages
  output_fn on_output;

  std::optional<asio::posix::stream_descriptor> pidfd;  ///< empty: polled
  /// Set by the watcher once the child exited (still unreaped, so its pid and process group
  /// id stay reserved): how it ended, or nullopt when someone else reaped it.
  oneshot<std::optional<exit_status>> exited;

  std::mutex mutex;  ///< guards the four below and every signal sent
  bool reaped = false;
  std::optional<exit_status> status;  ///< once reaped
  std::exception_ptr callback_error;  ///< the first exception `on_output` threw
  /// The stop sequence under way, if one is: `wait()` then waits for it rather than reaping the
  /// child while the rest of its group still has to be stopped.
  std::shared_ptr<oneshot<stop_result>> stop_done;

  bool input_piped = false;
  std::optional<asio::posix::stream_descriptor> in;  ///< empty once closed
  output_pipe out;
  output_pipe err;
  std::atomic<clock::rep> last_output{0};
  /// Called with every chunk read from an output pipe, on the reader's strand (`process_task`
  /// makes each one a heartbeat); set before any read starts.
  std::function<void()> on_bytes;
  /// The `on_output` readers still running (on `strand`), and the end of the last one.
  int readers = 0;
  oneshot<bool> output_done;

  output_pipe& pipe(output_stream s) noexcept { return s == output_stream::out ? out : err; }
};

/// Sends `signal` to the child's group (or the child alone); false once it was reaped. SIGKILL
/// also goes to the child itself, in case it left its group.
bool send_signal(process_state& state, int signal);

/// Records output: `last_output`, `on_bytes`.
void touch(process_state& state);

/// Closes both output pipes: reads end as at the end of the stream. Call it where the reads
/// run.
void close_output(process_state& state);

/// Reaps the child (which has exited or was sent SIGKILL) and returns how it ended.
exit_status reap(process_state& state);

/// Any process of group `pgid` still alive (zombies do not count).
bool group_alive(int pgid);

/// True once the child exited, false at `deadline`.
asio::awaitable<bool> exited_by(std::shared_ptr<process_state> state, time_point deadline);

/// The stop sequence of `child_process::stop()`: SIGTERM, up to `kill_at` for the child and
/// its group to end, SIGKILL, the child's exit, up to `give_up_at` for the rest of its group,
/// reap. Ignores cancellation.
asio::awaitable<exit_status> stop_until(std::shared_ptr<process_state> state, time_point kill_at,
                                        time_point give_up_at);

/// With `on_output`: until every line was delivered, or `linger` after the call when something
/// else holds the pipes open (then the pipes are closed). At once without `on_output`.
asio::awaitable<void> deliver_output(std::shared_ptr<process_state> state, duration linger);

/// The next line of `from` (see `child_process::read_line`).
asio::awaitable<std::optional<std::string>> read_line(std::shared_ptr<process_state> state,
                                                      output_stream from);

/// Hands each line of `from` to `on_line` until the stream ends or its pipe fails: the loop of
/// `on_output` and of `process_task`'s readers, which read even when nobody wants the lines, so
/// the child never blocks on a full pipe.
asio::awaitable<void> for_each_line(std::shared_ptr<process_state> state, output_stream from,
                                    std::function<void(const std::string&)> on_line);

}  // namespace vigil::detail
