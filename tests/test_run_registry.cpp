// run_registry: the status diagram (refused transitions leave the run unchanged), ids,
// listing, cleanup, and transitions broadcast in order from many threads.

#include "support.hpp"

#include <vigil/runs/run_registry.hpp>

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace vigil_test;
using S = vigil::run_status;
using K = vigil::event_kind;

TEST_CASE("run_status: labels and the status diagram", "[runs]") {
  const std::vector<S> all = {S::queued, S::running, S::completed, S::failed, S::cancelled};
  for (S s : all)
    CHECK(vigil::run_status_from_string(vigil::to_string(s)) == s);
  CHECK_FALSE(vigil::run_status_from_string("done"));
  CHECK(fmt::format("{}", S::cancelled) == "cancelled");

  std::set<std::pair<S, S>> allowed;
  for (S from : all)
    for (S to : all)
      if (vigil::can_transition(from, to))
        allowed.emplace(from, to);
  CHECK(allowed == std::set<std::pair<S, S>>{{S::queued, S::running},
                                             {S::queued, S::cancelled},
                                             {S::running, S::completed},
                                             {S::running, S::failed},
                                             {S::running, S::cancelled}});
}

TEST_CASE("run_registry adds runs with generated ids and refuses duplicates", "[runs]") {
  vigil::run_registry registry;
  const vigil::run a = registry.add({.name = "report", .parameters = {{"month", "2026-10"}}});
  const vigil::run b = registry.add({.name = "report"});
  CHECK(a.id.size() == 32);
  CHECK(a.id != b.id);
  CHECK(a.status == S::queued);
  CHECK(a.created_at != vigil::run::clock::time_point{});
  CHECK(registry.get(a.id)->parameters.at("month") == "2026-10");
  CHECK_FALSE(registry.get("nope"));

  const vigil::run named = registry.add({.id = "import-7"});
  CHECK(named.id == "import-7");
  CHECK_THROWS_WITH(registry.add({.id = "import-7"}),
                    Catch::Matchers::Contains("a run with id 'import-7' exists already"));
  CHECK_THROWS_WITH(registry.add({.status = S::running}),
                    Catch::Matchers::Contains("a new run is queued, got status running"));
  CHECK(registry.size() == 3);
}

TEST_CASE("run_registry::update follows the diagram and refuses the rest unchanged", "[runs]") {
  vigil::run_registry registry;
  const std::string id = registry.add({.name = "import"}).id;

  const vigil::run running = registry.update(id, S::running);
  CHECK(running.status == S::running);
  CHECK(running.started_at.has_value());
  CHECK_FALSE(running.finished_at.has_value());

  const vigil::run done = registry.update(id, S::completed, "42 rows");
  CHECK(done.result == "42 rows");
  CHECK(done.finished_at.has_value());
  CHECK(*done.finished_at >= *done.started_at);

  try {
    registry.update(id, S::running);
    FAIL("completed -> running was accepted");
  } catch (const vigil::invalid_transition& e) {
    CHECK(e.id() == id);
    CHECK(e.from() == S::completed);
    CHECK(e.to() == S::running);
    CHECK_THAT(std::string(e.what()),
               Catch::Matchers::Contains("cannot go from completed to running"));
  }
  CHECK(registry.get(id)->status == S::completed);
  CHECK(registry.get(id)->result == "42 rows");

  const std::string queued = registry.add({}).id;
  CHECK_THROWS_AS(registry.update(queued, S::completed), vigil::invalid_transition);
  CHECK(registry.get(queued)->status == S::queued);
  const vigil::run cancelled = registry.update(queued, S::cancelled, "not needed");
  CHECK(cancelled.error_message == "not needed");
  CHECK_FALSE(cancelled.started_at.has_value());

  CHECK_THROWS_AS(registry.update("nope", S::running), std::out_of_range);
}

TEST_CASE("run_registry lists in creation order, by status, and forgets old finished runs",
          "[runs]") {
  vigil::run_registry registry;
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(registry.add({.name = std::to_string(i)}).id);
  registry.update(ids[1], S::running);
  registry.update(ids[1], S::failed, "boom");
  registry.update(ids[2], S::running);
  registry.update(ids[3], S::cancelled);

  std::vector<std::string> listed;
  for (const auto& r : registry.list())
    listed.push_back(r.id);
  CHECK(listed == ids);
  CHECK(registry.list(S::running).size() == 1);
  CHECK(registry.list(S::queued).front().id == ids[0]);

  CHECK(registry.cleanup_older_than(1h) == 0);  // nothing finished an hour ago
  CHECK(registry.cleanup_older_than(0s) == 2);  // the failed and the cancelled one
  CHECK(registry.size() == 2);
  CHECK_FALSE(registry.get(ids[1]));
  CHECK(registry.get(ids[2])->status == S::running);  // never forgotten while running
  CHECK_THROWS_WITH(registry.cleanup_older_than(-1s),
                    Catch::Matchers::Contains("age must not be negative, got -1s"));
}

TEST_CASE("run_registry publishes every transition, in order per run, from many threads",
          "[runs]") {
  vigil::run_registry registry;
  auto events = registry.events().subscribe(1 << 16);
  constexpr int threads = 4;
  constexpr int per_thread = 200;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&registry, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string id = registry.add({.name = std::to_string(t)}).id;
        registry.update(id, S::running);
        if (i % 2 == 0)
          registry.update(id, S::completed, "ok");
        else
          registry.update(id, S::failed, "boom " + std::to_string(i));
      }
    });
  for (auto& w : workers)
    w.join();

  std::map<std::string, std::vector<K>> by_run;
  std::size_t failed_with_reason = 0;
  while (auto e = events.try_next()) {
    by_run[e->task].push_back(e->kind);
    if (e->kind == K::run_failed && e->reason.starts_with("boom "))
      ++failed_with_reason;
  }
  CHECK(by_run.size() == threads * per_thread);
  for (const auto& [id, kinds] : by_run) {
    REQUIRE(kinds.size() == 3);
    CHECK(kinds[0] == K::run_queued);
    CHECK(kinds[1] == K::run_started);
    CHECK((kinds[2] == K::run_completed || kinds[2] == K::run_failed));
  }
  CHECK(failed_with_reason == threads * per_thread / 2);
}
