// child_process: real processes (tests/children/process_child.cpp), no mocks. Exit statuses,
// clear spawn errors, no shell, environment and cwd, pipes (lines, pieces, floods, input), the
// stop sequence on a whole process group, and no leaked descriptor or zombie.

#include "process_support.hpp"

#include <vigil/processes/child_process.hpp>

#include <asio/detached.hpp>
#include <asio/this_coro.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace vigil_test;
using vigil::exit_status;
using vigil::output_stream;

namespace {

asio::awaitable<exit_status> run_to_end(vigil::process_options options) {
  auto ex = co_await asio::this_coro::executor;
  vigil::child_process child = co_await vigil::spawn(ex, options);
  co_return co_await child.wait();
}

/// The what() of the exception `op` throws; fails when it throws none.
template <class Exception>
asio::awaitable<std::string> failure_of(vigil::process_options options) {
  auto ex = co_await asio::this_coro::executor;
  try {
    vigil::child_process child = co_await vigil::spawn(ex, options);
    (void)co_await child.wait();
  } catch (const Exception& e) {
    co_return e.what();
  }
  FAIL("spawn did not throw");
  co_return "";
}

}  // namespace

TEST_CASE("exit_status tells an exit code from a signal, readably", "[process]") {
  CHECK(exit_status::exited(0).success());
  CHECK_FALSE(exit_status::exited(3).success());
  CHECK(exit_status::exited(3).to_string() == "exit code 3");
  CHECK(exit_status::killed(SIGSEGV).to_string() == "killed by SIGSEGV");
  CHECK(exit_status::killed(SIGABRT, true).to_string() == "killed by SIGABRT (core dumped)");
  CHECK_FALSE(exit_status::killed(SIGKILL).exited());
  CHECK(exit_status::killed(SIGKILL).signal() == SIGKILL);
  CHECK(fmt::format("{}", exit_status::exited(7)) == "exit code 7");
  CHECK(vigil::signal_name(SIGTERM) == "SIGTERM");
}

TEST_CASE("a child's exit code or signal reaches wait()", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    // Options named before each co_await: GCC 12 rejects an initializer list inside one.
    const vigil::process_options exit0 = helper_options({"exit", "0"});
    const exit_status ok = co_await run_to_end(exit0);
    CHECK(ok == exit_status::exited(0));
    const vigil::process_options exit3 = helper_options({"exit", "3"});
    const exit_status three = co_await run_to_end(exit3);
    CHECK(three == exit_status::exited(3));
    CHECK(three.to_string() == "exit code 3");
    const vigil::process_options segv_options = helper_options({"segv"});
    const exit_status segv = co_await run_to_end(segv_options);
    CHECK(segv.signal() == SIGSEGV);
    CHECK(segv.to_string() == "killed by SIGSEGV");
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("spawn refuses unusable options and names what is wrong", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    const vigil::process_options no_argv;
    const std::string empty = co_await failure_of<std::invalid_argument>(no_argv);
    CHECK_THAT(empty, Catch::Matchers::Contains("argv"));
    CHECK_THAT(empty, Catch::Matchers::Contains("empty"));

    vigil::process_options missing{.argv = {"vigil-no-such-program", "x"}};
    const std::string not_found = co_await failure_of<std::system_error>(missing);
    CHECK_THAT(not_found, Catch::Matchers::Contains("vigil-no-such-program"));
    CHECK_THAT(not_found, Catch::Matchers::Contains("not found in PATH"));

    vigil::process_options missing_path{.argv = {"/nonexistent/vigil-program"}};
    const std::string no_file = co_await failure_of<std::system_error>(missing_path);
    CHECK_THAT(no_file, Catch::Matchers::Contains("/nonexistent/vigil-program"));
    CHECK_THAT(no_file, Catch::Matchers::Contains("No such file"));

    vigil::process_options bad_cwd = helper_options({"cwd"});
    bad_cwd.cwd = "/nonexistent-vigil-dir";
    const std::string chdir = co_await failure_of<std::system_error>(bad_cwd);
    CHECK_THAT(chdir, Catch::Matchers::Contains("chdir /nonexistent-vigil-dir"));

    vigil::process_options nul = helper_options({std::string("a\0b", 3)});
    const std::string nul_error = co_await failure_of<std::invalid_argument>(nul);
    CHECK_THAT(nul_error, Catch::Matchers::Contains("argv[1]"));
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("arguments reach the child unchanged: no shell is involved", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    const std::vector<std::string> args = {
        "two words", "it's \"quoted\"", "a; rm -rf /tmp/vigil-none", "$HOME", "`id`", "*", ""};
    std::vector<std::string> argv = {"args"};
    argv.insert(argv.end(), args.begin(), args.end());
    vigil::process_options options = piped(argv);
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const std::vector<std::string> lines = co_await all_lines(child);
    std::vector<std::string> expected;
    for (const auto& a : args)
      expected.push_back("[" + a + "]");
    CHECK(lines == expected);
    const exit_status status = co_await child.wait();
    CHECK(status.success());
  }());
}

