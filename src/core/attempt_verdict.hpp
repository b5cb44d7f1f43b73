#pragma once

// What a failed attempt says of its route: whether the call's deadline ended it (the deadline's
// doing, not the route's), whether it says nothing of the route at all, what its breaker hears,
// and how long the route rests. The one place these rules live (docs/policies.md, "Timeouts"
// and "Circuit breaker").

#include "core/flight.hpp"

#include <failover/error.hpp>
#include <failover/time.hpp>

#include <optional>

namespace failover::detail {

struct ResolvedEndpoint;

/** Whether the call's deadline ended attempt `f` at `now` with `kind`: the deadline passed, or
 *  the attempt timed out at its limit while that limit was the deadline. Any other timeout
 *  (connect, first byte, idle) while time remains is the route's. */
bool cut_by_deadline(ErrorKind kind, const Flight& f, TimePoint now, TimePoint deadline);

struct Verdict {
  bool deadline_passed = false;  // the call's deadline ended it
  bool neutral = false;  // says nothing of the route: its breaker, statistics and canary ignore it
  ErrorKind breaker = ErrorKind::ServerError;  // what its breaker hears (Cancelled: nothing)
  std::optional<TimePoint> rest_until;         // a rate limit or Retry-After benches the route
};

/** Judges `failure` of attempt `f` at `now`: completes its outcome (route, time taken), says
 *  a timeout the deadline caused as DeadlineExceeded, takes `endpoint`'s secrets out of what
 *  the provider said, and notes a refused stream in its message. */
Verdict judge(Failure& failure, const Flight& f, const ResolvedEndpoint& endpoint, TimePoint now,
              TimePoint deadline);

}  // namespace failover::detail
