#include <vigil/supervisor.hpp>

#include <vigil/detail/deadline.hpp>
#include <vigil/errors.hpp>

#include "name_index.hpp"
#include "text.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/dispatch.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/require.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <utility>

namespace vigil {
namespace detail {
namespace {

/// Where a task is between `add` and `task_removed`.
enum class task_state : std::uint8_t {
  waiting,   ///< queued for a `max_concurrent` permit
  running,   ///< an attempt is in flight
  backoff,   ///< between attempts
  held,      ///< stopped by a one_for_all / rest_for_one group restart, waiting to start again
  stopping,  ///< an attempt was asked to stop (remove, shutdown, timeout, stall, group restart)
  finished,  ///< outcome delivered; only late completions still refer to it
};

/// A task's last failure: an exception, or an error code from `task_context::fail()` whose
/// text and exception are made only when asked for, so failing without throwing stays cheap.
/// The text sits behind a pointer: most tasks never fail, and every idle task pays for the
/// record's size.
struct last_failure {
  std::exception_ptr error;
  std::error_code code;

  void set(std::exception_ptr e, std::string what) {
    error = std::move(e);
    code = {};
    note(std::move(what));
  }
  void set(std::error_code c) {
    error = nullptr;
    code = c;
    if (text_)
      text_->clear();
  }
  /// Replaces the text only (the failure's reason when no exception says it).
  void note(std::string what) {
    if (text_)
      *text_ = std::move(what);
    else if (!what.empty())
      text_ = std::make_unique<std::string>(std::move(what));
  }
  std::string what() const {
    if (text_ && !text_->empty())
      return *text_;
    return code ? code.message() : std::string();
  }
  std::exception_ptr exception() const {
    return error || !code ? error : std::make_exception_ptr(std::system_error(code));
  }

 private:
  std::unique_ptr<std::string> text_;
};

/// A task as the supervisor strand sees it. Owned by the registry; pending timers and the
/// in-flight attempt hold it too, so `spec.fn` outlives every attempt it started.
struct task_record : std::enable_shared_from_this<task_record> {
  task_record(task_spec&& s, asio::any_io_executor task_strand)
      : handle(std::make_shared<task_handle_state>(std::move(s.name), std::move(task_strand))),
        spec(std::move(s)) {}

  const std::string& name() const noexcept { return handle->name; }
  const asio::any_io_executor& executor() const noexcept { return handle->executor; }

  // The name and the strand live in the handle's state, which the attempts share: a
  // task_context may outlive the record and must not keep the record, its spec and their
  // captures alive.
  const std::shared_ptr<task_handle_state> handle;
  const task_spec spec;     // `spec.name` was moved into the handle
  std::uint64_t order = 0;  // add order, for list(); set under the registry lock

  // Supervisor strand only.
  // Backoff, attempt timeout or stop grace: one at a time. Made on first use: many tasks
  // never need it, and an idle one should not pay for it.
  std::unique_ptr<asio::steady_timer> timer;
  std::uint64_t timer_generation = 0;  // bumped on every (re)arm: a stale expiry is ignored
  task_state state = task_state::waiting;
  time_point state_since = clock::now();  // for snapshot(): time in state
  bool stop_requested = false;            // removed or shutting down: the next end is final
  bool queued_for_stop = false;           // in the supervisor's sequential stop queue
  bool in_permit_queue = false;           // waiting for a max_concurrent permit
  bool ready = false;                     // the current attempt's task_ready was published
  std::uint32_t attempts = 0;             // started, in all
  std::uint32_t streak = 0;               // consecutive failures
  time_point started_at{};
  std::shared_ptr<attempt_state> current;  // the attempt in flight, if any
  last_failure failure;
  task_record* prev = nullptr;  // registry in add order (the strand's view)
  task_record* next = nullptr;  // before the strand saw the add: the queue of adds (under the lock)
};

/// Restarts within the intensity period: a ring of the last `max_restarts` timestamps,
/// O(1) per restart however many the window holds.
class intensity_window {
 public:
  explicit intensity_window(restart_intensity limit)
      : period_(limit.period), stamps_(limit.max_restarts) {}

  /// Records a restart at `now`; false when it is one more than the limit allows.
  bool admit(time_point now) {
    if (stamps_.empty())
      return false;
    if (count_ < stamps_.size()) {
      stamps_[(head_ + count_++) % stamps_.size()] = now;
      return true;
    }
    if (now - stamps_[head_] < period_)
      return false;  // the oldest is still in the window
    stamps_[head_] = now;
    head_ = (head_ + 1) % stamps_.size();
    return true;
  }