TEST_CASE("the environment is inherited, added to or replaced; cwd is honoured", "[process]") {
  ::setenv("VIGIL_TEST_INHERITED", "from-parent", 1);
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto first_line = [&](vigil::process_options options) -> asio::awaitable<std::string> {
      vigil::child_process child = co_await vigil::spawn(ex, options);
      auto line = co_await child.read_line();
      (void)co_await child.wait();
      co_return line.value_or("<no line>");
    };
    vigil::process_options inherit = piped({"env", "VIGIL_TEST_INHERITED"});
    const std::string inherited = co_await first_line(inherit);
    CHECK(inherited == "from-parent");

    vigil::process_options add = piped({"env", "VIGIL_TEST_ADDED"});
    add.env = {{"VIGIL_TEST_ADDED", "added value"}};
    const std::string added = co_await first_line(add);
    CHECK(added == "added value");

    vigil::process_options replace = piped({"env", "VIGIL_TEST_INHERITED"});
    replace.inherit_env = false;
    replace.env = {{"ONLY", "this"}};
    const std::string replaced = co_await first_line(replace);
    CHECK(replaced == "<unset>");

    vigil::process_options cwd = piped({"cwd"});
    cwd.cwd = "/tmp";
    const std::string dir = co_await first_line(cwd);
    CHECK(dir == std::filesystem::canonical("/tmp").string());
  }());
  ::unsetenv("VIGIL_TEST_INHERITED");
}

TEST_CASE("a child leads its own process group unless told otherwise", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options own = piped({"pgid"});
    vigil::child_process leader = co_await vigil::spawn(ex, own);
    const auto leader_group = co_await leader.read_line();
    CHECK(leader_group == std::to_string(leader.pid()));
    (void)co_await leader.wait();

    vigil::process_options shared = piped({"pgid"});
    shared.new_process_group = false;
    vigil::child_process member = co_await vigil::spawn(ex, shared);
    const auto member_group = co_await member.read_line();
    CHECK(member_group == std::to_string(::getpgrp()));
    (void)co_await member.wait();
  }());
}

