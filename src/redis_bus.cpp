#include <vigil/redis_bus.hpp>

#include <vigil/detail/bus_run_slot.hpp>
#include <vigil/detail/deadline.hpp>

#include "tcp_connect.hpp"
#include "text.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <system_error>

namespace vigil {

/// Shared by the bus object and its run: the run may outlive the object.
struct detail::redis_state {
  redis_state(asio::any_io_executor executor, redis_bus_options o)
      : strand(asio::make_strand(std::move(executor))), socket(strand), options(std::move(o)) {}

  const asio::strand<asio::any_io_executor> strand;
  asio::ip::tcp::socket socket;           // strand only
  asio::cancellation_signal stop_signal;  // strand only: bound to the read loop
  const redis_bus_options options;
  detail::bus_run_slot slot;

  /// What the run is waiting for, so that stop() interrupts only what may be lost: a read is
  /// cut by closing the socket, a handler is cancelled, an acknowledgement is let through.
  enum class phase : std::uint8_t {
    talking,
    handling,
    acknowledging
  };
  phase now = phase::talking;  // strand only
};

namespace {

using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using std::chrono::steady_clock;
constexpr std::size_t max_batch = 10000;

std::string default_consumer() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0)
    host[0] = '\0';
  return fmt::format("{}:{}", host[0] != '\0' ? host.data() : "localhost", ::getpid());
}

redis_bus_options validated(redis_bus_options options) {
  const auto fail = [](std::string_view field, const std::string& detail) {
    throw std::invalid_argument(fmt::format("vigil: redis_bus_options.{} {}", field, detail));
  };
  if (options.host.empty())
    fail("host", "must not be empty");
  if (options.port == 0)
    fail("port", "must not be 0");
  if (!options.username.empty() && options.password.empty())
    fail("password", "must not be empty when a username is given");
  if (options.stream.empty())
    fail("stream", "must not be empty");
  if (options.group.empty())
    fail("group", "must not be empty");
  if (options.batch == 0 || options.batch > max_batch)
    fail("batch", fmt::format("must be between 1 and {}, got {}", max_batch, options.batch));
  if (options.block < 1ms)
    fail("block", fmt::format("must be at least 1ms, got {}", detail::to_text(options.block)));
  if (options.claim_idle < 1ms)
    fail("claim_idle",
         fmt::format("must be at least 1ms, got {}", detail::to_text(options.claim_idle)));
  if (options.connect_timeout <= duration::zero())
    fail("connect_timeout",
         fmt::format("must be positive, got {}", detail::to_text(options.connect_timeout)));
  if (options.on_handler_failure != handler_failure::skip &&
      options.on_handler_failure != handler_failure::crash)
    fail("on_handler_failure",
         fmt::format("is not a policy, got {}", static_cast<unsigned>(options.on_handler_failure)));
  if (options.consumer.empty())
    options.consumer = default_consumer();
  if (options.name.empty())
    options.name = fmt::format("redis:{}/{}", options.stream, options.group);
  return options;
}

