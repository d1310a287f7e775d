// backoff_policy::delay: the formula, the bounds of every jitter kind, and purity.

#include "support.hpp"

#include <cstdint>
#include <limits>
#include <random>

using namespace std::chrono_literals;
using vigil::backoff_policy;
using vigil::duration;
using vigil::jitter;

TEST_CASE("exponential backoff doubles from first and caps at max", "[backoff]") {
  auto policy = backoff_policy::exponential(100ms, 1s, 2.0);
  policy.jitter = jitter::none;
  std::mt19937_64 rng(1);
  CHECK(policy.delay(1, rng) == 100ms);
  CHECK(policy.delay(2, rng) == 200ms);
  CHECK(policy.delay(3, rng) == 400ms);
  CHECK(policy.delay(4, rng) == 800ms);
  CHECK(policy.delay(5, rng) == 1s);
  CHECK(policy.delay(6, rng) == 1s);
  CHECK(policy.delay(0, rng) == 100ms);  // treated as the first retry
}

TEST_CASE("huge retry numbers and factors saturate at max instead of overflowing", "[backoff]") {
  auto policy = backoff_policy::exponential(1ms, 30s, 10.0);
  policy.jitter = jitter::none;
  std::mt19937_64 rng(1);
  CHECK(policy.delay(1'000, rng) == 30s);
  CHECK(policy.delay(std::numeric_limits<std::uint32_t>::max(), rng) == 30s);
  policy.factor = 1e300;
  CHECK(policy.delay(3, rng) == 30s);
}

TEST_CASE("a constant backoff always waits the same", "[backoff]") {
  const auto policy = backoff_policy::constant(250ms);
  std::mt19937_64 rng(7);
  for (std::uint32_t retry = 1; retry < 50; ++retry)
    CHECK(policy.delay(retry, rng) == 250ms);
  CHECK(policy.jitter == jitter::none);
}

TEST_CASE("every jitter kind stays within its documented bounds", "[backoff][jitter]") {
  const auto kind = GENERATE(jitter::full, jitter::equal, jitter::decorrelated, jitter::none);
  auto policy = backoff_policy::exponential(10ms, 5s, 3.0);
  policy.jitter = kind;
  INFO("jitter " << vigil::to_string(kind));
  duration lowest = duration::max();
  duration highest = duration::min();
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    std::mt19937_64 rng(seed);
    for (std::uint32_t retry = 1; retry <= 12; ++retry) {
      const duration base = policy.base_delay(retry);
      const duration d = policy.delay(retry, rng);
      duration low{}, high{};
      switch (kind) {
        case jitter::none:
          low = high = base;
          break;
        case jitter::full:
          low = 0ms, high = base;
          break;
        case jitter::equal:
          low = base / 2, high = base;
          break;
        case jitter::decorrelated:
          low = policy.first;
          high =
              std::min(policy.max, 3 * (retry == 1 ? policy.first : policy.base_delay(retry - 1)));
          break;
      }
      REQUIRE(d >= low);
      REQUIRE(d <= high);
      REQUIRE(d <= policy.max);
      lowest = std::min(lowest, d);
      highest = std::max(highest, d);
    }
  }
  if (kind != jitter::none)
    CHECK(lowest < highest);  // it does vary
}

TEST_CASE("delay is a pure function of the retry and the generator state", "[backoff][jitter]") {
  auto policy = backoff_policy::exponential(10ms, 5s, 2.0);
  policy.jitter = jitter::full;
  std::mt19937_64 a(42);
  std::mt19937_64 b(42);
  for (std::uint32_t retry = 1; retry <= 20; ++retry)
    CHECK(policy.delay(retry, a) == policy.delay(retry, b));
}

TEST_CASE("enum labels are stable and equal to the enumerators", "[backoff][labels]") {
  CHECK(vigil::to_string(jitter::decorrelated) == "decorrelated");
  CHECK(vigil::to_string(vigil::restart_policy::on_failure) == "on_failure");
  CHECK(vigil::to_string(vigil::event_kind::all_stopped_within_grace) ==
        "all_stopped_within_grace");
  CHECK(vigil::to_string(vigil::event_kind::subscriber_panicked) == "subscriber_panicked");
  CHECK(vigil::to_string(vigil::event_kind::bus_started) == "bus_started");
  CHECK(vigil::to_string(vigil::event_kind::message_failed) == "message_failed");
  CHECK(vigil::to_string(vigil::task_outcome::abandoned) == "abandoned");
  CHECK(vigil::to_string(vigil::strategy::rest_for_one) == "rest_for_one");
  CHECK(fmt::format("[{:>8}]", vigil::restart_policy::never) == "[   never]");
  CHECK(fmt::format("{}", vigil::event_kind::task_added) == "task_added");
}
