#pragma once

/// @file
/// The contract every message-bus adapter keeps (`docs/message-bus.md`).

#include <vigil/running_handle.hpp>

#include <asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace vigil {

/// Handles one message. `source` (the topic, stream or peer it came from) stays valid until
/// the returned awaitable completes; take the message by value.
template <class T>
using message_handler = std::function<asio::awaitable<void>(std::string_view source, T message)>;

/// What a bus does when its handler throws.
enum class handler_failure : std::uint8_t {
  skip,   ///< count the message as failed and go on with the next one (the default)
  crash,  ///< end the run as a crash with the handler's exception
};

/// What a bus has done since it was made (all runs together).
struct bus_counters {
  std::uint64_t received = 0;   ///< messages that reached the bus
  std::uint64_t delivered = 0;  ///< handled without an exception
  std::uint64_t failed = 0;     ///< the handler threw
  std::uint64_t dropped = 0;    ///< lost before a handler saw them (a full queue, for example)
};

/// A source of messages of type `T`: a queue, a socket, a stream.
///
/// The bug this contract exists to prevent: a worker that starts its buses and returns at once,
/// so that its supervisor thinks it crashed and restarts it forever. `start()` therefore hands
/// back a `running_handle` that lives exactly as long as the run.
///
/// Every implementation keeps these rules:
/// - `start(handler)` returns once the bus really listens (connected, subscribed). While a run
///   goes on, another `start()` returns the same handle (and ignores its handler).
/// - The run ends cleanly only through `stop()`. Anything else that ends it (a lost
///   connection, a protocol error, a handler failure under `handler_failure::crash`) is a
///   crash: the handle's `wait()` rethrows it.
/// - `stop()` on a bus never started, or already ended, is a no-op. Otherwise it ends the run,
///   waits until the handle completed, does not rethrow a crash, and leaves the bus ready for
///   another `start()`.
///
/// @par Thread safety
/// Every member may be called from any thread.
template <class T>
class message_bus {
 public:
  using message_type = T;
  using handler_type = message_handler<T>;

  virtual ~message_bus() = default;

  /// The bus's name, for events and logs (`orders`, `tcp:10.0.0.5:9000`).
  virtual const std::string& name() const noexcept = 0;

  /// Starts a run delivering every message to `handler`, or returns the run going on.
  virtual asio::awaitable<running_handle> start(handler_type handler) = 0;

  /// Ends the run, if any, and waits until it has ended.
  virtual asio::awaitable<void> stop() = 0;

  /// Counters since the bus was made.
  virtual bus_counters counters() const = 0;
};

}  // namespace vigil
