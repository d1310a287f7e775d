#include <vigil/runs/task_manager.hpp>

#include <vigil/detail/oneshot.hpp>
#include <vigil/detail/wait_queue.hpp>

#include "../text.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace vigil {

namespace {

asio::awaitable<std::string> without_result(asio::awaitable<void> work) {
  co_await std::move(work);
  co_return std::string{};
}

}  // namespace

struct task_manager::state : std::enable_shared_from_this<state> {
  /// One queued or running run. Its fields are guarded by `state::mutex`, except `signal`
  /// (used on `strand` only) and `work` (moved out by the body, which alone touches it).
  struct entry {
    entry(std::string run_id, std::uint64_t start_order, asio::any_io_executor executor,
          asio::awaitable<std::string> w)
        : id(std::move(run_id)),
          order(start_order),
          strand(asio::make_strand(std::move(executor))),
          work(std::move(w)) {}

    const std::string id;
    const std::uint64_t order;
    asio::strand<asio::any_io_executor> strand;
    asio::awaitable<std::string> work;
    asio::cancellation_signal signal;

    bool launched = false;  // holds one of the `max_running` slots
    bool begun = false;     // its registry entry says `running`
    bool cancel_requested = false;
    bool cancel_delivered = false;  // emitted into the work: a failure now is the cancellation
    bool abandoned = false;  // given up on by shutdown(): recorded, and its end changes nothing
    std::string cancel_reason;
    detail::oneshot<run_status> ended;  // its final status as recorded, for cancel()
  };
  using entry_ptr = std::shared_ptr<entry>;

  state(asio::any_io_executor ex, std::shared_ptr<run_registry> reg, task_manager_options opts)
      : executor(std::move(ex)), registry(std::move(reg)), options(opts) {}

  const asio::any_io_executor executor;
  const std::shared_ptr<run_registry> registry;
  const task_manager_options options;

  mutable std::mutex mutex;
  std::map<std::uint64_t, entry_ptr> active;  // queued and running, in start order
  std::unordered_map<std::string, entry_ptr> by_id;
  std::deque<entry_ptr> waiting;  // queued for a slot, oldest first
  std::size_t launched = 0;
  std::uint64_t next_order = 0;
  bool closed = false;
  detail::wait_queue<bool> idle_waiters{mutex};

  bool has_slot() const noexcept {  // under mutex
    return options.max_running == 0 || launched < options.max_running;
  }

  /// Moves the run to `to` in the registry. A run someone moved by hand meanwhile keeps the
  /// status they gave it: the registry refuses the transition, and that is the answer. A journal
  /// that cannot be written fails the transition too; the run is retired all the same, the
  /// registry keeps its last recorded status (docs/runs.md, "Guarantees"), and `run_unrecorded`
  /// says so.
  void record(const entry& e, run_status to, std::string detail) {  // under mutex
    try {
      registry->update(e.id, to, std::move(detail));
    } catch (const invalid_transition&) {
    } catch (const std::out_of_range&) {  // moved to an end by hand, then cleaned up
    } catch (const std::exception& failure) {
      unrecorded(e.id, to, failure);
    }
  }

  /// Publishes `run_unrecorded`. Never throws: the run must be retired all the same.
  void unrecorded(const std::string& id, run_status to, const std::exception& failure) noexcept {
    try {
      event e;
      e.kind = event_kind::run_unrecorded;
      e.task = id;
      e.reason = fmt::format("{}: {}", to_string(to), failure.what());
      registry->events().publish(std::move(e));
    } catch (...) {  // out of memory: the registry still holds the last recorded status
    }
  }

  /// Forgets a run that has ended as `final_status`, wakes whoever waits on it, and hands the
  /// slot it held to the oldest queued run (appended to `launches`).
  void retire(const entry_ptr& e, run_status final_status, detail::deferred_completions& done,
              std::vector<entry_ptr>& launches) {  // under mutex
    active.erase(e->order);
    by_id.erase(e->id);
    if (e->launched)
      --launched;
    else
      std::erase(waiting, e);
    e->ended.set(done, final_status);
    while (!closed && !waiting.empty() && has_slot()) {
      entry_ptr next = std::move(waiting.front());
      waiting.pop_front();
      next->launched = true;
      ++launched;
      launches.push_back(std::move(next));
    }
    if (active.empty())
      idle_waiters.complete_all(done, {}, true);
  }

  /// Spawns each run's work on its strand. Called without the mutex held: it posts. The
  /// co_spawn itself runs on the strand, so the slot is connected there, and a cancellation
  /// posted to the strand finds it connected or finds `cancel_requested` set when the body
  /// begins.
  void launch(std::vector<entry_ptr> launches) {
    for (entry_ptr& e : launches) {
      asio::strand<asio::any_io_executor> strand = e->strand;
      asio::post(strand, [self = shared_from_this(), e = std::move(e)]() mutable {
        auto slot = e->signal.slot();
        asio::strand<asio::any_io_executor> on = e->strand;
        asio::co_spawn(std::move(on), body(self, e),
                       asio::bind_cancellation_slot(slot, [e](const std::exception_ptr&) {}));
      });
    }
  }