std::string milliseconds(duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

struct reply_deleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

/// The protocol on one connection: hiredis formats commands and parses replies, Asio moves
/// the bytes. Every request has a deadline: a silent peer (a frozen host, a partition) must
/// end the run, not stall it. Strand only.
class redis_connection : public std::enable_shared_from_this<redis_connection> {
 public:
  redis_connection(tcp::socket& socket, std::string error_prefix)
      : socket_(socket),
        deadline_(socket.get_executor()),
        reader_(redisReaderCreate()),
        prefix_(std::move(error_prefix)) {
    if (reader_ == nullptr)
      throw std::bad_alloc();
  }
  ~redis_connection() { redisReaderFree(reader_); }
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// Queues a command; `roundtrip()` sends it.
  void command(std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (std::string_view arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    char* raw = nullptr;
    const int size =
        redisFormatCommandArgv(&raw, static_cast<int>(argv.size()), argv.data(), lengths.data());
    if (size < 0)
      throw std::bad_alloc();
    const std::unique_ptr<char, void (*)(char*)> formatted(raw, redisFreeCommand);
    out_.append(formatted.get(), static_cast<std::size_t>(size));
    name_ = *args.begin();
  }

  /// Sends the queued command and reads its reply within `limit`. An error reply throws with
  /// its text, also kept in `error_reply()`.
  asio::awaitable<reply_ptr> roundtrip(duration limit) {
    arm(limit);
    const disarm_on_exit disarm{*this};
    error_reply_.clear();
    std::error_code ec;
    co_await asio::async_write(socket_, asio::buffer(out_),
                               asio::redirect_error(asio::use_awaitable, ec));
    out_.clear();
    if (ec)
      throw io_failure(ec, limit);
    for (;;) {
      void* parsed = nullptr;
      if (redisReaderGetReply(reader_, &parsed) != REDIS_OK)
        throw failure(std::errc::protocol_error,
                      fmt::format("bad reply to {}: {}", name_, reader_->errstr));
      if (parsed != nullptr) {
        reply_ptr reply(static_cast<redisReply*>(parsed));
        if (reply->type == REDIS_REPLY_ERROR) {
          error_reply_.assign(reply->str, reply->len);
          throw failure(std::errc::protocol_error,
                        fmt::format("{} refused: {}", name_, error_reply_));
        }
        co_return reply;
      }
      const std::size_t n = co_await socket_.async_read_some(
          asio::buffer(in_), asio::redirect_error(asio::use_awaitable, ec));
      if (ec)
        throw io_failure(ec, limit);
      if (redisReaderFeed(reader_, in_.data(), n) != REDIS_OK)
        throw failure(std::errc::protocol_error, fmt::format("bad reply: {}", reader_->errstr));
    }
  }

  /// The text of the last error reply (`BUSYGROUP Consumer Group name already exists`).
  const std::string& error_reply() const noexcept { return error_reply_; }

  /// An exception about this connection: `<prefix>: <what>`.
  std::system_error failure(std::error_code ec, std::string_view what) const {
    return std::system_error(ec, fmt::format("{}: {}", prefix_, what));
  }
  std::system_error failure(std::errc code, std::string_view what) const {
    return failure(std::make_error_code(code), what);
  }

 private:
  struct disarm_on_exit {
    redis_connection& c;
    ~disarm_on_exit() {
      ++c.turn_;  // a deadline that fired already finds another turn and does nothing
      c.deadline_.cancel();
    }
  };

  void arm(duration limit) {
    timed_out_ = false;
    deadline_.expires_after(limit);
    deadline_.async_wait([self = shared_from_this(), turn = turn_](std::error_code ec) {
      if (ec || self->turn_ != turn)
        return;
      self->timed_out_ = true;
      std::error_code ignored;
      self->socket_.close(ignored);
    });
  }

  std::system_error io_failure(std::error_code ec, duration limit) const {
    if (timed_out_)
      return failure(asio::error::timed_out,
                     fmt::format("no reply to {} within {}", name_, detail::to_text(limit)));
    if (ec == asio::error::eof)
      return failure(ec, "connection closed by the peer");
    return failure(ec, fmt::format("{} failed", name_));
  }

  tcp::socket& socket_;
  asio::steady_timer deadline_;
  std::uint64_t turn_ = 0;
  bool timed_out_ = false;
  redisReader* reader_;
  std::string prefix_;
  std::string out_;
  std::string error_reply_;
  std::string_view name_;  // of the last command, for errors (a literal)
  std::array<char, 16 * 1024> in_{};
};

std::string_view text(const redisReply& r) {
  return {r.str, r.len};
}

/// A stream entry `[id, [field, value, ...]]`; a null message for an entry deleted from the
/// stream while pending (`[id, nil]`).
std::optional<redis_message> entry(const redis_connection& c, const redisReply& r,
                                   std::string& id) {
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[0]->type != REDIS_REPLY_STRING)
    throw c.failure(std::errc::protocol_error, "a stream entry is not [id, fields]");
  id = text(*r.element[0]);
  const redisReply& fields = *r.element[1];
  if (fields.type == REDIS_REPLY_NIL)
    return std::nullopt;
  if (fields.type != REDIS_REPLY_ARRAY || fields.elements % 2 != 0)
    throw c.failure(std::errc::protocol_error, "a stream entry's fields are not pairs");
  redis_message message{id, {}};
  message.fields.reserve(fields.elements / 2);
  for (std::size_t i = 0; i < fields.elements; i += 2)
    message.fields.emplace_back(text(*fields.element[i]), text(*fields.element[i + 1]));
  return message;
}

/// The entries of an `XREADGROUP` reply on one stream (none when it timed out).
const redisReply* read_entries(const redis_connection& c, const redisReply& r) {
  if (r.type == REDIS_REPLY_NIL)
    return nullptr;
  // [[stream, [entry, ...]]]
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 1 || r.element[0]->type != REDIS_REPLY_ARRAY ||
      r.element[0]->elements != 2 || r.element[0]->element[1]->type != REDIS_REPLY_ARRAY)
    throw c.failure(std::errc::protocol_error, "XREADGROUP replied with an unexpected shape");
  return r.element[0]->element[1];
}

