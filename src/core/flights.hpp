#pragma once

// A call's attempts in flight, and what the driver is owed about them: the exchange to start
// next and the exchanges to cancel. When each attempt's watchdog fires.

#include "core/flight.hpp"

#include <failover/time.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace failover::detail {

class Flights {
 public:
  void reserve(std::size_t n) { list_.reserve(n); }

  // The small members are defined here, inline: a call runs them on every step.

  /** Adds `f`; its Start is owed to the driver (see owed_start). */
  Flight& start(Flight&& f) {
    to_start_ = f.id;
    list_.push_back(std::move(f));
    return list_.back();
  }
  /** The flight whose Start the driver is owed, once; null when none is. */
  Flight* owed_start() {
    if (!to_start_) return nullptr;
    return find(*std::exchange(to_start_, std::nullopt));
  }
  /** The driver is no longer owed a Start. */
  void forget_start() { to_start_.reset(); }
  /** The driver must cancel exchange `id`. */
  void abandon(std::uint64_t id) { abandon_.push_back(id); }
  /** An exchange the driver must cancel, once. */
  std::optional<std::uint64_t> owed_abandon() {
    if (abandon_.empty()) return std::nullopt;
    const std::uint64_t id = abandon_.back();
    abandon_.pop_back();
    return id;
  }

  /** The flight of exchange `id`, or null. */
  Flight* find(std::uint64_t id) {
    for (Flight& f : list_) {
      if (f.id == id) return &f;
    }
    return nullptr;
  }
  /** Removes the flight of exchange `id` (which must be in flight) and returns it. */
  Flight take(std::uint64_t id);
  /** Removes every flight but `keep` (0: none), whose exchanges the driver must cancel, calling
   *  `each(flight)` for each first. */
  template <class Each>
  void drop_all_but(std::uint64_t keep, Each&& each);

  bool empty() const { return list_.empty(); }
  Flight& front() { return list_.front(); }
  Flight& back() { return list_.back(); }

  /** When attempt `f` counts as stuck: its watchdogs (see AttemptStream::watchdog), or a grace
   *  beyond its total timeout; `deadline` is the call's. */
  static TimePoint watchdog(const Flight& f, TimePoint deadline);
  /** The earliest watchdog of the flights, or `hedge_at` when sooner. */
  TimePoint next_timer(TimePoint hedge_at, TimePoint deadline) const;
  /** The exchanges whose watchdog has fired at `now`. */
  std::vector<std::uint64_t> expired(TimePoint now, TimePoint deadline) const;

 private:
  std::vector<Flight> list_;               // a stream: at most one
  std::optional<std::uint64_t> to_start_;  // a flight not yet handed to the driver
  std::vector<std::uint64_t> abandon_;     // exchanges the driver must cancel
};

template <class Each>
void Flights::drop_all_but(std::uint64_t keep, Each&& each) {
  for (Flight& f : list_) {
    if (f.id == keep) continue;
    abandon_.push_back(f.id);
    each(f);
  }
  list_.erase(
      std::remove_if(list_.begin(), list_.end(), [&](const Flight& f) { return f.id != keep; }),
      list_.end());
}

}  // namespace failover::detail
