// spawn(): fork + exec without a shell. Everything the child needs is prepared before fork();
// between fork() and exec the child calls async-signal-safe functions only (the parent may have
// other threads, one of which may hold the allocator's lock).

#include <vigil/processes/child_process.hpp>

#include "process_state.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;  // NOLINT: POSIX

namespace vigil {
namespace {

using detail::process_state;

[[noreturn]] void throw_errno(int error, const std::string& what) {
  throw std::system_error(error, std::system_category(), what);
}

/// A descriptor closed on scope exit.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// A close-on-exec copy of `fd` numbered 3 or above, so that the child's dup2() onto 0, 1 and 2
/// never overwrites a descriptor it still has to duplicate.
unique_fd above_stdio(unique_fd fd) {
  if (fd.get() >= 3)
    return fd;
  const int copy = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    throw_errno(errno, "spawn: fcntl(F_DUPFD_CLOEXEC)");
  return unique_fd(copy);
}

struct pipe_ends {
  unique_fd read, write;
};

pipe_ends make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw_errno(errno, "spawn: pipe2");
  return {unique_fd(fds[0]), unique_fd(fds[1])};
}

/// One standard stream: the descriptor the child gets (-1: inherit) and the parent's end.
struct stdio_fds {
  unique_fd child;
  unique_fd parent;
};

stdio_fds make_stdio(stdio mode, bool child_reads) {
  stdio_fds fds;
  switch (mode) {
    case stdio::inherit:
      break;
    case stdio::null: {
      unique_fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (null.get() < 0)
        throw_errno(errno, "spawn: open /dev/null");
      fds.child = above_stdio(std::move(null));
      break;
    }
    case stdio::pipe: {
      pipe_ends p = make_pipe();
      fds.child = above_stdio(child_reads ? std::move(p.read) : std::move(p.write));
      fds.parent = child_reads ? std::move(p.write) : std::move(p.read);
      break;
    }
  }
  return fds;
}

std::vector<std::string> child_environment(const process_options& options) {
  std::vector<std::string> vars;
  if (options.inherit_env) {
    for (char** e = environ; e && *e; ++e) {
      const std::string_view entry(*e);
      const auto eq = entry.find('=');
      const std::string name(entry.substr(0, eq));
      if (!options.env.count(name))
        vars.emplace_back(entry);
    }
  }
  for (const auto& [name, value] : options.env)
    vars.push_back(name + "=" + value);
  return vars;
}

/// The PATH the child's program is looked up in: the child's own.
std::string search_path(const process_options& options) {
  if (auto it = options.env.find("PATH"); it != options.env.end())
    return it->second;
  if (options.inherit_env)
    if (const char* path = std::getenv("PATH"))  // NOLINT(concurrency-mt-unsafe): read only
      return path;
  return "/usr/local/bin:/usr/bin:/bin";
}

/// The file to execve(): argv[0] itself when it names a path, else the first executable file
/// of that name in the child's PATH.
std::string resolve_program(const process_options& options) {
  const std::string& name = options.argv.front();
  if (name.find('/') != std::string::npos)
    return name;  // a path; relative ones resolve against the child's cwd, as execve does
  const std::string path = search_path(options);
  bool found_unexecutable = false;
  std::string_view rest = path;
  for (;;) {
    const auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty())
      dir = ".";
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0)
        return candidate;
      found_unexecutable = true;
    }
    if (colon == std::string_view::npos)
      break;
    rest.remove_prefix(colon + 1);
  }
  if (found_unexecutable)
    throw_errno(EACCES, fmt::format("spawn {}: found in PATH={} but not executable", name, path));
  throw_errno(ENOENT, fmt::format("spawn {}: program not found in PATH={}", name, path));
}

/// What the child reports through the status pipe when a step fails: the step and errno.
enum class child_step : int {
  process_group = 1,
  parent_death,
  stdio,
  cwd,
  exec
};

const char* to_text(child_step step) {
  switch (step) {
    case child_step::process_group:
      return "setpgid";
    case child_step::parent_death:
      return "prctl(PR_SET_PDEATHSIG)";
    case child_step::stdio:
      return "dup2 of a standard stream";
    case child_step::cwd:
      return "chdir";
    case child_step::exec:
      return "execve";
  }
  return "?";
}