/// Hands each entry to the handler, acknowledging those it handled and those deleted.
/// The ID of the last entry, empty when there was none.
asio::awaitable<std::string> deliver(detail::redis_state& s, redis_connection& c,
                                     const redisReply* entries,
                                     const redis_bus::handler_type& handler,
                                     std::exception_ptr& crash) {
  const redis_bus_options& o = s.options;
  std::string id;
  if (entries == nullptr)
    co_return id;
  for (std::size_t i = 0; i < entries->elements && !crash; ++i) {
    if (s.slot.stop_requested())
      break;
    if (entries->element[i]->type == REDIS_REPLY_NIL)
      continue;  // Redis 6.2's XAUTOCLAIM: an entry deleted while pending, already dropped
    std::optional<redis_message> message = entry(c, *entries->element[i], id);
    bool handled = false;
    {
      std::lock_guard lock(s.slot.mutex);
      ++s.slot.counters.received;
      if (!message)
        ++s.slot.counters.dropped;
    }
    if (message) {
      s.now = detail::redis_state::phase::handling;
      handled = co_await s.slot.deliver(handler, o.stream, std::move(*message),
                                        o.on_handler_failure, crash);
    }
    if (handled || !message) {
      s.now = detail::redis_state::phase::acknowledging;
      // A handler that returned after stop() cancelled it (it caught the cancellation, or
      // awaited something deaf to it) was handled: its XACK must not throw.
      co_await asio::this_coro::reset_cancellation_state();
      c.command({"XACK", o.stream, o.group, id});
      co_await c.roundtrip(o.connect_timeout);
    }
    s.now = detail::redis_state::phase::talking;
  }
  co_return id;
}

