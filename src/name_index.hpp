#pragma once

// Internal: the supervisor's registry, task name -> record.
//
// Why not std::unordered_map: with a million tasks, each lookup there walks a bucket array, a
// node and the node's string, three cache misses, and every insert allocates a node. Here the
// entries live in one array (open addressing, linear probing) and carry their full hash, so a
// lookup usually costs one miss and compares names only when the hashes are equal. Erasing a
// given entry compares pointers, not names.

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::detail {

/// Shared pointers to `T`, unique by name; `KeyOf{}(const T&)` gives an entry's name, which must
/// not change while the entry is in the index. Not thread-safe (the supervisor locks around it).
template <class T, class KeyOf>
class name_index {
 public:
  using value_type = std::shared_ptr<T>;

  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return slots_.size(); }
  bool empty() const noexcept { return size_ == 0; }

  /// The entry named `name`, or null.
  T* find(std::string_view name) const noexcept {
    if (size_ == 0)
      return nullptr;
    const std::size_t hash = hash_of(name);
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const slot& s = slots_[i];
      if (!s.value)
        return nullptr;
      if (s.hash == hash && KeyOf{}(*s.value) == name)
        return s.value.get();
    }
  }

  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

  /// Adds `value` unless its name is taken; false (and no change) when it is.
  bool insert(value_type value) {
    if ((size_ + 1) * 10 > slots_.size() * max_load_tenths)
      rehash(slots_.empty() ? min_capacity : slots_.size() * 2);
    else if (size_ * 16 < slots_.size() && slots_.size() > min_capacity)
      rehash(fitting_capacity(size_ + 1));  // after a burst: see remove_at()
    const std::size_t hash = hash_of(KeyOf{}(*value));
    std::size_t i = hash & mask_;
    for (; slots_[i].value; i = (i + 1) & mask_)
      if (slots_[i].hash == hash && KeyOf{}(*slots_[i].value) == KeyOf{}(*value))
        return false;
    slots_[i] = slot{hash, std::move(value)};
    ++size_;
    return true;
  }

  /// Removes that very entry (not another one of the same name); false when it is not here.
  bool erase(const T& entry) noexcept {
    if (size_ == 0)
      return false;
    const std::size_t hash = hash_of(KeyOf{}(entry));
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      if (!slots_[i].value)
        return false;
      if (slots_[i].value.get() == &entry) {
        remove_at(i);
        return true;
      }
    }
  }

  /// Calls `f(const T&)` for every entry, in no particular order.
  template <class F>
  void for_each(F&& f) const {
    for (const slot& s : slots_)
      if (s.value)
        f(*s.value);
  }

 private:
  struct slot {
    std::size_t hash = 0;
    value_type value;
  };

  static constexpr std::size_t min_capacity = 16;  // a power of two
  static constexpr std::size_t max_load_tenths = 7;

  static std::size_t hash_of(std::string_view name) noexcept {
    return std::hash<std::string_view>{}(name);
  }

  /// The smallest table that holds `n` entries below the maximum load.
  static std::size_t fitting_capacity(std::size_t n) noexcept {
    std::size_t capacity = min_capacity;
    while (n * 10 > capacity * max_load_tenths)
      capacity *= 2;
    return capacity;
  }

  /// Backward-shift deletion: later entries of the same probe run move up, so no tombstones
  /// accumulate and lookups stay short however many tasks come and go.
  ///
  /// Erasing never shrinks the table: after a burst of tasks, the next insert does. Shrinking
  /// here made a mass shutdown a fifth slower, because glibc consolidates its free lists on
  /// every large allocation or free, and the entries are erased when their tasks end.
  void remove_at(std::size_t hole) noexcept {
    slots_[hole].value.reset();
    --size_;
    for (std::size_t i = (hole + 1) & mask_; slots_[i].value; i = (i + 1) & mask_) {
      const std::size_t home = slots_[i].hash & mask_;
      // The entry at i may fill the hole when its home is not in (hole, i] (cyclically).
      const bool stays = hole <= i ? (hole < home && home <= i) : (hole < home || home <= i);
      if (stays)
        continue;
      slots_[hole] = std::move(slots_[i]);
      hole = i;
    }
  }

  void rehash(std::size_t capacity) {
    std::vector<slot> old(capacity);
    old.swap(slots_);
    mask_ = capacity - 1;
    for (slot& s : old) {
      if (!s.value)
        continue;
      std::size_t i = s.hash & mask_;
      while (slots_[i].value)
        i = (i + 1) & mask_;
      slots_[i] = std::move(s);
    }
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace vigil::detail
