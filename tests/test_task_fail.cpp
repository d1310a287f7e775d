// task_context::fail(): an attempt that fails without throwing is treated like one that threw
// std::system_error(code), with its exception and text made only when asked for.

#include "support.hpp"

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

const std::error_code reset = std::make_error_code(std::errc::connection_reset);

/// Fails without throwing on attempts 1..failures, then succeeds.
asio::awaitable<void> fail_quietly(vigil::task_context ctx, std::uint32_t failures) {
  if (ctx.attempt() <= failures)
    ctx.fail(reset);
  co_return;
}

vigil::task_fn failing_quietly(std::uint32_t failures) {
  return [failures](vigil::task_context ctx) { return fail_quietly(std::move(ctx), failures); };
}

}  // namespace

TEST_CASE("fail() restarts by policy and reports the code's message", "[task_context][fail]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto handle = h.sup.add(quick_spec("quiet", failing_quietly(2)));
    const auto result = co_await handle.wait();
    CHECK(result.kind == outcome::completed);
    CHECK(result.attempts == 3);
    const auto seen = co_await read_until(h.events, K::task_finished, "quiet");
    std::vector<std::string> failures;
    for (const auto& e : seen)
      if (e.kind == K::attempt_failed)
        failures.push_back(e.reason);
    CHECK(failures == std::vector<std::string>{reset.message(), reset.message()});
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("fail() gives an outcome and classify a system_error with the code",
          "[task_context][fail]") {
  harness h;
  std::error_code classified;
  h.run([&]() -> asio::awaitable<void> {
    vigil::task_spec spec = quick_spec("quiet", failing_quietly(1'000));
    spec.classify = [&](const std::exception_ptr& error) {
      classified = error_code_of(error);
      return vigil::failure_decision::give_up();
    };
    const auto result = co_await h.sup.add(std::move(spec)).wait();
    CHECK(result.kind == outcome::failed);
    CHECK(result.attempts == 1);
    CHECK(error_code_of(result.error) == reset);
    CHECK(result.reason == reset.message());
    CHECK(classified == reset);
    co_await h.sup.shutdown().wait();
  }());
}

TEST_CASE("fail() with a zero code is no failure; a throw after fail() wins",
          "[task_context][fail]") {
  harness h;
  h.run([&]() -> asio::awaitable<void> {
    auto zero = h.sup.add(quick_spec("zero", [](vigil::task_context ctx) -> asio::awaitable<void> {
      ctx.fail({});
      co_return;
    }));
    const auto zero_result = co_await zero.wait();
    CHECK(zero_result.kind == outcome::completed);
    vigil::task_spec spec =
        quick_spec("both", [](vigil::task_context ctx) -> asio::awaitable<void> {
          ctx.fail(reset);
          throw std::runtime_error("thrown");
          co_return;
        });
    spec.restart = vigil::restart_policy::never;
    const auto result = co_await h.sup.add(std::move(spec)).wait();
    CHECK(result.kind == outcome::failed);
    CHECK(result.reason == "thrown");
    co_await h.sup.shutdown().wait();
  }());
}
