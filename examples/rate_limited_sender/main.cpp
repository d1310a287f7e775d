// rate_limited_sender: messages to a flaky, rate-limited "chat API", one at a time and in
// order, through retry → circuit_breaker → rate_limit → timeout. The fake API fails one call in
// five, sometimes hangs, and is down from 150 ms to 450 ms after the start: the breaker opens,
// and the retries wait the outage out instead of hammering it. Each message's fate is printed
// as it is known, then a summary.
//
//   rate_limited_sender [--messages N] [--seed S]

#include <vigil/vigil.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

using namespace std::chrono_literals;

namespace {

struct message {
  int number = 0;
  std::string text;
};

/// The chat API: answers with a message id, after 2-6 ms. One call in five fails, one in
/// twenty hangs (the timeout cuts it), and it is down from 150 ms to 450 ms after it started.
class fake_chat_api {
 public:
  explicit fake_chat_api(std::uint64_t seed) : random_(seed) {}

  bool down() const {
    const auto up_for = std::chrono::steady_clock::now() - started_;
    return up_for >= 150ms && up_for < 450ms;
  }

  asio::awaitable<std::string> send(message m) {
    int roll = 0;
    {
      std::lock_guard lock(mutex_);
      roll = static_cast<int>(random_() % 20);
      ++calls_;
    }
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    asio::steady_timer latency(executor, std::chrono::milliseconds(2 + roll % 5));
    if (roll == 0) {
      fmt::print("  api: message {} hangs\n", m.number);
      latency.expires_after(1h);  // the timeout strategy cuts it
    }
    co_await latency.async_wait(asio::use_awaitable);
    const char* refusal = down()     ? "503 service unavailable"
                          : roll < 4 ? "429 too many requests"
                                     : nullptr;
    if (refusal != nullptr) {
      fmt::print("  api: message {} refused: {}\n", m.number, refusal);
      throw std::runtime_error(refusal);
    }
    co_return fmt::format("msg-{:04}", m.number);
  }

  int calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  mutable std::mutex mutex_;
  std::mt19937_64 random_;
  int calls_ = 0;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

struct arguments {
  int messages = 40;
  std::uint64_t seed = std::random_device{}();
};

arguments parse(int argc, char** argv) {
  arguments args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--messages")
      args.messages = std::atoi(argv[i + 1]);
    else if (flag == "--seed")
      args.seed = std::strtoull(argv[i + 1], nullptr, 10);
    else
      throw std::invalid_argument(fmt::format("unknown option {}", flag));
  }
  return args;
}

using sender_runner = vigil::request_runner<message, std::string>;

asio::awaitable<void> send_one(sender_runner& runner, message m, std::atomic<int>& sent,
                               std::atomic<int>& failed) {
  const int number = m.number;
  try {
    asio::awaitable<std::string> sending = runner.request(std::move(m));  // named: GCC 12
    const std::string id = co_await std::move(sending);
    ++sent;
    fmt::print("message {:>3}: sent as {}\n", number, id);
  } catch (const std::exception& e) {
    ++failed;
    fmt::print("message {:>3}: gave up: {}\n", number, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const arguments args = parse(argc, argv);
  asio::io_context io;
  auto api = std::make_shared<fake_chat_api>(args.seed);

  vigil::retry_options retrying;
  retrying.max_attempts = 8;
  retrying.backoff = vigil::backoff_policy::exponential(10ms, 80ms);
  auto breaker = std::make_shared<vigil::circuit_breaker>(
      vigil::circuit_breaker_options{.failure_threshold = 4, .cooldown = 100ms});
  // Outermost first: retry each message (after `circuit_open`, once the cooldown is over); the
  // breaker stops calling a dead API; 50 calls a second with bursts of 3; 50 ms per call.
  sender_runner runner(
      io.get_executor(), [api](message m) { return api->send(std::move(m)); },
      {std::make_shared<vigil::retry>(retrying), breaker,
       std::make_shared<vigil::rate_limit>(50, 1s, 3), std::make_shared<vigil::timeout>(50ms)});

  std::atomic<int> sent{0};
  std::atomic<int> failed{0};
  const auto began = std::chrono::steady_clock::now();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int n = 1; n <= args.messages; ++n)
          asio::co_spawn(io, send_one(runner, {n, fmt::format("hello #{}", n)}, sent, failed),
                         asio::detached);
        // Let each send_one run up to its request(): queued, in order (io runs on this thread).
        co_await asio::post(io, asio::use_awaitable);
        co_await runner.close();  // every queued message is sent or given up on, then it returns
      },
      asio::detached);
  io.run();

  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - began);
  fmt::print("\n{} messages: {} sent, {} given up; {} calls to the API in {} ms; breaker {}\n",
             args.messages, sent.load(), failed.load(), api->calls(), took.count(),
             breaker->state());
  return sent + failed == args.messages ? 0 : 1;
}