  /// Emits terminal cancellation into each run's work, on its strand.
  void emit_cancel(const std::vector<entry_ptr>& runs) {
    for (const entry_ptr& e : runs)
      asio::post(e->strand, [self = shared_from_this(), e] {
        {
          std::lock_guard lock(self->mutex);
          e->cancel_delivered = true;
        }
        e->signal.emit(asio::cancellation_type::terminal);
      });
  }

  static asio::awaitable<void> body(std::shared_ptr<state> self, entry_ptr e) {
    if (!self->begin(e))
      co_return;
    std::string result;
    std::exception_ptr error;
    try {
      asio::awaitable<std::string> work = std::move(e->work);
      result = co_await std::move(work);
    } catch (...) {
      error = std::current_exception();
    }
    self->finish(e, std::move(result), std::move(error));
  }

  /// Marks the run `running`; false when it must not run after all (cancelled meanwhile).
  bool begin(const entry_ptr& e) {
    std::vector<entry_ptr> launches;
    {
      detail::deferred_completions done;
      std::lock_guard lock(mutex);
      if (e->abandoned)
        return false;
      if (!e->cancel_requested) {
        try {
          registry->update(e->id, run_status::running);
          e->begun = true;
          return true;
        } catch (const invalid_transition&) {      // moved by hand meanwhile: not to run
        } catch (const std::out_of_range&) {       // moved by hand, then cleaned up: neither
        } catch (const std::exception& failure) {  // the journal failed: not to run either
          unrecorded(e->id, run_status::running, failure);
        }
        retire(e, registry->get(e->id).value_or(run{}).status, done, launches);
      } else {
        record(*e, run_status::cancelled, e->cancel_reason);
        retire(e, run_status::cancelled, done, launches);
      }
    }
    launch(std::move(launches));
    return false;
  }

  void finish(const entry_ptr& e, std::string result, std::exception_ptr error) {
    std::vector<entry_ptr> launches;
    {
      detail::deferred_completions done;
      std::lock_guard lock(mutex);
      if (e->abandoned)
        return;
      run_status to = run_status::completed;
      std::string detail = std::move(result);
      // Only a failure after the cancellation reached the work is the cancellation's doing:
      // both happen on the run's strand, so the flag is up to date here.
      if (error && e->cancel_delivered) {
        to = run_status::cancelled;
        detail = e->cancel_reason;
      } else if (error) {
        to = run_status::failed;
        detail = detail::to_text(error);
      }
      record(*e, to, std::move(detail));
      retire(e, to, done, launches);
    }
    launch(std::move(launches));
  }

  std::string start(run r, asio::awaitable<std::string> work) {
    if (!work.valid())
      throw std::invalid_argument("vigil: task_manager::start: the work is an empty awaitable");
    std::vector<entry_ptr> launches;
    std::string id;
    {
      std::lock_guard lock(mutex);
      if (closed)
        throw std::logic_error("vigil: task_manager::start: the manager is shut down");
      id = registry->add(std::move(r)).id;
      auto e = std::make_shared<entry>(id, next_order++, executor, std::move(work));
      active.emplace(e->order, e);
      by_id.emplace(id, e);
      if (has_slot()) {
        e->launched = true;
        ++launched;
        launches.push_back(std::move(e));
      } else {
        waiting.push_back(std::move(e));
      }
    }
    launch(std::move(launches));
    return id;
  }

  enum class cancel_step {
    none,
    done,
    wait
  };

  /// Asks the run `id` to stop; `wait` with the run in `e` when the caller must wait for it.
  cancel_step request_cancel(std::string_view id, entry_ptr& e) {
    std::vector<entry_ptr> launches;
    {
      detail::deferred_completions done;
      std::lock_guard lock(mutex);
      const auto found = by_id.find(std::string(id));
      if (found == by_id.end() || found->second->cancel_requested)
        return cancel_step::none;
      e = found->second;
      e->cancel_requested = true;
      e->cancel_reason = "cancelled by task_manager::cancel()";
      if (e->launched)
        return cancel_step::wait;
      record(*e, run_status::cancelled, e->cancel_reason);
      retire(e, run_status::cancelled, done, launches);
    }
    launch(std::move(launches));
    return cancel_step::done;
  }