 private:
  duration period_;
  std::vector<time_point> stamps_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

struct record_name {
  const std::string& operator()(const task_record& r) const noexcept { return r.name(); }
};

/// One rethrow per failure: the fatal flag and the text together.
struct failure_info {
  bool fatal = false;
  std::string what;
};

failure_info inspect(const std::exception_ptr& error) {
  if (!error)
    return {};
  try {
    std::rethrow_exception(error);
  } catch (const fatal_error& e) {
    return {true, e.what()};
  } catch (const std::exception& e) {
    return {false, e.what()};
  } catch (...) {
    return {false, "unknown exception (not derived from std::exception)"};
  }
}

void validate(const supervisor_options& options) {
  const auto fail = [](std::string_view field, const std::string& detail) {
    throw std::invalid_argument(fmt::format("vigil: supervisor_options.{} {}", field, detail));
  };
  if (static_cast<unsigned>(options.strategy) > static_cast<unsigned>(strategy::rest_for_one))
    fail("strategy",
         fmt::format("is not a strategy, got {}", static_cast<unsigned>(options.strategy)));
  if (options.shutdown_grace < duration::zero())
    fail("shutdown_grace",
         fmt::format("must not be negative, got {}", to_text(options.shutdown_grace)));
  if (options.readiness_timeout && *options.readiness_timeout <= duration::zero())
    fail("readiness_timeout",
         fmt::format("must be positive, got {}", to_text(*options.readiness_timeout)));
  if (options.bus_capacity == 0)
    fail("bus_capacity", "must be at least 1, got 0");
  if (options.intensity) {
    if (options.intensity->period <= duration::zero())
      fail("intensity.period",
           fmt::format("must be positive, got {}", to_text(options.intensity->period)));
    if (options.intensity->max_restarts > 1'000'000)
      fail("intensity.max_restarts",
           fmt::format("must be at most 1000000 (use a shorter period), got {}",
                       options.intensity->max_restarts));
  }
  for (std::size_t i = 0; i < options.subscribers.size(); ++i)
    if (!options.subscribers[i])
      fail(fmt::format("subscribers[{}]", i), "must not be null");
}

/// Feeds one user subscriber from its own subscription, on its own strand, until the bus closes.
asio::awaitable<void> drive_subscriber(subscription events, std::shared_ptr<subscriber> target,
                                       std::weak_ptr<supervisor_core> owner);

}  // namespace

class supervisor_core final : public std::enable_shared_from_this<supervisor_core>,
                              public attempt_observer {
 public:
  supervisor_core(asio::any_io_executor executor, supervisor_options options)
      : executor_(std::move(executor)),
        strand_(new_strand()),
        options_((validate(options), std::move(options))),
        shutdown_timer_(strand_),
        group_timer_(strand_),
        rng_(options_.seed ? *options_.seed : std::random_device{}()) {
    if (options_.intensity)
      intensity_.emplace(*options_.intensity);
  }

  /// The part of construction that needs `shared_from_this`.
  void start() {
    for (const auto& target : options_.subscribers)
      asio::co_spawn(
          new_strand(),
          drive_subscriber(bus_.subscribe(options_.bus_capacity), target, weak_from_this()),
          [](const std::exception_ptr&) {});  // drive_subscriber catches everything
    if (options_.handle_signals) {
      signals_.emplace(strand_, SIGINT, SIGTERM);
      await_signal();
    }
  }

  /// A strand over the supervisor's executor. Over an io_context's own executor type when it is
  /// one: the strand's inner executor is then not type-erased, which halves the cost of a post.
  asio::any_io_executor new_strand() const {
    if (const auto* io = executor_.target<asio::io_context::executor_type>())
      return asio::make_strand(*io);
    return asio::make_strand(executor_);
  }

  // ---- any thread --------------------------------------------------------------------------

  task_handle add(task_spec spec) {
    vigil::validate(spec);
    auto record = std::make_shared<task_record>(std::move(spec), new_strand());
    std::string_view refusal;
    {
      std::lock_guard lock(registry_mutex_);
      if (!accepting_)
        refusal = "shutting_down";
      else if (!registry_.insert(record))
        refusal = "already_exists";
      else {
        record->order = next_order_++;
        // Queued and posted under the lock: the strand sees adds, removes and the shutdown in
        // the order they won it. One post per burst of adds, not one per task.
        if (added_head_ == nullptr)
          asio::post(strand_, [self = shared_from_this()] { self->start_added(); });
        (added_tail_ != nullptr ? added_tail_->next : added_head_) = record.get();
        added_tail_ = record.get();
        return task_handle(record->handle);
      }
    }
    record->handle->outcome.set(
        task_outcome{task_outcome::rejected, nullptr, std::string(refusal), 0});
    asio::post(strand_, [self = shared_from_this(), handle = record->handle, refusal] {
      self->emit(event_kind::task_add_requested, handle->name);
      self->emit(event_kind::task_add_failed, handle->name, 0, {}, refusal);
    });
    return task_handle(record->handle);
  }

  bool remove(std::string_view name) {
    std::lock_guard lock(registry_mutex_);
    task_record* const found = registry_.find(name);
    if (found == nullptr)
      return false;
    asio::post(strand_, [self = shared_from_this(), record = found->shared_from_this()] {
      self->remove_task(record);
    });
    return true;
  }

  shutdown_handle shutdown() {
    std::lock_guard lock(registry_mutex_);
    begin_shutdown_locked();
    return shutdown_handle(done_);
  }

  /// The shutdown state of the current run: a nested supervisor has one per parent attempt.
  std::shared_ptr<shutdown_state> current_run() const {
    std::lock_guard lock(registry_mutex_);
    return done_;
  }

  // ---- nesting (supervisor::as_task) --------------------------------------------------------
  //
  // A nested supervisor runs once per attempt of its parent's task. Until an attempt attaches,
  // its children are registered but parked (not started). The attempt's end (cancellation, or
  // the nested supervisor's own shutdown or escalation) is one shutdown; after it the children
  // still registered are registered again, parked, for the next attempt, with a fresh restart
  // intensity window, as OTP restarts a supervisor with its child specs.

  /// @throws std::logic_error when the supervisor handles signals (only the root may).
  void make_nested() {
    if (options_.handle_signals)
      throw std::logic_error(
          "vigil: supervisor::as_task: a nested supervisor must not handle signals "
          "(supervisor_options.handle_signals); let the root supervisor handle them");
    nested_.store(true, std::memory_order_release);
  }

  /// The `supervisor` object is gone: the run in progress is the last one.
  void retire() {
    std::lock_guard lock(registry_mutex_);
    retired_ = true;
    begin_shutdown_locked();
  }

  /// Stops the given run (and only that one: a later run may already be parked).
  void stop_run(const std::shared_ptr<shutdown_state>& run) {
    std::lock_guard lock(registry_mutex_);
    if (done_ == run)
      begin_shutdown_locked();
  }

  /// Starts a run for the parent's `attempt`: completes with the run's shutdown state, or with
  /// the reason it cannot run now.
  template <class Handler>  // void(std::exception_ptr, std::shared_ptr<shutdown_state>)
  void attach(std::shared_ptr<attempt_state> attempt, Handler handler) {
    asio::post(strand_, [self = shared_from_this(), attempt = std::move(attempt),
                         handler = std::move(handler)]() mutable {
      std::exception_ptr refusal;
      std::shared_ptr<shutdown_state> run = self->begin_run(attempt, refusal);
      auto executor = asio::get_associated_executor(handler);
      asio::post(executor, [handler = std::move(handler), refusal, run]() mutable {
        std::move(handler)(refusal, std::move(run));
      });
    });
  }

  /// Publishes on this supervisor's bus and, when nested, on its parent's (with the path).
  void publish(event e) {
    if (nested_.load(std::memory_order_acquire)) {
      std::shared_ptr<attempt_state> up;
      {
        std::lock_guard lock(link_mutex_);
        up = link_;
      }
      if (up) {
        if (e.at == std::chrono::system_clock::time_point{})
          e.at = std::chrono::system_clock::now();  // the same instant on every level
        if (auto parent = up->observer.lock())
          parent->forward(up->name(), e);
      }
    }
    bus_.publish(std::move(e));
  }

  void report(const attempt_state& attempt, event e) override {
    e.task = e.task.empty() ? attempt.name() : fmt::format("{}/{}", attempt.name(), e.task);
    e.attempt = attempt.attempt;
    publish(std::move(e));
  }

  void forward(const std::string& task, event e) override {
    e.task = e.task.empty() ? task : fmt::format("{}/{}", task, e.task);
    ++e.depth;
    publish(std::move(e));
  }

  template <class Handler>
  void wait_until_empty(Handler handler) {
    deferred_completions done;
    std::lock_guard lock(registry_mutex_);
    if (registry_.empty())
      done.post(std::move(handler), std::error_code{}, true);
    else
      empty_waiters_.push(std::move(handler));
  }

  std::vector<std::string> list() const {
    std::vector<std::pair<std::uint64_t, std::string>> ordered;
    {
      std::lock_guard lock(registry_mutex_);
      ordered.reserve(registry_.size());
      registry_.for_each(
          [&](const task_record& record) { ordered.emplace_back(record.order, record.name()); });
    }
    std::sort(ordered.begin(), ordered.end());
    std::vector<std::string> names;
    names.reserve(ordered.size());
    for (auto& entry : ordered)
      names.push_back(std::move(entry.second));
    return names;
  }

  bool contains(std::string_view name) const {
    std::lock_guard lock(registry_mutex_);
    return registry_.contains(name);
  }

  template <class Handler>
  void snapshot(Handler handler) {
    asio::post(strand_, [self = shared_from_this(), handler = std::move(handler)]() mutable {
      post_completion(std::move(handler), std::error_code{}, self->take_snapshot());
    });
  }

  event_bus& bus() noexcept { return bus_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }

  void on_ready(std::shared_ptr<attempt_state> attempt) override {
    asio::post(strand_, [self = shared_from_this(), attempt = std::move(attempt)] {
      std::shared_ptr<task_record> record;
      {
        std::lock_guard lock(self->registry_mutex_);
        if (task_record* const found = self->registry_.find(attempt->name()))
          record = found->shared_from_this();
      }
      if (record && record->current == attempt) {
        record->ready = true;
        record->state_since = clock::now();  // running → ready
        self->emit(event_kind::task_ready, record->name(), attempt->attempt);
        self->start_in_order();
        self->report_ready_if_all();
      }
    });
  }

 private:
  using record_ptr = std::shared_ptr<task_record>;

  // ---- supervisor strand only from here on ------------------------------------------------

  /// The first SIGINT/SIGTERM starts the graceful shutdown; another one during it stops
  /// waiting for the grace period (stuck tasks are abandoned at once), as impatient users expect.
  void await_signal() {
    signals_->async_wait([weak = weak_from_this()](std::error_code ec, int) {
      auto self = weak.lock();
      if (ec || !self)
        return;
      if (!self->shutting_down_)
        self->shutdown();
      else if (!self->shutdown_finished_)
        self->shutdown_grace_expired();
      if (!self->shutdown_finished_)  // finish_shutdown() cleared the set: nothing to wait for
        self->await_signal();
    });
  }

  std::vector<task_snapshot> take_snapshot() const {
    const time_point now = clock::now();
    std::vector<task_snapshot> tasks;
    for (const task_record* r = head_; r != nullptr; r = r->next) {
      task_snapshot& t = tasks.emplace_back();
      t.name = r->name();
      t.attempt = r->attempts;
      t.restarts = r->attempts > 0 ? r->attempts - 1 : 0;
      t.in_state = now - r->state_since;
      t.last_failure = r->failure.what();
      switch (r->state) {
        case task_state::waiting:
          t.state = task_phase::starting;
          break;
        case task_state::running:
          t.state = r->ready ? task_phase::ready : task_phase::running;
          break;
        case task_state::backoff:
        case task_state::held:
          t.state = task_phase::backoff;
          break;
        case task_state::stopping:
        case task_state::finished:
          t.state = task_phase::stopping;
          break;
      }
    }
    return tasks;
  }

  /// Whether an event would reach anyone: nobody subscribed and no parent means nothing to build.
  bool heard() const noexcept {
    return bus_.subscriber_count() != 0 || nested_.load(std::memory_order_relaxed);
  }

  void emit(event_kind kind, const std::string& task, std::uint32_t attempt = 0,
            duration delay = {}, std::string_view reason = {}) {
    if (!heard())
      return;
    event e;
    e.kind = kind;
    e.task = task;
    e.attempt = attempt;
    e.delay = delay;
    e.reason = reason;
    publish(std::move(e));
  }

  /// `attempt_failed` with the failure's text, made only when someone listens.
  void emit_failure(const task_record& record, std::uint32_t attempt) {
    if (heard())
      emit(event_kind::attempt_failed, record.name(), attempt, {}, record.failure.what());
  }

  // ---- nesting, strand side -----------------------------------------------------------------

  /// Nested and no attempt of the parent's task attached: children wait for the next one.
  bool parked() const { return nested_.load(std::memory_order_relaxed) && !link_; }

  /// The strand half of `attach`: links the parent's attempt and starts the parked children.
  std::shared_ptr<shutdown_state> begin_run(const std::shared_ptr<attempt_state>& attempt,
                                            std::exception_ptr& refusal) {
    const std::string& task = attempt->name();
    std::shared_ptr<shutdown_state> run;
    {
      std::lock_guard lock(registry_mutex_);
      if (retired_)
        refusal = std::make_exception_ptr(fatal_error(
            fmt::format("vigil: the supervisor nested in task \"{}\" was destroyed", task)));
      else if (link_ && !same_parent(*link_, *attempt))
        refusal = std::make_exception_ptr(fatal_error(
            fmt::format("vigil: a supervisor nested in task \"{}\" already runs as task \"{}\"; "
                        "nest each supervisor once",
                        task, link_->name())));
      else if (link_ || !accepting_ || shutting_down_)
        refusal = std::make_exception_ptr(std::runtime_error(fmt::format(
            "vigil: the supervisor nested in task \"{}\" is still stopping its previous run",
            task)));
      else
        run = done_;
    }
    if (refusal)
      return nullptr;
    {
      std::lock_guard lock(link_mutex_);
      link_ = attempt;
    }
    for (task_record* r = head_; r != nullptr;) {
      task_record* const next = r->next;
      if (r->state == task_state::waiting && !r->in_permit_queue)
        try_start(r->shared_from_this());
      r = next;
    }
    report_ready_if_all();
    return run;
  }

  static bool same_parent(const attempt_state& a, const attempt_state& b) {
    return a.name() == b.name() && !a.observer.owner_before(b.observer) &&
           !b.observer.owner_before(a.observer);
  }

  /// A nested supervisor is ready for its parent once every child is ready (none: at once).
  void report_ready_if_all() {
    // Not while the run stops or gives up: children leaving would look like all being ready.
    if (!link_ || shutting_down_ || escalation_ || link_->ready.load(std::memory_order_acquire))
      return;
    for (const task_record* r = head_; r != nullptr; r = r->next)
      if (!is_ready(*r))
        return;
    task_context(link_).ready();
  }

  /// Keeps a child's spec for the next run of a nested supervisor (`never` children excepted,
  /// as in a group restart).
  void retain(const task_record& record) {
    if (!nested_.load(std::memory_order_relaxed) || record.spec.restart == restart_policy::never)
      return;
    task_spec spec = record.spec;
    spec.name = record.name();
    retained_.emplace_back(record.order, std::move(spec));
  }

  /// The run is over and the `supervisor` object still exists: the retained children are
  /// registered again, parked until the parent's next attempt. Called under registry_mutex_.
  std::vector<record_ptr> register_retained() {
    std::sort(retained_.begin(), retained_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<record_ptr> records;
    for (auto& [order, spec] : retained_) {
      auto record = std::make_shared<task_record>(std::move(spec), new_strand());
      if (!registry_.insert(record))
        continue;  // one record per name (adds were refused since the run began stopping)
      record->order = next_order_++;
      records.push_back(std::move(record));
    }
    retained_.clear();
    return records;
  }

  /// Starts the tasks added since the last call, in add order. Until the strand takes them
  /// they are chained through `next` (the registry keeps them alive): no allocation per add.
  void start_added() {
    task_record* added = nullptr;
    {
      std::lock_guard lock(registry_mutex_);
      added = std::exchange(added_head_, nullptr);
      added_tail_ = nullptr;
    }
    while (added != nullptr) {
      task_record* const following = std::exchange(added->next, nullptr);
      start_task(added->shared_from_this());
      added = following;
    }
  }

  void start_task(const record_ptr& record) {
    emit(event_kind::task_add_requested, record->name());
    emit(event_kind::task_added, record->name());
    link(record.get());
    try_start(record);
  }

  // The restart path reads the clock once per step and passes it on (`now`): in a VM a clock
  // read costs as much as a strand post.

  void try_start(const record_ptr& record, time_point now = clock::now()) {
    if (parked()) {  // nested, between attempts of the parent's task: begin_run() starts it
      enter(*record, task_state::waiting, now);
      return;
    }
    if (waits_for_earlier(*record)) {  // start_in_order() starts it later
      enter(*record, task_state::waiting, now);
      return;
    }
    if (options_.max_concurrent != 0 && running_ >= options_.max_concurrent) {
      enter(*record, task_state::waiting, now);
      record->in_permit_queue = true;
      permit_queue_.push_back(record);
      return;
    }
    begin_attempt(record, now);
  }

  // ---- ordered start ------------------------------------------------------------------------
  // With supervisor_options::ordered_start, a child starts only once every child added before
  // it is ready. The checks walk the registry from its head: meant for trees of tens of
  // children, not for thousands.

  static bool is_ready(const task_record& r) { return r.state == task_state::running && r.ready; }

  bool waits_for_earlier(const task_record& record) const {
    if (!options_.ordered_start)
      return false;
    for (const task_record* r = head_; r != nullptr && r != &record; r = r->next)
      if (!is_ready(*r))
        return true;
    return false;
  }

  /// Starts the waiting children whose predecessors are all ready, in start order.
  void start_in_order() {
    if (!options_.ordered_start || shutting_down_)
      return;
    for (task_record* r = head_; r != nullptr; r = r->next) {
      if (r->state == task_state::waiting && !r->in_permit_queue)
        try_start(r->shared_from_this());
      if (!is_ready(*r))
        return;
    }
  }

  void begin_attempt(const record_ptr& record, time_point now = clock::now()) {
    ++running_;
    enter(*record, task_state::running, now);
    const std::uint32_t number = ++record->attempts;
    auto attempt = std::make_shared<attempt_state>(record->handle, number, weak_from_this(), now,
                                                   record->spec.stop_grace);
    record->current = attempt;
    record->ready = false;
    record->started_at = now;
    emit(event_kind::attempt_starting, record->name(), number);
    watch_attempt(record);

    asio::awaitable<void> body;
    std::exception_ptr thrown;
    try {
      body = record->spec.fn(task_context(attempt));
      if (!body.valid())
        throw std::logic_error("task_fn returned an empty awaitable");
    } catch (...) {
      thrown = std::current_exception();
    }
    if (thrown) {  // the body could not even start: end the attempt from the strand's queue
      asio::post(strand_, [self = shared_from_this(), record, attempt, thrown] {
        self->on_attempt_end(record, attempt, thrown);
      });
      return;
    }
    // Spawned on a never-blocking view of the task's strand. Like any co_spawn in Asio 1.22,
    // it runs the new coroutine inline up to its first suspension (a dispatch through the
    // task's strand, which this thread then holds; `blocking.never` does not prevent it): the
    // body's first steps run before this returns, and the attempt's frames are allocated next
    // to the record's. Posting the start instead cost about a fifth of lifecycle and start_idle
    // and a third of a 100 K shutdown (the frames land far from their record); docs/concepts.md
    // asks for short first steps. The slot is connected here, before anything can stop the
    // attempt: request_stop() posts its emit to the task's strand, which orders it after this.
    auto slot = attempt->signal.slot();
    asio::co_spawn(
        asio::require(record->executor(), asio::execution::blocking.never),
        guarded(std::move(body), std::move(attempt)),
        asio::bind_cancellation_slot(slot, attempt_done{shared_from_this(), record, number}));
  }

  /// The completion of an attempt's co_spawn, small on purpose: co_spawn keeps it in the
  /// attempt's frame, next to two copies of its executor.
  struct attempt_done {
    std::shared_ptr<supervisor_core> self;
    record_ptr record;
    std::uint32_t number;

    void operator()(std::exception_ptr error) {
      supervisor_core& core = *self;
      asio::dispatch(core.strand_, [self = std::move(self), record = std::move(record),
                                    number = number, error = std::move(error)]() mutable {
        // Abandoned earlier (already reported) when another attempt or none is current.
        if (record->current && record->current->attempt == number)
          self->on_attempt_end(record, record->current, std::move(error));
      });
    }
  };

  /// Runs an attempt's body and records how it ended, catching a failure where it was thrown:
  /// the supervisor then reads it from the attempt and never rethrows it.
  static asio::awaitable<void> guarded(asio::awaitable<void> body,
                                       std::shared_ptr<attempt_state> attempt) {
    try {
      co_await std::move(body);
    } catch (const fatal_error& e) {
      attempt->error = std::current_exception();
      attempt->what = e.what();
      attempt->fatal = true;
    } catch (const std::exception& e) {
      attempt->error = std::current_exception();
      attempt->what = e.what();
    } catch (...) {
      attempt->error = std::current_exception();
      attempt->what = "unknown exception (not derived from std::exception)";
    }
  }

  /// `error` is what escaped `guarded` (nothing, unless it could not even run) or what the task
  /// function threw before its coroutine existed.
  void on_attempt_end(const record_ptr& record, std::shared_ptr<attempt_state> attempt,
                      std::exception_ptr error) {
    if (record->current != attempt)
      return;  // abandoned earlier: already reported
    const bool group_stop = record == stopping_now_;
    if (group_stop)
      stopping_now_.reset();
    record->current.reset();
    --running_;
    disarm(*record);
    const time_point now = clock::now();
    const duration ran_for = now - record->started_at;
    if (error && !attempt->error) {
      const failure_info info = inspect(error);
      attempt->error = std::move(error);
      attempt->what = info.what;
      attempt->fatal = info.fatal;
    }
    const bool failed = attempt->error || attempt->code;
    // What a stopped attempt ends with is the cancellation, not a failure: only failures are
    // kept as the task's last error.
    const auto keep_failure = [&] {
      if (attempt->error)
        record->failure.set(attempt->error, std::move(attempt->what));
      else
        record->failure.set(attempt->code);
    };

    if (record->stop_requested) {
      emit(event_kind::attempt_canceled, record->name(), attempt->attempt, {}, attempt->what);
      finish(record, task_outcome::canceled);
    } else if (group_stop) {  // stopped for a group restart: it starts again with the group
      emit(event_kind::attempt_canceled, record->name(), attempt->attempt, {}, attempt->what);
      hold(record);
    } else if (attempt->cut_short) {  // timed out or stalled: recorded when it was detected
      after_failure(record, ran_for, now);
    } else if (!failed) {
      emit(event_kind::attempt_succeeded, record->name(), attempt->attempt);
      record->streak = 0;
      if (record->spec.restart == restart_policy::always)
        schedule_restart(record, record->spec.backoff.delay(1, rng_), {}, now);
      else
        finish(record, task_outcome::completed);
    } else if (attempt->fatal) {
      keep_failure();
      emit_failure(*record, attempt->attempt);
      finish(record, task_outcome::fatal);
    } else {
      keep_failure();
      emit_failure(*record, attempt->attempt);
      after_failure(record, ran_for, now);
    }
    if (group_stop)
      advance_stops();
    resume_work();
  }

  void after_failure(const record_ptr& record, duration ran_for, time_point now) {
    if (record->spec.restart == restart_policy::never) {
      finish(record, task_outcome::failed);
      return;
    }
    std::string note;
    const failure_decision decision = classify(*record, note);
    if (decision.action == failure_action::give_up) {
      finish(record, task_outcome::failed);
      return;
    }
    if (decision.action == failure_action::escalate) {
      escalate(record, true);
      return;
    }
    const auto& reset_after = record->spec.backoff.reset_after;
    if (reset_after && ran_for >= *reset_after)
      record->streak = 0;
    ++record->streak;
    if (record->spec.max_retries && record->streak > *record->spec.max_retries) {
      emit(event_kind::retries_exhausted, record->name(), record->attempts, {},
           fmt::format("gave up after {} consecutive failures (max_retries {})", record->streak,
                       *record->spec.max_retries));
      finish(record, task_outcome::failed);
      return;
    }
    if (intensity_ && !intensity_->admit(now)) {
      escalate(record, false);
      return;
    }
    const duration delay = decision.action == failure_action::restart_after
                               ? std::max(decision.delay, duration::zero())
                               : record->spec.backoff.delay(record->streak, rng_);
    if (options_.strategy == strategy::one_for_one)
      schedule_restart(record, delay, std::move(note), now);
    else
      restart_group(record, delay, std::move(note));
  }

  // ---- one_for_all / rest_for_one ----------------------------------------------------------
  //
  // A failure that restarts a child under one_for_all (every other child) or rest_for_one (the
  // children added after it) stops those siblings one at a time, the last started first, each
  // within its stop_grace; then, once all stopped and the failed child's backoff delay passed,
  // the whole group starts again in start order. The same sequential queue stops the children
  // of these strategies at shutdown.

  void restart_group(const record_ptr& failed, duration delay, std::string note) {
    hold(failed);
    emit(event_kind::backoff_scheduled, failed->name(), failed->attempts + 1, delay,
         std::move(note));
    const time_point at = deadline_after(clock::now(), delay);
    group_restart_at_ = group_pending_ ? std::max(group_restart_at_, at) : at;
    group_pending_ = true;
    bool after_failed = false;
    for (task_record* r = head_; r != nullptr; r = r->next) {
      if (r == failed.get()) {
        after_failed = true;
        continue;
      }
      if (options_.strategy == strategy::rest_for_one && !after_failed)
        continue;
      if (r->state != task_state::held && !r->stop_requested)
        enqueue_stop(r->shared_from_this());
    }
    advance_stops();
  }

  void enqueue_stop(const record_ptr& record) {
    if (record->queued_for_stop || record == stopping_now_)
      return;
    record->queued_for_stop = true;
    // Kept in start order; stopped from the back: the last started stops first.
    const auto position = std::upper_bound(
        stop_queue_.begin(), stop_queue_.end(), record,
        [](const record_ptr& a, const record_ptr& b) { return a->order < b->order; });
    stop_queue_.insert(position, record);
  }

  /// Stops the next queued child when none is stopping; arms the group restart once all did.
  void advance_stops() {
    while (!stopping_now_ && !stop_queue_.empty()) {
      record_ptr next = std::move(stop_queue_.back());
      stop_queue_.pop_back();
      next->queued_for_stop = false;
      if (next->state == task_state::finished)
        continue;
      if (!next->current) {  // waiting, in backoff or held: nothing to wait for
        if (next->stop_requested)
          finish(next, task_outcome::canceled);
        else
          hold(next);
        continue;
      }
      stopping_now_ = next;
      enter(*next, task_state::stopping);
      time_point deadline = deadline_after(clock::now(), next->spec.stop_grace);
      if (shutting_down_)  // the shutdown's grace may end first
        deadline = std::min(deadline, shutdown_deadline());
      request_stop(*next->current, deadline);
      arm(next, deadline_after(clock::now(), next->spec.stop_grace),
          [](supervisor_core& self, const record_ptr& r) { self.abandon_after_grace(r); });
    }
    if (!stopping_now_ && stop_queue_.empty() && group_pending_ && !shutting_down_) {
      group_timer_.expires_at(group_restart_at_);
      group_timer_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (!ec)
          self->start_group();
      });
    }
  }

