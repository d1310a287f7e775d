#include <vigil/runs/run_registry.hpp>

#include "../text.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

namespace vigil {

namespace {

event_kind kind_of(run_status status) {
  switch (status) {
    case run_status::queued:
      return event_kind::run_queued;
    case run_status::running:
      return event_kind::run_started;
    case run_status::completed:
      return event_kind::run_completed;
    case run_status::failed:
      return event_kind::run_failed;
    case run_status::cancelled:
      break;
  }
  return event_kind::run_cancelled;
}

event transition(event_kind kind, const run& r) {
  event e;
  e.kind = kind;
  e.task = r.id;
  e.reason = r.error_message;
  return e;
}

}  // namespace

run_registry::run_registry() : random_(std::random_device{}()) {}

run_registry::~run_registry() {
  events_.close();
}

std::string run_registry::new_id() {
  for (;;) {
    std::string id = fmt::format("{:016x}{:016x}", random_(), random_());
    if (!by_id_.contains(id))
      return id;
  }
}

run* run_registry::find(std::string_view id) {
  const auto found = by_id_.find(std::string(id));
  return found == by_id_.end() ? nullptr : &runs_.at(found->second);
}

run run_registry::add(run r) {
  if (r.status != run_status::queued)
    throw std::invalid_argument(
        fmt::format("vigil: run_registry::add: a new run is queued, got status {}", r.status));
  std::lock_guard lock(mutex_);
  if (r.id.empty())
    r.id = new_id();
  else if (by_id_.contains(r.id))
    throw std::invalid_argument(
        fmt::format("vigil: run_registry::add: a run with id '{}' exists already", r.id));
  if (r.created_at == run::clock::time_point{})
    r.created_at = run::clock::now();
  r.started_at.reset();  // what a run only gets from its transitions
  r.finished_at.reset();
  r.error_message.clear();
  r.result.clear();
  const std::uint64_t key = next_++;
  by_id_.emplace(r.id, key);
  const run& stored = runs_.emplace(key, std::move(r)).first->second;
  events_.publish(transition(event_kind::run_queued, stored));
  return stored;
}

std::optional<run> run_registry::get(std::string_view id) const {
  std::lock_guard lock(mutex_);
  const auto found = by_id_.find(std::string(id));
  if (found == by_id_.end())
    return std::nullopt;
  return runs_.at(found->second);
}

std::vector<run> run_registry::list(std::optional<run_status> status) const {
  std::lock_guard lock(mutex_);
  std::vector<run> out;
  for (const auto& [key, r] : runs_)
    if (!status || r.status == *status)
      out.push_back(r);
  return out;
}

run run_registry::update(std::string_view id, run_status to, std::string detail) {
  std::lock_guard lock(mutex_);
  run* r = find(id);
  if (r == nullptr)
    throw std::out_of_range(fmt::format("vigil: run_registry::update: no run has id '{}'", id));
  if (!can_transition(r->status, to))
    throw invalid_transition(r->id, r->status, to);
  const auto now = run::clock::now();
  r->status = to;
  if (to == run_status::running)
    r->started_at = now;
  if (is_finished(to))
    r->finished_at = now;
  if (to == run_status::completed)
    r->result = std::move(detail);
  else if (is_finished(to))
    r->error_message = std::move(detail);
  events_.publish(transition(kind_of(to), *r));
  return *r;
}

std::size_t run_registry::cleanup_older_than(duration age) {
  if (age < duration::zero())
    throw std::invalid_argument(
        fmt::format("vigil: run_registry::cleanup_older_than: age must not be negative, got {}",
                    detail::to_text(age)));
  const auto cutoff = run::clock::now() - std::chrono::duration_cast<run::clock::duration>(age);
  std::lock_guard lock(mutex_);
  std::size_t forgotten = 0;
  for (auto it = runs_.begin(); it != runs_.end();) {
    const run& r = it->second;
    if (is_finished(r.status) && r.finished_at && *r.finished_at <= cutoff) {
      by_id_.erase(r.id);
      it = runs_.erase(it);
      ++forgotten;
    } else {
      ++it;
    }
  }
  return forgotten;
}

std::size_t run_registry::size() const {
  std::lock_guard lock(mutex_);
  return runs_.size();
}

}  // namespace vigil