TEST_CASE("output comes line by line, long lines in pieces, floods without a deadlock",
          "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    SECTION("a line longer than max_line comes in max_line pieces; nothing is lost") {
      vigil::process_options options = piped({"long-line", "10000"});
      options.max_line = 4096;
      vigil::child_process child = co_await vigil::spawn(ex, options);
      const std::vector<std::string> lines = co_await all_lines(child);
      REQUIRE(lines.size() == 3);
      CHECK(lines[0].size() == 4096);
      CHECK(lines[1].size() == 4096);
      CHECK(lines[2] == std::string(10000 - 2 * 4096, 'y'));
      (void)co_await child.wait();
    }
    SECTION("20 MB of output is read to its end while memory stays bounded") {
      vigil::process_options options = piped({"flood", "20000000", "100"});
      options.max_line = 1000;
      vigil::child_process child = co_await vigil::spawn(ex, options);
      std::size_t bytes = 0;
      std::size_t longest = 0;
      while (auto line = co_await child.read_line()) {
        bytes += line->size() + 1;
        longest = std::max(longest, line->size());
      }
      CHECK(bytes >= 20000000);
      CHECK(longest == 99);
      const exit_status status = co_await child.wait();
      CHECK(status.success());
    }
    SECTION("a 20 MB line without a newline never sits whole in memory") {
      vigil::process_options options = piped({"long-line", "20000000"});
      options.max_line = 64 * 1024;
      vigil::child_process child = co_await vigil::spawn(ex, options);
      std::size_t bytes = 0;
      std::size_t longest = 0;
      while (auto line = co_await child.read_line()) {
        bytes += line->size();
        longest = std::max(longest, line->size());
      }
      CHECK(bytes == 20000000);
      CHECK(longest == 64 * 1024);
      (void)co_await child.wait();
    }
    SECTION("read_some hands out bytes as they come") {
      vigil::process_options options = piped({"flood", "1000000", "1000"});
      vigil::child_process child = co_await vigil::spawn(ex, options);
      std::array<char, 4096> buffer;
      std::size_t bytes = 0;
      for (;;) {
        const std::size_t n = co_await child.read_some(output_stream::out, asio::buffer(buffer));
        if (n == 0)
          break;
        bytes += n;
      }
      CHECK(bytes >= 1000000);
      (void)co_await child.wait();
    }
    SECTION("stdout and stderr are separate pipes") {
      vigil::process_options options = piped({"print-then-exit", "0", "both"});
      vigil::child_process child = co_await vigil::spawn(ex, options);
      const auto out = co_await child.read_line(output_stream::out);
      const auto err = co_await child.read_line(output_stream::err);
      CHECK(out == "both");
      CHECK(err == "both");
      (void)co_await child.wait();
    }
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("on_output gets every line of both streams", "[process]") {
  asio::io_context io;
  std::mutex mutex;
  std::vector<std::string> seen;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = piped({"print-then-exit", "0", "hello"});
    options.on_output = [&](output_stream s, std::string_view line) {
      std::lock_guard lock(mutex);
      seen.push_back(fmt::format("{}: {}", vigil::to_string(s), line));
    };
    vigil::child_process child = co_await vigil::spawn(ex, options);
    CHECK_THROWS_AS(child.read_line(), std::logic_error);
    (void)co_await child.wait();
  }());
  // The readers end with the pipes, before run() returns (it waits for all work).
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"stderr: hello", "stdout: hello"});
}

namespace {

/// What `child.wait()` throws; "" when it returns.
asio::awaitable<std::string> what_wait_throws(vigil::child_process& child) {
  try {
    (void)co_await child.wait();
  } catch (const std::exception& e) {
    co_return e.what();
  }
  co_return "";
}

}  // namespace

TEST_CASE("an exception thrown by on_output reaches wait()", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = piped({"print-then-exit", "0", "hello"});
    options.on_output = [](output_stream, std::string_view line) {
      throw std::runtime_error(fmt::format("cannot take {}", line));
    };
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const std::string what = co_await what_wait_throws(child);
    CHECK(what == "cannot take hello");
  }());
}

TEST_CASE("standard input: write, close, and a closed pipe fails without SIGPIPE", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options echo = piped({"echo"});
    echo.in = vigil::stdio::pipe;
    vigil::child_process child = co_await vigil::spawn(ex, echo);
    co_await child.write("first line\nsecond; line\n");
    child.close_input();
    const std::vector<std::string> lines = co_await all_lines(child);
    CHECK(lines == std::vector<std::string>{"first line", "second; line"});
    const exit_status status = co_await child.wait();
    CHECK(status.success());

    vigil::process_options gone = helper_options({"exit", "0"});
    gone.in = vigil::stdio::pipe;
    vigil::child_process quitter = co_await vigil::spawn(ex, gone);
    (void)co_await quitter.wait();
    std::error_code code;
    const std::string lots(1 << 20, 'x');  // more than a pipe holds
    try {
      co_await quitter.write(lots);
    } catch (const std::system_error& e) {
      code = e.code();
    }
    CHECK(code == std::errc::broken_pipe);  // and this process is still alive to say so
  }());
}