  /// Parks a stopped group member until the group restarts; a `never` child is not restarted.
  void hold(const record_ptr& record) {
    if (record->spec.restart == restart_policy::never) {
      if (record->failure.what().empty())
        record->failure.note("stopped with its group");
      finish(record, task_outcome::canceled);
      return;
    }
    stop_waiting(record);
    enter(*record, task_state::held);
  }

  void start_group() {
    if (!group_pending_ || shutting_down_ || stopping_now_ || !stop_queue_.empty())
      return;  // a later failure grew the group: advance_stops() re-arms when it is stopped
    if (clock::now() < group_restart_at_) {
      advance_stops();  // the deadline moved later: wait for it
      return;
    }
    group_pending_ = false;
    for (task_record* r = head_; r != nullptr; r = r->next)
      if (r->state == task_state::held)
        try_start(r->shared_from_this());
  }

  /// The task's `classify` answer for its last failure (restart when it has none). An exception
  /// from `classify` means restart; `note` then says so, for the `backoff_scheduled` reason.
  static failure_decision classify(const task_record& record, std::string& note) {
    if (!record.spec.classify)
      return failure_decision::restart();
    try {
      return record.spec.classify(record.failure.exception());
    } catch (...) {
      note = fmt::format("classify threw ({}); restarting by policy",
                         inspect(std::current_exception()).what);
      return failure_decision::restart();
    }
  }