  /// Refuses new runs, cancels the queued ones and returns the running ones to cancel.
  std::vector<entry_ptr> close(const std::string& reason) {
    std::vector<entry_ptr> to_cancel;
    detail::deferred_completions done;
    std::lock_guard lock(mutex);
    closed = true;
    std::vector<entry_ptr> none;
    while (!waiting.empty()) {
      entry_ptr e = waiting.front();
      e->cancel_requested = true;
      e->cancel_reason = reason;
      record(*e, run_status::cancelled, reason);
      retire(e, run_status::cancelled, done, none);
    }
    for (const auto& [order, e] : active) {
      if (e->cancel_requested)
        continue;  // cancel() got there first
      e->cancel_requested = true;
      e->cancel_reason = reason;
      to_cancel.push_back(e);
    }
    return to_cancel;
  }

  /// After shutdown's grace: records what still runs as failed (or cancelled, when its body
  /// never began) and forgets it.
  void abandon(duration grace) {
    detail::deferred_completions done;
    std::lock_guard lock(mutex);
    std::vector<entry_ptr> none;
    while (!active.empty()) {
      entry_ptr e = active.begin()->second;
      e->abandoned = true;
      const run_status to = e->begun ? run_status::failed : run_status::cancelled;
      record(*e, to,
             e->begun ? fmt::format("ignored cancellation past the shutdown grace of {}",
                                    detail::to_text(grace))
                      : e->cancel_reason);
      retire(e, to, done, none);
    }
  }

  static asio::awaitable<bool> cancel(std::shared_ptr<state> s, std::string id) {
    entry_ptr e;
    const cancel_step step = s->request_cancel(id, e);
    if (step != cancel_step::wait)
      co_return step == cancel_step::done;
    s->emit_cancel({e});
    const run_status final_status = co_await e->ended.async_wait(asio::use_awaitable);
    co_return final_status == run_status::cancelled;
  }

  static asio::awaitable<void> shutdown(std::shared_ptr<state> s, duration grace) {
    s->emit_cancel(s->close("cancelled: the task_manager shut down"));
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor, grace);
    timer.async_wait([s, grace](std::error_code ec) {
      if (!ec)
        s->abandon(grace);
    });
    co_await wait_idle(s);
    timer.cancel();
  }

  static asio::awaitable<void> wait_idle_owned(std::shared_ptr<state> s) { co_await wait_idle(s); }

  /// Completes when no run is active. Everything in a co_await expression is named first:
  /// GCC 12 destroys a temporary there (a by-value argument, a capturing lambda) twice.
  static asio::awaitable<void> wait_idle(const std::shared_ptr<state>& self) {
    auto initiate = [self](auto handler) {
      detail::deferred_completions done;
      std::lock_guard lock(self->mutex);
      if (self->active.empty())
        done.post(std::move(handler), std::error_code{}, true);
      else
        self->idle_waiters.push(std::move(handler));
    };
    co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::error_code, bool)>(
        initiate, asio::use_awaitable);
  }
};

task_manager::task_manager(asio::any_io_executor executor, task_manager_options options)
    : task_manager(std::move(executor), std::make_shared<run_registry>(), options) {}

task_manager::task_manager(asio::any_io_executor executor, std::shared_ptr<run_registry> registry,
                           task_manager_options options) {
  if (!registry)
    throw std::invalid_argument("vigil: task_manager: the registry is null");
  state_ = std::make_shared<state>(std::move(executor), std::move(registry), options);
}

task_manager::~task_manager() {
  state_->emit_cancel(state_->close("cancelled: the task_manager was destroyed"));
}

std::string task_manager::start(run r, asio::awaitable<std::string> work) {
  return state_->start(std::move(r), std::move(work));
}

std::string task_manager::start(run r, asio::awaitable<void> work) {
  if (!work.valid())
    throw std::invalid_argument("vigil: task_manager::start: the work is an empty awaitable");
  return state_->start(std::move(r), without_result(std::move(work)));
}

// The public coroutines are plain functions that copy what they need into a coroutine of the
// state's: an awaitable starts suspended, and may first run after the manager (or the string
// behind a string_view) is gone.

asio::awaitable<bool> task_manager::cancel(std::string_view id) {
  return state::cancel(state_, std::string(id));
}

asio::awaitable<void> task_manager::wait_all() {
  return state::wait_idle_owned(state_);
}

asio::awaitable<void> task_manager::shutdown(duration grace) {
  if (grace < duration::zero())
    throw std::invalid_argument(
        fmt::format("vigil: task_manager::shutdown: grace must not be negative, got {}",
                    detail::to_text(grace)));
  return state::shutdown(state_, grace);
}

std::size_t task_manager::active_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->active.size();
}

std::vector<std::string> task_manager::active_ids() const {
  std::lock_guard lock(state_->mutex);
  std::vector<std::string> ids;
  ids.reserve(state_->active.size());
  for (const auto& [order, e] : state_->active)
    ids.push_back(e->id);
  return ids;
}

bool task_manager::is_active(std::string_view id) const {
  std::lock_guard lock(state_->mutex);
  return state_->by_id.contains(std::string(id));
}

run_registry& task_manager::registry() const noexcept {
  return *state_->registry;
}

}  // namespace vigil