TEST_CASE("wait_for gives up and leaves the child running", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = helper_options({"sleep", "200"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const auto early = co_await child.wait_for(std::chrono::milliseconds(20));
    CHECK_FALSE(early.has_value());
    CHECK(process_state(child.pid()) != 0);
    const auto later = co_await child.wait_for(std::chrono::seconds(10));
    REQUIRE(later.has_value());
    CHECK(later->success());
    CHECK(child.status() == later);
  }());
}

TEST_CASE("stop() ends a child that honours SIGTERM at once", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = helper_options({"sleep", "60000"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const auto started = std::chrono::steady_clock::now();
    const exit_status status = co_await child.stop(std::chrono::seconds(10));
    CHECK(status == exit_status::killed(SIGTERM));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("stop() kills a child that ignores SIGTERM once the grace is over", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = piped({"ignore-term"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const auto ready = co_await child.read_line();  // SIGTERM is ignored from here on
    REQUIRE(ready == "ready");
    const auto grace = std::chrono::milliseconds(300);
    const auto started = std::chrono::steady_clock::now();
    const exit_status status = co_await child.stop(grace);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(status == exit_status::killed(SIGKILL));
    CHECK(took >= grace);
    CHECK(took < grace + std::chrono::seconds(2));  // the margin: a loaded CI machine
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("stop() takes the whole group: a grandchild that ignores SIGTERM is gone too",
          "[process]") {
  asio::io_context io;
  int grandchild = 0;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = piped({"grandchild"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const auto pid = co_await child.read_line();
    REQUIRE(pid.has_value());
    grandchild = std::stoi(*pid);
    CHECK(process_state(grandchild) != 0);
    const exit_status status = co_await child.stop(std::chrono::milliseconds(200));
    CHECK(status == exit_status::killed(SIGTERM));  // the child itself obeyed
    CHECK(process_gone(grandchild));                // its child did not, and got SIGKILL
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("the exit is watched through a pidfd where the kernel has one", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = helper_options({"sleep", "60000"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    CHECK(open_pidfds() == 1);
    (void)co_await child.stop(std::chrono::seconds(5));
  }());
}

TEST_CASE("wait() during stop() returns once the whole group is gone", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = piped({"grandchild"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const auto pid = co_await child.read_line();
    REQUIRE(pid.has_value());
    const int grandchild = std::stoi(*pid);
    auto waited = std::make_shared<vigil::detail::oneshot<std::optional<exit_status>>>();
    auto wait_for_exit = [](vigil::child_process& c, decltype(waited) w) -> asio::awaitable<void> {
      w->set(co_await c.wait());
    };
    asio::co_spawn(ex, wait_for_exit(child, waited), asio::detached);
    const exit_status stopped = co_await child.stop(std::chrono::milliseconds(200));
    const std::optional<exit_status> status = co_await waited->async_wait(asio::use_awaitable);
    CHECK(status == stopped);
    CHECK(process_gone(grandchild));  // wait() did not reap the leader before the group died
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("the destructor kills and reaps a child still running", "[process]") {
  asio::io_context io;
  int pid = 0;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = helper_options({"sleep", "60000"});
    {
      vigil::child_process child = co_await vigil::spawn(ex, options);
      pid = child.pid();
    }
    CHECK(process_state(pid) == 0);  // reaped, not a zombie
  }());
  CHECK(zombie_children().empty());
}

TEST_CASE("1,000 spawns leave the descriptor count unchanged and no zombie", "[process]") {
  asio::io_context io;
  run(
      io,
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::steady_timer timer(ex, std::chrono::milliseconds(1));
        co_await timer.async_wait(asio::use_awaitable);  // the reactor opens its descriptors
        const std::size_t before = open_descriptors();
        for (int i = 0; i < 1000; ++i) {
          vigil::process_options options = piped({"exit", std::to_string(i % 7)});
          options.in = vigil::stdio::pipe;
          vigil::child_process child = co_await vigil::spawn(ex, options);
          const exit_status status = co_await child.wait();
          REQUIRE(status == exit_status::exited(i % 7));
        }
        // The last exit watcher closes its pidfd once it has run: wait for that, bounded.
        for (int i = 0; i < 200 && open_descriptors() != before; ++i) {
          timer.expires_after(std::chrono::milliseconds(10));
          co_await timer.async_wait(asio::use_awaitable);
        }
        CHECK(open_descriptors() == before);
      }(),
      std::chrono::seconds(110));
  CHECK(zombie_children().empty());
}

TEST_CASE("the child inherits no descriptor but its standard streams", "[process]") {
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = piped({"fds"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    const auto count = co_await child.read_line();
    CHECK(count == "3");
    (void)co_await child.wait();
  }());
}

TEST_CASE("without pidfd the exit is polled, with the same results", "[process]") {
  ::setenv("VIGIL_NO_PIDFD", "1", 1);
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    const vigil::process_options exit3 = helper_options({"exit", "3"});
    const exit_status three = co_await run_to_end(exit3);
    CHECK(three == exit_status::exited(3));
    auto ex = co_await asio::this_coro::executor;
    vigil::process_options options = piped({"ignore-term"});
    vigil::child_process child = co_await vigil::spawn(ex, options);
    CHECK(open_pidfds() == 0);  // the fallback is what runs
    (void)co_await child.read_line();
    const exit_status killed = co_await child.stop(std::chrono::milliseconds(50));
    CHECK(killed == exit_status::killed(SIGKILL));
  }());
  ::unsetenv("VIGIL_NO_PIDFD");
  CHECK(zombie_children().empty());
}

namespace {

/// Forks this (still single-threaded) test process; the fork spawns `sleep 60 s` with
/// `kill_on_parent_death` as given, sends its pid back and dies without a word. Returns the pid.
int orphan_sleeper(bool kill_on_parent_death) {
  int report[2];
  REQUIRE(::pipe(report) == 0);
  const pid_t parent = ::fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    ::close(report[0]);
    asio::io_context io;
    int pid = -1;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          vigil::process_options options = helper_options({"sleep", "60000"});
          options.kill_on_parent_death = kill_on_parent_death;
          vigil::child_process child = co_await vigil::spawn(io.get_executor(), options);
          pid = child.pid();
          [[maybe_unused]] const auto n = ::write(report[1], &pid, sizeof pid);
          ::_exit(0);  // dies with its child running: no destructor, no reaping
        },
        asio::detached);
    io.run();
    ::_exit(1);
  }
  ::close(report[1]);
  int pid = -1;
  const auto n = ::read(report[0], &pid, sizeof pid);
  ::close(report[0]);
  int status = 0;
  ::waitpid(parent, &status, 0);
  REQUIRE(n == static_cast<ssize_t>(sizeof pid));
  return pid;
}

/// Waits up to `limit` for `pid` to stop running.
bool gone_within(int pid, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!process_gone(pid)) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polls a condition, bounded
  }
  return true;
}

}  // namespace

TEST_CASE("kill_on_parent_death: the child dies with its parent, unless told not to", "[process]") {
  const int doomed = orphan_sleeper(true);
  CHECK(gone_within(doomed, std::chrono::seconds(5)));

  const int survivor = orphan_sleeper(false);
  CHECK_FALSE(gone_within(survivor, std::chrono::milliseconds(200)));
  ::kill(survivor, SIGKILL);  // not ours to reap: init (or a subreaper) does
  CHECK(gone_within(survivor, std::chrono::seconds(5)));
}
