// request_runner and its strategies, against a fake peer that fails, stalls and records when it
// was called: order and one-at-a-time with concurrency 1, failures kept out of results(), retry
// counts and delays, rate-limit spacing over 50 requests, timeout, the circuit breaker's
// transitions, drain on close, back-pressure, withdrawal of a cancelled request.

#include "support.hpp"

#include <vigil/requests/circuit_breaker.hpp>
#include <vigil/requests/rate_limit.hpp>
#include <vigil/requests/request_runner.hpp>
#include <vigil/requests/retry.hpp>
#include <vigil/requests/timeout.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/this_coro.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace vigil_test;
using runner = vigil::request_runner<int, int>;
using clock_type = std::chrono::steady_clock;

namespace {

/// The peer requests go to: answers `r * 10`, after failing as told, or holding until a gate.
struct fake_peer {
  std::mutex mutex;
  std::vector<int> calls;  // requests, in the order they reached the peer
  std::vector<clock_type::time_point> times;
  std::map<int, int> failures_left;  // request -> calls that fail before one succeeds
  bool always_fail = false;
  std::optional<gate> hold;          // when set, each call waits for it (cancellable)...
  std::optional<int> held;           // ...or only this request's calls, when set
  gate first_call;                   // opened by the first call
  std::function<void(int)> on_call;  // when set, called with each request as its call begins
  int in_flight = 0;
  int peak = 0;
  int cancelled = 0;

  runner::sender sender(const std::shared_ptr<fake_peer>& self) {
    return [self](int r) { return call(self, r); };
  }

  static asio::awaitable<int> call(std::shared_ptr<fake_peer> self, int r) {
    bool fail = false;
    std::optional<gate> wait;
    {
      std::lock_guard lock(self->mutex);
      self->calls.push_back(r);
      self->times.push_back(clock_type::now());
      self->peak = std::max(self->peak, ++self->in_flight);
      if (self->always_fail || self->failures_left[r] > 0) {
        fail = true;
        --self->failures_left[r];
      }
      if (!self->held || *self->held == r)
        wait = self->hold;
    }
    self->first_call.open();
    if (self->on_call)
      self->on_call(r);
    struct leave {
      fake_peer* peer;
      ~leave() {
        std::lock_guard lock(peer->mutex);
        --peer->in_flight;
      }
    } on_exit{self.get()};
    if (wait) {
      try {
        co_await wait->wait();
      } catch (const std::system_error&) {
        std::lock_guard lock(self->mutex);
        ++self->cancelled;
        throw;
      }
    }
    if (fail)
      throw std::runtime_error(fmt::format("peer refused {}", r));
    co_return r * 10;
  }

  std::vector<int> calls_made() {
    std::lock_guard lock(mutex);
    return calls;
  }
};

/// As below, the request starting on `start`; its outcome still lands on `ex`.
void send_in_background(asio::any_io_executor ex, asio::any_io_executor start, runner& requests,
                        int r, std::string& out, int& finished) {
  auto land = [&out, &finished](std::exception_ptr e, int response) {
    try {
      if (e)
        std::rethrow_exception(e);
      out = fmt::format("ok {}", response);
    } catch (const std::exception& failure) {
      out = fmt::format("error: {}", failure.what());
    }
    ++finished;
  };
  asio::co_spawn(std::move(start), requests.request(r), asio::bind_executor(ex, std::move(land)));
}

/// Starts `requests.request(r)` in the background; its outcome lands in `out` ("ok N" or "error:
/// …").
void send_in_background(asio::any_io_executor ex, runner& requests, int r, std::string& out,
                        int& finished) {
  send_in_background(ex, ex, requests, r, out, finished);
}

/// Waits on a timer: how the tests let time pass where time is what is tested.
asio::awaitable<void> pause(std::chrono::milliseconds d) {
  const asio::any_io_executor ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, d);
  co_await timer.async_wait(asio::use_awaitable);
}

/// Waits until `done` or fails after `limit`, looking every millisecond.
template <class Predicate>
asio::awaitable<void> until(Predicate done, std::chrono::milliseconds limit = 10s) {
  const auto deadline = clock_type::now() + limit;
  while (!done()) {
    REQUIRE(clock_type::now() < deadline);
    co_await pause(1ms);
  }
}

