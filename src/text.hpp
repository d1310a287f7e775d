#pragma once

// Internal: how vigil writes values into messages and event reasons.

#include <vigil/chrono.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>

namespace vigil::detail {

/// A duration in the largest unit that keeps it exact enough to read: `250ms`, `1.5s`, `40us`.
inline std::string to_text(duration d) {
  using namespace std::chrono;
  const auto ns = duration_cast<nanoseconds>(d).count();
  const auto magnitude = std::llabs(ns);
  if (magnitude == 0)
    return "0s";
  if (magnitude % 1'000'000'000 == 0)
    return fmt::format("{}s", ns / 1'000'000'000);
  if (magnitude >= 1'000'000'000)
    return fmt::format("{}s", static_cast<double>(ns) / 1e9);
  if (magnitude % 1'000'000 == 0)
    return fmt::format("{}ms", ns / 1'000'000);
  if (magnitude >= 1'000'000)
    return fmt::format("{}ms", static_cast<double>(ns) / 1e6);
  if (magnitude % 1'000 == 0)
    return fmt::format("{}us", ns / 1'000);
  return fmt::format("{}ns", ns);
}

/// `what()` of the exception in `error`, or a fixed text for exceptions of other types.
inline std::string to_text(const std::exception_ptr& error) {
  if (!error)
    return {};
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

}  // namespace vigil::detail
