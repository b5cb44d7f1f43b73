#include <failover/policy/retry.hpp>

#include "policy/kinds.hpp"

#include <algorithm>
#include <stdexcept>

namespace failover {

DefaultRetryPolicy::DefaultRetryPolicy(RetryOptions options) : options_(options) {
  if (options_.max_attempts < 1) {
    throw std::invalid_argument("retry.max_attempts must be at least 1");
  }
  if (options_.base_delay <= Duration::zero()) {
    throw std::invalid_argument("retry.base_delay must be positive");
  }
  if (options_.max_delay < options_.base_delay) {
    throw std::invalid_argument("retry.max_delay must be at least retry.base_delay");
  }
  if (options_.max_retry_after < Duration::zero()) {
    throw std::invalid_argument("retry.max_retry_after must not be negative");
  }
  if (options_.max_wait_before_next_tier < Duration::zero()) {
    throw std::invalid_argument("retry.max_wait_before_next_tier must not be negative");
  }
  if (options_.retries_before_next_tier < 0) {
    throw std::invalid_argument("retry.retries_before_next_tier must not be negative");
  }
}

std::unique_ptr<RetryPolicy> DefaultRetryPolicy::clone() const {
  return std::make_unique<DefaultRetryPolicy>(*this);
}

Duration DefaultRetryPolicy::backoff_ceiling(int retry_number) const {
  Duration ceiling = options_.base_delay;
  for (int i = 1; i < retry_number && ceiling < options_.max_delay; ++i) ceiling *= 2;
  return std::min(ceiling, options_.max_delay);
}

namespace {

enum class Class { Transient, RouteFatal, CallFatal, NextTier };

Class class_of(ErrorKind kind) {
  if (detail::is_transient(kind)) return Class::Transient;
  switch (kind) {
    case ErrorKind::Authentication:
    case ErrorKind::PermissionDenied:
    case ErrorKind::NotFound:
    case ErrorKind::QuotaExhausted:
    case ErrorKind::ResponseTooLarge:
      return Class::RouteFatal;
    case ErrorKind::ContextLengthExceeded:
      return Class::NextTier;
    case ErrorKind::ContentFiltered:
    case ErrorKind::InvalidRequest:
    case ErrorKind::DeadlineExceeded:
    case ErrorKind::AllRoutesUnavailable:
    case ErrorKind::Cancelled:
    case ErrorKind::StreamInterrupted:
      return Class::CallFatal;
    default:
      break;  // the transient kinds, answered above
  }
  return Class::CallFatal;
}

}  // namespace

Decision DefaultRetryPolicy::decide(const AttemptOutcome& outcome, const CallState& state) {
  Class c = class_of(outcome.kind);
  // A redirect means a misconfigured base URL: asking that route again cannot help.
  if (outcome.kind == ErrorKind::Protocol && outcome.http_status >= 300 &&
      outcome.http_status < 400) {
    c = Class::RouteFatal;
  }
  // x-should-retry overrides the status-based answer for the same route (OpenAI SDK rule).
  bool may_retry_same = c == Class::Transient;
  if (outcome.should_retry) {
    if (*outcome.should_retry && c != Class::NextTier && outcome.kind != ErrorKind::Cancelled &&
        outcome.kind != ErrorKind::DeadlineExceeded) {
      may_retry_same = true;
    } else if (!*outcome.should_retry) {
      may_retry_same = false;
    }
  }
  if (c == Class::CallFatal && !may_retry_same) return Decision::fail();
  if (state.attempts >= options_.max_attempts) {
    return c == Class::CallFatal ? Decision::fail() : Decision::stop_trying();
  }
  // The request never reached the server: send it again at once, on a new connection.
  if (outcome.stale_connection && state.route_attempts <= 1 && state.now < state.deadline) {
    return Decision::retry(Duration::zero());
  }
  if (c == Class::NextTier) return Decision::failover(/*skip_tier=*/true);
  const Decision give_up = c == Class::CallFatal ? Decision::fail() : Decision::failover();
  // Another route of the same tier serves the same role: move to it at once.
  if (c != Class::CallFatal && state.tier_alternative) return Decision::failover();
  if (!may_retry_same) return give_up;

  const double draw = state.rng ? state.rng->uniform() : 0.5;
  Duration delay = std::chrono::duration_cast<Duration>(
      backoff_ceiling(std::max(1, state.route_attempts)) * draw);
  if (outcome.retry_after) delay = std::max(delay, *outcome.retry_after);
  if (c != Class::CallFatal && state.has_alternative) {
    // The last route of its tier: failing over means another, usually weaker, model. A short
    // wait and a retry of the model asked for come first, when the failure came back fast; a
    // route that stayed silent (a timeout) or answered slowly already cost that time.
    if (!outcome.came_back_fast() || state.route_attempts > options_.retries_before_next_tier ||
        delay > options_.max_wait_before_next_tier) {
      return Decision::failover();
    }
  } else if (outcome.retry_after && *outcome.retry_after > options_.max_retry_after) {
    return Decision::failover();  // the last option, cooling down for longer than we wait
  }
  if (state.now + delay >= state.deadline) return give_up;
  return Decision::retry(delay);
}

}  // namespace failover
