#pragma once

/// @file
/// A message bus over one TCP connection that carries newline-delimited frames.

#include <vigil/chrono.hpp>
#include <vigil/message_bus.hpp>
#include <vigil/running_handle.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace vigil {

namespace detail {
struct tcp_line_state;
}

/// How a `tcp_line_bus` connects and frames.
struct tcp_line_bus_options {
  std::string host{};      ///< name or address to connect to; required
  std::uint16_t port = 0;  ///< required
  /// For events and logs; `tcp:<host>:<port>` when empty. Also the `source` of every message.
  std::string name{};
  /// Bytes a frame may have, its newline excluded. A longer frame crashes the run (never a
  /// buffer overrun). From 1 to 2^30.
  std::size_t max_frame = 64 * 1024;
  /// How long `start()` may take to resolve and connect. Positive.
  duration connect_timeout = std::chrono::seconds(5);
  handler_failure on_handler_failure = handler_failure::skip;
};

/// Connects to `host:port` and hands every newline-terminated frame to the handler as a
/// `std::string`, without its `\n` (and without a `\r` before it).
///
/// Reconnecting is not its job: the connection closing is a crash unless `stop()` was called,
/// and the supervisor restarts the worker with its backoff, which calls `start()` again.
///
/// @par Delivery guarantee
/// At most once: TCP has no acknowledgement the peer could act on. A frame whose handler failed
/// or was cancelled by `stop()` is gone, and so are bytes after the last newline when the
/// connection ends.
///
/// @par Crashes
/// The peer closing the connection (`connection closed by the peer`), a read error, a frame
/// longer than `max_frame`, and a handler failure under `handler_failure::crash`.
///
/// Destroy the bus before its execution context, like any Asio I/O object.
class tcp_line_bus final : public message_bus<std::string> {
 public:
  /// @throws std::invalid_argument naming the field when `options` is unusable.
  tcp_line_bus(asio::any_io_executor executor, tcp_line_bus_options options);

  /// Requests the end of a run in progress and returns at once.
  ~tcp_line_bus() override;

  tcp_line_bus(const tcp_line_bus&) = delete;
  tcp_line_bus& operator=(const tcp_line_bus&) = delete;

  const std::string& name() const noexcept override;

  /// Resolves and connects (within `connect_timeout`), then starts reading.
  /// @throws std::system_error when it cannot connect (the reason and `host:port` in `what()`).
  /// @throws std::invalid_argument when `handler` is empty.
  asio::awaitable<running_handle> start(handler_type handler) override;

  asio::awaitable<void> stop() override;

  bus_counters counters() const override;

 private:
  std::shared_ptr<detail::tcp_line_state> state_;
};

}  // namespace vigil