vigil::retry_options quick_retry(std::uint32_t attempts, std::chrono::milliseconds delay) {
  vigil::retry_options options;
  options.max_attempts = attempts;
  options.backoff = vigil::backoff_policy::constant(delay);
  return options;
}

}  // namespace

TEST_CASE("request_runner sends one at a time, in order, and streams the responses", "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  peer->failures_left[3] = 1;  // request 3 fails (no retry): its awaiter alone hears of it
  runner requests(io.get_executor(), peer->sender(peer));
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(8);
    int finished = 0;
    for (int r = 0; r < 8; ++r)
      send_in_background(ex, requests, r, outcomes[static_cast<std::size_t>(r)], finished);
    std::vector<int> streamed;
    auto results = requests.results();
    while (streamed.size() < 7) {
      const std::optional<int> next = co_await results.next();
      REQUIRE(next.has_value());
      streamed.push_back(*next);
    }
    co_await until([&] { return finished == 8; });
    CHECK(peer->calls_made() == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
    CHECK(peer->peak == 1);
    CHECK(streamed == std::vector<int>{0, 10, 20, 40, 50, 60, 70});  // 3 failed: not streamed
    CHECK(outcomes[2] == "ok 20");
    CHECK(outcomes[3] == "error: peer refused 3");

    co_await requests.close();
    const std::optional<int> after_close = co_await results.next();
    CHECK_FALSE(after_close.has_value());
  }());
}

TEST_CASE("request_runner sends up to `concurrency` at once", "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer), {}, {.concurrency = 3});
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(10);
    int finished = 0;
    for (int r = 0; r < 10; ++r)
      send_in_background(ex, requests, r, outcomes[static_cast<std::size_t>(r)], finished);
    co_await until([&] { return requests.in_flight() == 3; });
    CHECK(requests.queued() == 7);
    release.open();
    co_await requests.close();
    // close() returns once every request was answered; the awaiters resume on their own.
    co_await until([&] { return finished == 10; });
    CHECK(peer->peak == 3);
    CHECK(outcomes[9] == "ok 90");
  }());
}

TEST_CASE("retry calls again after the backoff delay, up to max_attempts", "[requests][retry]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  auto again = std::make_shared<vigil::retry>(quick_retry(3, 20ms));
  runner requests(io.get_executor(), peer->sender(peer), {again});
  peer->failures_left[1] = 2;  // succeeds on the third call
  peer->failures_left[2] = 5;  // never within three
  run(io, [&]() -> asio::awaitable<void> {
    const int first = co_await requests.request(1);
    CHECK(first == 10);
    CHECK(again->retries() == 2);
    {
      std::lock_guard lock(peer->mutex);
      REQUIRE(peer->times.size() == 3);
      CHECK(peer->times[1] - peer->times[0] >= 20ms);
      CHECK(peer->times[2] - peer->times[1] >= 20ms);
    }
    std::string failure;
    try {
      co_await requests.request(2);
    } catch (const std::runtime_error& e) {
      failure = e.what();
    }
    CHECK(failure == "peer refused 2");  // the last failure, as it was
    CHECK(peer->calls_made() == std::vector<int>{1, 1, 1, 2, 2, 2});
    co_await requests.close();
  }());
}

TEST_CASE("retry asks its predicate which failures retry", "[requests][retry]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  vigil::retry_options options = quick_retry(5, 1ms);
  options.retry_on = [](const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::runtime_error& failure) {
      return std::string(failure.what()) != "peer refused 7";
    }
  };
  runner requests(io.get_executor(), peer->sender(peer), {std::make_shared<vigil::retry>(options)});
  peer->failures_left[7] = 1;
  peer->failures_left[8] = 1;
  run(io, [&]() -> asio::awaitable<void> {
    bool seven_failed = false;
    try {
      co_await requests.request(7);
    } catch (const std::runtime_error&) {
      seven_failed = true;
    }
    CHECK(seven_failed);
    const int eight = co_await requests.request(8);
    CHECK(eight == 80);
    CHECK(peer->calls_made() == std::vector<int>{7, 8, 8});
    co_await requests.close();
  }());
}

