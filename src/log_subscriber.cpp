#include <vigil/log_subscriber.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace vigil {

void log_subscriber::on_event(const event& e) {
  const auto since_epoch = e.at.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds);
  const std::time_t whole = static_cast<std::time_t>(seconds.count());
  fmt::print(out_, "{:%Y-%m-%d %H:%M:%S}.{:03} {}\n", fmt::gmtime(whole), millis.count(), e);
  std::fflush(out_);
}

}  // namespace vigil
