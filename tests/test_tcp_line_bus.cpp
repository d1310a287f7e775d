// tcp_line_bus against a peer that is not vigil (tests/peers/line_peer.py): frames, CRLF,
// frames split across writes, the peer closing (a crash), an oversize frame (a crash, never an
// overrun), a refused connection, and the contract (same handle twice, stop, restart).

#include "support.hpp"

#include <vigil/tcp_line_bus.hpp>

#include <asio/ip/tcp.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace vigil_test;

namespace {

/// The Python peer, started with a scenario; its destructor waits for it to exit.
class line_peer {
 public:
  explicit line_peer(const std::string& scenario) {
    const std::string command =
        std::string("python3 '") + VIGIL_TEST_PEERS + "/line_peer.py' " + scenario;
    pipe_ = ::popen(command.c_str(), "r");
    REQUIRE(pipe_ != nullptr);
    char line[64] = {};
    REQUIRE(std::fgets(line, sizeof line, pipe_) != nullptr);
    port_ = static_cast<std::uint16_t>(std::atoi(line));
    REQUIRE(port_ != 0);
  }
  ~line_peer() { ::pclose(pipe_); }
  line_peer(const line_peer&) = delete;
  line_peer& operator=(const line_peer&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  std::FILE* pipe_ = nullptr;
  std::uint16_t port_ = 0;
};

/// Records frames; opens `got` at the `n`-th.
struct frames {
  explicit frames(std::size_t n) : expected(n) {}
  std::shared_ptr<std::vector<std::string>> seen = std::make_shared<std::vector<std::string>>();
  gate got;
  std::size_t expected;

  vigil::message_handler<std::string> handler() const {
    return [seen = seen, got = got, n = expected](std::string_view,
                                                  std::string frame) -> asio::awaitable<void> {
      seen->push_back(std::move(frame));
      if (seen->size() == n)
        got.open();
      co_return;
    };
  }
};

vigil::tcp_line_bus_options local(std::uint16_t port) {
  return {.host = "127.0.0.1", .port = port};
}

}  // namespace

TEST_CASE("tcp_line_bus refuses unusable options", "[bus][tcp]") {
  asio::io_context io;
  CHECK_THROWS_WITH(vigil::tcp_line_bus(io.get_executor(), {.port = 1}),
                    Catch::Matchers::Contains("tcp_line_bus_options.host must not be empty"));
  CHECK_THROWS_WITH(vigil::tcp_line_bus(io.get_executor(), {.host = "localhost"}),
                    Catch::Matchers::Contains("tcp_line_bus_options.port must not be 0"));
  CHECK_THROWS_WITH(
      vigil::tcp_line_bus(io.get_executor(), {.host = "localhost", .port = 1, .max_frame = 0}),
      Catch::Matchers::Contains("max_frame must be between 1 and 1073741824, got 0"));
  CHECK_THROWS_WITH(vigil::tcp_line_bus(io.get_executor(),
                                        {.host = "localhost", .port = 1, .connect_timeout = -1s}),
                    Catch::Matchers::Contains("connect_timeout must be positive, got -1s"));
  const vigil::tcp_line_bus named{io.get_executor(), {.host = "localhost", .port = 9000}};
  CHECK(named.name() == "tcp:localhost:9000");
}

TEST_CASE("tcp_line_bus reads frames split across writes, CRLF included, and stops cleanly",
          "[bus][tcp]") {
  line_peer peer("lines");
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::tcp_line_bus bus{io.get_executor(), local(peer.port())};
    frames f{3};
    const auto handle = co_await bus.start(f.handler());
    const auto same = co_await bus.start(f.handler());
    CHECK(same == handle);  // idempotent while running
    co_await f.got.wait();
    CHECK(*f.seen == std::vector<std::string>{"alpha", "beta", "gamma"});
    CHECK_FALSE(handle.done());
    co_await bus.stop();
    CHECK(handle.done());
    CHECK_FALSE(handle.crashed());
    co_await bus.stop();  // already stopped: a no-op
    CHECK(bus.counters().delivered == 3);
  }());
}

TEST_CASE("tcp_line_bus crashes when the peer closes, and stop() after that does not throw",
          "[bus][tcp]") {
  line_peer peer("close");
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    vigil::tcp_line_bus bus{io.get_executor(), local(peer.port())};
    frames f{1};
    const auto handle = co_await bus.start(f.handler());
    const std::string crash = co_await crash_of(handle);
    CHECK_THAT(crash, Catch::Matchers::Contains("connection closed by the peer"));
    CHECK_THAT(crash, Catch::Matchers::Contains("tcp:127.0.0.1:"));
    CHECK(*f.seen == std::vector<std::string>{"only"});
    CHECK(bus.counters().dropped == 1);  // the unterminated "partial"
    co_await bus.stop();
  }());
}

TEST_CASE("tcp_line_bus crashes on a frame longer than max_frame", "[bus][tcp]") {
  line_peer peer("garbage");
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto options = local(peer.port());
    options.max_frame = 1024;
    vigil::tcp_line_bus bus{io.get_executor(), options};
    frames f{1};
    const auto handle = co_await bus.start(f.handler());
    const std::string crash = co_await crash_of(handle);
    CHECK_THAT(crash, Catch::Matchers::Contains("a frame is longer than max_frame (1024 bytes)"));
    CHECK(f.seen->empty());
    co_await bus.stop();
  }());
}

TEST_CASE("tcp_line_bus: max_frame counts the frame without its line ending", "[bus][tcp]") {
  line_peer peer("exact");
  asio::io_context io;
  run(io, [&]() -> asio::awaitable<void> {
    auto options = local(peer.port());
    options.max_frame = 4;
    vigil::tcp_line_bus bus{io.get_executor(), options};
    frames f{2};
    const auto handle = co_await bus.start(f.handler());
    const std::string crash = co_await crash_of(handle);
    CHECK_THAT(crash, Catch::Matchers::Contains("a frame is longer than max_frame (4 bytes)"));
    CHECK(*f.seen == std::vector<std::string>{"abcd", "efgh"});
    co_await bus.stop();
  }());
}

TEST_CASE("tcp_line_bus start() throws when nothing listens, and can start again later",
          "[bus][tcp]") {
  asio::io_context io;
  std::uint16_t port = 0;
  {  // a port that was free a moment ago, closed again: connecting is refused
    asio::ip::tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  run(io, [&]() -> asio::awaitable<void> {
    vigil::tcp_line_bus bus{io.get_executor(), local(port)};
    frames f{1};
    std::string refused;
    try {
      co_await bus.start(f.handler());
    } catch (const std::system_error& e) {
      refused = e.what();
    }
    CHECK_THAT(refused, Catch::Matchers::Contains("cannot connect to 127.0.0.1:"));
    co_await bus.stop();  // nothing runs: a no-op
  }());
}
