// The run journal: a registry reopened from its journal is the registry it was; runs a dead
// process left queued or running come back failed "interrupted"; a torn last line is skipped,
// reported and cut off; damage elsewhere refuses to open; cleanup and compaction; one writer;
// and a writer killed with SIGKILL mid-run loses no finished run.

#include "support.hpp"

#include <vigil/runs/run_registry.hpp>
#include <vigil/runs/task_manager.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

using namespace vigil_test;
using S = vigil::run_status;
namespace fs = std::filesystem;

namespace {

/// A fresh directory, removed with what it holds.
struct temp_dir {
  temp_dir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           fmt::format("vigil-journal-{}-{}", ::getpid(), counter.fetch_add(1));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  fs::path path;
};

vigil::run_journal_options journal_at(const fs::path& path, std::size_t sync_every = 1) {
  return {.path = path, .sync_every = sync_every};
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void append_to(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

std::size_t lines_in(const fs::path& path) {
  const std::string content = read_file(path);
  return static_cast<std::size_t>(std::count(content.begin(), content.end(), '\n'));
}

void check_same(const vigil::run& a, const vigil::run& b) {
  CHECK(a.id == b.id);
  CHECK(a.name == b.name);
  CHECK(a.parameters == b.parameters);
  CHECK(a.status == b.status);
  CHECK(a.created_at == b.created_at);
  CHECK(a.started_at == b.started_at);
  CHECK(a.finished_at == b.finished_at);
  CHECK(a.error_message == b.error_message);
  CHECK(a.result == b.result);
}

}  // namespace

TEST_CASE("a journaled registry reopens as it was", "[runs][journal]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  const std::size_t sync_every = GENERATE(1, 4);
  std::vector<vigil::run> before;
  {
    vigil::run_registry registry(journal_at(path, sync_every));
    CHECK(registry.recovery().lines == 0);
    const std::string tricky = "quote \" backslash \\ newline \n tab \t bell \x07 utf-8 é ✓ 🚀";
    const std::string a =
        registry.add({.name = "report", .parameters = {{"month", "2026-10"}, {tricky, tricky}}}).id;
    const std::string b = registry.add({.name = tricky}).id;
    const std::string c = registry.add({.id = "import-7", .name = "import"}).id;
    registry.update(a, S::running);
    registry.update(a, S::completed, tricky);
    registry.update(b, S::running);
    registry.update(b, S::failed, "no such table: \"users\"");
    registry.update(c, S::cancelled, "not needed");
    before = registry.list();
  }
  vigil::run_registry reopened(journal_at(path));
  const std::vector<vigil::run> after = reopened.list();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < before.size(); ++i)
    check_same(after[i], before[i]);
  CHECK(reopened.recovery().lines == 8);  // 3 adds and 5 transitions
  CHECK(reopened.recovery().runs == 3);
  CHECK(reopened.recovery().interrupted.empty());
  CHECK(reopened.recovery().torn_tail.empty());
  CHECK_THROWS_AS(reopened.add({.id = "import-7"}), std::invalid_argument);  // ids come back too
}

TEST_CASE("runs a dead process left queued or running come back failed, interrupted",
          "[runs][journal]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  std::string queued;
  std::string running;
  std::string done;
  {
    vigil::run_registry registry(journal_at(path));
    queued = registry.add({.name = "queued"}).id;
    running = registry.add({.name = "running"}).id;
    done = registry.add({.name = "done"}).id;
    registry.update(running, S::running);
    registry.update(done, S::running);
    registry.update(done, S::completed, "ok");
  }  // as if the process had died: nothing marks unfinished runs on the way out
  {
    vigil::run_registry reopened(journal_at(path));
    CHECK(reopened.recovery().interrupted == std::vector<std::string>{queued, running});
    for (const std::string& id : {queued, running}) {
      const vigil::run r = *reopened.get(id);
      CHECK(r.status == S::failed);
      CHECK(r.error_message == "interrupted");
      CHECK(r.finished_at.has_value());
    }
    CHECK_FALSE(reopened.get(queued)->started_at.has_value());
    CHECK(reopened.get(running)->started_at.has_value());
    CHECK(reopened.get(done)->status == S::completed);
  }
  vigil::run_registry again(journal_at(path));  // the verdict was journaled: nothing new
  CHECK(again.recovery().interrupted.empty());
  CHECK(again.get(running)->status == S::failed);
}

TEST_CASE("a torn last line is skipped, reported and cut off", "[runs][journal]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  std::string id;
  {
    vigil::run_registry registry(journal_at(path));
    id = registry.add({.name = "kept"}).id;
    registry.update(id, S::running);
    registry.update(id, S::completed, "42");
  }
  const std::string intact = read_file(path);
  const std::string torn = GENERATE(std::string(R"({"v":1,"op":"run","id":"half)"),
                                    std::string(12, '\0'),               // zeros a crash left
                                    std::string("{\"v\":1,\"op\":\n"));  // ended, not whole
  append_to(path, torn);
  {
    vigil::run_registry reopened(journal_at(path));
    CHECK(reopened.recovery().torn_tail == torn.substr(0, torn.find('\n')));
    CHECK(reopened.recovery().lines == 3);
    CHECK(reopened.get(id)->result == "42");
    CHECK(read_file(path) == intact);  // cut off, so the next line starts clean
    reopened.add({.id = "after"});
  }
  vigil::run_registry again(journal_at(path));
  CHECK(again.recovery().torn_tail.empty());
  CHECK(again.get("after").has_value());
}

TEST_CASE("a journal damaged before its last line refuses to open", "[runs][journal]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  {
    vigil::run_registry registry(journal_at(path));
    registry.add({.id = "first"});
  }
  append_to(path, "not json\n");
  {
    vigil::run_registry registry(journal_at(path));  // a bad last line: torn, cut off
    CHECK(registry.recovery().torn_tail == "not json");
    registry.add({.id = "second"});
  }
  const std::string content = read_file(path);
  const std::size_t first_end = content.find('\n');
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      << content.substr(0, first_end + 1) << "{\"v\":1,\"op\":\"run\",\"id\":3}\n"
      << content.substr(first_end + 1);
  CHECK_THROWS_WITH(vigil::run_registry(journal_at(path)),
                    Catch::Matchers::Contains("line 2 is not a journal record") &&
                        Catch::Matchers::Contains("only a torn last line is skipped"));
  CHECK(read_file(path).size() > content.size());  // left alone for a person to look at
}

