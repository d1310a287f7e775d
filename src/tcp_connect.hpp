#pragma once

// Internal: how a TCP adapter connects its socket, with a deadline, a cancellable start().

#include <vigil/chrono.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/strand.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace vigil::detail {

/// Where and how long, and how an error reads: `<prefix>: cannot connect to host:port`.
struct tcp_target {
  std::string host;
  std::uint16_t port = 0;
  duration timeout{};
  std::string error_prefix;  // "vigil: tcp_line_bus 'feed'"
};

/// Resolves `target` and connects `socket` on `strand`, the socket's executor, within
/// `target.timeout`. A cancellation of the awaiting coroutine aborts the attempt: it is carried
/// over to the strand, where it alone may touch the socket. `owner` keeps the socket alive for
/// handlers that run after this returned.
///
/// @throws std::system_error when it cannot connect, timed out or was cancelled.
asio::awaitable<void> connect_on_strand(std::shared_ptr<const void> owner,
                                        asio::strand<asio::any_io_executor> strand,
                                        asio::ip::tcp::socket& socket, tcp_target target);

}  // namespace vigil::detail