TEST_CASE("rate_limit spaces 50 requests evenly", "[requests][rate_limit]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  const std::size_t burst = GENERATE(1, 5);
  // 200 calls per second: one every 5 ms once the burst is spent.
  runner requests(io.get_executor(), peer->sender(peer),
                  {std::make_shared<vigil::rate_limit>(200, 1s, burst)}, {.concurrency = 4});
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(50);
    int finished = 0;
    const auto before = clock_type::now();  // before any token is taken
    for (int r = 0; r < 50; ++r)
      send_in_background(ex, requests, r, outcomes[static_cast<std::size_t>(r)], finished);
    co_await requests.close();
    co_await until([&] { return finished == 50; });
    std::lock_guard lock(peer->mutex);
    REQUIRE(peer->times.size() == 50);
    // Call k (from 0) may not go out before (k - burst + 1) intervals after the first token
    // was taken, itself after `before`: a timer never fires early, so this holds however loaded
    // the machine is. Without the limit they would all go out within a few milliseconds.
    for (std::size_t k = burst; k < 50; ++k) {
      INFO("call " << k);
      CHECK(peer->times[k] - before >= 5ms * static_cast<int>(k - burst + 1));
    }
  }());
}

TEST_CASE("timeout cancels a call that runs past its limit", "[requests][timeout]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate never;
  runner requests(io.get_executor(), peer->sender(peer), {std::make_shared<vigil::timeout>(30ms)});
  run(io, [&]() -> asio::awaitable<void> {
    const int quick = co_await requests.request(1);  // well within the limit
    CHECK(quick == 10);
    peer->hold = never;
    const auto began = clock_type::now();
    std::string failure;
    try {
      co_await requests.request(2);
    } catch (const vigil::request_timeout& e) {
      failure = e.what();
      CHECK(e.limit() == 30ms);
    }
    CHECK(failure == "vigil: the request did not complete within 30ms");
    CHECK(clock_type::now() - began >= 30ms);
    CHECK(peer->cancelled == 1);  // the stalled call was cancelled, not left behind

    peer->hold.reset();
    peer->failures_left[3] = 1;  // a call failing before its limit fails with its own failure
    std::string own;
    try {
      co_await requests.request(3);
    } catch (const std::runtime_error& e) {
      own = e.what();
    }
    CHECK(own == "peer refused 3");
    co_await requests.close();
  }());
}

TEST_CASE("circuit_breaker opens, fails fast, half-opens after the cooldown and closes",
          "[requests][breaker]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  auto breaker = std::make_shared<vigil::circuit_breaker>(vigil::circuit_breaker_options{3, 40ms});
  runner requests(io.get_executor(), peer->sender(peer), {breaker});
  const auto outcome_of = [&](int r) -> asio::awaitable<std::string> {
    try {
      const int response = co_await requests.request(r);
      co_return fmt::format("ok {}", response);
    } catch (const std::exception& e) {
      co_return std::string(e.what());
    }
  };
  run(io, [&]() -> asio::awaitable<void> {
    peer->always_fail = true;
    for (int r = 0; r < 3; ++r) {
      CHECK(breaker->state() == vigil::breaker_state::closed);
      const std::string failed = co_await outcome_of(r);
      CHECK(failed == fmt::format("peer refused {}", r));
    }
    CHECK(breaker->state() == vigil::breaker_state::open);
    const std::string fast = co_await outcome_of(3);
    CHECK_THAT(fast, Catch::Matchers::Contains("circuit breaker open: not calling for another"));
    CHECK(peer->calls_made().size() == 3);  // failed fast: the peer was not called

    co_await pause(45ms);  // the cooldown is what is under test
    CHECK(breaker->state() == vigil::breaker_state::half_open);
    const std::string trial_failed = co_await outcome_of(4);  // the trial fails: open again
    CHECK(trial_failed == "peer refused 4");
    CHECK(breaker->state() == vigil::breaker_state::open);

    co_await pause(45ms);
    peer->always_fail = false;
    const std::string trial_ok = co_await outcome_of(5);  // the trial succeeds: closed
    CHECK(trial_ok == "ok 50");
    CHECK(breaker->state() == vigil::breaker_state::closed);
    co_await requests.close();
  }());
}

