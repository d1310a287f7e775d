// (8) scaling: the lifecycle figure's cost per task (ns per task, add -> run -> done, all tasks
// submitted up front; see lifecycle.cpp) at 1 K, 10 K, 100 K and 1 M tasks.
//
// Each size prints its repetitions and its medians. The summary is the growth of the cost per
// task from the smallest to the largest size (1 M / 1 K): 1.0 is perfectly flat.
// ratio = asio growth / vigil growth (a cost ratio: higher is better for vigil, 1.0 means vigil
// grows exactly as raw Asio does).
//
// Small sizes take a millisecond or less, so they get more repetitions than the large ones.

#include "../figures.hpp"

#include <array>
#include <string>
#include <vector>

namespace bench {

void scaling(const options& opt) {
  const std::array<std::size_t, 4> sizes{opt.size(1'000), opt.size(10'000), opt.size(100'000),
                                         opt.size(1'000'000)};
  std::vector<double> vigil_ns;
  std::vector<double> asio_ns;
  for (const std::size_t n : sizes) {
    const int reps = n >= opt.size(1'000'000) ? repetitions : 3 * repetitions;
    const std::string label = count_label(n) + " tasks";
    const medians m = measure(
        label, "ns/task", reps, opt.warm_up(),
        [n] { return vigil_lifecycle_seconds(n) * 1e9 / static_cast<double>(n); },
        [n] { return asio_lifecycle_seconds(n) * 1e9 / static_cast<double>(n); });
    vigil_ns.push_back(m.vigil);
    asio_ns.push_back(m.asio);
    fmt::print("  {} median: vigil {} ns/task, asio {} ns/task, cost ratio asio/vigil {:.2f}\n",
               label, number(m.vigil), number(m.asio), cost_ratio(m.vigil, m.asio));
  }
  const double v_growth = vigil_ns.back() / vigil_ns.front();
  const double a_growth = asio_ns.back() / asio_ns.front();
  const std::string unit =
      fmt::format("growth {}/{}", count_label(sizes.back()), count_label(sizes.front()));
  print_summary("scaling", v_growth, a_growth, unit, cost_ratio(v_growth, a_growth));
}

}  // namespace bench
