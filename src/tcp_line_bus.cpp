#include <vigil/tcp_line_bus.hpp>

#include <vigil/detail/bus_run_slot.hpp>

#include "tcp_connect.hpp"
#include "text.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read_until.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>

namespace vigil {

/// Shared by the bus object and its run: the run may outlive the object.
struct detail::tcp_line_state {
  tcp_line_state(asio::any_io_executor executor, tcp_line_bus_options o)
      : strand(asio::make_strand(std::move(executor))), socket(strand), options(std::move(o)) {}

  const asio::strand<asio::any_io_executor> strand;
  asio::ip::tcp::socket socket;           // strand only
  asio::cancellation_signal stop_signal;  // strand only: bound to the read loop
  const tcp_line_bus_options options;

  detail::bus_run_slot slot;
};

namespace {

using tcp = asio::ip::tcp;
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t max_frame_limit = std::size_t{1} << 30;

tcp_line_bus_options validated(tcp_line_bus_options options) {
  const auto fail = [](std::string_view field, const std::string& detail) {
    throw std::invalid_argument(fmt::format("vigil: tcp_line_bus_options.{} {}", field, detail));
  };
  if (options.host.empty())
    fail("host", "must not be empty");
  if (options.port == 0)
    fail("port", "must not be 0");
  if (options.max_frame == 0 || options.max_frame > max_frame_limit)
    fail("max_frame",
         fmt::format("must be between 1 and {}, got {}", max_frame_limit, options.max_frame));
  if (options.connect_timeout <= duration::zero())
    fail("connect_timeout",
         fmt::format("must be positive, got {}", detail::to_text(options.connect_timeout)));
  if (options.on_handler_failure != handler_failure::skip &&
      options.on_handler_failure != handler_failure::crash)
    fail("on_handler_failure",
         fmt::format("is not a policy, got {}", static_cast<unsigned>(options.on_handler_failure)));
  if (options.name.empty())
    options.name = fmt::format("tcp:{}:{}", options.host, options.port);
  return options;
}

std::exception_ptr bus_error(const tcp_line_bus_options& options, std::error_code ec,
                             std::string_view what) {
  return std::make_exception_ptr(
      std::system_error(ec, fmt::format("vigil: tcp_line_bus '{}': {}", options.name, what)));
}

/// One run: reads frames until stop() or a crash.
asio::awaitable<void> read_loop(std::shared_ptr<detail::tcp_line_state> s, bus_run run,
                                tcp_line_bus::handler_type handler) {
  const tcp_line_bus_options& o = s->options;
  std::string buffer;
  std::exception_ptr crash;
  while (!s->slot.stop_requested()) {
    // Room for the frame and its "\r\n": a full buffer without a newline is an oversize frame.
    auto [ec, n] = co_await asio::async_read_until(
        s->socket, asio::dynamic_buffer(buffer, o.max_frame + 2), '\n', as_tuple);
    if (s->slot.stop_requested())
      break;
    if (ec && ec != asio::error::not_found) {
      crash = bus_error(o, ec,
                        ec == asio::error::eof ? "connection closed by the peer" : "read failed");
      break;
    }
    std::string frame;
    if (!ec) {
      frame = buffer.substr(0, n - 1);
      buffer.erase(0, n);
      if (!frame.empty() && frame.back() == '\r')
        frame.pop_back();
    }
    if (ec || frame.size() > o.max_frame) {
      crash = bus_error(o, std::make_error_code(std::errc::message_size),
                        fmt::format("a frame is longer than max_frame ({} bytes)", o.max_frame));
      break;
    }
    {
      std::lock_guard lock(s->slot.mutex);
      ++s->slot.counters.received;
    }
    co_await s->slot.deliver(handler, o.name, std::move(frame), o.on_handler_failure, crash);
    if (crash)
      break;
  }
  std::error_code ignored;
  s->socket.close(ignored);
  if (!buffer.empty()) {
    std::lock_guard lock(s->slot.mutex);
    ++s->slot.counters.dropped;  // an unterminated last frame
  }
  s->slot.end(std::move(run), std::move(crash));
}

/// Marks the run as stopping and ends it on its strand; the run to wait for, if any.
std::optional<running_handle> request_stop(const std::shared_ptr<detail::tcp_line_state>& s) {
  std::optional<running_handle> run = s->slot.request_stop();
  if (run)
    asio::post(s->strand, [s] {
      if (!s->slot.stop_requested())
        return;  // that run ended, and a later one must not get this stop (see bus_run_slot)
      s->stop_signal.emit(asio::cancellation_type::terminal);
      std::error_code ignored;
      s->socket.close(ignored);  // ends a pending read or connect
    });
  return run;
}

}  // namespace

tcp_line_bus::tcp_line_bus(asio::any_io_executor executor, tcp_line_bus_options options)
    : state_(std::make_shared<detail::tcp_line_state>(std::move(executor),
                                                      validated(std::move(options)))) {}

tcp_line_bus::~tcp_line_bus() {
  request_stop(state_);
}

const std::string& tcp_line_bus::name() const noexcept {
  return state_->options.name;
}

asio::awaitable<running_handle> tcp_line_bus::start(handler_type handler) {
  if (!handler)
    throw std::invalid_argument("vigil: tcp_line_bus::start: the handler must not be empty");
  const std::shared_ptr<detail::tcp_line_state> s = state_;
  bus_run run;
  if (std::optional<running_handle> going_on = co_await s->slot.claim(run))
    co_return *going_on;
  // On the strand, where every operation on the socket runs.
  // Arguments named: GCC 12 may destroy a temporary inside a co_await expression twice.
  const tcp_line_bus_options& o = s->options;
  std::shared_ptr<const void> owner = s;
  detail::tcp_target target{o.host, o.port, o.connect_timeout,
                            fmt::format("vigil: tcp_line_bus '{}'", o.name)};
  try {
    co_await detail::connect_on_strand(std::move(owner), s->strand, s->socket, std::move(target));
  } catch (...) {
    // This run never listened: it ends here and start() throws. Cleanly if stop() cut it.
    s->slot.end(run, s->slot.stop_requested() ? nullptr : std::current_exception());
    throw;
  }
  asio::post(s->strand, [s, run, handler = std::move(handler)]() mutable {
    asio::co_spawn(
        s->strand, read_loop(s, std::move(run), std::move(handler)),
        asio::bind_cancellation_slot(s->stop_signal.slot(), [](const std::exception_ptr&) {}));
  });
  co_return run.handle();
}

asio::awaitable<void> tcp_line_bus::stop() {
  const std::shared_ptr<detail::tcp_line_state> s = state_;
  const std::optional<running_handle> run = request_stop(s);
  if (run)
    co_await run->join();  // a crash that already happened is not rethrown
}

bus_counters tcp_line_bus::counters() const {
  return state_->slot.snapshot();
}

}  // namespace vigil
