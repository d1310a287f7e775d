// A storm: client threads add and remove 1,000 tasks at random while the io_context runs on four
// threads and tasks fail at random. Every handle resolves exactly once; the registry ends empty.

#include "support.hpp"

#include <atomic>
#include <map>
#include <random>
#include <thread>

using namespace vigil_test;
using K = vigil::event_kind;

namespace {

asio::awaitable<void> random_task(vigil::task_context ctx, std::uint32_t seed) {
  std::minstd_rand rng(seed + ctx.attempt());
  co_await sleep_for(ctx, std::chrono::microseconds(rng() % 2000));
  switch (rng() % 4) {
    case 0:
      throw std::runtime_error("random failure");
    case 1:
      throw vigil::fatal_error("random fatal");
    default:
      co_return;
  }
}

}  // namespace

TEST_CASE("a storm of concurrent adds and removes resolves every handle exactly once",
          "[supervisor][storm][threads]") {
  constexpr int tasks = 1000;
  constexpr int clients = 4;
  asio::io_context io;
  vigil::supervisor_options options;
  options.max_concurrent = 64;
  vigil::supervisor sup{io.get_executor(), options};
  auto events = sup.events().subscribe(1 << 20);

  auto work = asio::make_work_guard(io);
  std::vector<std::thread> runners;
  for (int i = 0; i < 4; ++i)
    runners.emplace_back([&io] { io.run(); });

  std::vector<std::vector<vigil::task_handle>> handles(clients);
  std::vector<std::thread> adders;
  for (int c = 0; c < clients; ++c)
    adders.emplace_back([&, c] {
      std::minstd_rand rng(static_cast<unsigned>(c) + 1);
      for (int i = c; i < tasks; i += clients) {
        auto spec = quick_spec("task" + std::to_string(i),
                               [seed = static_cast<std::uint32_t>(i)](vigil::task_context ctx) {
                                 return random_task(std::move(ctx), seed);
                               });
        spec.max_retries = 3;
        handles[c].push_back(sup.add(std::move(spec)));
        if (rng() % 3 == 0)
          sup.remove("task" + std::to_string(rng() % tasks));
      }
    });
  for (auto& t : adders)
    t.join();
  // Remove whatever is left, from two threads at once.
  std::thread remover_a([&] {
    for (const auto& name : sup.list())
      sup.remove(name);
  });
  std::thread remover_b([&] {
    for (const auto& name : sup.list())
      sup.remove(name);
  });
  remover_a.join();
  remover_b.join();

  std::atomic<int> resolved{0};
  for (auto& list : handles)
    for (auto& handle : list)
      asio::co_spawn(io, handle.wait(), [&](std::exception_ptr e, vigil::task_outcome) {
        if (!e)
          ++resolved;
      });
  sup.shutdown();
  work.reset();
  for (auto& t : runners)
    t.join();

  CHECK(resolved.load() == tasks);
  CHECK(sup.list().empty());
  std::map<std::string, int> finished;
  std::map<std::string, int> removed;
  while (auto e = events.try_next()) {
    REQUIRE(e->kind != K::subscriber_overflow);
    if (e->kind == K::task_finished)
      ++finished[e->task];
    if (e->kind == K::task_removed)
      ++removed[e->task];
  }
  CHECK(finished.size() == static_cast<std::size_t>(tasks));
  for (const auto& [name, count] : finished)
    CHECK(count == 1);
  for (const auto& [name, count] : removed)
    CHECK(count == 1);
  for (auto& list : handles)
    for (auto& handle : list)
      CHECK(handle.done());
}