TEST_CASE("a hole of zeros is where a journal is torn; a newer format is never cut",
          "[runs][journal]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  {
    vigil::run_registry registry(journal_at(path, 4));
    registry.add({.id = "kept"});
  }
  const std::string intact = read_file(path);
  // Unsynced pages written back out of order: zeros, then lines that came after them.
  const std::string after_hole =
      std::string(8, '\0') + R"({"v":1,"op":"forget","id":"kept"})" + "\n";
  append_to(path, after_hole);
  {
    vigil::run_registry reopened(journal_at(path));
    CHECK(reopened.recovery().torn_tail == after_hole);
    CHECK(reopened.get("kept").has_value());
  }
  CHECK(read_file(path).find('\0') == std::string::npos);  // cut off; "kept" interrupted since

  // A field version 1 does not know, as a newer format may add: still a newer line, not a torn one.
  append_to(path, R"({"v":2,"op":"run","id":"from-the-future","priority":3})"
                  "\n");
  const std::string newer = read_file(path);
  CHECK_THROWS_WITH(
      vigil::run_registry(journal_at(path)),
      Catch::Matchers::Contains("line 3: format version 2, this vigil reads version 1"));
  CHECK(read_file(path) == newer);  // not cut off as if it were torn
}

TEST_CASE("cleanup is journaled and compaction rewrites one line per run", "[runs][journal]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  std::string kept;
  {
    vigil::run_registry registry(journal_at(path));
    for (int i = 0; i < 5; ++i) {
      const std::string id = registry.add({.name = "old"}).id;
      registry.update(id, S::running);
      registry.update(id, S::completed, std::to_string(i));
    }
    CHECK(registry.cleanup_older_than(vigil::duration::zero()) == 5);
    kept = registry.add({.name = "kept", .parameters = {{"k", "v"}}}).id;
    registry.update(kept, S::running);
  }
  {
    vigil::run_registry reopened(journal_at(path));
    REQUIRE(reopened.size() == 1);  // the forgotten runs stay forgotten
    CHECK(reopened.recovery().interrupted == std::vector<std::string>{kept});
    const std::size_t before = lines_in(path);
    CHECK(before == 5 * 3 + 5 + 2 + 1);  // transitions, forgets, kept's two, its verdict
    const vigil::run r = *reopened.get(kept);
    reopened.compact();
    CHECK(lines_in(path) == 1);
    CHECK_FALSE(fs::exists(path.string() + ".compact"));
    reopened.add({.id = "appended-after-compaction"});  // appends go to the new file
    CHECK(lines_in(path) == 2);
    check_same(*reopened.get(kept), r);
  }
  vigil::run_registry again(journal_at(path));
  CHECK(again.size() == 2);
  CHECK(again.get(kept)->parameters.at("k") == "v");
  CHECK(again.get("appended-after-compaction").has_value());
}

