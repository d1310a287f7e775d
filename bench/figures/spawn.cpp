// (9) spawn: start a child process and wait for its exit, 500 times in a row (5 with --quick),
// on one io_context thread. The child is /bin/true with its standard streams inherited.
//
// - vigil: `co_await vigil::spawn(ex, {.argv = {"/bin/true"}})`, then `co_await child.wait()`:
//   fork + exec with a fresh signal state and close-on-exec sweep in the child, the exec status
//   read through a pipe, the exit watched through a pidfd, the reap.
// - raw Asio: `posix_spawn` (glibc's clone(CLONE_VFORK)) of the same program, `pidfd_open`, an
//   `asio::posix::stream_descriptor::async_wait` on the pidfd, then `waitpid`: what a careful
//   hand-written version does, without a process group, a parent-death signal or exec errors
//   reported as exceptions.
//
// ratio = vigil spawns/s / asio spawns/s (higher is better).

#include "../figures.hpp"

#include <vigil/processes/child_process.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/use_awaitable.hpp>

#include <malloc.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

extern char** environ;  // NOLINT: POSIX

namespace bench {

namespace {

constexpr const char* program = "/bin/true";

asio::awaitable<void> vigil_spawns(std::size_t n) {
  auto ex = co_await asio::this_coro::executor;
  const vigil::process_options options{.argv = {program}};
  for (std::size_t i = 0; i < n; ++i) {
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const vigil::exit_status status = co_await child.wait();
    if (!status.success())
      throw std::runtime_error(status.to_string());
  }
}

asio::awaitable<void> asio_spawns(std::size_t n) {
  auto ex = co_await asio::this_coro::executor;
  char* const argv[] = {const_cast<char*>(program), nullptr};
  for (std::size_t i = 0; i < n; ++i) {
    pid_t pid = 0;
    if (::posix_spawn(&pid, program, nullptr, nullptr, argv, environ) != 0)
      throw std::runtime_error("posix_spawn failed");
    asio::posix::stream_descriptor pidfd(ex, static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read, asio::use_awaitable);
    int raw = 0;
    ::waitpid(pid, &raw, 0);
    if (!WIFEXITED(raw) || WEXITSTATUS(raw) != 0)
      throw std::runtime_error("/bin/true failed");
  }
}

template <class Body>
double spawns_per_second(std::size_t n, Body body) {
  asio::io_context io;
  std::exception_ptr failure;
  const auto start = steady::now();
  asio::co_spawn(io, body(n), [&](std::exception_ptr e) { failure = e; });
  io.run();
  const double seconds = seconds_between(start, steady::now());
  if (failure)
    std::rethrow_exception(failure);
  return static_cast<double>(n) / seconds;
}

}  // namespace

void spawn(const options& opt) {
  const std::size_t n = opt.size(500);
#if defined(__GLIBC__)
  // Earlier figures leave this process a large warm heap (keep_heap_warm), and fork() copies
  // the page tables of all of it: after `lifecycle` a spawn took 20 times longer. Hand the free
  // pages back first, so the figure measures the spawn of an ordinary process.
  ::malloc_trim(0);
#endif
  const medians m = measure(
      "spawn", "spawns/s", repetitions, opt.warm_up(),
      [&] { return spawns_per_second(n, vigil_spawns); },
      [&] { return spawns_per_second(n, asio_spawns); });
  print_summary("spawn", m.vigil, m.asio, "spawns/s", throughput_ratio(m.vigil, m.asio));
}

}  // namespace bench