  void schedule_restart(const record_ptr& record, duration delay, std::string note,
                        time_point now) {
    enter(*record, task_state::backoff, now);
    emit(event_kind::backoff_scheduled, record->name(), record->attempts + 1, delay, note);
    if (delay <= duration::zero()) {
      try_start(record, now);  // no timer (and no timerfd update) for an immediate restart
      return;
    }
    arm(record, deadline_after(now, delay),
        [](supervisor_core& self, const record_ptr& r) { self.try_start(r); });
  }

  /// Arms the attempt's watchdog at the earlier of its timeout and its stall deadline (one
  /// timer per task does both).
  void watch_attempt(const record_ptr& record) {
    const task_spec& spec = record->spec;
    const bool awaiting_ready = options_.readiness_timeout && !record->ready;
    if (!spec.timeout && !spec.stall_timeout && !awaiting_ready)
      return;
    time_point deadline = time_point::max();
    if (spec.timeout)
      deadline = deadline_after(record->started_at, *spec.timeout);
    if (spec.stall_timeout)
      deadline =
          std::min(deadline, deadline_after(last_heartbeat(*record->current), *spec.stall_timeout));
    if (awaiting_ready)
      deadline =
          std::min(deadline, deadline_after(record->started_at, *options_.readiness_timeout));
    arm(record, deadline, [](supervisor_core& self, const record_ptr& r) { self.on_watch(r); });
  }

