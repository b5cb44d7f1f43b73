#include "core/attempt_limits.hpp"

#include <algorithm>

namespace failover::detail {

AttemptLimits attempt_limits(const Timeouts& t, Duration remaining, Duration reserve,
                             bool streamed) {
  AttemptLimits l;
  l.clipped = remaining < t.attempt;
  l.total = std::min(t.attempt, remaining);
  l.first_byte = std::min(t.first_byte, l.total);
  if (reserve > Duration::zero()) {
    if (streamed) {
      l.first_byte = std::min(l.first_byte, remaining - reserve);
    } else if (remaining - reserve < l.total) {
      l.total = remaining - reserve;
      l.clipped = false;  // a timeout there is the route's silence, not the deadline
      l.first_byte = std::min(l.first_byte, l.total);
    }
  }
  l.headers = std::min(t.headers, l.first_byte);
  l.connect = std::min(t.connect, l.total);
  l.idle = t.idle;
  return l;
}

TimePoint call_deadline(const CallOptions& call, const Timeouts& t, TimePoint now) {
  Duration total = call.timeout ? *call.timeout : t.total;
  total = std::clamp(total, Duration::zero(), Duration(std::chrono::hours(24 * 365)));
  const TimePoint deadline = now + total;
  return call.deadline ? std::min(deadline, *call.deadline) : deadline;
}

}  // namespace failover::detail
