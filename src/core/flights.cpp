#include "core/flights.hpp"

#include <algorithm>

namespace failover::detail {

namespace {

// Grace beyond the transport's own total timeout before an exchange counts as stuck.
constexpr Duration kStuckGrace = std::chrono::seconds(1);

}  // namespace

Flight Flights::take(std::uint64_t id) {
  const auto it = list_.begin() + (find(id) - list_.data());
  Flight f = std::move(*it);
  list_.erase(it);
  return f;
}

TimePoint Flights::watchdog(const Flight& f, TimePoint deadline) {
  const TimePoint hard = f.start + f.limits.total + kStuckGrace;
  if (!f.wire) return hard;
  return f.wire->watchdog(f.start, f.limits.first_byte, f.limits.idle, hard, deadline);
}

TimePoint Flights::next_timer(TimePoint hedge_at, TimePoint deadline) const {
  TimePoint until = hedge_at;
  for (const Flight& f : list_) until = std::min(until, watchdog(f, deadline));
  return until;
}

std::vector<std::uint64_t> Flights::expired(TimePoint now, TimePoint deadline) const {
  std::vector<std::uint64_t> out;
  for (const Flight& f : list_) {
    if (watchdog(f, deadline) <= now) out.push_back(f.id);
  }
  return out;
}

}  // namespace failover::detail