TEST_CASE("a breaker ignores the late outcome of a call admitted before it opened",
          "[requests][breaker]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  peer->held = 1;              // request 1 is slow...
  peer->failures_left[0] = 1;  // ...and request 0 fails at once: the breaker opens
  auto breaker = std::make_shared<vigil::circuit_breaker>(
      vigil::circuit_breaker_options{.failure_threshold = 1, .cooldown = 1h});
  runner requests(io.get_executor(), peer->sender(peer), {breaker}, {.concurrency = 2});
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(2);
    int finished = 0;
    send_in_background(ex, requests, 1, outcomes[1], finished);
    co_await peer->first_call.wait();
    send_in_background(ex, requests, 0, outcomes[0], finished);
    co_await until([&] { return finished == 1; });
    CHECK(outcomes[0] == "error: peer refused 0");
    CHECK(breaker->state() == vigil::breaker_state::open);
    release.open();  // request 1 succeeds now: news from before the breaker opened
    co_await until([&] { return finished == 2; });
    CHECK(outcomes[1] == "ok 10");
    CHECK(breaker->state() == vigil::breaker_state::open);
    co_await requests.close();
  }());
}

namespace {

/// A sender whose call fails with `operation_aborted` on its own, nobody having cancelled it
/// (its socket closed under it, say); counts its calls.
asio::awaitable<int> aborts_by_itself(std::shared_ptr<std::atomic<int>> calls, int) {
  ++*calls;
  throw std::system_error(asio::error::operation_aborted, "the socket was closed under the call");
  co_return 0;
}

/// The text of what `call` threw; empty when it returned.
asio::awaitable<std::string> failure_of(asio::awaitable<int> call) {
  std::string what;
  try {
    co_await std::move(call);
  } catch (const std::exception& e) {
    what = e.what();
  }
  co_return what;
}

}  // namespace

TEST_CASE("operation_aborted from the sender is a failure; the caller's cancellation is not",
          "[requests][retry][breaker]") {
  asio::io_context io;
  auto calls = std::make_shared<std::atomic<int>>(0);
  const runner::sender aborting = [calls](int r) { return aborts_by_itself(calls, r); };
  auto again = std::make_shared<vigil::retry>(quick_retry(2, 1ms));
  auto breaker = std::make_shared<vigil::circuit_breaker>(vigil::circuit_breaker_options{2, 1h});
  runner requests(io.get_executor(), aborting, {again, breaker});

  // Cancelled by a timeout around them: retry does not call again, the breaker counts nothing.
  auto peer = std::make_shared<fake_peer>();
  peer->hold = gate{};  // never opens
  auto held_breaker =
      std::make_shared<vigil::circuit_breaker>(vigil::circuit_breaker_options{1, 1h});
  runner timed(io.get_executor(), peer->sender(peer),
               {std::make_shared<vigil::timeout>(20ms), again, held_breaker});
  run(io, [&]() -> asio::awaitable<void> {
    asio::awaitable<std::string> first = failure_of(requests.request(1));
    const std::string aborted = co_await std::move(first);
    CHECK_THAT(aborted, Catch::Matchers::Contains("closed under the call"));
    CHECK(calls->load() == 2);  // called again, and both failures opened the breaker
    CHECK(breaker->state() == vigil::breaker_state::open);
    CHECK(again->retries() == 1);

    asio::awaitable<std::string> second = failure_of(timed.request(7));
    const std::string timed_out = co_await std::move(second);
    CHECK_THAT(timed_out, Catch::Matchers::Contains("did not complete within"));
    CHECK(peer->calls_made() == std::vector<int>{7});  // not called again
    CHECK(peer->cancelled == 1);
    CHECK(held_breaker->state() == vigil::breaker_state::closed);  // one failure would open it
    CHECK(again->retries() == 1);
    co_await requests.close();
    co_await timed.close();
  }());
}

TEST_CASE("retry over an open breaker waits the cooldown out", "[requests][retry][breaker]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  auto breaker = std::make_shared<vigil::circuit_breaker>(
      vigil::circuit_breaker_options{.failure_threshold = 2, .cooldown = 50ms});
  runner requests(io.get_executor(), peer->sender(peer),
                  {std::make_shared<vigil::retry>(quick_retry(4, 1ms)), breaker});
  peer->failures_left[6] = 2;  // two failures open the breaker; the trial then succeeds
  run(io, [&]() -> asio::awaitable<void> {
    const int six = co_await requests.request(6);
    CHECK(six == 60);
    CHECK(peer->calls_made() == std::vector<int>{6, 6, 6});  // circuit_open cost no call
    {
      std::lock_guard lock(peer->mutex);
      CHECK(peer->times[2] - peer->times[1] >= 50ms);  // not the 1 ms backoff: the cooldown
    }
    CHECK(breaker->state() == vigil::breaker_state::closed);
    co_await requests.close();
  }());
}

