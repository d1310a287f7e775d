#include <vigil/backoff_policy.hpp>

#include <fmt/format.h>
#include "text.hpp"

#include <cmath>
#include <stdexcept>

namespace vigil {

void backoff_policy::validate(std::string_view where) const {
  const auto fail = [&](std::string_view field, const std::string& detail) {
    throw std::invalid_argument(fmt::format("vigil: {}.{} {}", where, field, detail));
  };
  if (first < duration::zero())
    fail("first", fmt::format("must not be negative, got {}", detail::to_text(first)));
  if (max < duration::zero())
    fail("max", fmt::format("must not be negative, got {}", detail::to_text(max)));
  if (first > max)
    fail("first", fmt::format("must not exceed backoff max ({}), got {}", detail::to_text(max),
                              detail::to_text(first)));
  if (!std::isfinite(factor) || factor < 1.0)
    fail("factor", fmt::format("must be a finite number >= 1, got {}", factor));
  if (reset_after && *reset_after < duration::zero())
    fail("reset_after", fmt::format("must not be negative, got {}", detail::to_text(*reset_after)));
  if (static_cast<unsigned>(jitter) > static_cast<unsigned>(vigil::jitter::decorrelated))
    fail("jitter", fmt::format("is not a jitter kind, got {}", static_cast<unsigned>(jitter)));
}

}  // namespace vigil