  void on_watch(const record_ptr& record) {
    const auto& attempt = record->current;
    if (!attempt || record->stop_requested || attempt->cut_short)
      return;
    const task_spec& spec = record->spec;
    const time_point now = clock::now();
    if (spec.timeout && now - record->started_at >= *spec.timeout) {
      cut_short(
          record, event_kind::attempt_timed_out, errc::attempt_timed_out, *spec.timeout,
          fmt::format("attempt {} timed out after {}", attempt->attempt, to_text(*spec.timeout)));
    } else if (spec.stall_timeout && now - last_heartbeat(*attempt) >= *spec.stall_timeout) {
      cut_short(record, event_kind::attempt_stalled, errc::attempt_stalled, *spec.stall_timeout,
                fmt::format("attempt {} sent no heartbeat for {}", attempt->attempt,
                            to_text(*spec.stall_timeout)));
    } else if (const auto& limit = options_.readiness_timeout;
               limit && !record->ready && now - record->started_at >= *limit) {
      cut_short(
          record, event_kind::attempt_timed_out, errc::readiness_timed_out, *limit,
          fmt::format("attempt {} was not ready within {}", attempt->attempt, to_text(*limit)));
    } else {
      watch_attempt(record);  // a heartbeat came in time: watch the next deadline
    }
  }