/// One run: takes back this consumer's pending entries, then claims idle ones and reads new
/// ones, until stop() or a crash.
asio::awaitable<void> read_loop(std::shared_ptr<detail::redis_state> s,
                                std::shared_ptr<redis_connection> c, bus_run run,
                                redis_bus::handler_type handler) {
  const redis_bus_options& o = s->options;
  const std::string batch = std::to_string(o.batch);
  std::exception_ptr crash;
  try {
    // What this consumer read in an earlier run (or process) and did not acknowledge.
    for (std::string after = "0"; !crash && !s->slot.stop_requested();) {
      c->command(
          {"XREADGROUP", "GROUP", o.group, o.consumer, "COUNT", batch, "STREAMS", o.stream, after});
      reply_ptr reply = co_await c->roundtrip(o.connect_timeout);
      std::string last = co_await deliver(*s, *c, read_entries(*c, *reply), handler, crash);
      if (last.empty())
        break;
      after = std::move(last);
    }
    // Claims at once: entries left idle by consumers that died while this one was down.
    steady_clock::time_point next_claim = steady_clock::now();
    std::string claim_from = "0-0";
    const std::string claim_idle = milliseconds(o.claim_idle);
    while (!crash && !s->slot.stop_requested()) {
      const steady_clock::time_point now = steady_clock::now();
      if (now >= next_claim) {
        c->command(
            {"XAUTOCLAIM", o.stream, o.group, o.consumer, claim_idle, claim_from, "COUNT", batch});
        reply_ptr reply = co_await c->roundtrip(o.connect_timeout);
        // [next cursor, [entry, ...], [deleted id, ...] (Redis 7)]
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
            reply->element[0]->type != REDIS_REPLY_STRING ||
            reply->element[1]->type != REDIS_REPLY_ARRAY)
          throw c->failure(std::errc::protocol_error,
                           "XAUTOCLAIM replied with an unexpected shape");
        claim_from = text(*reply->element[0]);
        if (reply->elements > 2 && reply->element[2]->type == REDIS_REPLY_ARRAY) {
          std::lock_guard lock(s->slot.mutex);  // deleted while pending: Redis dropped them
          s->slot.counters.received += reply->element[2]->elements;
          s->slot.counters.dropped += reply->element[2]->elements;
        }
        co_await deliver(*s, *c, reply->element[1], handler, crash);
        if (claim_from == "0-0")  // a full sweep: the next one when entries may have idled
          next_claim = detail::deadline_after(steady_clock::now(), o.claim_idle);
        continue;
      }
      const duration wait = std::clamp<duration>(next_claim - now, 1ms, o.block);
      c->command({"XREADGROUP", "GROUP", o.group, o.consumer, "COUNT", batch, "BLOCK",
                  milliseconds(wait), "STREAMS", o.stream, ">"});
      reply_ptr reply = co_await c->roundtrip(wait + o.connect_timeout);
      co_await deliver(*s, *c, read_entries(*c, *reply), handler, crash);
    }
  } catch (...) {
    if (!s->slot.stop_requested())  // stop() closes the socket under a pending read
      crash = std::current_exception();
  }
  s->now = detail::redis_state::phase::talking;
  std::error_code ignored;
  s->socket.close(ignored);
  s->slot.end(std::move(run), std::move(crash));
}

/// Redis's version from `INFO server`: {major, minor}, {0, 0} when it is not there.
std::pair<int, int> server_version(const redisReply& info) {
  const std::string_view text_of_info =
      info.type == REDIS_REPLY_STRING ? text(info) : std::string_view();
  constexpr std::string_view key = "redis_version:";
  const std::size_t at = text_of_info.find(key);
  int major = 0;
  int minor = 0;
  if (at != std::string_view::npos)
    std::sscanf(std::string(text_of_info.substr(at + key.size(), 16)).c_str(), "%d.%d", &major,
                &minor);
  return {major, minor};
}

/// After the connect, on the strand, within what is left of the connect timeout: `AUTH`, the
/// version check (`XAUTOCLAIM` as Redis 7 answers it), and `XGROUP CREATE`.
asio::awaitable<void> handshake(std::shared_ptr<detail::redis_state> s,
                                std::shared_ptr<redis_connection> c,
                                steady_clock::time_point deadline) {
  // One deadline for all of start(): each request gets what is left of it.
  const auto left = [deadline] {
    return std::max<duration>(deadline - steady_clock::now(), std::chrono::milliseconds(1));
  };
  const redis_bus_options& o = s->options;
  std::error_code ignored;
  s->socket.set_option(tcp::socket::keep_alive(true), ignored);
  try {
    if (!o.username.empty()) {
      c->command({"AUTH", o.username, o.password});
      co_await c->roundtrip(left());
    } else if (!o.password.empty()) {
      c->command({"AUTH", o.password});
      co_await c->roundtrip(left());
    }
    c->command({"INFO", "server"});
    const reply_ptr info = co_await c->roundtrip(left());
    const auto [major, minor] = server_version(*info);
    if (major < 7)
      throw c->failure(std::errc::not_supported,
                       fmt::format("needs Redis 7.0 or later, the server is {}.{}", major, minor));
    c->command({"XGROUP", "CREATE", o.stream, o.group, "$", "MKSTREAM"});
    try {
      co_await c->roundtrip(left());
    } catch (const std::system_error&) {
      if (!c->error_reply().starts_with("BUSYGROUP"))
        throw;  // anything but "the group exists already"
    }
  } catch (...) {
    s->socket.close(ignored);
    throw;
  }
}

