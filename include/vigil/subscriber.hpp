#pragma once

/// @file
/// Observers the supervisor feeds with every event, isolated from it and from each other.

#include <vigil/event.hpp>

#include <functional>
#include <memory>
#include <string>

namespace vigil {

/// An observer attached with `supervisor_options::subscribers`.
///
/// Each subscriber has its own bounded subscription (`supervisor_options::bus_capacity`) and its
/// own strand: a slow subscriber loses its oldest events (and is told so with one
/// `subscriber_overflow`), it never slows the supervisor or the other subscribers. An exception
/// thrown by `on_event` is published as `subscriber_panicked` and the subscriber keeps receiving.
/// `on_event` is never called concurrently with itself.
class subscriber {
 public:
  virtual ~subscriber() = default;

  /// Called once per event, in `seq` order.
  virtual void on_event(const event& e) = 0;

  /// Names the subscriber in `subscriber_panicked` events.
  virtual std::string name() const { return "subscriber"; }
};

/// A subscriber that calls `fn` for each event.
std::shared_ptr<subscriber> make_subscriber(std::string name, std::function<void(const event&)> fn);

}  // namespace vigil
