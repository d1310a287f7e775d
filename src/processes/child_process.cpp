#include <vigil/processes/child_process.hpp>

#include <vigil/detail/deadline.hpp>
#include <vigil/detail/first_of.hpp>

#include "process_state.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vigil {
namespace detail {
namespace {

/// Our own coroutines: a cancellation must never cut a stop sequence short.
constexpr auto ignore_cancellation = [](asio::cancellation_type) {
  return asio::cancellation_type::none;
};

asio::awaitable<void> wait_exited(std::shared_ptr<process_state> state) {
  (void)co_await state->exited.async_wait(asio::use_awaitable);
}

asio::awaitable<void> wait_output(std::shared_ptr<process_state> state) {
  (void)co_await state->output_done.async_wait(asio::use_awaitable);
}

asio::awaitable<void> sleep_until(time_point deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  co_await timer.async_wait(asio::use_awaitable);
}

/// True once no process of the child's group is alive, false at `deadline`. Polled (there is
/// no descriptor to wait on for a whole group), every 5 ms at first, then less often: a member
/// that ignores SIGTERM should not cost a scan of /proc every 5 ms for the whole grace.
asio::awaitable<bool> group_ends_by(std::shared_ptr<process_state> state, time_point deadline) {
  asio::steady_timer poll(co_await asio::this_coro::executor);
  duration interval = std::chrono::milliseconds(5);
  for (;;) {
    if (!group_alive(state->pid))
      co_return true;
    const time_point now = clock::now();
    if (now >= deadline)
      co_return false;
    poll.expires_at(std::min(deadline, detail::deadline_after(now, interval)));
    co_await poll.async_wait(asio::use_awaitable);
    interval = std::min<duration>(interval * 2, std::chrono::milliseconds(50));
  }
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

}  // namespace

bool send_signal(process_state& state, int signal) {
  std::lock_guard lock(state.mutex);
  if (state.reaped || state.pid <= 0)
    return false;  // its ids may belong to others now
  bool sent = state.group && ::kill(-state.pid, signal) == 0;
  // No group (yet: a child that has not reached setpgid()), or none of its own; and a SIGKILL
  // must reach the child even if it moved to another group.
  if (!sent || signal == SIGKILL)
    sent = ::kill(state.pid, signal) == 0 || sent;
  return sent;
}

void touch(process_state& state) {
  state.last_output.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  if (state.on_bytes)
    state.on_bytes();
}

void close_output(process_state& state) {
  for (output_pipe* pipe : {&state.out, &state.err}) {
    pipe->closed = true;
    if (pipe->fd) {
      std::error_code ignored;
      pipe->fd->close(ignored);  // a read under way ends with operation_aborted
    }
  }
}

exit_status reap(process_state& state) {
  deferred_completions done;
  std::lock_guard lock(state.mutex);
  if (!state.reaped && state.pid > 0) {  // never waitpid(-1): that reaps anyone's child
    int raw = 0;
    pid_t rc = 0;
    do
      rc = ::waitpid(state.pid, &raw, 0);
    while (rc < 0 && errno == EINTR);
    state.reaped = true;
    if (rc == state.pid)
      state.status = exit_status::from_wait_status(raw);
    state.exited.set(done, state.status);
  }
  if (!state.status)
    throw std::system_error(ECHILD, std::system_category(),
                            fmt::format("wait for {} (pid {}): reaped by someone else (is SIGCHLD "
                                        "ignored, or does a waitpid(-1) run elsewhere?)",
                                        state.program, state.pid));
  return *state.status;
}

bool group_alive(int pgid) {
  if (::kill(-pgid, 0) != 0 && errno == ESRCH)
    return false;
  // Members may be zombies only (the leader itself until reaped): look at their states.
  DIR* proc = ::opendir("/proc");
  if (!proc)
    return true;
  bool alive = false;
  while (const dirent* entry = ::readdir(proc)) {
    const auto pid = parse_int(entry->d_name);
    if (!pid)
      continue;
    std::ifstream file(fmt::format("/proc/{}/stat", *pid));
    std::string stat;
    if (!std::getline(file, stat))
      continue;
    // "pid (comm) state ppid pgrp ...": comm may hold anything, so parse after its last ')'.
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size())
      continue;
    const char process_state = stat[paren + 2];
    std::string_view rest = std::string_view(stat).substr(paren + 4);  // "ppid pgrp ..."
    const auto space = rest.find(' ');
    rest.remove_prefix(space == std::string_view::npos ? rest.size() : space + 1);
    const auto pgrp = parse_int(rest.substr(0, rest.find(' ')));
    if (pgrp == pgid && process_state != 'Z' && process_state != 'X') {
      alive = true;
      break;
    }
  }
  ::closedir(proc);
  return alive;
}

asio::awaitable<bool> exited_by(std::shared_ptr<process_state> state, time_point deadline) {
  if (state->exited.is_set())
    co_return true;
  auto race =
      first_of(co_await asio::this_coro::executor, wait_exited(state), sleep_until(deadline));
  (void)co_await std::move(race);
  co_return state->exited.is_set();
}

asio::awaitable<exit_status> stop_until(std::shared_ptr<process_state> state, time_point kill_at,
                                        time_point give_up_at) {
  co_await asio::this_coro::reset_cancellation_state(ignore_cancellation);
  if (send_signal(*state, SIGTERM)) {
    auto exit = exited_by(state, kill_at);
    bool gone = co_await std::move(exit);
    if (gone && state->group) {
      auto group = group_ends_by(state, kill_at);
      gone = co_await std::move(group);
    }
    if (!gone) {
      send_signal(*state, SIGKILL);
      // SIGKILL cannot be ignored: the child is reaped whatever it takes (a process stuck in
      // the kernel); for the rest of the group, the wait ends at `give_up_at`.
      auto killed = exited_by(state, time_point::max());
      (void)co_await std::move(killed);
      if (state->group) {
        auto group = group_ends_by(state, give_up_at);
        (void)co_await std::move(group);
      }
    }
  }
  co_return reap(*state);
}

asio::awaitable<void> deliver_output(std::shared_ptr<process_state> state, duration linger) {
  if (!state->on_output || state->output_done.is_set())
    co_return;
  auto race = first_of(state->strand, wait_output(state),
                       sleep_until(detail::deadline_after(clock::now(), linger)));
  (void)co_await std::move(race);
  if (!state->output_done.is_set())  // closed on the readers' strand: reads end there
    asio::post(state->strand, [state] { close_output(*state); });
}

asio::awaitable<std::optional<std::string>> read_line(std::shared_ptr<process_state> state,
                                                      output_stream from) {
  output_pipe& pipe = state->pipe(from);
  std::array<char, 16 * 1024> chunk;
  for (;;) {
    const std::size_t unread = pipe.buffer.size() - pipe.start;
    const auto newline = pipe.buffer.find('\n', pipe.start);
    if (newline != std::string::npos && newline - pipe.start <= state->max_line) {
      std::string line = pipe.buffer.substr(pipe.start, newline - pipe.start);
      pipe.start = newline + 1;
      co_return line;
    }
    if (unread >= state->max_line || (pipe.eof && unread > 0)) {
      const std::size_t take = std::min(unread, state->max_line);
      std::string piece = pipe.buffer.substr(pipe.start, take);
      pipe.start += take;
      co_return piece;
    }
    if (pipe.eof)
      co_return std::nullopt;
    if (pipe.closed) {
      pipe.eof = true;
      continue;
    }
    pipe.buffer.erase(0, pipe.start);
    pipe.start = 0;
    std::error_code ec;
    const std::size_t n = co_await pipe.fd->async_read_some(
        asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::eof || pipe.closed) {
      pipe.eof = true;
      continue;
    }
    if (ec)
      throw std::system_error(ec, fmt::format("read {} of {}", to_string(from), state->program));
    pipe.buffer.append(chunk.data(), n);
    touch(*state);
  }
}

asio::awaitable<void> for_each_line(std::shared_ptr<process_state> state, output_stream from,
                                    std::function<void(const std::string&)> on_line) {
  for (;;) {
    std::optional<std::string> line;
    try {
      auto reading = read_line(state, from);
      line = co_await std::move(reading);
    } catch (const std::system_error&) {
      co_return;  // the pipe failed or was closed: nothing more to read
    }
    if (!line)
      co_return;  // the end of the stream, or closed once the process was gone
    on_line(*line);
  }
}

}  // namespace detail

