// max_concurrent: a bound on running attempts that never holds a permit during backoff.

#include "support.hpp"

#include <atomic>

using namespace vigil_test;
using K = vigil::event_kind;
using outcome = vigil::task_outcome;

namespace {

struct gauge {
  std::atomic<int> now{0};
  std::atomic<int> peak{0};
};

asio::awaitable<void> measured(vigil::task_context ctx, std::shared_ptr<gauge> g) {
  const int running = ++g->now;
  int peak = g->peak.load();
  while (running > peak && !g->peak.compare_exchange_weak(peak, running)) {
  }
  co_await sleep_for(ctx, 20ms);  // long enough for the permitted ones to overlap, even slowed
  --g->now;
  if (ctx.attempt() == 1 && ctx.name().back() == '7')
    throw std::runtime_error("one retry");
}

asio::awaitable<void> bounded(harness& h, std::shared_ptr<gauge> g) {
  std::vector<vigil::task_handle> handles;
  for (int i = 0; i < 40; ++i)
    handles.push_back(h.sup.add(quick_spec("t" + std::to_string(i), [g](vigil::task_context ctx) {
      return measured(std::move(ctx), g);
    })));
  for (auto& handle : handles) {
    const auto result = co_await handle.wait();
    CHECK(result == outcome::completed);
  }
  CHECK(g->peak.load() <= 3);
  CHECK(g->peak.load() >= 2);  // the limit does not serialise everything
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("no more than max_concurrent attempts run at once", "[supervisor][concurrency]") {
  vigil::supervisor_options options;
  options.max_concurrent = 3;
  harness h(options);
  h.run(bounded(h, std::make_shared<gauge>()));
}

namespace {

asio::awaitable<void> backoff_frees_the_permit(harness& h) {
  // One permit. "crashy" fails and backs off for an hour; "next" must run meanwhile.
  auto spec = quick_spec("crashy", always_failing());
  spec.backoff = vigil::backoff_policy::constant(1h);
  auto crashy = h.sup.add(std::move(spec));
  co_await read_until(h.events, K::backoff_scheduled, "crashy");
  auto next = h.sup.add(quick_spec("next", succeed));
  const auto result = co_await next.wait();
  CHECK(result == outcome::completed);
  CHECK_FALSE(crashy.done());
  co_await h.sup.shutdown().wait();
  const auto crashy_result = co_await crashy.wait();
  CHECK(crashy_result == outcome::canceled);
}

}  // namespace

TEST_CASE("a task in backoff does not hold a concurrency permit", "[supervisor][concurrency]") {
  vigil::supervisor_options options;
  options.max_concurrent = 1;
  harness h(options);
  h.run(backoff_frees_the_permit(h));
}

namespace {

asio::awaitable<void> queue_order_and_removal(harness& h, gate release) {
  // One permit held by "first"; "second" and "third" queue; "second" is removed while queued.
  auto first =
      h.sup.add(quick_spec("first", [release](vigil::task_context) { return release.wait(); }));
  auto second = h.sup.add(quick_spec("second", succeed));
  auto third = h.sup.add(quick_spec("third", succeed));
  co_await read_until(h.events, K::task_added, "third");
  CHECK(h.sup.remove("second"));
  const auto second_result = co_await second.wait();
  CHECK(second_result == outcome::canceled);
  CHECK(second_result.attempts == 0);
  CHECK_FALSE(third.done());
  release.open();
  const auto third_result = co_await third.wait();
  CHECK(third_result == outcome::completed);
  const auto first_result = co_await first.wait();
  CHECK(first_result == outcome::completed);
  co_await h.sup.shutdown().wait();
}

}  // namespace

TEST_CASE("a queued task can be removed before it ever starts", "[supervisor][concurrency]") {
  vigil::supervisor_options options;
  options.max_concurrent = 1;
  harness h(options);
  h.run(queue_order_and_removal(h, gate{}));
}
