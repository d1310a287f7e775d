#include <vigil/runs/run_registry.hpp>

#include "../text.hpp"
#include "journal_file.hpp"

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

run_registry::run_registry(run_journal_options journal) : run_registry() {
  std::vector<detail::journal_record> records;
  journal_ = std::make_unique<detail::journal_file>(journal, records, recovery_);
  for (detail::journal_record& record : records) {  // the last line of an id wins
    const auto known = by_id_.find(record.r.id);
    if (record.forget) {
      if (known != by_id_.end()) {
        runs_.erase(known->second);
        by_id_.erase(known);
      }
    } else if (known != by_id_.end()) {
      runs_.at(known->second) = std::move(record.r);
    } else {
      const std::uint64_t key = next_++;
      by_id_.emplace(record.r.id, key);
      runs_.emplace(key, std::move(record.r));
    }
  }
  // Whatever was queued or running when the last writer stopped will never finish: say so, in
  // the journal too, so the next opening agrees.
  std::string lines;
  for (auto& [key, r] : runs_) {
    if (is_finished(r.status))
      continue;
    r.status = run_status::failed;
    r.finished_at = run::clock::now();
    r.error_message = "interrupted";
    recovery_.interrupted.push_back(r.id);
    lines += detail::journal_run_line(r);
  }
  recovery_.runs = runs_.size();
  if (!lines.empty()) {
    journal_->append(lines);
    journal_->sync();
  }
}

run_registry::~run_registry() {
  events_.close();
}

void run_registry::journal(const run& r) {
  if (journal_)
    journal_->append(detail::journal_run_line(r));
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
  journal(r);
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
  run next = *r;
  const auto now = run::clock::now();
  next.status = to;
  if (to == run_status::running)
    next.started_at = now;
  if (is_finished(to))
    next.finished_at = now;
  if (to == run_status::completed)
    next.result = std::move(detail);
  else if (is_finished(to))
    next.error_message = std::move(detail);
  journal(next);  // first: when it throws, the run is as it was
  *r = std::move(next);
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
  std::vector<std::map<std::uint64_t, run>::iterator> old;
  std::string lines;
  for (auto it = runs_.begin(); it != runs_.end(); ++it) {
    const run& r = it->second;
    if (is_finished(r.status) && r.finished_at && *r.finished_at <= cutoff) {
      old.push_back(it);
      if (journal_)
        lines += detail::journal_forget_line(r.id);
    }
  }
  if (journal_ && !lines.empty())
    journal_->append(lines);
  for (const auto& it : old) {
    by_id_.erase(it->second.id);
    runs_.erase(it);
  }
  return old.size();
}

void run_registry::compact() {
  std::lock_guard lock(mutex_);
  if (!journal_)
    return;
  std::string content;
  for (const auto& [key, r] : runs_)
    content += detail::journal_run_line(r);
  journal_->rewrite(content);
}

void run_registry::flush() {
  std::lock_guard lock(mutex_);
  if (journal_)
    journal_->sync();
}

std::size_t run_registry::size() const {
  std::lock_guard lock(mutex_);
  return runs_.size();
}

}  // namespace vigil
