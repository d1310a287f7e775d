#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <tuple>
#include <utility>

namespace vigil::detail {

/// How `first_of` ended: which operation finished first, and how each one ended.
struct first_of_result {
  std::size_t first = 0;  ///< 0: `a`, 1: `b`
  std::exception_ptr a_error;
  std::exception_ptr b_error;
};

/// Runs `a` and `b` on `executor` until either finishes, however it finishes (unlike Asio
/// 1.22's `||`, which waits for a success), cancels the other and waits for it to end.
/// Cancelling the caller cancels both. Call it into a named awaitable first: its arguments are
/// by value, and GCC 12 destroys such an argument twice inside a co_await expression.
inline asio::awaitable<first_of_result> first_of(asio::any_io_executor executor,
                                                 asio::awaitable<void> a, asio::awaitable<void> b) {
  auto group = asio::experimental::make_parallel_group(
      asio::co_spawn(executor, std::move(a), asio::experimental::deferred),
      asio::co_spawn(executor, std::move(b), asio::experimental::deferred));
  const asio::experimental::wait_for_one whichever_ends;
  auto ended = co_await group.async_wait(whichever_ends, asio::use_awaitable);
  co_return first_of_result{std::get<0>(ended)[0], std::get<1>(ended), std::get<2>(ended)};
}

}  // namespace vigil::detail