TEST_CASE("close refuses new requests, drains the queue and ends results()", "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer));
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(5);
    int finished = 0;
    for (int r = 0; r < 5; ++r)
      send_in_background(ex, requests, r, outcomes[static_cast<std::size_t>(r)], finished);
    co_await peer->first_call.wait();

    bool closed = false;
    asio::co_spawn(ex, requests.close(), [&](std::exception_ptr) { closed = true; });
    co_await pause(0ms);  // close() has begun: it runs first, from the strand's queue
    std::string late;
    try {
      co_await requests.request(99);
    } catch (const std::logic_error& e) {
      late = e.what();
    }
    CHECK(late == "vigil: request_runner: closed, the request was not queued");
    CHECK_FALSE(closed);  // four requests are still to be sent

    release.open();
    co_await until([&] { return closed && finished == 5; });
    CHECK(outcomes[4] == "ok 40");
    CHECK(peer->calls_made() == std::vector<int>{0, 1, 2, 3, 4});
    auto results = requests.results();
    std::vector<int> left;
    for (;;) {
      const std::optional<int> next = co_await results.next();
      if (!next)
        break;
      left.push_back(*next);
    }
    CHECK(left == std::vector<int>{0, 10, 20, 30, 40});  // every response, then the end
  }());
}

TEST_CASE("a full queue makes request() wait for room", "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer), {}, {.queue_capacity = 2});
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(5);
    int finished = 0;
    for (int r = 0; r < 5; ++r)
      send_in_background(ex, requests, r, outcomes[static_cast<std::size_t>(r)], finished);
    co_await peer->first_call.wait();
    // One being sent, two queued, two callers waiting for room: not queued past the capacity.
    CHECK(requests.in_flight() == 1);
    CHECK(requests.queued() == 2);
    CHECK(finished == 0);
    release.open();
    co_await until([&] { return finished == 5; });
    CHECK(outcomes[4] == "ok 40");  // the callers that waited were queued in turn, not refused
    CHECK(peer->calls_made() == std::vector<int>{0, 1, 2, 3, 4});
    co_await requests.close();
  }());
}

TEST_CASE("room in a full queue goes to the caller that waited for it, not a later one",
          "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer), {}, {.queue_capacity = 1});
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(4);
    int finished = 0;
    // Request 1's call begins the moment it leaves the queue, and request 2 has waited for that
    // room since it was made: a request made right then (3) must queue behind 2.
    // (Started on the io_context's executor, not this body's strand, co_spawn runs the request
    // inline, up to its first suspension, inside the call. Its outcome lands on the strand.)
    peer->on_call = [&](int r) {
      if (r == 1)
        send_in_background(ex, io.get_executor(), requests, 3, outcomes[3], finished);
    };
    for (int r = 0; r < 3; ++r)  // 0 is sent, 1 queued, 2 waits for room
      send_in_background(ex, requests, r, outcomes[static_cast<std::size_t>(r)], finished);
    co_await peer->first_call.wait();
    release.open();
    co_await until([&] { return finished == 4; });
    CHECK(peer->calls_made() == std::vector<int>{0, 1, 2, 3});
    CHECK(outcomes == std::vector<std::string>{"ok 0", "ok 10", "ok 20", "ok 30"});
    co_await requests.close();
  }());
}

TEST_CASE("a caller still waiting for room when close() comes is refused", "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer), {}, {.queue_capacity = 1});
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::vector<std::string> outcomes(3);
    int finished = 0;
    for (int r = 0; r < 3; ++r)  // 0 is sent, 1 queued, 2 waits for room
      send_in_background(ex, requests, r, outcomes[static_cast<std::size_t>(r)], finished);
    co_await peer->first_call.wait();
    bool closed = false;
    asio::co_spawn(ex, requests.close(), [&](std::exception_ptr) { closed = true; });
    co_await until([&] { return finished == 1; });
    CHECK(outcomes[2] == "error: vigil: request_runner: closed, the request was not queued");
    release.open();
    co_await until([&] { return closed && finished == 3; });
    CHECK(outcomes[0] == "ok 0");
    CHECK(outcomes[1] == "ok 10");
    CHECK(peer->calls_made() == std::vector<int>{0, 1});
  }());
}

