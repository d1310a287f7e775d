#include <vigil/systemd_notifier.hpp>

#include "text.hpp"

#include <asio/post.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

// POSIX / Linux: AF_UNIX datagrams (SOCK_CLOEXEC, SOCK_NONBLOCK and MSG_NOSIGNAL are Linux's).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace vigil {

namespace {

/// What `sun_path` holds: a path and its terminating NUL; an abstract name (`@` → NUL) fills it
/// all, with no terminator.
constexpr std::size_t sun_path_size = sizeof(sockaddr_un::sun_path);

/// `value` as a positive decimal number, or nothing (empty, sign, junk, overflow, zero).
std::optional<unsigned long long> parse_positive(const char* value) {
  if (value == nullptr)
    return std::nullopt;
  const char* const end = value + std::strlen(value);
  unsigned long long parsed = 0;
  const auto [stop, error] = std::from_chars(value, end, parsed);
  if (error != std::errc{} || stop != end || value == end || parsed == 0)
    return std::nullopt;
  return parsed;
}

std::string validated_address(const systemd_notifier::options& opts) {
  const std::string& socket = opts.socket;
  const auto fail = [&socket](std::string_view why) {
    throw std::invalid_argument(
        fmt::format("vigil: systemd_notifier::options.socket {}, got \"{}\"", why, socket));
  };
  if (opts.watchdog && *opts.watchdog <= duration::zero())
    throw std::invalid_argument(
        fmt::format("vigil: systemd_notifier::options.watchdog must be positive, got {}",
                    detail::to_text(*opts.watchdog)));
  if (socket.empty())
    return {};
  if (socket.front() != '/' && socket.front() != '@')
    fail("must be an absolute path or @name for an abstract socket");
  if (socket.size() == 1)
    fail("names no socket");
  const std::size_t limit = socket.front() == '@' ? sun_path_size : sun_path_size - 1;
  if (socket.size() > limit)
    fail(fmt::format("is longer than {} bytes", limit));
  if (socket.find('\0') != std::string::npos)
    fail("must not contain a NUL byte");
  std::string address = socket;
  if (address.front() == '@')
    address.front() = '\0';
  return address;
}

}  // namespace

std::string systemd_notifier::options::socket_from_environment() {
  const char* value = std::getenv("NOTIFY_SOCKET");
  return value != nullptr ? std::string(value) : std::string();
}

std::optional<duration> systemd_notifier::options::watchdog_from_environment() {
  const auto usec = parse_positive(std::getenv("WATCHDOG_USEC"));
  if (!usec)
    return std::nullopt;
  if (const char* pid = std::getenv("WATCHDOG_PID")) {
    const auto parsed = parse_positive(pid);
    if (!parsed || *parsed != static_cast<unsigned long long>(::getpid()))
      return std::nullopt;
  }
  // Microseconds beyond what a duration holds (hundreds of years) mean "practically never".
  constexpr auto max_usec = static_cast<unsigned long long>(
      std::chrono::duration_cast<std::chrono::microseconds>(duration::max()).count());
  const auto clamped = *usec < max_usec ? *usec : max_usec;
  return std::chrono::duration_cast<duration>(
      std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(clamped)));
}

systemd_notifier::systemd_notifier(asio::any_io_executor executor, options opts)
    : address_(validated_address(opts)),
      watchdog_(opts.watchdog),
      strand_(asio::make_strand(std::move(executor))),
      timer_(strand_) {}

std::shared_ptr<systemd_notifier> systemd_notifier::create(asio::any_io_executor executor,
                                                           options opts) {
  // The constructor is private: make_shared cannot reach it.
  std::shared_ptr<systemd_notifier> notifier(
      new systemd_notifier(std::move(executor), std::move(opts)));
  if (!notifier->address_.empty() && notifier->watchdog_)
    asio::post(notifier->strand_, [weak = notifier->weak_from_this()] {
      if (auto self = weak.lock())
        self->tick();
    });
  return notifier;
}

std::shared_ptr<systemd_notifier> systemd_notifier::from_environment(
    asio::any_io_executor executor) {
  return create(std::move(executor), options{});
}

systemd_notifier::~systemd_notifier() {
  if (descriptor_ >= 0)
    ::close(descriptor_);
  // timer_'s destructor cancels a pending wait: its handler finds the notifier gone.
}

void systemd_notifier::on_event(const event& e) {
  // A nested supervisor's events are its own business: its readiness reaches this level as
  // the task_ready of the task it runs in.
  if (address_.empty() || e.depth != 0)
    return;
  std::lock_guard lock(mutex_);
  switch (e.kind) {
    case event_kind::task_added:
    case event_kind::attempt_starting:
      mark(e.task, false);
      break;
    case event_kind::task_ready:
      mark(e.task, true);
      break;
    case event_kind::attempt_succeeded:
    case event_kind::attempt_failed:
    case event_kind::attempt_canceled:
    case event_kind::attempt_timed_out:
    case event_kind::attempt_stalled:
      if (ready_.contains(e.task))
        mark(e.task, false);
      break;
    case event_kind::task_removed:
      if (const auto found = ready_.find(e.task); found != ready_.end()) {
        not_ready_ -= found->second ? 0 : 1;
        ready_.erase(found);
      }
      break;
    case event_kind::intensity_exceeded:
      end_health();
      break;
    case event_kind::shutdown_requested:
      if (!stopping_) {
        stopping_ = true;
        end_health();
        send("STOPPING=1");
      }
      break;
    default:
      break;
  }
  if (healthy_ && !ready_sent_ && !ready_.empty() && not_ready_ == 0) {
    ready_sent_ = true;
    send("READY=1");
  }
}

void systemd_notifier::mark(const std::string& task, bool ready) {
  const auto [entry, inserted] = ready_.try_emplace(task, ready);
  if (inserted) {
    not_ready_ += ready ? 0 : 1;
  } else if (entry->second != ready) {
    entry->second = ready;
    if (ready)
      --not_ready_;
    else
      ++not_ready_;
  }
}

void systemd_notifier::end_health() {
  if (!healthy_)
    return;
  healthy_ = false;
  if (!watchdog_)
    return;
  // The timer belongs to the strand. A tick that runs before this cancellation finds healthy_
  // false under the mutex and sends nothing.
  asio::post(strand_, [weak = weak_from_this()] {
    if (auto self = weak.lock())
      self->timer_.cancel();
  });
}

void systemd_notifier::tick() {
  {
    std::lock_guard lock(mutex_);
    if (!healthy_)
      return;
    send("WATCHDOG=1");
  }
  timer_.expires_after(*watchdog_ / 2);
  timer_.async_wait([weak = weak_from_this()](std::error_code error) {
    if (error)
      return;  // cancelled: the watchdog is over, or the notifier is being destroyed
    if (auto self = weak.lock())
      self->tick();
  });
}

void systemd_notifier::send(std::string_view message) {
  if (descriptor_ < 0) {
    descriptor_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (descriptor_ < 0) {
      failed_sends_.fetch_add(1, std::memory_order_relaxed);
      return;  // tried again on the next send
    }
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, address_.data(), address_.size());
  // The exact length: an abstract name is all its bytes and no terminator; a path's NUL counts.
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                             (address_.front() == '\0' ? 0 : 1));
  ssize_t sent = -1;
  do {
    sent = ::sendto(descriptor_, message.data(), message.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&address), length);
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(message.size()))
    failed_sends_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace vigil