namespace {

/// Caps the size of the files this process writes at `bytes` (a full disk, for one file), with
/// SIGXFSZ ignored so that writes past it fail with EFBIG; restores both when it goes.
class file_size_cap {
 public:
  explicit file_size_cap(std::uintmax_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &before_) == 0);
    previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit capped = before_;
    capped.rlim_cur = static_cast<rlim_t>(bytes);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &capped) == 0);
  }
  ~file_size_cap() {
    ::setrlimit(RLIMIT_FSIZE, &before_);
    std::signal(SIGXFSZ, previous_handler_);
  }
  file_size_cap(const file_size_cap&) = delete;
  file_size_cap& operator=(const file_size_cap&) = delete;

 private:
  rlimit before_{};
  void (*previous_handler_)(int) = SIG_DFL;
};

asio::awaitable<std::string> after(gate g, std::string result) {
  co_await g.wait();
  co_return result;
}

}  // namespace

TEST_CASE("a task_manager whose journal cannot be written retires its runs and says so",
          "[runs][journal][task_manager]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  std::string first;
  std::string second;
  {
    auto registry = std::make_shared<vigil::run_registry>(journal_at(path));
    auto events = registry->events().subscribe(64);
    asio::io_context io;
    vigil::task_manager manager(io.get_executor(), registry, {.max_running = 1});
    gate go;
    auto second_ran = std::make_shared<std::atomic<bool>>(false);
    const auto mark = [](std::shared_ptr<std::atomic<bool>> ran) -> asio::awaitable<void> {
      ran->store(true);
      co_return;
    };
    first = manager.start({.name = "first"}, after(go, "done"));
    second = manager.start({.name = "second"}, mark(second_ran));  // queued behind the first

    std::vector<vigil::event> unrecorded;
    run(io, [&]() -> asio::awaitable<void> {
      co_await read_until(events, vigil::event_kind::run_started, first);
      file_size_cap full(fs::file_size(path));  // no room for one more line
      go.open();
      // The first run's end cannot be written; its slot goes to the second run, which cannot
      // be marked running, so it does not run.
      const auto both_unrecorded = [&](const vigil::event& e) {
        if (e.kind == vigil::event_kind::run_unrecorded)
          unrecorded.push_back(e);
        return unrecorded.size() == 2;
      };
      co_await read_until(events, both_unrecorded);
      co_await manager.wait_all();  // neither run keeps it waiting
    }());
    REQUIRE(unrecorded.size() == 2);
    CHECK(unrecorded[0].task == first);
    CHECK_THAT(unrecorded[0].reason,
               Catch::Matchers::StartsWith("completed: ") && Catch::Matchers::Contains("write"));
    CHECK(unrecorded[1].task == second);
    CHECK_THAT(unrecorded[1].reason, Catch::Matchers::StartsWith("running: "));
    CHECK_FALSE(second_ran->load());
    CHECK(manager.active_count() == 0);
    CHECK(registry->get(first)->status == S::running);  // the last status the journal holds
    CHECK(registry->get(second)->status == S::queued);
  }
  // The file is whole: what could not be written is not half there.
  vigil::run_registry reopened(journal_at(path));
  CHECK(reopened.recovery().torn_tail.empty());
  CHECK(reopened.recovery().interrupted == std::vector<std::string>{first, second});
}

