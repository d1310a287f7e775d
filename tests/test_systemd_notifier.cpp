// The systemd notifier, against a real AF_UNIX datagram socket opened the way systemd opens its
// notification socket: readiness, stopping, the watchdog, abstract names, the environment.

#include <vigil/systemd_notifier.hpp>

#include "support.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/local/datagram_protocol.hpp>

#include <array>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>

// POSIX / Linux: kernel receive timestamps, temporary directories, the environment.
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

using namespace vigil_test;
using K = vigil::event_kind;

namespace {

using wall = std::chrono::system_clock;

/// One notification, stamped by the kernel when it was queued (not when the test read it: a
/// late reader must not make two pings look close together).
struct datagram {
  std::string text;
  wall::time_point at;
};

/// A unique temporary directory, removed with the socket file in it.
class temp_dir {
 public:
  temp_dir() {
    std::array<char, 32> pattern{"/tmp/vigil-sd-XXXXXX"};
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern.data();
  }
  ~temp_dir() {
    ::unlink((path_ + "/notify").c_str());
    ::rmdir(path_.c_str());
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string socket() const { return path_ + "/notify"; }

 private:
  std::string path_;
};

/// `@vigil-test-<pid>-<random>`: an abstract name no other run uses.
std::string abstract_name() {
  std::random_device random;
  return "@vigil-test-" + std::to_string(::getpid()) + "-" + std::to_string(random());
}

/// systemd's end: a datagram socket bound to `address` (a path, or `@name`), reporting kernel
/// receive timestamps. Used from one strand (the test body's) only.
class listener {
 public:
  listener(asio::io_context& io, const std::string& address)
      : socket_(io, asio::local::datagram_protocol()) {
    std::string raw = address;
    if (!raw.empty() && raw.front() == '@')
      raw.front() = '\0';  // asio's endpoint keeps the exact length of an abstract name
    socket_.bind(asio::local::datagram_protocol::endpoint(raw));
    const int on = 1;
    REQUIRE(::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0);
  }

  /// A datagram already queued, or nothing; never waits.
  std::optional<datagram> try_receive() {
    std::array<char, 256> text{};
    iovec part{text.data(), text.size()};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
    msghdr message{};
    message.msg_iov = &part;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    const ssize_t size = ::recvmsg(socket_.native_handle(), &message, MSG_DONTWAIT);
    if (size < 0)
      return std::nullopt;
    datagram result{std::string(text.data(), static_cast<std::size_t>(size)), wall::now()};
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec stamp{};
        std::memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
        result.at = wall::time_point(std::chrono::duration_cast<wall::duration>(
            std::chrono::seconds(stamp.tv_sec) + std::chrono::nanoseconds(stamp.tv_nsec)));
      }
    return result;
  }

  /// The next datagram, or nothing when none came within `limit`.
  asio::awaitable<std::optional<datagram>> receive(std::chrono::steady_clock::duration limit) {
    using namespace asio::experimental::awaitable_operators;
    if (auto queued = try_receive())
      co_return queued;
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    const auto winner =
        co_await (socket_.async_wait(asio::socket_base::wait_read, asio::use_awaitable) ||
                  timer.async_wait(asio::use_awaitable));
    if (winner.index() == 1)
      co_return std::nullopt;
    co_return try_receive();
  }

 private:
  asio::local::datagram_protocol::socket socket_;
};

vigil::systemd_notifier::options notifier_options(std::string socket,
                                                  std::optional<vigil::duration> watchdog) {
  vigil::systemd_notifier::options options;
  options.socket = std::move(socket);
  options.watchdog = watchdog;
  return options;
}

vigil::supervisor_options with_subscriber(std::shared_ptr<vigil::subscriber> subscriber) {
  vigil::supervisor_options options;
  options.subscribers.push_back(std::move(subscriber));
  return options;
}

/// An io_context, systemd's socket, a notifier sending to it, a supervisor feeding the notifier
/// and a subscription that sees every event. Destroyed in reverse: the io_context last.
struct fixture {
  explicit fixture(const std::string& address,
                   std::optional<vigil::duration> watchdog = std::nullopt)
      : systemd(io, address),
        notifier(vigil::systemd_notifier::create(io.get_executor(),
                                                 notifier_options(address, watchdog))),
        sup(io.get_executor(), with_subscriber(notifier)),
        events(sup.events().subscribe(1 << 16)) {}

  void run(asio::awaitable<void> body) { vigil_test::run(io, std::move(body)); }

