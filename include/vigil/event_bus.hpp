#pragma once

/// @file
/// Broadcast of lifecycle events to any number of bounded, lossy, never-blocking subscriptions.

#include <vigil/event.hpp>

#include <asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace vigil {

namespace detail {
struct bus_state;
struct subscription_state;
}  // namespace detail

/// One subscriber's view of an `event_bus`: a bounded queue of the events published since it
/// subscribed.
///
/// When the queue is full the oldest event is dropped; the next read then yields one
/// `subscriber_overflow` event whose `dropped` field is the exact number lost, and whose `seq`
/// is that of the last event lost, so `seq` keeps increasing. Move-only; destroying it
/// unsubscribes.
///
/// @par Thread safety
/// Any member from any thread. Meant for one reader; with several, each event goes to one.
class subscription {
 public:
  subscription() noexcept = default;
  subscription(subscription&&) noexcept = default;
  subscription& operator=(subscription&& other) noexcept;
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;
  ~subscription();

  /// The next event, in `seq` order. Returns without suspending when one is buffered.
  ///
  /// @throws std::system_error with `vigil::errc::bus_closed` once the bus is closed and every
  /// buffered event was read.
  /// @par Cancellation
  /// Terminal, partial and total cancellation throw `std::system_error` with
  /// `asio::error::operation_aborted`; no event is lost.
  asio::awaitable<event> next();

  /// The next buffered event, or `std::nullopt` when none is buffered; never waits.
  std::optional<event> try_next();

  /// False for a default-constructed or moved-from subscription.
  bool valid() const noexcept { return state_ != nullptr; }

  /// The queue's bound.
  std::size_t capacity() const noexcept;

 private:
  friend class event_bus;
  explicit subscription(std::shared_ptr<detail::subscription_state> state) noexcept
      : state_(std::move(state)) {}
  void reset() noexcept;

  std::shared_ptr<detail::subscription_state> state_;
};

/// Broadcasts events to every subscription. `publish` never suspends and never waits for a
/// subscriber: a full subscription loses its oldest event instead.
///
/// A supervisor owns one (`supervisor::events()`) and closes it when its shutdown is over;
/// it is usable on its own too.
///
/// @par Thread safety
/// Any member from any thread.
class event_bus {
 public:
  event_bus();
  /// Closes the bus.
  ~event_bus();
  event_bus(const event_bus&) = delete;
  event_bus& operator=(const event_bus&) = delete;

  /// Stamps `e` with the next `seq` (and `at`, when unset) and delivers a copy to every
  /// subscription. Returns the `seq`; 0 when the bus is closed (the event goes nowhere).
  std::uint64_t publish(event e);

  /// A new subscription that receives every event published from now on, buffering at most
  /// `capacity` of them. @throws std::invalid_argument when `capacity` is 0.
  subscription subscribe(std::size_t capacity = 1024);

  /// No more events: readers drain what is buffered, then get `vigil::errc::bus_closed`.
  void close();
  bool closed() const;

  /// How many subscriptions are attached. Lock-free: a publisher may check it to skip building
  /// events nobody reads.
  std::size_t subscriber_count() const noexcept;

 private:
  std::shared_ptr<detail::bus_state> state_;
};

}  // namespace vigil
