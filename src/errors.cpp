#include <vigil/errors.hpp>

#include <string>

namespace vigil {
namespace {

class vigil_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "vigil"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::bus_closed:
        return "event bus closed";
      case errc::already_exists:
        return "a task of that name already exists";
      case errc::shutting_down:
        return "supervisor is shutting down";
      case errc::attempt_timed_out:
        return "task attempt timed out";
      case errc::attempt_stalled:
        return "task attempt stalled";
      case errc::readiness_timed_out:
        return "task attempt was not ready in time";
    }
    return "unknown vigil error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const vigil_category category;
  return category;
}

}  // namespace vigil
