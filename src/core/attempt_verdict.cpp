#include "core/attempt_verdict.hpp"

#include "core/route_state.hpp"
#include "options/resolve.hpp"

#include <algorithm>

namespace failover::detail {

namespace {

// A route that answered 429 without Retry-After rests this long before other calls use it.
constexpr Duration kDefaultRateLimitCooldown = std::chrono::seconds(1);
// Longest a Retry-After may bench a route; past that the breaker's own logic takes over.
constexpr Duration kMaxCooldown = std::chrono::seconds(300);
// The transport times exchanges on its own clock: an attempt cut to fit the deadline that
// times out this close to its limit ran out of the call's time, not the route's.
constexpr Duration kClockSlack = std::chrono::milliseconds(5);

}  // namespace

bool cut_by_deadline(ErrorKind kind, const Flight& f, TimePoint now, TimePoint deadline) {
  return now >= deadline || (kind == ErrorKind::Timeout && f.limits.clipped &&
                             now - f.start >= f.limits.total - kClockSlack);
}

Verdict judge(Failure& failure, const Flight& f, const ResolvedEndpoint& endpoint, TimePoint now,
              TimePoint deadline) {
  AttemptOutcome& outcome = failure.outcome;
  outcome.route = f.route->ref;
  if (outcome.elapsed == Duration::zero()) outcome.elapsed = now - f.start;
  Verdict v;
  v.deadline_passed = cut_by_deadline(outcome.kind, f, now, deadline);
  // A route that said nothing at all until the deadline ended the attempt held the request
  // silently: that counts against its breaker, so that a hung route opens like a failing one.
  const bool silent = failure.silent && outcome.kind == ErrorKind::Timeout;
  if (v.deadline_passed && outcome.kind == ErrorKind::Timeout) {
    outcome.kind = ErrorKind::DeadlineExceeded;
    failure.message = "the call's deadline passed during the attempt (" + failure.message + ")";
  }
  // A server may echo the key back ("Incorrect API key provided: sk-..."): never pass it on.
  failure.message = endpoint.redact(std::move(failure.message));
  failure.provider_type = endpoint.redact(std::move(failure.provider_type));
  failure.param = endpoint.redact(std::move(failure.param));
  outcome.provider_code = endpoint.redact(std::move(outcome.provider_code));
  if (failure.stream_refused) {
    failure.message += " (the route refuses streamed requests: sent whole from now on)";
  }
  // A stale kept-alive connection and a refused stream say nothing of the route.
  v.neutral = outcome.stale_connection || failure.stream_refused;
  v.breaker = v.neutral                     ? ErrorKind::Cancelled
              : v.deadline_passed && silent ? ErrorKind::Timeout
                                            : outcome.kind;
  if (outcome.kind == ErrorKind::RateLimited ||
      (outcome.retry_after && outcome.kind == ErrorKind::Overloaded)) {
    const Duration rest = outcome.retry_after ? *outcome.retry_after : kDefaultRateLimitCooldown;
    v.rest_until = now + std::min(rest, kMaxCooldown);
  }
  return v;
}

}  // namespace failover::detail
