#pragma once

#include <fmt/format.h>

#include <string_view>

namespace vigil::detail {

/// Base for the `fmt::formatter` of every vigil enum: formats `to_string(value)` and accepts
/// every string format spec (`{:>12}` aligns the label).
template <class Enum>
struct enum_formatter : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(Enum value, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(to_string(value), ctx);
  }
};

}  // namespace vigil::detail