  asio::io_context io;
  listener systemd;
  std::shared_ptr<vigil::systemd_notifier> notifier;
  vigil::supervisor sup;
  vigil::subscription events;
};

asio::awaitable<void> ready_when_open(vigil::task_context ctx, gate open) {
  co_await open.wait();
  ctx.ready();
  co_await sleep_forever(ctx);
}

asio::awaitable<void> shut_down(fixture& f) {
  co_await f.sup.shutdown().wait();
  co_await read_until(f.events, K::all_stopped_within_grace);
}

/// READY=1 arrives; the supervisor shuts down; STOPPING=1 arrives; the shutdown completes.
asio::awaitable<void> expect_ready_then_stopping(fixture& f) {
  const auto ready = co_await f.systemd.receive(10s);
  REQUIRE(ready);
  CHECK(ready->text == "READY=1");
  f.sup.shutdown();
  const auto stopping = co_await f.systemd.receive(10s);
  REQUIRE(stopping);
  CHECK(stopping->text == "STOPPING=1");
  co_await shut_down(f);
}

asio::awaitable<void> ready_once_all_are(fixture& f) {
  gate first_ready;
  gate second_ready;
  f.sup.add(quick_spec("first", [first_ready](vigil::task_context ctx) {
    return ready_when_open(std::move(ctx), first_ready);
  }));
  f.sup.add(quick_spec("second", [second_ready](vigil::task_context ctx) {
    return ready_when_open(std::move(ctx), second_ready);
  }));
  // Both registered before "first" gets ready: with "first" ready alone, READY=1 would be right.
  co_await read_until(f.events, K::task_added, "second");
  first_ready.open();
  co_await read_until(f.events, K::task_ready, "first");
  // "second" is not ready: nothing may have been sent. The notifier reads on its own strand, so
  // it may lag behind this subscription; the bounded wait gives a wrong READY=1 time to show.
  CHECK_FALSE(f.systemd.try_receive());
  const auto early = co_await f.systemd.receive(30ms);
  CHECK_FALSE(early);

  second_ready.open();
  co_await expect_ready_then_stopping(f);
  CHECK_FALSE(f.systemd.try_receive());  // READY=1 and STOPPING=1 went out once each
  CHECK(f.notifier->failed_sends() == 0);
}

}  // namespace

TEST_CASE("READY=1 goes out once every task is ready and STOPPING=1 at shutdown",
          "[systemd][ready]") {
  temp_dir dir;
  fixture f(dir.socket());
  CHECK(f.notifier->name() == "systemd");
  f.run(ready_once_all_are(f));
}

namespace {

asio::awaitable<void> ready_and_stopping(fixture& f) {
  f.sup.add(quick_spec("only", ready_then_wait));
  co_await expect_ready_then_stopping(f);
  CHECK(f.notifier->failed_sends() == 0);
}

}  // namespace

TEST_CASE("an @name socket is reached in the abstract namespace", "[systemd][abstract]") {
  fixture f(abstract_name());
  f.run(ready_and_stopping(f));
}

namespace {

asio::awaitable<void> pings_until_stopping(fixture& f) {
  std::vector<datagram> pings;
  while (pings.size() < 4) {
    const auto ping = co_await f.systemd.receive(10s);
    REQUIRE(ping);
    CHECK(ping->text == "WATCHDOG=1");
    pings.push_back(*ping);
  }
  for (std::size_t i = 1; i < pings.size(); ++i) {
    INFO("gap " << i << ": "
                << std::chrono::duration_cast<std::chrono::microseconds>(pings[i].at -
                                                                         pings[i - 1].at)
                       .count()
                << "us");
    CHECK(pings[i].at - pings[i - 1].at >= 25ms);  // every 50ms; loose for slow machines
  }

  f.sup.shutdown();
  // A ping may be on its way before STOPPING=1; none may follow it.
  for (;;) {
    const auto next = co_await f.systemd.receive(10s);
    REQUIRE(next);
    if (next->text == "STOPPING=1")
      break;
    CHECK(next->text == "WATCHDOG=1");
  }
  const auto late = co_await f.systemd.receive(200ms);  // four ping periods
  CHECK_FALSE(late);
  co_await shut_down(f);
  CHECK(f.notifier->failed_sends() == 0);
}

}  // namespace

TEST_CASE("the watchdog pings every half period until STOPPING=1", "[systemd][watchdog]") {
  temp_dir dir;
  fixture f(dir.socket(), 100ms);
  f.run(pings_until_stopping(f));  // run() also checks that the timer let the io_context go
}