namespace {

using detail::process_state;

const std::shared_ptr<process_state>& checked(const std::shared_ptr<process_state>& state,
                                              const char* what) {
  if (!state)
    throw std::logic_error(fmt::format("child_process::{}: no process (moved from?)", what));
  return state;
}

detail::output_pipe& readable(process_state& state, output_stream from, const char* what) {
  detail::output_pipe& pipe = state.pipe(from);
  if (!pipe.fd)
    throw std::logic_error(fmt::format("child_process::{}: {} of {} is not piped", what,
                                       to_string(from), state.program));
  if (state.on_output)
    throw std::logic_error(fmt::format("child_process::{}: {} of {} is read by on_output", what,
                                       to_string(from), state.program));
  return pipe;
}

using detail::stop_result;

/// The stop sequence under way, if any.
std::shared_ptr<detail::oneshot<stop_result>> stop_under_way(process_state& state) {
  std::lock_guard lock(state.mutex);
  return state.stop_done;
}

/// How long `wait()` and `stop()` wait for the last lines once the child is gone, when
/// something it started holds its pipes open.
constexpr duration output_linger = std::chrono::milliseconds(500);

/// What `on_output` threw, for `wait()` to hand to its caller.
void rethrow_callback_error(process_state& state) {
  std::exception_ptr error;
  {
    std::lock_guard lock(state.mutex);
    error = state.callback_error;
  }
  if (error)
    std::rethrow_exception(error);
}

/// The end of `wait()` once the child exited: reaps it, unless a stop sequence is under way
/// (that one reaps it once the rest of the group is gone, and its result is the answer); then
/// the last lines for `on_output`, and what it threw.
asio::awaitable<exit_status> finish_wait(std::shared_ptr<process_state> state) {
  std::optional<exit_status> status;
  if (auto stop = stop_under_way(*state)) {
    const stop_result r = co_await stop->async_wait(asio::use_awaitable);
    if (r.error)
      std::rethrow_exception(r.error);
    status = r.status;
  } else {
    status = detail::reap(*state);
  }
  auto delivery = detail::deliver_output(state, output_linger);
  co_await std::move(delivery);
  rethrow_callback_error(*state);
  co_return *status;
}

asio::awaitable<exit_status> wait_impl(std::shared_ptr<process_state> state) {
  (void)co_await state->exited.async_wait(asio::use_awaitable);
  auto finish = finish_wait(state);
  co_return co_await std::move(finish);
}

asio::awaitable<std::optional<exit_status>> wait_for_impl(std::shared_ptr<process_state> state,
                                                          duration timeout) {
  auto exit = detail::exited_by(state, detail::deadline_after(clock::now(), timeout));
  if (!co_await std::move(exit))
    co_return std::nullopt;
  auto finish = finish_wait(state);
  co_return co_await std::move(finish);
}

/// Runs the stop sequence and hands its end to `result`.
asio::awaitable<void> run_stop(std::shared_ptr<process_state> state, time_point deadline,
                               std::shared_ptr<detail::oneshot<stop_result>> result) {
  stop_result r;
  try {
    auto stop = detail::stop_until(state, deadline, deadline + std::chrono::seconds(2));
    r.status = co_await std::move(stop);
    auto delivery = detail::deliver_output(state, output_linger);
    co_await std::move(delivery);
  } catch (...) {
    r.error = std::current_exception();
  }
  result->set(std::move(r));
}

asio::awaitable<exit_status> stop_impl(std::shared_ptr<process_state> state, duration grace) {
  // The sequence runs on its own: a caller that is cancelled stops waiting, not stopping. A
  // second stop() waits for the first.
  std::shared_ptr<detail::oneshot<stop_result>> result;
  bool first = false;
  {
    std::lock_guard lock(state->mutex);
    if (!state->stop_done) {
      state->stop_done = std::make_shared<detail::oneshot<stop_result>>();
      first = true;
    }
    result = state->stop_done;
  }
  if (first)
    asio::co_spawn(state->strand,
                   run_stop(state, detail::deadline_after(clock::now(), grace), result),
                   asio::detached);
  const stop_result r = co_await result->async_wait(asio::use_awaitable);
  if (r.error)
    std::rethrow_exception(r.error);
  co_return r.status;
}

asio::awaitable<std::size_t> read_some_impl(std::shared_ptr<process_state> state,
                                            output_stream from, asio::mutable_buffer buffer) {
  detail::output_pipe& pipe = state->pipe(from);
  if (const std::size_t unread = pipe.buffer.size() - pipe.start; unread > 0) {
    const std::size_t n = asio::buffer_copy(buffer, asio::buffer(pipe.buffer) + pipe.start);
    pipe.start += n;
    co_return n;
  }
  if (pipe.eof || pipe.closed)
    co_return 0;
  std::error_code ec;
  const std::size_t n =
      co_await pipe.fd->async_read_some(buffer, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == asio::error::eof || pipe.closed) {
    pipe.eof = true;
    co_return 0;
  }
  if (ec)
    throw std::system_error(ec, fmt::format("read {} of {}", to_string(from), state->program));
  detail::touch(*state);
  co_return n;
}

/// write() with SIGPIPE blocked in this thread: a child that closed its input makes the write
/// fail with EPIPE instead of killing the parent. A SIGPIPE it raised is consumed before the
/// mask is restored (unless one was pending already, which is not ours to take).
ssize_t write_without_sigpipe(int fd, const char* data, std::size_t size, int& error) {
  sigset_t pipe_only;
  sigset_t old_mask;
  sigset_t pending;
  ::sigemptyset(&pipe_only);
  ::sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  ::sigpending(&pending);
  const bool was_pending = ::sigismember(&pending, SIGPIPE) == 1;
  const ssize_t n = ::write(fd, data, size);
  error = errno;
  if (n < 0 && error == EPIPE && !was_pending) {
    const timespec no_wait{};
    while (::sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  return n;
}

asio::awaitable<void> write_impl(std::shared_ptr<process_state> state, std::string data) {
  std::size_t written = 0;
  while (written < data.size()) {
    if (!state->in)
      throw std::system_error(make_error_code(std::errc::broken_pipe),
                              fmt::format("write to {}: its input was closed", state->program));
    int error = 0;
    const ssize_t n = write_without_sigpipe(state->in->native_handle(), data.data() + written,
                                            data.size() - written, error);
    if (n >= 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (error == EINTR)
      continue;
    if (error != EAGAIN && error != EWOULDBLOCK)
      throw std::system_error(error, std::system_category(),
                              fmt::format("write to {}", state->program));
    co_await state->in->async_wait(asio::posix::stream_descriptor::wait_write, asio::use_awaitable);
  }
}

/// Kills the group of a child still running and reaps it: nothing outlives its owner. The
/// `on_output` readers stop too (something that left the group may hold the pipes open): the
/// callback may use what the owner's scope held.
void release(const std::shared_ptr<process_state>& state) noexcept {
  if (!state)
    return;
  detail::send_signal(*state, SIGKILL);
  try {
    detail::reap(*state);
  } catch (const std::system_error&) {  // reaped by someone else: nothing left to do
  }
  if (state->on_output) {
    try {
      asio::post(state->strand, [state] { detail::close_output(*state); });
    } catch (...) {  // the execution context is gone, and its readers with it
    }
  }
}

}  // namespace

child_process::child_process() noexcept = default;
child_process::child_process(std::shared_ptr<detail::process_state> state) noexcept
    : state_(std::move(state)) {}
child_process::child_process(child_process&&) noexcept = default;

child_process& child_process::operator=(child_process&& other) noexcept {
  if (this != &other) {
    release(state_);
    state_ = std::move(other.state_);
  }
  return *this;
}

child_process::~child_process() {
  release(state_);
}

int child_process::pid() const noexcept {
  return state_ ? state_->pid : -1;
}

std::optional<exit_status> child_process::status() const {
  if (!state_)
    return std::nullopt;
  std::lock_guard lock(state_->mutex);
  return state_->status;
}

asio::awaitable<exit_status> child_process::wait() {
  return wait_impl(checked(state_, "wait"));
}

asio::awaitable<std::optional<exit_status>> child_process::wait_for(duration timeout) {
  return wait_for_impl(checked(state_, "wait_for"), timeout);
}

void child_process::terminate() {
  send_signal(SIGTERM);
}
void child_process::kill() {
  send_signal(SIGKILL);
}

void child_process::send_signal(int signal) {
  if (state_)
    detail::send_signal(*state_, signal);
}

asio::awaitable<exit_status> child_process::stop(duration grace) {
  return stop_impl(checked(state_, "stop"), grace);
}

asio::awaitable<std::optional<std::string>> child_process::read_line(output_stream from) {
  readable(*checked(state_, "read_line"), from, "read_line");
  return detail::read_line(state_, from);
}

asio::awaitable<std::size_t> child_process::read_some(output_stream from,
                                                      asio::mutable_buffer buffer) {
  readable(*checked(state_, "read_some"), from, "read_some");
  return read_some_impl(state_, from, buffer);
}

asio::awaitable<void> child_process::write(std::string_view data) {
  if (!checked(state_, "write")->input_piped)
    throw std::logic_error(
        fmt::format("child_process::write: stdin of {} is not piped", state_->program));
  return write_impl(state_, std::string(data));
}

void child_process::close_input() {
  if (state_)
    state_->in.reset();
}

time_point child_process::last_output() const noexcept {
  if (!state_)
    return {};
  return time_point(duration(state_->last_output.load(std::memory_order_relaxed)));
}

}  // namespace vigil
