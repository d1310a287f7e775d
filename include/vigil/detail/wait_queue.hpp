#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

namespace vigil::detail {

/// Posts `handler(ec, value)` to the handler's associated executor: never inline. Call it
/// without holding a lock (see `deferred_completions`).
template <class Handler, class T>
void post_completion(Handler handler, std::error_code ec, T value) {
  auto executor = asio::get_associated_executor(handler);
  asio::post(std::move(executor),
             [handler = std::move(handler), ec, value = std::move(value)]() mutable {
               std::move(handler)(ec, std::move(value));
             });
}

/// Completions decided under a lock and posted by the destructor, once the lock is released.
///
/// Declare it before the lock guard. Posting can destroy a handler on the spot (when its strand
/// was shut down with its io_context), and destroying a coroutine frame may need that very lock:
/// a subscription in the frame unsubscribes, for example.
class deferred_completions {
 public:
  struct item {
    item* next_item = nullptr;
    /// Posts the completion and frees the item.
    virtual void deliver() = 0;

   protected:
    ~item() = default;
  };

  deferred_completions() = default;
  deferred_completions(const deferred_completions&) = delete;
  deferred_completions& operator=(const deferred_completions&) = delete;

  ~deferred_completions() {
    while (head_ != nullptr) {
      item* first = head_;
      head_ = first->next_item;
      first->deliver();
    }
  }

  void add(item* i) noexcept {
    i->next_item = nullptr;
    (tail_ != nullptr ? tail_->next_item : head_) = i;
    tail_ = i;
  }

  /// Defers `post_completion(handler, ec, value)`.
  template <class Handler, class T>
  void post(Handler handler, std::error_code ec, T value) {
    add(new immediate<Handler, T>(std::move(handler), ec, std::move(value)));
  }

 private:
  template <class Handler, class T>
  struct immediate final : item {
    immediate(Handler h, std::error_code e, T v)
        : handler(std::move(h)), ec(e), value(std::move(v)) {}
    void deliver() override {
      post_completion(std::move(handler), ec, std::move(value));
      delete this;
    }
    Handler handler;
    std::error_code ec;
    T value;
  };

  item* head_ = nullptr;
  item* tail_ = nullptr;
};

/// A FIFO of parked asynchronous waiters completing with `void(std::error_code, T)`.
///
/// Not a synchronisation object by itself: every member is called with the owner's mutex held
/// (the one passed to the constructor), which the per-operation cancellation handler locks too.
/// Completions are handed to a `deferred_completions` and posted to the waiter's associated
/// executor after the lock is released. Each waiter keeps that executor's work count up while
/// parked (a parked waiter is pending work, as in Asio).
///
/// Cancellation: terminal, partial and total cancellation complete the waiter with
/// `asio::error::operation_aborted`, as Asio I/O objects do; it must be emitted under the
/// waiter's executor rules (from the coroutine's executor), as for any Asio operation.
template <class T>
class wait_queue {
 public:
  explicit wait_queue(std::mutex& mutex) noexcept : mutex_(&mutex) {}
  wait_queue(const wait_queue&) = delete;
  wait_queue& operator=(const wait_queue&) = delete;

  /// Completes whatever is still parked with `operation_aborted`.
  ~wait_queue() {
    deferred_completions done;
    std::lock_guard lock(*mutex_);
    complete_all(done, asio::error::operation_aborted, T{});
  }

  bool empty() const noexcept { return head_ == nullptr; }

  /// Parks `handler` until `complete_one` / `complete_all` or its cancellation.
  template <class Handler>
  void push(Handler&& handler) {
    link(new node<std::decay_t<Handler>>(*this, std::forward<Handler>(handler)));
  }

  /// Completes the oldest waiter with `(ec, value)` through `done`; false when none is parked.
  bool complete_one(deferred_completions& done, std::error_code ec, T value) {
    node_base* first = head_;
    if (first == nullptr)
      return false;
    unlink(first);
    first->completed.store(true, std::memory_order_release);
    first->result = ec;
    first->value.emplace(std::move(value));
    done.add(first);
    return true;
  }

  /// Completes every parked waiter with a copy of `value` through `done`.
  void complete_all(deferred_completions& done, std::error_code ec, const T& value) {
    while (head_ != nullptr)
      complete_one(done, ec, value);
  }

 private:
  struct node_base : deferred_completions::item {
    node_base* prev = nullptr;
    node_base* next = nullptr;
    bool linked = false;
    /// Set (under the lock) once the waiter's completion is decided. From then on the queue may
    /// be gone, and a late cancellation must not touch it.
    std::atomic<bool> completed{false};
    std::error_code result;
    std::optional<T> value;

   protected:
    ~node_base() = default;
  };

  template <class Handler>
  struct node final : node_base {
    using work_executor =
        std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler>>(),
                                           asio::execution::outstanding_work.tracked))>;

    node(wait_queue& queue, Handler handler)
        : queue_(&queue),
          handler_(std::move(handler)),
          work_(asio::prefer(asio::get_associated_executor(handler_),
                             asio::execution::outstanding_work.tracked)) {
      auto slot = asio::get_associated_cancellation_slot(handler_);
      if (slot.is_connected())
        slot.template emplace<cancel_handler>(this);
    }

    struct cancel_handler {
      explicit cancel_handler(node* owner) noexcept : self(owner) {}
      node* self;
      void operator()(asio::cancellation_type type) const {
        if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                     asio::cancellation_type::total)) == asio::cancellation_type::none)
          return;
        if (self->completed.load(std::memory_order_acquire))
          return;  // its completion is on its way
        wait_queue* queue = self->queue_;
        deferred_completions done;
        std::lock_guard lock(*queue->mutex_);
        if (!self->linked)
          return;  // completed meanwhile
        queue->unlink(self);
        self->completed.store(true, std::memory_order_release);
        self->result = asio::error::operation_aborted;
        self->value.emplace();
        done.add(self);
      }
    };

    /// The node lives until its completion runs on the waiter's executor: until then the
    /// waiter's cancellation slot still points at it, and a cancellation emitted meanwhile (on
    /// that executor, queued before the completion) must find it.
    void deliver() override {
      auto work = std::move(work_);
      asio::post(work, [self = std::unique_ptr<node>(this)]() mutable {
        asio::get_associated_cancellation_slot(self->handler_).clear();
        Handler handler = std::move(self->handler_);
        const std::error_code ec = self->result;
        T value = std::move(*self->value);
        self.reset();
        std::move(handler)(ec, std::move(value));
      });
    }

    wait_queue* queue_;
    Handler handler_;
    work_executor work_;
  };

  void link(node_base* n) noexcept {
    n->linked = true;
    n->prev = tail_;
    n->next = nullptr;
    (tail_ != nullptr ? tail_->next : head_) = n;
    tail_ = n;
  }

  void unlink(node_base* n) noexcept {
    (n->prev != nullptr ? n->prev->next : head_) = n->next;
    (n->next != nullptr ? n->next->prev : tail_) = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
  }

  std::mutex* mutex_;
  node_base* head_ = nullptr;
  node_base* tail_ = nullptr;
};

}  // namespace vigil::detail