namespace {

asio::awaitable<void> ping_then(listener& systemd,
                                std::shared_ptr<vigil::systemd_notifier>& notifier, bool drop) {
  const auto first = co_await systemd.receive(10s);
  REQUIRE(first);
  CHECK(first->text == "WATCHDOG=1");
  if (drop) {
    notifier.reset();  // the last owner: the timer must not keep the io_context running
  } else {
    vigil::event gave_up;
    gave_up.kind = K::intensity_exceeded;
    gave_up.task = "crashy";
    notifier->on_event(gave_up);
  }
  // A ping already queued may arrive; then nothing for four periods.
  auto next = co_await systemd.receive(200ms);
  if (next)
    next = co_await systemd.receive(200ms);
  CHECK_FALSE(next);
}

}  // namespace

TEST_CASE("the watchdog ends with intensity_exceeded and with the notifier",
          "[systemd][watchdog]") {
  temp_dir dir;
  asio::io_context io;
  listener systemd(io, dir.socket());
  const bool drop = GENERATE(false, true);
  CAPTURE(drop);
  auto notifier =
      vigil::systemd_notifier::create(io.get_executor(), notifier_options(dir.socket(), 100ms));
  run(io, ping_then(systemd, notifier, drop));
}

namespace {

asio::awaitable<void> silent(vigil::supervisor& sup, vigil::subscription& events,
                             std::shared_ptr<vigil::systemd_notifier> notifier) {
  sup.add(quick_spec("up", ready_then_wait));
  co_await read_until(events, K::task_ready, "up");
  co_await sup.shutdown().wait();
  co_await read_until(events, K::all_stopped_within_grace);
  CHECK(notifier->failed_sends() == 0);
}

}  // namespace

TEST_CASE("without a socket the notifier does nothing, watchdog or not", "[systemd][disabled]") {
  asio::io_context io;
  auto notifier = vigil::systemd_notifier::create(io.get_executor(), notifier_options("", 50ms));
  vigil::supervisor sup(io.get_executor(), with_subscriber(notifier));
  auto events = sup.events().subscribe(1 << 16);
  run(io, silent(sup, events, notifier));  // run() fails if a watchdog timer kept io running
}

TEST_CASE("readiness follows attempts and removals", "[systemd][ready]") {
  temp_dir dir;
  asio::io_context io;
  listener systemd(io, dir.socket());
  auto notifier = vigil::systemd_notifier::create(io.get_executor(),
                                                  notifier_options(dir.socket(), std::nullopt));
  const auto feed = [&notifier](K kind, const std::string& task) {
    vigil::event e;
    e.kind = kind;
    e.task = task;
    notifier->on_event(e);
  };
  // Sends are synchronous: a datagram is queued by the time on_event returns.
  feed(K::task_added, "a");
  feed(K::task_added, "b");
  feed(K::attempt_starting, "a");
  feed(K::task_ready, "a");
  feed(K::attempt_failed, "a");  // "a" is in backoff: not ready any more
  feed(K::attempt_starting, "b");
  feed(K::task_ready, "b");
  CHECK_FALSE(systemd.try_receive());
  feed(K::attempt_starting, "a");
  feed(K::task_removed, "a");  // the one not ready leaves: every remaining task is ready
  const auto ready = systemd.try_receive();
  REQUIRE(ready);
  CHECK(ready->text == "READY=1");
  feed(K::task_added, "c");
  feed(K::task_ready, "c");  // never twice
  CHECK_FALSE(systemd.try_receive());
  feed(K::shutdown_requested, "");
  feed(K::shutdown_requested, "");
  const auto stopping = systemd.try_receive();
  REQUIRE(stopping);
  CHECK(stopping->text == "STOPPING=1");
  CHECK_FALSE(systemd.try_receive());
  CHECK(notifier->failed_sends() == 0);
}

TEST_CASE("no READY=1 after the shutdown started or the supervisor gave up", "[systemd][ready]") {
  temp_dir dir;
  asio::io_context io;
  listener systemd(io, dir.socket());
  auto notifier = vigil::systemd_notifier::create(io.get_executor(),
                                                  notifier_options(dir.socket(), std::nullopt));
  vigil::event e;
  e.task = "a";
  e.kind = K::task_added;
  notifier->on_event(e);
  e.kind = GENERATE(K::intensity_exceeded, K::shutdown_requested);
  CAPTURE(e.kind);
  notifier->on_event(e);
  if (e.kind == K::shutdown_requested) {
    const auto stopping = systemd.try_receive();
    REQUIRE(stopping);
    CHECK(stopping->text == "STOPPING=1");
  }
  e.kind = K::task_ready;
  notifier->on_event(e);
  CHECK_FALSE(systemd.try_receive());
}