TEST_CASE("a journal has one registry at a time", "[runs][journal][validation]") {
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  {
    vigil::run_registry first(journal_at(path));
    CHECK_THROWS_WITH(vigil::run_registry(journal_at(path)),
                      Catch::Matchers::Contains("in use by another registry"));
  }
  vigil::run_registry later(journal_at(path));  // free once the first is gone
  CHECK_THROWS_WITH(vigil::run_registry(journal_at("")),
                    Catch::Matchers::Contains("path is empty"));
  CHECK_THROWS_WITH(vigil::run_registry(journal_at(dir.path / "x", 0)),
                    Catch::Matchers::Contains("sync_every must be at least 1, got 0"));
  CHECK_THROWS_AS(vigil::run_registry(journal_at(dir.path / "missing-dir" / "runs.jsonl")),
                  std::system_error);
  vigil::run_registry memory;
  memory.compact();  // nothing to do without a journal
  memory.flush();
  CHECK(memory.recovery().lines == 0);
}

namespace {

/// The journal writer child: spawned with its stdout on a pipe, killed with SIGKILL.
class writer_process {
 public:
  explicit writer_process(const fs::path& journal) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    const std::string journal_path = journal.string();
    char* argv[] = {const_cast<char*>(VIGIL_TEST_JOURNAL_WRITER),
                    const_cast<char*>(journal_path.c_str()), nullptr};
    const int spawned =
        ::posix_spawn(&pid_, VIGIL_TEST_JOURNAL_WRITER, &actions, nullptr, argv, environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = fds[0];
    REQUIRE(spawned == 0);
  }

  ~writer_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
  }

  /// The next line it printed, waiting at most `limit`; empty on timeout or end of output.
  std::string next_line(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (const auto end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return {};
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        continue;
      char chunk[4096];
      const ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0)
        return {};
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// SIGKILL, then reaps it; whether it died of the signal.
  bool kill_now() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

}  // namespace

TEST_CASE("a journal writer killed with SIGKILL mid-run loses no finished run",
          "[runs][journal][process]") {
  const std::size_t wanted = GENERATE(1, 150);  // killed early, and well into its work
  temp_dir dir;
  const fs::path path = dir.path / "runs.jsonl";
  std::map<std::string, std::string> finished;  // id -> result, as the writer printed them
  {
    writer_process writer(path);
    while (finished.size() < wanted) {
      const std::string line = writer.next_line(std::chrono::seconds(20));
      INFO("the writer stopped printing before " << wanted << " runs finished");
      REQUIRE(line.rfind("finished ", 0) == 0);
      std::istringstream fields(line.substr(9));
      std::string id;
      std::string result;
      fields >> id >> result;
      finished[id] = result;
    }
    REQUIRE(writer.kill_now());
  }
  vigil::run_registry reopened(journal_at(path));
  for (const auto& [id, result] : finished) {
    INFO("run " << id);
    const auto r = reopened.get(id);
    REQUIRE(r.has_value());
    CHECK(r->status == S::completed);
    CHECK(r->result == result);
  }
  CHECK(reopened.list(S::queued).empty());
  CHECK(reopened.list(S::running).empty());
  // Whatever the writer had queued or running is now failed "interrupted", nothing else failed.
  const std::vector<vigil::run> failed = reopened.list(S::failed);
  CHECK(failed.size() == reopened.recovery().interrupted.size());
  for (const vigil::run& r : failed)
    CHECK(r.error_message == "interrupted");
  CHECK(reopened.size() >= finished.size());
}
