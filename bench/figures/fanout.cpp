// (7) fanout: one publisher, 8 subscribers, N events (1 M), every event delivered to all 8.
//
// - vigil: a standalone `vigil::event_bus` with 8 subscriptions of capacity 1024, each drained
//   by its own coroutine: `try_next()` while events are buffered, `co_await next()` only when
//   the queue is empty. The bus never pushes back (a full queue drops its oldest event), so
//   the publisher yields (`co_await asio::post`) after every 1024 events to let the readers
//   drain; a lost event (`subscriber_overflow`) fails the figure.
// - raw Asio: 8 `asio::experimental::channel<void(std::error_code, vigil::event)>` of capacity
//   1024 (the single-threaded channel, the cheaper one; vigil's bus is thread-safe), each read
//   by its own coroutine: `try_receive()` first, `co_await async_receive()` only when empty. The
//   publisher does `try_send()` first and `co_await async_send()` only when that channel is
//   full, so it also suspends about once per 1024 events.
// Both publish copies of the same event (two short strings, no heap allocation per copy).
// The clock runs from the first publication until all 8 readers have received all N events.
//
// Prints deliveries per second: N published x 8 subscribers / time.
// ratio = vigil throughput / asio throughput (higher is better).

#include "../figures.hpp"

#include <vigil/event_bus.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bench {

namespace {

constexpr std::size_t subscribers = 8;
constexpr std::size_t capacity = 1024;

vigil::event sample_event() {
  vigil::event e;
  e.kind = vigil::event_kind::attempt_failed;
  e.task = "worker-17";
  e.attempt = 3;
  e.reason = "connection reset";
  return e;
}

/// What the readers share: how many finished, and when the last one did.
struct readers {
  std::size_t finished = 0;
  std::size_t lost = 0;
  steady::time_point last;

  void reader_done() {
    if (++finished == subscribers)
      last = steady::now();
  }
};

// ---- vigil ----------------------------------------------------------------------------------

asio::awaitable<void> vigil_reader(vigil::subscription* sub, std::size_t n, readers* all) {
  std::size_t received = 0;
  while (received < n) {
    std::optional<vigil::event> e = sub->try_next();
    if (!e)
      e = co_await sub->next();
    if (e->kind == vigil::event_kind::subscriber_overflow)
      all->lost += e->dropped;
    else
      ++received;
  }
  all->reader_done();
}

asio::awaitable<void> vigil_publisher(vigil::event_bus* bus, std::size_t n,
                                      steady::time_point* start) {
  const vigil::event e = sample_event();
  *start = steady::now();
  for (std::size_t i = 1; i <= n; ++i) {
    bus->publish(e);
    if (i % capacity == 0)
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  }
}

double vigil_rate(std::size_t n) {
  asio::io_context io;
  vigil::event_bus bus;
  std::vector<vigil::subscription> subs;
  for (std::size_t k = 0; k < subscribers; ++k)
    subs.push_back(bus.subscribe(capacity));
  readers all;
  steady::time_point start;
  auto rethrow = [](const std::exception_ptr& error) {
    if (error)
      std::rethrow_exception(error);
  };
  for (vigil::subscription& sub : subs)
    asio::co_spawn(io, vigil_reader(&sub, n, &all), rethrow);
  asio::co_spawn(io, vigil_publisher(&bus, n, &start), rethrow);
  io.run();
  expect(all.finished == subscribers && all.lost == 0,
         "fanout: vigil readers finished {} of {}, {} events lost", all.finished, subscribers,
         all.lost);
  return static_cast<double>(n * subscribers) / seconds_between(start, all.last);
}

// ---- raw Asio -------------------------------------------------------------------------------

using channel = asio::experimental::channel<void(std::error_code, vigil::event)>;

asio::awaitable<void> asio_reader(channel* ch, std::size_t n, readers* all) {
  std::size_t received = 0;
  auto take = [&received](std::error_code, vigil::event) { ++received; };
  while (received < n) {
    if (!ch->try_receive(take)) {
      vigil::event e = co_await ch->async_receive(asio::use_awaitable);
      ++received;
    }
  }
  all->reader_done();
}

asio::awaitable<void> asio_publisher(std::vector<std::unique_ptr<channel>>* channels, std::size_t n,
                                     steady::time_point* start) {
  const vigil::event e = sample_event();
  *start = steady::now();
  for (std::size_t i = 0; i < n; ++i)
    for (const std::unique_ptr<channel>& ch : *channels)
      if (!ch->try_send(std::error_code{}, e))
        co_await ch->async_send(std::error_code{}, e, asio::use_awaitable);
}

double asio_rate(std::size_t n) {
  asio::io_context io;
  std::vector<std::unique_ptr<channel>> channels;
  for (std::size_t k = 0; k < subscribers; ++k)
    channels.push_back(std::make_unique<channel>(io, capacity));
  readers all;
  steady::time_point start;
  auto rethrow = [](const std::exception_ptr& error) {
    if (error)
      std::rethrow_exception(error);
  };
  for (const std::unique_ptr<channel>& ch : channels)
    asio::co_spawn(io, asio_reader(ch.get(), n, &all), rethrow);
  asio::co_spawn(io, asio_publisher(&channels, n, &start), rethrow);
  io.run();
  expect(all.finished == subscribers, "fanout: asio readers finished {} of {}", all.finished,
         subscribers);
  return static_cast<double>(n * subscribers) / seconds_between(start, all.last);
}

}  // namespace

void fanout(const options& opt) {
  const std::size_t n = opt.size(1'000'000);
  const medians m = measure(
      fmt::format("{} events x {}", count_label(n), subscribers), "deliveries/s", repetitions,
      opt.warm_up(), [n] { return vigil_rate(n); }, [n] { return asio_rate(n); });
  print_summary("fanout", m.vigil, m.asio, "deliveries/s", throughput_ratio(m.vigil, m.asio));
}

}  // namespace bench
