#pragma once

// Internal: how vigil writes values into messages and event reasons.

#include <vigil/chrono.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>

namespace vigil::detail {

/// A duration in the largest unit that keeps it readable, with at most three decimals:
/// `250ms`, `1.5s`, `156.009ms`, `40us`.
inline std::string to_text(duration d) {
  using namespace std::chrono;
  const auto ns = duration_cast<nanoseconds>(d).count();
  const auto magnitude = std::llabs(ns);
  const auto in_unit = [&](double per_unit, const char* unit) {
    std::string number = fmt::format("{:.3f}", static_cast<double>(ns) / per_unit);
    while (number.back() == '0')
      number.pop_back();
    if (number.back() == '.')
      number.pop_back();
    return number + unit;
  };
  if (magnitude == 0)
    return "0s";
  if (magnitude >= 1'000'000'000)
    return in_unit(1e9, "s");
  if (magnitude >= 1'000'000)
    return in_unit(1e6, "ms");
  if (magnitude >= 1'000)
    return in_unit(1e3, "us");
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