  /// Stops an attempt that ran too long or stalled; it ends as a failure whatever it returns,
  /// and is abandoned if it ignores cancellation past its `stop_grace`.
  void cut_short(const record_ptr& record, event_kind kind, errc code, duration limit,
                 std::string reason) {
    const auto& attempt = record->current;
    attempt->cut_short = std::make_exception_ptr(std::system_error(make_error_code(code), reason));
    record->failure.set(attempt->cut_short, reason);  // kept even if abandoned later
    emit(kind, record->name(), attempt->attempt, limit, std::move(reason));
    enter(*record, task_state::stopping);
    const time_point deadline = deadline_after(clock::now(), record->spec.stop_grace);
    request_stop(*attempt, deadline);
    arm(record, deadline,
        [](supervisor_core& self, const record_ptr& r) { self.abandon_after_grace(r); });
  }

  static time_point last_heartbeat(const attempt_state& attempt) {
    return time_point(duration(attempt.last_heartbeat.load(std::memory_order_relaxed)));
  }

  static void enter(task_record& record, task_state state, time_point now = clock::now()) {
    record.state = state;
    record.state_since = now;
  }

  void remove_task(const record_ptr& record) {
    if (record->state == task_state::finished || record->stop_requested)
      return;
    emit(event_kind::task_remove_requested, record->name(), record->attempts);
    stop_task(record, record->spec.stop_grace);
    start_in_order();  // a child that never got ready no longer holds back later ones
    report_ready_if_all();
  }

  /// Stops a task for good: at once when no attempt runs, else by cancelling the attempt. With
  /// a `grace`, the attempt is abandoned if still running after it; without, the shutdown's
  /// shared grace timer watches it.
  void stop_task(const record_ptr& record, std::optional<duration> grace,
                 time_point now = clock::now()) {
    record->stop_requested = true;
    switch (record->state) {
      case task_state::waiting:
      case task_state::backoff:
      case task_state::held:
        finish(record, task_outcome::canceled);
        return;
      case task_state::running:
      case task_state::stopping:
        enter(*record, task_state::stopping, now);
        request_stop(*record->current, grace ? deadline_after(now, *grace) : shutdown_deadline());
        if (grace)
          arm(record, deadline_after(now, *grace),
              [](supervisor_core& self, const record_ptr& r) { self.abandon_after_grace(r); });
        else
          disarm(*record);
        return;
      case task_state::finished:
        return;
    }
  }

  /// Cancellation is emitted on the attempt's own strand, as Asio requires; the flag is set
  /// first so a CPU loop polling `stop_requested()` sees it even before the emit runs.
  static void request_stop(attempt_state& attempt, time_point deadline) {
    attempt.stop_deadline.store(deadline.time_since_epoch().count(), std::memory_order_relaxed);
    attempt.stop.store(true, std::memory_order_release);
    asio::post(attempt.executor(), [attempt = attempt.shared_from_this()] {
      attempt->signal.emit(asio::cancellation_type::terminal);
    });
  }

  void abandon_after_grace(const record_ptr& record) {
    if (!record->current)
      return;
    const duration grace = record->spec.stop_grace;
    emit(event_kind::grace_exceeded, record->name(), record->current->attempt, grace,
         fmt::format("{} ignored cancellation for {}", record->name(), to_text(grace)));
    if (shutting_down_)
      shutdown_abandoned_.emplace_back(record->order, record->name());
    abandon(record, grace);
    if (record == stopping_now_) {
      stopping_now_.reset();
      advance_stops();
    }
    resume_work();
  }

  /// Gives up on an attempt that ignores cancellation: its coroutine is left to end on its own
  /// (its completion is then ignored), its permit is released, the task ends `abandoned`.
  void abandon(const record_ptr& record, duration grace) {
    if (record->current) {
      if (!record->current->stop.load())
        request_stop(*record->current, clock::now());  // queued for a sequential stop: ask anyway
      record->current.reset();
      --running_;
    }
    record->failure.note(fmt::format("ignored cancellation past its grace of {}", to_text(grace)));
    finish(record, task_outcome::abandoned);
  }

  void finish(const record_ptr& record, task_outcome::code kind) {
    stop_waiting(record);
    record->state = task_state::finished;
    unlink(record.get());

    task_outcome outcome;
    outcome.kind = kind;
    outcome.attempts = record->attempts;
    if (kind != task_outcome::completed) {
      outcome.error = record->failure.exception();
      outcome.reason = record->failure.what();
    }
    if (kind == task_outcome::canceled && outcome.reason.empty())
      outcome.reason = shutting_down_ ? "shutdown" : "removed";
    if (heard()) {
      emit(event_kind::task_finished, record->name(), record->attempts, {},
           outcome.reason.empty() ? std::string(to_string(kind))
                                  : fmt::format("{}: {}", to_string(kind), outcome.reason));
      emit(event_kind::task_removed, record->name(), record->attempts);
    }
    // One critical section: whoever sees the name gone also sees the outcome, and whoever
    // sees the outcome can add the name again.
    deferred_completions done;  // woken after the unlock
    std::lock_guard lock(registry_mutex_);
    registry_.erase(*record);
    record->handle->outcome.set(done, std::move(outcome));
    if (registry_.empty())
      empty_waiters_.complete_all(done, {}, true);
  }

  /// After an attempt ended or was abandoned: a permit or a predecessor's place may be free,
  /// and the shutdown may be over.
  void resume_work() {
    grant_permits();
    start_in_order();
    report_ready_if_all();
    finish_shutdown_if_done();
  }

  void grant_permits() {
    while (options_.max_concurrent != 0 && running_ < options_.max_concurrent &&
           !permit_queue_.empty()) {
      record_ptr next = std::move(permit_queue_.front());
      permit_queue_.pop_front();
      next->in_permit_queue = false;
      begin_attempt(next);
    }
  }

  /// The supervisor gives up: a restart broke the intensity limit, or `classify` escalated.
  void escalate(const record_ptr& record, bool by_classify) {
    const std::string why =
        by_classify
            ? fmt::format("{} escalated its failure: {}", record->name(), record->failure.what())
            : fmt::format("more than {} restarts within {} (last failure of {}: {})",
                          options_.intensity->max_restarts, to_text(options_.intensity->period),
                          record->name(), record->failure.what());
    emit(event_kind::intensity_exceeded, record->name(), record->attempts,
         by_classify ? duration{} : options_.intensity->period, why);
    if (!escalation_)
      escalation_ = std::make_exception_ptr(
          intensity_exceeded("vigil: supervisor gave up: " + why, record->failure.exception()));
    retain(*record);  // a nested supervisor restarts with the child that broke the limit
    finish(record, task_outcome::failed);
    shutdown();
  }

