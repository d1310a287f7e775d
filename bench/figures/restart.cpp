// (5) restart_throw and (6) restart_error: a crash storm sustained for 10 s, as in
// bench/crash_storm.cpp. 100 tasks fail as soon as they start and are restarted at once, on
// one io_context thread; counted per second (the attempts that started in each second).
//
// - vigil: 100 tasks, `restart_policy::on_failure`, `backoff_policy::constant(0ms)`, under a
//   restart intensity generous enough never to trip, which keeps the intensity bookkeeping in
//   the measured path: `restart_intensity{1'000'000, 100ms}` (10 M restarts/s; with a 1 s
//   period a storm past 1 M/s would trip it, and 1'000'000 is the largest `max_restarts` a
//   supervisor accepts). Tripping it fails the figure.
// - raw Asio: 100 coroutines; the completion handler of one that failed co_spawns the next.
//
// The failure:
// - restart_throw: the body throws std::runtime_error; the Asio completion handler gets it as
//   an exception_ptr.
// - restart_error: the body fails without throwing. vigil: `ctx.fail(error_code); co_return;`.
//   Raw Asio: the coroutine returns the error code as its value
//   (`asio::awaitable<std::error_code>`) and the completion handler respawns on error.
//
// The seconds are the repetitions: each prints its rate, the figure is their median, and
// `<figure> flatness` compares the last second with the first (1.0: no slowdown as restarts pile
// up). ratio = vigil rate / asio rate (higher is better). --quick counts 10 ms buckets instead of
// seconds, still scaled to a rate per second.

#include "../figures.hpp"

#include <vigil/supervisor.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace bench {

namespace {

constexpr int storm_tasks = 100;
constexpr int buckets = 10;

enum class failure {
  throws,
  error_code
};

/// Attempts per bucket (one second, or 10 ms with --quick) since `start`.
struct rate_buckets {
  explicit rate_buckets(steady::duration width) : bucket(width), counts(buckets, 0) {}

  void tick() {
    const auto index = static_cast<std::size_t>((steady::now() - start) / bucket);
    if (index < counts.size())
      ++counts[index];
  }

  /// Each bucket as a rate per second.
  std::vector<double> rates() const {
    std::vector<double> out;
    for (const std::uint64_t count : counts)
      out.push_back(static_cast<double>(count) / std::chrono::duration<double>(bucket).count());
    return out;
  }

  steady::duration bucket;
  steady::time_point start = steady::now();
  std::vector<std::uint64_t> counts;
};

const std::error_code reset_error = std::make_error_code(std::errc::connection_reset);

// ---- the failing bodies -----------------------------------------------------------------

/// Both sides: vigil's task body and the coroutine raw Asio co_spawns.
asio::awaitable<void> crash(rate_buckets* rate) {
  rate->tick();
  throw std::runtime_error("crash");
  co_return;
}

asio::awaitable<void> vigil_fail(vigil::task_context ctx, rate_buckets* rate) {
  rate->tick();
  ctx.fail(reset_error);
  co_return;
}

asio::awaitable<std::error_code> asio_fail(rate_buckets* rate) {
  rate->tick();
  co_return reset_error;
}

// ---- vigil ----------------------------------------------------------------------------------

void run_vigil(rate_buckets& rate, failure kind) {
  asio::io_context io;
  vigil::supervisor_options options;
  options.intensity = vigil::restart_intensity{1'000'000, 100ms};
  vigil::supervisor sup{io.get_executor(), options};
  std::exception_ptr gave_up;
  asio::co_spawn(io, sup.run(), [&](const std::exception_ptr& error, vigil::shutdown_report) {
    gave_up = error;  // vigil::intensity_exceeded
  });
  asio::steady_timer stop(io, rate.bucket * buckets);
  stop.async_wait([&](std::error_code) { sup.shutdown(); });
  rate.start = steady::now();
  for (int i = 0; i < storm_tasks; ++i) {
    vigil::task_spec spec;
    spec.name = fmt::format("crashy{}", i);
    if (kind == failure::throws)
      spec.fn = [r = &rate](vigil::task_context) { return crash(r); };
    else
      spec.fn = [r = &rate](vigil::task_context ctx) { return vigil_fail(std::move(ctx), r); };
    spec.restart = vigil::restart_policy::on_failure;
    spec.backoff = vigil::backoff_policy::constant(0ms);
    sup.add(std::move(spec));
  }
  io.run();
  if (gave_up) {
    try {
      std::rethrow_exception(gave_up);
    } catch (const std::exception& e) {
      throw std::runtime_error(
          fmt::format("the vigil storm tripped its restart intensity: {}", e.what()));
    }
  }
}

// ---- raw Asio: the completion handler of a failed coroutine spawns the next -----------------

struct raw_storm {
  asio::io_context& io;
  rate_buckets& rate;
  failure kind;
  bool stopping = false;

  void spawn() {
    if (kind == failure::throws) {
      asio::co_spawn(io, crash(&rate), [this](const std::exception_ptr& error) {
        if (error && !stopping)
          spawn();
      });
    } else {
      asio::co_spawn(io, asio_fail(&rate),
                     [this](const std::exception_ptr& error, std::error_code ec) {
                       if (error)
                         std::rethrow_exception(error);
                       if (ec && !stopping)
                         spawn();
                     });
    }
  }
};

void run_asio(rate_buckets& rate, failure kind) {
  asio::io_context io;
  raw_storm storm{io, rate, kind};
  asio::steady_timer stop(io, rate.bucket * buckets);
  stop.async_wait([&](std::error_code) { storm.stopping = true; });
  rate.start = steady::now();
  for (int i = 0; i < storm_tasks; ++i)
    storm.spawn();
  io.run();
}

double flatness(const rate_buckets& rate) {
  return rate.counts.front() == 0
             ? 0.0
             : static_cast<double>(rate.counts.back()) / static_cast<double>(rate.counts.front());
}

void storm(const options& opt, std::string_view figure, failure kind, std::string_view unit) {
  const steady::duration width = opt.quick ? steady::duration(10ms) : steady::duration(1s);
  rate_buckets vigil_rate(width);
  rate_buckets asio_rate(width);
  run_vigil(vigil_rate, kind);
  run_asio(asio_rate, kind);
  const std::vector<double> v = vigil_rate.rates();
  const std::vector<double> a = asio_rate.rates();
  const std::string label = fmt::format("{} {}", figure, opt.quick ? "10 ms bucket" : "second");
  for (std::size_t i = 0; i < v.size(); ++i)
    print_rep(label, static_cast<int>(i) + 1, v[i], a[i], unit);
  expect(median(v) > 0 && median(a) > 0, "{}: no restarts counted", figure);
  print_summary(figure, median(v), median(a), unit, throughput_ratio(median(v), median(a)));
  fmt::print("{} flatness: vigil last/first {} {:.2f}, asio {:.2f}\n", figure,
             opt.quick ? "bucket" : "second", flatness(vigil_rate), flatness(asio_rate));
}

}  // namespace

void restart_throw(const options& opt) {
  storm(opt, "restart_throw", failure::throws, "restarts/s");
}

void restart_error(const options& opt) {
  storm(opt, "restart_error", failure::error_code, "restarts/s");
}

}  // namespace bench
