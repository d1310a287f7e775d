#pragma once

// A real redis-server on a loopback port for the redis_bus tests, with a producer client
// (hiredis, blocking: the tests call it between awaits).

#include <catch.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <hiredis/hiredis.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace vigil_test {

/// A redis-server child process whose data survives `kill()` and `start()` (append-only file,
/// fsync on every write): what a production Redis promises, so that the tests can check that
/// nothing is lost across a crash.
class redis_server {
 public:
  redis_server() {
    char dir_template[] = "/tmp/vigil-redis-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    dir_ = dir_template;
    port_ = free_port();
    start();
  }

  ~redis_server() {
    kill();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const { return port_; }

  /// Starts the server (again) and waits until it answers PING.
  void start() {
    REQUIRE(pid_ == 0);
    const std::string port = std::to_string(port_);
    const std::string log = dir_ + "/redis.log";
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     port,
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_,
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     "always",
                                     "--save",
                                     "",
                                     "--logfile",
                                     log,
                                     "--daemonize",
                                     "no"};
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    // Standard streams on /dev/null: if this test process dies, the orphan server must not
    // hold ctest's output pipe open.
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    for (int fd = 0; fd <= 2; ++fd)
      ::posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY,
                                         0);
    const int spawned =
        ::posix_spawn(&pid_, VIGIL_TEST_REDIS_SERVER, &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    REQUIRE(spawned == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!answers()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a process: no event
    }
  }

  /// SIGKILL: no goodbye to the clients, as in a crash.
  void kill() {
    client_.reset();
    if (pid_ == 0)
      return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  /// Runs one command and returns its reply (freed by the caller's unique_ptr).
  struct reply_deleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

  reply_ptr command(const std::vector<std::string>& args) {
    connect();
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    reply_ptr reply(static_cast<redisReply*>(redisCommandArgv(
        client_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
    REQUIRE(reply != nullptr);
    INFO(args.front() << ": " << (reply->type == REDIS_REPLY_ERROR ? reply->str : ""));
    REQUIRE(reply->type != REDIS_REPLY_ERROR);
    return reply;
  }

  /// Adds `{n: <i>}` for i in [from, to) to `stream`; their IDs.
  std::vector<std::string> add(const std::string& stream, int from, int to) {
    std::vector<std::string> ids;
    for (int i = from; i < to; ++i)
      ids.emplace_back(command({"XADD", stream, "*", "n", std::to_string(i)})->str);
    return ids;
  }

  /// Entries of `group` read but not acknowledged.
  long long pending(const std::string& stream, const std::string& group) {
    return command({"XPENDING", stream, group})->element[0]->integer;
  }

 private:
  /// A port free a moment ago, below the kernel's ephemeral range (32768 and up), so that the
  /// bus's own outgoing connections never take it while the server is down.
  static std::uint16_t free_port() {
    asio::io_context io;
    const unsigned first = 20000 + static_cast<unsigned>(::getpid()) % 10000;
    for (unsigned i = 0; i < 10000; ++i) {
      const auto port = static_cast<std::uint16_t>(20000 + (first - 20000 + i) % 10000);
      asio::ip::tcp::acceptor probe(io);
      std::error_code ec;
      probe.open(asio::ip::tcp::v4(), ec);
      probe.bind({asio::ip::make_address("127.0.0.1"), port}, ec);
      if (!ec)
        return port;
    }
    FAIL("no free port between 20000 and 29999");
    return 0;
  }

  struct context_deleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };

  void connect() {
    if (client_ && client_->err == 0)
      return;
    client_.reset(redisConnect("127.0.0.1", port_));
    REQUIRE(client_ != nullptr);
    REQUIRE(client_->err == 0);
  }

  bool answers() {
    std::unique_ptr<redisContext, context_deleter> probe(redisConnect("127.0.0.1", port_));
    if (probe == nullptr || probe->err != 0)
      return false;
    reply_ptr pong(static_cast<redisReply*>(redisCommand(probe.get(), "PING")));
    // Loading the append-only file answers "-LOADING": not ready yet.
    return pong != nullptr && pong->type == REDIS_REPLY_STATUS;
  }

  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = 0;
  std::unique_ptr<redisContext, context_deleter> client_;
};

}  // namespace vigil_test