  /// Called under registry_mutex_.
  void begin_shutdown_locked() {
    if (!accepting_)
      return;
    accepting_ = false;
    asio::post(strand_, [self = shared_from_this()] { self->begin_shutdown(); });
  }

  /// When the shutdown's grace ends.
  time_point shutdown_deadline() const {
    return deadline_after(shutdown_started_, options_.shutdown_grace);
  }

  void begin_shutdown() {
    shutting_down_ = true;
    shutdown_started_ = clock::now();
    for (const task_record* r = head_; r != nullptr; r = r->next)
      if (!r->stop_requested)  // removed children are not kept
        retain(*r);
    emit(event_kind::shutdown_requested, {}, 0, options_.shutdown_grace);
    group_pending_ = false;
    group_timer_.cancel();
    if (options_.strategy == strategy::one_for_one) {
      // Independent children: every stop request goes out at once, in reverse start order.
      for (task_record* r = tail_; r != nullptr;) {
        task_record* const previous = r->prev;
        stop_task(r->shared_from_this(), std::nullopt, shutdown_started_);
        r = previous;
      }
    } else {
      // Children that depend on earlier ones stop one at a time, the last started first; those
      // with no attempt running end at once.
      for (task_record* r = tail_; r != nullptr;) {
        task_record* const previous = r->prev;
        if (r->current) {
          r->stop_requested = true;
          enqueue_stop(r->shared_from_this());
        } else {
          stop_task(r->shared_from_this(), std::nullopt, shutdown_started_);
        }
        r = previous;
      }
      advance_stops();
    }
    if (head_ == nullptr) {
      finish_shutdown(false);
      return;
    }
    shutdown_timer_.expires_at(shutdown_deadline());
    shutdown_timer_.async_wait([self = shared_from_this(), run = run_number_](std::error_code ec) {
      if (!ec && run == self->run_number_ && !self->shutdown_finished_)
        self->shutdown_grace_expired();
    });
  }

  /// The shutdown's grace is over: every task still there is abandoned, named in one
  /// `grace_exceeded` first.
  void shutdown_grace_expired() {
    if (shutdown_finished_)
      return;
    for (task_record* r = head_; r != nullptr; r = r->next)
      shutdown_abandoned_.emplace_back(r->order, r->name());
    emit(event_kind::grace_exceeded, {}, 0, options_.shutdown_grace, abandoned_names());
    for (const auto& queued : stop_queue_)
      queued->queued_for_stop = false;
    stop_queue_.clear();
    stopping_now_.reset();
    while (tail_ != nullptr)
      abandon(tail_->shared_from_this(), options_.shutdown_grace);
    finish_shutdown(true);
  }

  void finish_shutdown_if_done() {
    if (shutting_down_ && !shutdown_finished_ && head_ == nullptr) {
      shutdown_timer_.cancel();
      finish_shutdown(false);
    }
  }

  /// Names of the tasks abandoned during the shutdown, in start order, comma-separated.
  std::string abandoned_names() {
    std::sort(shutdown_abandoned_.begin(), shutdown_abandoned_.end());
    std::vector<std::string_view> names;
    for (const auto& entry : shutdown_abandoned_)
      names.push_back(entry.second);
    return fmt::format("{}", fmt::join(names, ", "));
  }

  void finish_shutdown(bool grace_exceeded_published) {
    shutdown_finished_ = true;
    shutdown_timer_.cancel();
    shutdown_report report;
    std::sort(shutdown_abandoned_.begin(), shutdown_abandoned_.end());
    for (const auto& entry : shutdown_abandoned_)
      report.abandoned.push_back(entry.second);
    report.within_grace = report.abandoned.empty();
    report.took = clock::now() - shutdown_started_;
    report.escalation = escalation_;
    if (report.within_grace)
      emit(event_kind::all_stopped_within_grace, {}, 0, report.took);
    else if (!grace_exceeded_published)  // tasks abandoned one by one, after their stop_grace
      emit(event_kind::grace_exceeded, {}, 0, options_.shutdown_grace, abandoned_names());
    if (signals_) {
      std::error_code ignored;
      signals_->clear(ignored);  // back to the default disposition: a later Ctrl-C ends the process
      signals_->cancel(ignored);
    }
    {
      std::lock_guard lock(link_mutex_);
      link_.reset();  // the parent's attempt ends with this run
    }
    std::shared_ptr<shutdown_state> finished_run;
    std::vector<record_ptr> revived;
    {
      std::lock_guard lock(registry_mutex_);
      finished_run = done_;
      if (nested_.load(std::memory_order_relaxed) && !retired_) {
        done_ = std::make_shared<shutdown_state>();
        accepting_ = true;
        revived = register_retained();
      }
    }
    if (finished_run == done_) {
      bus_.close();  // readers drain what is buffered, then their loops end
    } else {         // a nested supervisor: a fresh run, parked until the parent's next attempt
      ++run_number_;
      shutting_down_ = false;
      shutdown_finished_ = false;
      escalation_ = nullptr;
      shutdown_abandoned_.clear();
      if (options_.intensity)
        intensity_.emplace(*options_.intensity);
      for (const auto& record : revived)
        start_task(record);
    }
    retained_.clear();
    finished_run->set(std::move(report));
  }

  /// Arms the task's timer; a re-arm or `disarm` makes the earlier expiry a no-op.
  template <class OnExpiry>
  void arm(const record_ptr& record, time_point at, OnExpiry on_expiry) {
    const std::uint64_t generation = ++record->timer_generation;
    if (!record->timer)
      record->timer = std::make_unique<asio::steady_timer>(strand_);
    record->timer->expires_at(at);
    record->timer->async_wait(
        [self = shared_from_this(), record, generation, on_expiry](std::error_code ec) {
          if (!ec && record->timer_generation == generation)
            on_expiry(*self, record);
        });
  }

  /// The task waits for nothing any more: no timer, no place in the permit queue.
  void stop_waiting(const record_ptr& record) {
    disarm(*record);
    if (record->in_permit_queue) {
      permit_queue_.erase(std::remove(permit_queue_.begin(), permit_queue_.end(), record),
                          permit_queue_.end());
      record->in_permit_queue = false;
    }
  }

  static void disarm(task_record& record) {
    ++record.timer_generation;
    if (record.timer)
      record.timer->cancel();
  }

  void link(task_record* r) noexcept {
    r->prev = tail_;
    r->next = nullptr;
    (tail_ != nullptr ? tail_->next : head_) = r;
    tail_ = r;
  }

  void unlink(task_record* r) noexcept {
    if (r->prev == nullptr && head_ != r)
      return;  // not linked
    (r->prev != nullptr ? r->prev->next : head_) = r->next;
    (r->next != nullptr ? r->next->prev : tail_) = r->prev;
    r->prev = r->next = nullptr;
  }

  const asio::any_io_executor executor_;
  const asio::any_io_executor strand_;
  const supervisor_options options_;
  event_bus bus_;
  std::atomic<bool> nested_{false};  // as_task() was called

