// bus_worker: one supervised task consumes two buses, an in-process queue of orders and a TCP
// feed of ticks. The TCP peer (plain Asio in this program, standing for an outside service)
// dies every second and stays down for a moment. Watch the worker crash with the feed, stop
// its other bus, back off, reconnect and go on; the orders published meanwhile wait in their
// queue. After --seconds N (default 5) or on Ctrl-C the supervisor shuts down gracefully.
//
//   bus_worker [--seconds N]
//
// Exits with 0 after a clean shutdown in which the worker was restarted and handled messages
// of both buses, 1 otherwise.

#include <vigil/vigil.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

namespace {

/// The outside service: sends "tick N" lines for a second, then dies (connection and listener
/// closed) for 400 ms, and comes back on the same port.
asio::awaitable<void> flaky_peer(tcp::endpoint at, std::shared_ptr<std::atomic<bool>> running) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  for (int tick = 1; running->load();) {
    tcp::acceptor acceptor(executor, at, /*reuse_address=*/true);
    tcp::socket peer = co_await acceptor.async_accept(asio::use_awaitable);
    for (const auto until = std::chrono::steady_clock::now() + 1s;
         std::chrono::steady_clock::now() < until && running->load(); ++tick) {
      const std::string line = fmt::format("tick {}\n", tick);
      co_await asio::async_write(peer, asio::buffer(line), asio::use_awaitable);
      timer.expires_after(100ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    peer.close();
    acceptor.close();
    timer.expires_after(400ms);  // down for a while: connecting is refused
    co_await timer.async_wait(asio::use_awaitable);
  }
}

/// A free loopback port for the peer.
tcp::endpoint free_endpoint(asio::io_context& io) {
  tcp::acceptor probe(io, {asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint();
}

}  // namespace

int main(int argc, char** argv) {
  std::chrono::seconds run_for = 5s;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string_view(argv[i]) == "--seconds")
      run_for = std::chrono::seconds(std::strtol(argv[i + 1], nullptr, 10));

  asio::io_context io;
  const tcp::endpoint feed_at = free_endpoint(io);
  auto peer_running = std::make_shared<std::atomic<bool>>(true);
  asio::co_spawn(io, flaky_peer(feed_at, peer_running), asio::detached);

  vigil::supervisor_options options;
  options.handle_signals = true;
  options.shutdown_grace = 2s;
  options.subscribers = {std::make_shared<vigil::log_subscriber>(stdout)};
  vigil::supervisor sup{io.get_executor(), options};

  auto orders = std::make_shared<vigil::memory_bus<int>>(
      io.get_executor(), vigil::memory_bus_options{.name = "orders"});
  auto feed = std::make_shared<vigil::tcp_line_bus>(
      io.get_executor(),
      vigil::tcp_line_bus_options{.host = "127.0.0.1", .port = feed_at.port(), .name = "feed"});

  int orders_handled = 0;
  int ticks_handled = 0;
  vigil::message_handler<int> on_order = [&](std::string_view source,
                                             int id) -> asio::awaitable<void> {
    ++orders_handled;
    fmt::print("  handled order {} from {}\n", id, source);
    co_return;
  };
  vigil::message_handler<std::string> on_tick = [&](std::string_view,
                                                    std::string line) -> asio::awaitable<void> {
    ++ticks_handled;
    fmt::print("  handled \"{}\"\n", line);
    co_return;
  };
  vigil::message_bus_worker worker;
  worker.add(orders, on_order).add(feed, on_tick);

  vigil::task_spec spec;
  spec.name = "consumer";
  spec.fn = worker;
  spec.restart = vigil::restart_policy::always;
  spec.backoff = vigil::backoff_policy::exponential(100ms, 1s, 2.0);
  spec.backoff.reset_after = 500ms;  // connected for half a second: healthy again
  spec.stop_grace = 1s;
  const vigil::task_handle consumer = sup.add(std::move(spec));

  // Orders arrive every 250 ms, whether the consumer is up or not.
  asio::steady_timer order_clock(io);
  int next_order = 1;
  std::function<void(std::error_code)> publish_order = [&](std::error_code ec) {
    if (ec)
      return;
    orders->publish("web", next_order++);
    order_clock.expires_after(250ms);
    order_clock.async_wait(publish_order);
  };
  order_clock.expires_after(250ms);
  order_clock.async_wait(publish_order);

  asio::steady_timer deadline(io, run_for);
  deadline.async_wait([&](std::error_code ec) {
    if (!ec)
      sup.shutdown();
  });

  bool clean = false;
  asio::co_spawn(io, sup.run(),
                 [&](const std::exception_ptr& error, const vigil::shutdown_report& report) {
                   deadline.cancel();
                   order_clock.cancel();
                   peer_running->store(false);
                   io.stop();  // the peer may be waiting in accept: nothing else to run
                   clean = !error && report.within_grace;
                 });
  io.run();

  const auto outcome = consumer.try_outcome();
  const std::uint32_t attempts = outcome ? outcome->attempts : 0;
  fmt::print(
      "\nsummary: {} attempts of the consumer, {} orders and {} ticks handled, {} orders "
      "still queued\n",
      attempts, orders_handled, ticks_handled, orders->queued());
  return clean && attempts > 1 && orders_handled > 0 && ticks_handled > 0 ? 0 : 1;
}