/// Everything the child touches between fork() and exec, prepared by the parent.
struct child_plan {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;  ///< null: stay
  std::array<int, 3> stdio{-1, -1, -1};
  int status_fd = -1;
  bool new_group = true;
  bool die_with_parent = true;
  pid_t parent = 0;
  int max_fd = 0;  ///< for the close-on-exec loop where close_range() is missing
};

[[noreturn]] void child_fail(const child_plan& plan, child_step step) noexcept {
  const int report[2] = {static_cast<int>(step), errno};
  [[maybe_unused]] const auto n = ::write(plan.status_fd, report, sizeof report);
  ::_exit(127);
}

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/// Runs in the child: async-signal-safe calls only.
[[noreturn]] void run_child(const child_plan& plan) noexcept {
  if (plan.new_group && ::setpgid(0, 0) != 0)
    child_fail(plan, child_step::process_group);
  if (plan.die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
      child_fail(plan, child_step::parent_death);
    if (::getppid() != plan.parent)
      ::_exit(127);  // the parent died before prctl(): nobody is left to supervise us
  }
  // A fresh signal state: no handler survives exec anyway, but ignored signals (SIGPIPE in many
  // servers) and the blocked mask would.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP)
      ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for signals glibc reserves
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int target = 0; target < 3; ++target)
    if (plan.stdio[target] >= 0 && ::dup2(plan.stdio[target], target) < 0)
      child_fail(plan, child_step::stdio);
  // Descriptors some other code opened without O_CLOEXEC must not leak into the program.
  if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    for (int fd = 3; fd < plan.max_fd; ++fd)
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (plan.cwd && ::chdir(plan.cwd) != 0)
    child_fail(plan, child_step::cwd);
  ::execve(plan.program, plan.argv, plan.envp);
  child_fail(plan, child_step::exec);
}

int max_descriptor() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return 65536;
  return static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& s : strings)
    pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

/// pidfd_open(2), unless the kernel lacks it or VIGIL_NO_PIDFD is set (to exercise the polling
/// fallback).
int open_pidfd(pid_t pid) {
  if (std::getenv("VIGIL_NO_PIDFD"))  // NOLINT(concurrency-mt-unsafe): read only
    return -1;
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  return -1;
#endif
}

/// Notices the child's exit without reaping it: a pidfd becomes readable, or, without one,
/// waitid() is polled.
asio::awaitable<void> watch_exit(std::shared_ptr<process_state> state) {
  asio::steady_timer poll(state->strand);
  for (;;) {
    if (state->exited.is_set())
      co_return;  // reaped already: its pid may be another child's by now
    siginfo_t info{};
    const int rc =
        ::waitid(P_PID, static_cast<id_t>(state->pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == state->pid) {
      state->exited.set(info.si_code == CLD_EXITED
                            ? exit_status::exited(info.si_status)
                            : exit_status::killed(info.si_status, info.si_code == CLD_DUMPED));
      co_return;
    }
    if (rc != 0 && errno == EINTR)
      continue;
    if (rc != 0) {  // ECHILD: reaped, by vigil (the destructor) or by someone else
      state->exited.set(std::nullopt);
      co_return;
    }
    std::error_code ec;
    if (state->pidfd) {
      co_await state->pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                                        asio::redirect_error(asio::use_awaitable, ec));
    } else {
      poll.expires_after(std::chrono::milliseconds(10));
      co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec == asio::error::operation_aborted)
      co_return;
  }
}

/// Calls `on_output` with every line of one stream until its end.
asio::awaitable<void> forward_output(std::shared_ptr<process_state> state, output_stream from) {
  // After a throw the lines are still read (and dropped): wait() rethrows the first exception.
  auto forward = [state, from, calling = true](const std::string& line) mutable {
    if (!calling)
      return;
    try {
      state->on_output(from, line);
    } catch (...) {
      calling = false;
      std::lock_guard lock(state->mutex);
      if (!state->callback_error)
        state->callback_error = std::current_exception();
    }
  };
  return for_each_line(state, from, std::move(forward));
}

}  // namespace