TEST_CASE("a request cancelled while queued is never sent", "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer));
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::string first;
    int finished = 0;
    send_in_background(ex, requests, 1, first, finished);
    co_await peer->first_call.wait();

    asio::cancellation_signal cancel;
    std::exception_ptr second_error;
    bool second_done = false;
    asio::co_spawn(ex, requests.request(2),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, int) {
                     second_error = e;
                     second_done = true;
                   }));
    co_await until([&] { return requests.queued() == 1; });
    cancel.emit(asio::cancellation_type::terminal);  // on the strand the request runs on
    co_await until([&] { return second_done; });
    CHECK(error_code_of(second_error) == asio::error::operation_aborted);
    CHECK(requests.queued() == 0);

    release.open();
    co_await requests.close();
    co_await until([&] { return finished == 1; });
    CHECK(first == "ok 10");
    CHECK(peer->calls_made() == std::vector<int>{1});
  }());
}

TEST_CASE("result(timeout) waits for the next response, or not at all past the limit",
          "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer));
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    const std::optional<int> nothing = co_await requests.result(20ms);
    CHECK_FALSE(nothing.has_value());
    std::string out;
    int finished = 0;
    send_in_background(ex, requests, 4, out, finished);
    co_await peer->first_call.wait();
    release.open();
    const std::optional<int> got = co_await requests.result(10s);
    CHECK(got == 40);
    co_await requests.close();
    const std::optional<int> ended = co_await requests.result(10s);  // at once: the stream is over
    CHECK_FALSE(ended.has_value());
    co_await until([&] { return finished == 1; });  // `out` outlives its writer
    CHECK(out == "ok 40");
  }());
}

namespace {

/// A response whose copy throws while `copies_to_refuse` is above 0: copying a response is the
/// one step after the send that can fail (its copy constructor, or memory).
std::atomic<int> copies_to_refuse{0};

struct touchy {
  int value = 0;
  explicit touchy(int v) : value(v) {}
  touchy(const touchy& other) : value(other.value) {
    if (copies_to_refuse.fetch_sub(1) > 0)
      throw std::runtime_error("the response cannot be copied");
  }
  touchy(touchy&&) noexcept = default;
  touchy& operator=(const touchy&) = default;
  touchy& operator=(touchy&&) noexcept = default;
};

asio::awaitable<touchy> answer_touchy(int r) {
  co_return touchy{r * 10};
}

}  // namespace

TEST_CASE("a response that cannot be copied fails its request, and the next ones go out",
          "[requests]") {
  asio::io_context io;
  copies_to_refuse = 1;  // the first copy: request 0's, into results()
  vigil::request_runner<int, touchy> requests(io.get_executor(), answer_touchy);
  run(
      io,
      [&]() -> asio::awaitable<void> {
        std::string first;
        try {
          (void)co_await requests.request(0);
        } catch (const std::runtime_error& e) {
          first = e.what();
        }
        CHECK(first == "the response cannot be copied");
        const touchy second = co_await requests.request(1);
        CHECK(second.value == 10);
        const touchy third = co_await requests.request(2);
        CHECK(third.value == 20);
        co_await requests.close();
      }(),
      5s);
  copies_to_refuse = 0;
}

TEST_CASE("duration::max() means never: result(max) waits, a breaker's max cooldown stays open",
          "[requests][breaker]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  gate release;
  peer->hold = release;
  runner requests(io.get_executor(), peer->sender(peer));
  auto breaker = std::make_shared<vigil::circuit_breaker>(
      vigil::circuit_breaker_options{.failure_threshold = 1, .cooldown = vigil::duration::max()});
  auto failing_peer = std::make_shared<fake_peer>();
  failing_peer->always_fail = true;
  runner guarded(io.get_executor(), failing_peer->sender(failing_peer), {breaker});
  run(io, [&]() -> asio::awaitable<void> {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::string out;
    int finished = 0;
    send_in_background(ex, requests, 4, out, finished);
    co_await peer->first_call.wait();
    std::optional<int> got;
    bool answered = false;
    asio::co_spawn(ex, requests.result(vigil::duration::max()),
                   [&](std::exception_ptr, std::optional<int> r) {
                     got = r;
                     answered = true;
                   });
    co_await pause(20ms);  // a deadline overflowed into the past would have ended it by now
    CHECK_FALSE(answered);
    release.open();
    co_await until([&] { return answered; });
    CHECK(got == 40);

    std::string first;
    try {
      (void)co_await guarded.request(1);
    } catch (const std::exception& e) {
      first = e.what();
    }
    CHECK(first == "peer refused 1");
    CHECK(breaker->state() == vigil::breaker_state::open);
    bool failed_fast = false;
    try {
      (void)co_await guarded.request(2);
    } catch (const vigil::circuit_open&) {
      failed_fast = true;
    }
    CHECK(failed_fast);
    CHECK(failing_peer->calls_made() == std::vector<int>{1});
    co_await requests.close();
    co_await guarded.close();
    co_await until([&] { return finished == 1; });
  }());
}