TEST_CASE("a nested supervisor's forwarded events are not the root's", "[systemd][nesting]") {
  temp_dir dir;
  asio::io_context io;
  listener systemd(io, dir.socket());
  auto notifier = vigil::systemd_notifier::create(io.get_executor(),
                                                  notifier_options(dir.socket(), std::nullopt));
  vigil::event e;
  e.task = "payments";
  e.kind = K::task_added;
  notifier->on_event(e);
  // The nested supervisor's own steps and its children, one level down.
  e.depth = 1;
  e.kind = K::shutdown_requested;
  notifier->on_event(e);
  e.kind = K::intensity_exceeded;
  notifier->on_event(e);
  e.task = "payments/db";
  e.kind = K::task_added;
  notifier->on_event(e);
  CHECK_FALSE(systemd.try_receive());
  // The nested supervisor's readiness arrives as its task's own task_ready.
  e.depth = 0;
  e.task = "payments";
  e.kind = K::task_ready;
  notifier->on_event(e);
  const auto ready = systemd.try_receive();
  REQUIRE(ready);
  CHECK(ready->text == "READY=1");
}

TEST_CASE("a failed send is counted, never thrown", "[systemd][errors]") {
  temp_dir dir;
  asio::io_context io;
  // Nobody listens there.
  auto notifier = vigil::systemd_notifier::create(io.get_executor(),
                                                  notifier_options(dir.socket(), std::nullopt));
  vigil::event e;
  e.task = "a";
  e.kind = K::task_ready;
  CHECK_NOTHROW(notifier->on_event(e));  // READY=1
  e.kind = K::shutdown_requested;
  CHECK_NOTHROW(notifier->on_event(e));  // STOPPING=1
  CHECK(notifier->failed_sends() == 2);
}

TEST_CASE("unusable options are refused, naming the field and the value", "[systemd][validation]") {
  asio::io_context io;
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(vigil::systemd_notifier::create(io.get_executor(), notifier_options("", 0ms)),
                    Contains("options.watchdog") && Contains("positive") && Contains("0s"));
  CHECK_THROWS_WITH(vigil::systemd_notifier::create(io.get_executor(),
                                                    notifier_options("run/notify", std::nullopt)),
                    Contains("options.socket") && Contains("\"run/notify\""));
  CHECK_THROWS_WITH(vigil::systemd_notifier::create(
                        io.get_executor(), notifier_options("/" + std::string(107, 'x'), {})),
                    Contains("options.socket") && Contains("longer than 107"));
  CHECK_THROWS_AS(vigil::systemd_notifier::create(io.get_executor(), notifier_options("@", {})),
                  std::invalid_argument);
  CHECK_THROWS_WITH(vigil::systemd_notifier::create(
                        io.get_executor(), notifier_options("@" + std::string(108, 'x'), {})),
                    Contains("longer than 108"));
  CHECK_NOTHROW(vigil::systemd_notifier::create(io.get_executor(),
                                                notifier_options("@" + std::string(107, 'x'), {})));
}

namespace {

/// Sets (or, with nullptr, unsets) an environment variable for one scope. Only while no other
/// thread runs: the environment is not thread-safe.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name))
      old_ = old;
    set(value);
  }
  ~scoped_env() { set(old_ ? old_->c_str() : nullptr); }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

  void set(const char* value) const {
    if (value != nullptr)
      ::setenv(name_, value, 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("the default options come from systemd's environment variables",
          "[systemd][environment]") {
  using options = vigil::systemd_notifier::options;
  const std::string me = std::to_string(::getpid());
  scoped_env socket("NOTIFY_SOCKET", nullptr);
  scoped_env usec("WATCHDOG_USEC", nullptr);
  scoped_env pid("WATCHDOG_PID", nullptr);
  CHECK(options{}.socket.empty());
  CHECK_FALSE(options{}.watchdog);

  socket.set("@vigil-env");
  usec.set("2500000");
  CHECK(options{}.socket == "@vigil-env");
  CHECK(options{}.watchdog == std::optional<vigil::duration>(2500ms));
  pid.set(me.c_str());
  CHECK(options{}.watchdog == std::optional<vigil::duration>(2500ms));
  pid.set("1");  // for another process
  CHECK_FALSE(options{}.watchdog);
  pid.set(nullptr);
  for (const char* bad : {"", "0", "-5", "12abc", "99999999999999999999999"}) {
    CAPTURE(bad);
    usec.set(bad);
    CHECK_FALSE(options{}.watchdog);
  }

  temp_dir dir;
  asio::io_context io;
  listener systemd(io, dir.socket());
  socket.set(dir.socket().c_str());
  usec.set(nullptr);
  auto notifier = vigil::systemd_notifier::from_environment(io.get_executor());
  vigil::event e;
  e.task = "a";
  e.kind = K::task_ready;
  notifier->on_event(e);
  const auto ready = systemd.try_receive();
  REQUIRE(ready);
  CHECK(ready->text == "READY=1");
}