  // Guarded by registry_mutex_: the names, the admission flag, the current run's shutdown state,
  // the wait_until_empty waiters.
  mutable std::mutex registry_mutex_;
  name_index<task_record, record_name> registry_;
  std::shared_ptr<shutdown_state> done_ = std::make_shared<shutdown_state>();
  bool accepting_ = true;
  bool retired_ = false;  // the supervisor object is gone: no run after this one
  std::uint64_t next_order_ = 0;
  task_record* added_head_ = nullptr;  // registered, not yet seen by the strand (start_added)
  task_record* added_tail_ = nullptr;
  wait_queue<bool> empty_waiters_{registry_mutex_};

  // Supervisor strand only.
  task_record* head_ = nullptr;  // registered tasks in add order
  task_record* tail_ = nullptr;
  std::size_t running_ = 0;  // attempts holding a permit
  std::deque<record_ptr> permit_queue_;
  std::optional<intensity_window> intensity_;
  asio::steady_timer shutdown_timer_;
  asio::steady_timer group_timer_;      // restart of a one_for_all / rest_for_one group
  std::vector<record_ptr> stop_queue_;  // sequential stops, in start order, taken from the back
  record_ptr stopping_now_;             // the one child the sequential stop waits for
  time_point group_restart_at_{};
  bool group_pending_ = false;
  std::optional<asio::signal_set> signals_;
  std::mt19937_64 rng_;
  std::exception_ptr escalation_;
  time_point shutdown_started_{};
  std::vector<std::pair<std::uint64_t, std::string>> shutdown_abandoned_;  // (add order, name)
  bool shutting_down_ = false;
  bool shutdown_finished_ = false;
  std::uint64_t run_number_ = 0;  // a nested supervisor's runs: stale shutdown timers are ignored
  std::vector<std::pair<std::uint64_t, task_spec>> retained_;  // (add order, spec) for the next run

  // The parent's attempt this run belongs to (nested only). Written on the strand under
  // link_mutex_; read under it by publish() from any strand (a grandchild forwards through us).
  mutable std::mutex link_mutex_;
  std::shared_ptr<attempt_state> link_;
};

namespace {

/// Calls `on_event`; returns what it threw, empty when it did not.
std::string deliver(subscriber& target, const event& e) {
  try {
    target.on_event(e);
    return {};
  } catch (const std::exception& ex) {
    return ex.what()[0] != '\0' ? ex.what() : "exception with an empty what()";
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

asio::awaitable<void> drive_subscriber(subscription events, std::shared_ptr<subscriber> target,
                                       std::weak_ptr<supervisor_core> owner) {
  for (;;) {
    std::optional<event> e = events.try_next();
    if (!e) {
      bool closed = false;
      try {
        e = co_await events.next();
      } catch (const std::system_error&) {
        closed = true;  // the bus closed (or the subscription was cancelled)
      }
      if (closed)
        break;
    }
    const std::string failure = deliver(*target, *e);
    // A panic while handling a diagnostic event is not published again: two subscribers that
    // throw on everything would otherwise feed each other forever.
    if (failure.empty() || e->kind == event_kind::subscriber_panicked ||
        e->kind == event_kind::subscriber_overflow)
      continue;
    if (auto self = owner.lock()) {
      event panic;
      panic.kind = event_kind::subscriber_panicked;
      panic.task = target->name();
      panic.reason =
          fmt::format("on_event threw on {} #{}: {}", to_string(e->kind), e->seq, failure);
      self->publish(std::move(panic));
    }
  }
}

}  // namespace

/// One attempt of a task made by `supervisor::as_task()`: one run of the nested supervisor.
asio::awaitable<void> run_nested(std::shared_ptr<supervisor_core> child,
                                 std::shared_ptr<attempt_state> attempt) {
  // A named initiation: GCC 12 destroys the captures of a lambda temporary inside a co_await
  // expression twice.
  auto attach = [child, attempt](auto handler) { child->attach(attempt, std::move(handler)); };
  const std::shared_ptr<shutdown_state> run =
      co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                    void(std::exception_ptr, std::shared_ptr<shutdown_state>)>(
          attach, asio::use_awaitable);

  std::optional<shutdown_report> report;
  if (!attempt->stop.load(std::memory_order_acquire)) {  // else stopped during the attach
    try {
      report = co_await run->async_wait(asio::use_awaitable);
    } catch (const std::system_error& e) {
      if (e.code() != asio::error::operation_aborted)
        throw;
    }
  }
  if (!report) {
    // The parent stops this attempt: the nested supervisor shuts down with its own grace, and
    // the attempt ends when it has, whatever further cancellation says.
    child->stop_run(run);
    co_await asio::this_coro::reset_cancellation_state(
        [](asio::cancellation_type) { return asio::cancellation_type::none; });
    co_await run->async_wait(asio::use_awaitable);
    co_return;
  }
  if (report->escalation)
    std::rethrow_exception(report->escalation);  // a failure of this task, for the parent
}

}  // namespace detail

// ---- supervisor --------------------------------------------------------------------------------

supervisor::supervisor(asio::any_io_executor executor, supervisor_options options)
    : core_(std::make_shared<detail::supervisor_core>(std::move(executor), std::move(options))) {
  core_->start();
}

supervisor::~supervisor() {
  core_->retire();
}

task_fn supervisor::as_task() {
  core_->make_nested();
  // Not a coroutine lambda: the attempt's coroutine owns copies of what it needs.
  return [core = core_](task_context ctx) { return detail::run_nested(core, ctx.state_); };
}

task_handle supervisor::add(task_spec spec) {
  return core_->add(std::move(spec));
}

bool supervisor::remove(std::string_view name) {
  return core_->remove(name);
}

shutdown_handle supervisor::shutdown() {
  return core_->shutdown();
}

asio::awaitable<shutdown_report> supervisor::run() {
  auto done = core_->current_run();
  shutdown_report report = co_await shutdown_handle(done).wait();
  if (report.escalation)
    std::rethrow_exception(report.escalation);
  co_return report;
}

asio::awaitable<std::vector<task_snapshot>> supervisor::snapshot() {
  auto take = [core = core_](auto handler) { core->snapshot(std::move(handler)); };
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                          void(std::error_code, std::vector<task_snapshot>)>(
      take, asio::use_awaitable);
}

asio::awaitable<void> supervisor::wait_until_empty() {
  // A named initiation: GCC 12 destroys the captures of a lambda temporary inside a co_await
  // expression twice.
  auto park = [core = core_](auto handler) { core->wait_until_empty(std::move(handler)); };
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::error_code, bool)>(
      park, asio::use_awaitable);
}

std::vector<std::string> supervisor::list() const {
  return core_->list();
}

bool supervisor::contains(std::string_view name) const {
  return core_->contains(name);
}

event_bus& supervisor::events() noexcept {
  return core_->bus();
}

const asio::any_io_executor& supervisor::get_executor() const noexcept {
  return core_->executor();
}

asio::awaitable<shutdown_report> shutdown_handle::wait() const {
  auto state = state_;
  if (auto report = state->get())
    co_return std::move(*report);
  co_return co_await state->async_wait(asio::use_awaitable);
}

}  // namespace vigil