namespace {

/// A strategy of a user's own: counts the calls that pass through it.
class counting final : public vigil::request_strategy {
 public:
  asio::awaitable<void> invoke(const vigil::request_call& next) override {
    ++calls;
    co_await next();
  }
  std::atomic<int> calls{0};
};

}  // namespace

TEST_CASE("strategies chain in order, user strategies included", "[requests]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  auto outer = std::make_shared<counting>();
  auto inner = std::make_shared<counting>();
  // outer sees each request once; inner, under retry, sees each call.
  runner requests(io.get_executor(), peer->sender(peer),
                  {outer, std::make_shared<vigil::retry>(quick_retry(3, 1ms)), inner});
  peer->failures_left[5] = 2;
  run(io, [&]() -> asio::awaitable<void> {
    const int five = co_await requests.request(5);
    CHECK(five == 50);
    CHECK(outer->calls == 1);
    CHECK(inner->calls == 3);
    co_await requests.close();
  }());
}

namespace {

/// A broken strategy: returns without calling anything.
class returns_without_calling final : public vigil::request_strategy {
 public:
  asio::awaitable<void> invoke(const vigil::request_call&) override { co_return; }
};

}  // namespace

TEST_CASE("a chain that returns without a successful call fails the request",
          "[requests][validation]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  runner requests(io.get_executor(), peer->sender(peer),
                  {std::make_shared<returns_without_calling>()});
  run(io, [&]() -> asio::awaitable<void> {
    std::string failure;
    try {
      co_await requests.request(1);
    } catch (const std::logic_error& e) {
      failure = e.what();
    }
    CHECK_THAT(failure,
               Catch::Matchers::Contains("the strategy chain returned without a response"));
    CHECK(peer->calls_made().empty());
    co_await requests.close();
  }());
}

TEST_CASE("request_runner and its strategies refuse bad input with clear errors",
          "[requests][validation]") {
  asio::io_context io;
  auto peer = std::make_shared<fake_peer>();
  CHECK_THROWS_WITH(runner(io.get_executor(), {}),
                    Catch::Matchers::Contains("the sender is empty"));
  CHECK_THROWS_WITH(runner(io.get_executor(), peer->sender(peer), {nullptr}),
                    Catch::Matchers::Contains("strategy 0 of the chain is null"));
  CHECK_THROWS_WITH(runner(io.get_executor(), peer->sender(peer), {}, {.concurrency = 0}),
                    Catch::Matchers::Contains("concurrency must be at least 1"));
  CHECK_THROWS_WITH(runner(io.get_executor(), peer->sender(peer), {}, {.queue_capacity = 0}),
                    Catch::Matchers::Contains("queue_capacity must be at least 1"));
  CHECK_THROWS_WITH(vigil::retry(quick_retry(0, 1ms)),
                    Catch::Matchers::Contains("max_attempts must be at least 1, got 0"));
  CHECK_THROWS_WITH(vigil::rate_limit(0, 1s),
                    Catch::Matchers::Contains("calls must be at least 1"));
  CHECK_THROWS_WITH(vigil::rate_limit(5, 0s), Catch::Matchers::Contains("period must be positive"));
  CHECK_THROWS_WITH(vigil::rate_limit(5, 1s, 0),
                    Catch::Matchers::Contains("burst must be at least 1"));
  CHECK_THROWS_WITH(vigil::timeout(-5ms), Catch::Matchers::Contains("must be positive, got -5ms"));
  CHECK_THROWS_WITH(vigil::circuit_breaker({.failure_threshold = 0}),
                    Catch::Matchers::Contains("failure_threshold must be at least 1"));
  CHECK_THROWS_WITH(vigil::circuit_breaker({.cooldown = 0s}),
                    Catch::Matchers::Contains("cooldown must be positive"));
  CHECK(fmt::format("{}", vigil::breaker_state::half_open) == "half_open");
}
