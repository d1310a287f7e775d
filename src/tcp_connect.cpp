#include "tcp_connect.hpp"

#include "text.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <exception>
#include <system_error>
#include <tuple>

namespace vigil::detail {
namespace {

using tcp = asio::ip::tcp;
constexpr auto as_tuple = asio::experimental::as_tuple(asio::use_awaitable);

/// One connection attempt, shared with its deadline and with a cancellation of the caller:
/// either may fire after the connect returned, and must then do nothing. Strand only.
struct attempt {
  attempt(std::shared_ptr<const void> o, const asio::strand<asio::any_io_executor>& strand,
          tcp::socket& s)
      : owner(std::move(o)), resolver(strand), socket(s) {}
  std::shared_ptr<const void> owner;  // keeps `socket` alive
  tcp::resolver resolver;
  tcp::socket& socket;
  bool over = false;  // the connect returned
  bool timed_out = false;
  bool aborted = false;  // the caller was cancelled

  void cut(bool& why) {
    if (over)
      return;
    why = true;
    resolver.cancel();
    std::error_code ignored;
    socket.close(ignored);
  }
};

std::exception_ptr connect_error(const tcp_target& t, std::error_code ec, std::string_view what) {
  return std::make_exception_ptr(
      std::system_error(ec, fmt::format("{}: {}", t.error_prefix, what)));
}

/// On the strand: resolves and connects; the deadline closes the socket if it takes too long.
asio::awaitable<void> connect(std::shared_ptr<attempt> a, const tcp_target& t) {
  asio::steady_timer deadline(a->resolver.get_executor(), t.timeout);
  deadline.async_wait([a](std::error_code ec) {
    if (!ec)
      a->cut(a->timed_out);
  });
  const std::string where = fmt::format("{}:{}", t.host, t.port);
  auto [error, endpoints] =
      co_await a->resolver.async_resolve(t.host, std::to_string(t.port), as_tuple);
  if (!error && !a->timed_out && !a->aborted) {
    auto [connect_failed, endpoint] = co_await asio::async_connect(a->socket, endpoints, as_tuple);
    std::ignore = endpoint;
    error = connect_failed;
  }
  a->over = true;
  deadline.cancel();
  if (a->aborted)
    std::rethrow_exception(
        connect_error(t, asio::error::operation_aborted, "start() cancelled while connecting"));
  if (a->timed_out)
    std::rethrow_exception(
        connect_error(t, asio::error::timed_out,
                      fmt::format("cannot connect to {} within {}", where, to_text(t.timeout))));
  if (error)
    std::rethrow_exception(connect_error(t, error, "cannot connect to " + where));
}

}  // namespace

asio::awaitable<void> connect_on_strand(std::shared_ptr<const void> owner,
                                        asio::strand<asio::any_io_executor> strand,
                                        asio::ip::tcp::socket& socket, tcp_target target) {
  auto a = std::make_shared<attempt>(std::move(owner), strand, socket);
  asio::cancellation_slot slot = (co_await asio::this_coro::cancellation_state).slot();
  if (slot.is_connected())
    slot.assign(
        [strand, a](asio::cancellation_type) { asio::post(strand, [a] { a->cut(a->aborted); }); });
  std::exception_ptr failed;
  try {
    // No cancellation slot: Asio would forward the caller's to the strand synchronously.
    co_await asio::co_spawn(
        strand, connect(a, target),
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  } catch (...) {
    failed = std::current_exception();
  }
  if (slot.is_connected())
    slot.clear();
  if (failed)
    std::rethrow_exception(failed);
}

}  // namespace vigil::detail
