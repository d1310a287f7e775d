#include <vigil/processes/process_task.hpp>

#include <vigil/detail/deadline.hpp>
#include <vigil/detail/first_of.hpp>
#include <vigil/errors.hpp>
#include <vigil/processes/child_process.hpp>

#include "../text.hpp"
#include "process_state.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

namespace vigil {
namespace {

/// What every attempt of one process_task shares.
struct process_task_config {
  process_options process;
  process_task_options task;
  output_fn process_on_output;  ///< `process_options::on_output`, called by the task's readers
  bool reads_output = false;    ///< the task reads the piped output streams itself
};

void report(const task_context& ctx, event_kind kind, std::string part, std::string reason,
            duration delay = {}) {
  event e;
  e.kind = kind;
  e.task = std::move(part);
  e.reason = std::move(reason);
  e.delay = delay;
  detail::report(ctx, std::move(e));
}

/// The readers still running, and a wake-up when the last one ends.
struct readers {
  int running = 0;
  detail::oneshot<bool> all_done;
};

/// Reads one output stream to its end: every chunk is a heartbeat, every line goes where the
/// options say.
asio::awaitable<void> read_output(task_context ctx, std::shared_ptr<const process_task_config> cfg,
                                  std::shared_ptr<detail::process_state> state,
                                  output_stream stream) {
  auto deliver = [ctx, cfg, stream,
                  part = std::string(to_string(stream))](const std::string& line) {
    if (cfg->task.output_events)
      report(ctx, event_kind::process_output, part, line);
    try {
      if (cfg->task.on_output)
        cfg->task.on_output(ctx.name(), stream, line);
      if (cfg->process_on_output)
        cfg->process_on_output(stream, line);
    } catch (...) {
      report(ctx, event_kind::subscriber_panicked, part,
             fmt::format("on_output threw: {}", detail::to_text(std::current_exception())));
    }
  };
  return detail::for_each_line(std::move(state), stream, std::move(deliver));
}

/// How the wait for the process ended.
enum class ending {
  exited,
  stalled,
  stopped
};

asio::awaitable<ending> watch(const task_context& ctx, const process_task_config& cfg,
                              const std::shared_ptr<detail::process_state>& state) {
  try {
    for (;;) {
      time_point check = time_point::max();
      if (cfg.task.output_timeout)
        check = time_point(duration(state->last_output.load(std::memory_order_relaxed))) +
                *cfg.task.output_timeout;
      auto exit = detail::exited_by(state, check);
      if (co_await std::move(exit))
        co_return ending::exited;
      if (ctx.stop_requested())
        co_return ending::stopped;
      const time_point last(duration(state->last_output.load(std::memory_order_relaxed)));
      if (cfg.task.output_timeout && clock::now() - last >= *cfg.task.output_timeout)
        co_return ending::stalled;
    }
  } catch (const std::system_error&) {  // the supervisor's cancellation
    co_return ending::stopped;
  }
}

/// When the cleanup sends SIGKILL, and when it stops waiting (for the rest of the group, for
/// the last output).
struct cleanup_plan {
  time_point kill_at;
  time_point give_up_at;
};

/// After the process ended on its own or stalled: the task's `stop_grace` for what is left of
/// the group. Once the supervisor asked for a stop (whatever ended the wait): SIGKILL a quarter
/// of the time left (at most 250 ms) before its deadline, everything over an eighth before it,
/// so that the attempt ends inside the grace instead of being abandoned.
cleanup_plan plan_cleanup(const task_context& ctx) {
  const time_point now = clock::now();
  if (!ctx.stop_requested()) {
    const time_point kill_at = detail::deadline_after(now, ctx.stop_grace());
    return {kill_at, detail::deadline_after(kill_at, std::chrono::milliseconds(500))};
  }
  const time_point deadline = ctx.stop_deadline();
  const duration left = std::max(deadline - now, duration::zero());
  const duration reserve = std::min<duration>(left / 4, std::chrono::milliseconds(250));
  return {deadline - reserve, deadline - reserve / 2};
}

bool listed(const std::vector<int>& codes, int code) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

asio::awaitable<void> run_attempt(task_context ctx,
                                  std::shared_ptr<const process_task_config> cfg) {
  auto executor = ctx.executor();
  auto spawning = spawn(executor, cfg->process);
  child_process child = co_await std::move(spawning);
  const std::shared_ptr<detail::process_state> state = child.state();
  state->on_bytes = [ctx] { ctx.heartbeat(); };  // any output is progress, lines or not
  report(ctx, event_kind::process_spawned, {},
         fmt::format("pid {}: {}", child.pid(), cfg->process.argv.front()));
  child.close_input();
  ctx.ready();
  ctx.heartbeat();

  auto reading = std::make_shared<readers>();
  if (cfg->reads_output) {
    for (const output_stream stream : {output_stream::out, output_stream::err}) {
      if (!state->pipe(stream).fd)
        continue;
      ++reading->running;
      asio::co_spawn(executor, read_output(ctx, cfg, state, stream), [reading](std::exception_ptr) {
        if (--reading->running == 0)  // on the task's strand, as every reader
          reading->all_done.set(true);
      });
    }
  }

  auto wait = watch(ctx, *cfg, state);
  const ending end = co_await std::move(wait);
  // From here on, the cleanup: no cancellation may cut it short (past the supervisor's deadline
  // the attempt is abandoned anyway).
  co_await asio::this_coro::reset_cancellation_state(
      [](asio::cancellation_type) { return asio::cancellation_type::none; });
  if (end == ending::stalled)
    report(ctx, event_kind::attempt_stalled, {},
           fmt::format("no output for {}", detail::to_text(*cfg->task.output_timeout)),
           *cfg->task.output_timeout);
  const cleanup_plan plan = plan_cleanup(ctx);
  auto stop = detail::stop_until(state, plan.kill_at, plan.give_up_at);
  const exit_status status = co_await std::move(stop);

  // The last lines are still in the pipes: read them, unless something that left the group
  // still holds a pipe open; then close the pipes, which ends the readers.
  if (reading->running > 0) {
    asio::steady_timer limit(
        executor, std::min(plan.give_up_at, clock::now() + std::chrono::milliseconds(500)));
    auto done = [](std::shared_ptr<readers> r) -> asio::awaitable<void> {
      (void)co_await r->all_done.async_wait(asio::use_awaitable);
    };
    auto sleep = [](asio::steady_timer& t) -> asio::awaitable<void> {
      co_await t.async_wait(asio::use_awaitable);
    };
    auto race = detail::first_of(executor, done(reading), sleep(limit));
    (void)co_await std::move(race);
  }
  detail::close_output(*state);  // on the readers' strand

  switch (end) {
    case ending::stopped:
      throw std::system_error(asio::error::operation_aborted);
    case ending::stalled:
      throw std::system_error(
          make_error_code(errc::attempt_stalled),
          fmt::format("no output for {}", detail::to_text(*cfg->task.output_timeout)));
    case ending::exited:
      break;
  }
  if (status.exited() && listed(cfg->task.success_codes, status.code()))
    co_return;
  if (status.exited() && listed(cfg->task.fatal_codes, status.code()))
    throw fatal_error(status.to_string());
  throw process_error(cfg->process.argv.front(), status);
}

}  // namespace

process_error::process_error(std::string program, exit_status status)
    : std::runtime_error(status.to_string()), program_(std::move(program)), status_(status) {}

task_fn process_task(process_options options, process_task_options task_options) {
  validate(options);
  if (task_options.output_timeout && *task_options.output_timeout <= duration::zero())
    throw std::invalid_argument(
        fmt::format("process_task_options::output_timeout must be positive, got {}",
                    detail::to_text(*task_options.output_timeout)));
  for (const int code : task_options.fatal_codes)
    if (listed(task_options.success_codes, code))
      throw std::invalid_argument(fmt::format(
          "process_task_options: exit code {} is both in success_codes and fatal_codes", code));
  auto cfg = std::make_shared<process_task_config>();
  cfg->process_on_output = std::move(options.on_output);
  options.on_output = nullptr;
  if (task_options.output_timeout || task_options.output_events || task_options.on_output ||
      cfg->process_on_output) {
    if (options.out == stdio::inherit)
      options.out = stdio::pipe;
    if (options.err == stdio::inherit)
      options.err = stdio::pipe;
  }
  // A pipe nobody reads fills up and blocks the child: whatever is piped is read.
  cfg->reads_output = options.out == stdio::pipe || options.err == stdio::pipe;
  if (task_options.output_timeout && !cfg->reads_output)
    throw std::invalid_argument(
        "process_task_options::output_timeout needs stdout or stderr: both are stdio::null");
  cfg->process = std::move(options);
  cfg->task = std::move(task_options);
  return [cfg = std::shared_ptr<const process_task_config>(std::move(cfg))](task_context ctx) {
    return run_attempt(std::move(ctx), cfg);
  };
}

}  // namespace vigil