asio::awaitable<child_process> spawn(asio::any_io_executor executor, process_options options) {
  validate(options);
  auto state = std::make_shared<process_state>(executor);
  state->group = options.new_process_group;
  state->max_line = options.max_line;
  state->program = options.argv.front();
  state->on_output = std::move(options.on_output);

  std::string program = resolve_program(options);
  std::vector<std::string> args = options.argv;
  std::vector<std::string> vars = child_environment(options);
  std::vector<char*> argv = c_strings(args);
  std::vector<char*> envp = c_strings(vars);
  stdio_fds in = make_stdio(options.in, true);
  stdio_fds out = make_stdio(options.out, false);
  stdio_fds err = make_stdio(options.err, false);
  pipe_ends status = make_pipe();
  status.write = above_stdio(std::move(status.write));

  child_plan plan;
  plan.program = program.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  plan.stdio = {in.child.get(), out.child.get(), err.child.get()};
  plan.status_fd = status.write.get();
  plan.new_group = options.new_process_group;
  plan.die_with_parent = options.kill_on_parent_death;
  plan.parent = ::getpid();
  plan.max_fd = max_descriptor();

  const pid_t pid = ::fork();
  if (pid < 0)
    throw_errno(errno, fmt::format("spawn {}: fork", state->program));
  if (pid == 0)
    run_child(plan);

  state->pid = pid;
  child_process child(state);  // from here on, a failure still kills and reaps the child
  state->last_output.store(clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  // The child's ends belong to the child now; the parent's status end must close, or the read
  // below never sees the end-of-file that means "exec succeeded".
  in.child.reset();
  out.child.reset();
  err.child.reset();
  status.write.reset();
  // Each descriptor is released to its Asio object only once that object exists: a failing
  // registration with the reactor leaves it to the unique_fd, which closes it.
  unique_fd pidfd(open_pidfd(pid));
  if (pidfd.get() >= 0) {
    state->pidfd.emplace(executor, pidfd.get());
    pidfd.release();
  }
  if (in.parent.get() >= 0) {
    ::fcntl(in.parent.get(), F_SETFL, ::fcntl(in.parent.get(), F_GETFL) | O_NONBLOCK);
    state->in.emplace(executor, in.parent.get());
    in.parent.release();
    state->input_piped = true;
  }
  if (out.parent.get() >= 0) {
    state->out.fd.emplace(executor, out.parent.get());
    out.parent.release();
  }
  if (err.parent.get() >= 0) {
    state->err.fd.emplace(executor, err.parent.get());
    err.parent.release();
  }
  asio::co_spawn(state->strand, watch_exit(state), asio::detached);

  asio::posix::stream_descriptor status_pipe(executor, status.read.get());
  status.read.release();
  std::array<int, 2> report{};
  std::error_code ec;
  const std::size_t n = co_await asio::async_read(status_pipe, asio::buffer(report),
                                                  asio::redirect_error(asio::use_awaitable, ec));
  if (n == sizeof report) {
    (void)co_await child.wait();
    const auto step = static_cast<child_step>(report[0]);
    std::string what = step == child_step::exec
                           ? fmt::format("spawn {}: cannot execute {}", state->program, program)
                           : fmt::format("spawn {}: {}{}", state->program, to_text(step),
                                         step == child_step::cwd ? " " + options.cwd : "");
    throw_errno(report[1], what);
  }
  if (ec && ec != asio::error::eof)
    throw std::system_error(ec, fmt::format("spawn {}: reading the exec status", state->program));
  if (state->on_output) {
    state->readers = (state->out.fd ? 1 : 0) + (state->err.fd ? 1 : 0);
    if (state->readers == 0)
      state->output_done.set(true);
    for (const output_stream stream : {output_stream::out, output_stream::err})
      if (state->pipe(stream).fd)
        asio::co_spawn(state->strand, forward_output(state, stream), [state](std::exception_ptr) {
          if (--state->readers == 0)  // on the strand, as both readers
            state->output_done.set(true);
        });
  }
  co_return child;
}

}  // namespace vigil
