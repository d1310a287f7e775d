// detail::name_index, the supervisor's registry: checked against std::map under random inserts
// and erases, so probe runs, backward-shift deletion, growth and shrinking are all exercised.

#include "../src/name_index.hpp"
#include "support.hpp"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <random>
#include <string>

namespace {

struct entry {
  std::string name;
};

struct name_of {
  const std::string& operator()(const entry& e) const noexcept { return e.name; }
};

using registry = vigil::detail::name_index<entry, name_of>;

std::shared_ptr<entry> make(std::string name) {
  return std::make_shared<entry>(entry{std::move(name)});
}

}  // namespace

TEST_CASE("name_index refuses a taken name and erases only the very entry", "[name_index]") {
  registry names;
  const auto first = make("poller");
  CHECK(names.insert(first));
  CHECK_FALSE(names.insert(make("poller")));
  CHECK(names.size() == 1);
  CHECK(names.find("poller") == first.get());
  CHECK(names.find("other") == nullptr);

  const entry namesake{"poller"};
  CHECK_FALSE(names.erase(namesake));  // same name, another entry
  CHECK(names.contains("poller"));
  CHECK(names.erase(*first));
  CHECK_FALSE(names.erase(*first));
  CHECK(names.empty());
  CHECK(names.find("poller") == nullptr);
}

TEST_CASE("name_index matches std::map under random inserts and erases", "[name_index]") {
  registry names;
  std::map<std::string, std::shared_ptr<entry>> model;
  std::mt19937 rng(42);
  // A pool of 3,000 names and 200,000 operations: the table grows, fills, and shrinks again.
  std::uniform_int_distribution<int> pick(0, 2999);
  for (int step = 0; step < 200'000; ++step) {
    const std::string name = fmt::format("task-{}", pick(rng));
    const bool draining = step > 150'000;  // the last quarter mostly erases
    if (!draining && rng() % 2 == 0) {
      auto e = make(name);
      const bool inserted = names.insert(e);
      REQUIRE(inserted == !model.contains(name));
      if (inserted)
        model.emplace(name, std::move(e));
    } else if (const auto found = model.find(name); found != model.end()) {
      REQUIRE(names.erase(*found->second));
      model.erase(found);
    } else {
      REQUIRE(names.find(name) == nullptr);
    }
    REQUIRE(names.size() == model.size());
  }
  for (const auto& [name, e] : model)
    CHECK(names.find(name) == e.get());
  std::size_t seen = 0;
  names.for_each([&](const entry& e) {
    ++seen;
    CHECK(model.contains(e.name));
  });
  CHECK(seen == model.size());
}

TEST_CASE("name_index keeps every entry across growth and a full drain, then shrinks",
          "[name_index]") {
  registry names;
  std::vector<std::shared_ptr<entry>> all;
  for (int i = 0; i < 50'000; ++i) {
    all.push_back(make(fmt::format("t{}", i)));
    REQUIRE(names.insert(all.back()));
  }
  for (int i = 0; i < 50'000; i += 2)
    REQUIRE(names.erase(*all[static_cast<std::size_t>(i)]));
  for (int i = 0; i < 50'000; ++i)
    REQUIRE(names.contains(all[static_cast<std::size_t>(i)]->name) == (i % 2 == 1));
  for (int i = 1; i < 49'000; i += 2)  // 500 entries stay
    REQUIRE(names.erase(*all[static_cast<std::size_t>(i)]));
  CHECK(names.size() == 500);
  CHECK(names.capacity() >= 65'536);  // erasing keeps the table...
  CHECK(names.insert(make("fresh")));
  CHECK(names.capacity() == 1'024);  // ...the next insert shrinks it to fit
  CHECK(names.contains("fresh"));
  for (int i = 49'001; i < 50'000; i += 2)
    CHECK(names.find(all[static_cast<std::size_t>(i)]->name) ==
          all[static_cast<std::size_t>(i)].get());
}
