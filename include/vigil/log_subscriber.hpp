#pragma once

/// @file
/// A subscriber that prints one readable line per event.

#include <vigil/subscriber.hpp>

#include <cstdio>
#include <string>

namespace vigil {

/// Prints each event as one line, stamped in UTC, to a `FILE*` (standard error by default):
/// `2026-11-22 14:33:01.123 #12 attempt_failed task=db attempt=3 reason="connection refused"`.
///
/// @par Example
/// @code
/// vigil::supervisor_options options;
/// options.subscribers.push_back(std::make_shared<vigil::log_subscriber>());
/// @endcode
class log_subscriber : public subscriber {
 public:
  explicit log_subscriber(std::FILE* out = stderr) noexcept : out_(out) {}

  void on_event(const event& e) override;
  std::string name() const override { return "log"; }

 private:
  std::FILE* out_;
};

}  // namespace vigil
