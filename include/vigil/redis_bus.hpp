#pragma once

/// @file
/// A message bus over a Redis stream, read through a consumer group: at-least-once delivery.
/// Part of the optional component `vigil::redis` (built when hiredis is found).

#include <vigil/chrono.hpp>
#include <vigil/message_bus.hpp>
#include <vigil/running_handle.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

namespace detail {
struct redis_state;
}

/// One entry of a stream: its ID and its field-value pairs, in the order they were added.
struct redis_message {
  std::string id{};  ///< `1700000000000-0`
  std::vector<std::pair<std::string, std::string>> fields{};

  /// The value of the first field called `field`, if any.
  std::optional<std::string_view> get(std::string_view field) const {
    for (const auto& [name, value] : fields)
      if (name == field)
        return value;
    return std::nullopt;
  }
};

/// Where a `redis_bus` reads and how.
struct redis_bus_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username{};  ///< an ACL user (`AUTH username password`); needs `password`
  std::string password{};  ///< sent with `AUTH` when not empty
  std::string stream{};    ///< the stream's key; required. Also the `source` of every message
  std::string group{};     ///< the consumer group; required. Created at `$` when missing
  /// This reader's name in the group: `<hostname>:<pid>` when empty. Keep it stable across
  /// restarts of a run: what it had read but not acknowledged is delivered to it again first.
  std::string consumer{};
  /// For events and logs; `redis:<stream>/<group>` when empty.
  std::string name{};
  /// Entries asked for per read. From 1 to 10000.
  std::size_t batch = 16;
  /// How long one read waits for new entries on the server. From 1ms.
  duration block = std::chrono::seconds(1);
  /// An entry read by any consumer but not acknowledged for this long is claimed with
  /// `XAUTOCLAIM` and delivered again: the consumer crashed, or its handler failed. From 1ms.
  duration claim_idle = std::chrono::seconds(30);
  /// How long `start()` may take to resolve, connect, authenticate and set up the group; also
  /// how long Redis may take to answer any request (beyond `block` for a read). Positive.
  duration connect_timeout = std::chrono::seconds(5);
  handler_failure on_handler_failure = handler_failure::skip;
};

/// Reads a Redis stream through a consumer group (`XREADGROUP`), hands every entry to the
/// handler and acknowledges it (`XACK`) once the handler returned.
///
/// @par Delivery guarantee
/// At least once, nothing lost while Redis keeps its data: an entry is acknowledged only after
/// its handler succeeded. An entry whose handler failed (under `handler_failure::skip`), was
/// cancelled by `stop()`, or whose consumer died stays pending: a run first takes back its own
/// pending entries, and every run claims entries idle for `claim_idle`, its own included. So
/// the handler may see an entry more than once: make it idempotent. An entry deleted from the
/// stream while pending is acknowledged and counted as dropped.
///
/// @par Crashes
/// The connection closing or failing (Redis killed or restarted), Redis not answering within
/// `connect_timeout`, an error reply (the group or the stream was deleted) and a handler
/// failure under `handler_failure::crash`.
///
/// Needs Redis 7.0 or later (`XAUTOCLAIM` as Redis 7 answers it): `start()` checks. Reconnecting
/// is the supervisor's job: it restarts the worker with its backoff, which calls `start()`.
///
/// Destroy the bus before its execution context, like any Asio I/O object.
class redis_bus final : public message_bus<redis_message> {
 public:
  /// @throws std::invalid_argument naming the field when `options` is unusable.
  redis_bus(asio::any_io_executor executor, redis_bus_options options);

  /// Requests the end of a run in progress and returns at once.
  ~redis_bus() override;

  redis_bus(const redis_bus&) = delete;
  redis_bus& operator=(const redis_bus&) = delete;

  const std::string& name() const noexcept override;

  /// Connects (within `connect_timeout`), authenticates, creates the group when missing
  /// (`XGROUP CREATE ... $ MKSTREAM`), then starts reading.
  /// @throws std::system_error when it cannot connect or Redis refuses (its reply in `what()`).
  /// @throws std::invalid_argument when `handler` is empty.
  asio::awaitable<running_handle> start(handler_type handler) override;

  asio::awaitable<void> stop() override;

  bus_counters counters() const override;

  /// The consumer name this bus reads as.
  const std::string& consumer() const noexcept;

 private:
  std::shared_ptr<detail::redis_state> state_;
};

}  // namespace vigil