std::optional<running_handle> request_stop(const std::shared_ptr<detail::redis_state>& s) {
  std::optional<running_handle> run = s->slot.request_stop();
  if (run)
    asio::post(s->strand, [s] {
      if (!s->slot.stop_requested())
        return;  // that run ended, and a later one must not get this stop (see bus_run_slot)
      using phase = detail::redis_state::phase;
      if (s->now == phase::handling) {
        s->stop_signal.emit(asio::cancellation_type::terminal);
      } else if (s->now == phase::talking) {
        std::error_code ignored;
        s->socket.close(ignored);  // ends a pending read, connect or handshake
      }  // an acknowledgement goes through: the loop sees `stopping` right after it
    });
  return run;
}

}  // namespace

redis_bus::redis_bus(asio::any_io_executor executor, redis_bus_options options)
    : state_(std::make_shared<detail::redis_state>(std::move(executor),
                                                   validated(std::move(options)))) {}

redis_bus::~redis_bus() {
  request_stop(state_);
}

const std::string& redis_bus::name() const noexcept {
  return state_->options.name;
}

const std::string& redis_bus::consumer() const noexcept {
  return state_->options.consumer;
}

asio::awaitable<running_handle> redis_bus::start(handler_type handler) {
  if (!handler)
    throw std::invalid_argument("vigil: redis_bus::start: the handler must not be empty");
  const std::shared_ptr<detail::redis_state> s = state_;
  bus_run run;
  if (std::optional<running_handle> going_on = co_await s->slot.claim(run))
    co_return *going_on;
  // Arguments named: GCC 12 may destroy a temporary inside a co_await expression twice.
  const redis_bus_options& o = s->options;
  const steady_clock::time_point deadline =
      detail::deadline_after(steady_clock::now(), o.connect_timeout);
  std::string prefix = fmt::format("vigil: redis_bus '{}'", o.name);
  auto connection = std::make_shared<redis_connection>(s->socket, prefix);
  std::shared_ptr<const void> owner = s;
  detail::tcp_target target{o.host, o.port, o.connect_timeout, std::move(prefix)};
  try {
    co_await detail::connect_on_strand(std::move(owner), s->strand, s->socket, std::move(target));
    asio::awaitable<void> setup = handshake(s, connection, deadline);
    co_await asio::co_spawn(
        s->strand, std::move(setup),
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  } catch (...) {
    // This run never listened: it ends here and start() throws. Cleanly if stop() cut it.
    s->slot.end(run, s->slot.stop_requested() ? nullptr : std::current_exception());
    throw;
  }
  asio::post(s->strand, [s, connection, run, handler = std::move(handler)]() mutable {
    asio::co_spawn(
        s->strand, read_loop(s, std::move(connection), std::move(run), std::move(handler)),
        asio::bind_cancellation_slot(s->stop_signal.slot(), [](const std::exception_ptr&) {}));
  });
  co_return run.handle();
}

asio::awaitable<void> redis_bus::stop() {
  const std::shared_ptr<detail::redis_state> s = state_;
  const std::optional<running_handle> run = request_stop(s);
  if (run)
    co_await run->join();  // a crash that already happened is not rethrown
}

bus_counters redis_bus::counters() const {
  return state_->slot.snapshot();
}

}  // namespace vigil
