#include "core/attempt_lease.hpp"

#include "core/client_core.hpp"
#include "policy/rate_limiter.hpp"
#include "policy/retry_budget.hpp"
#include "policy/spend.hpp"

#include <utility>

namespace failover::detail {

void AttemptLease::hold_breaker(RouteState* route) {
  breaker_ = route;
  closed_admission_ =
      route->last_state.load(std::memory_order_relaxed) == static_cast<int>(BreakerState::Closed);
  trips_ = route->trips.load(std::memory_order_relaxed);
}

RouteState* AttemptLease::breaker_to_tell() {
  RouteState* route = std::exchange(breaker_, nullptr);
  if (route && closed_admission_ && route->trips.load(std::memory_order_relaxed) != trips_) {
    return nullptr;  // the breaker opened since: this result says nothing of its probe
  }
  return route;
}

void AttemptLease::merge_held(AttemptLease& other) {
  if (!route_) route_ = std::exchange(other.route_, nullptr);
  if (!breaker_) {
    breaker_ = std::exchange(other.breaker_, nullptr);
    closed_admission_ = other.closed_admission_;
    trips_ = other.trips_;
  }
  if (!limiter_) {
    limiter_ = std::exchange(other.limiter_, nullptr);
    permit_tokens_ = other.permit_tokens_;
  }
  if (!budget_) budget_ = std::exchange(other.budget_, nullptr);
  if (!spend_) {
    spend_ = std::exchange(other.spend_, nullptr);
    reserved_nanos_ = other.reserved_nanos_;
  }
  other.release();
}

void AttemptLease::start(RouteState& route) {
  route_ = &route;
  route.in_flight.fetch_add(1, std::memory_order_relaxed);
}

// A permit of an attempt that started is released (reconciled with what it used); one of an
// attempt that never started comes back whole.
void AttemptLease::give_back_resources(TimePoint now, std::optional<double> used) noexcept {
  if (limiter_) {
    if (route_) {
      limiter_->release(now, permit_tokens_, used);
    } else {
      limiter_->refund(now, permit_tokens_);
    }
    limiter_ = nullptr;
  }
  if (budget_) {
    budget_->release();
    budget_ = nullptr;
  }
  if (spend_) {
    spend_->release(reserved_nanos_);
    spend_ = nullptr;
  }
  if (route_) {
    route_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    route_ = nullptr;
  }
}

void AttemptLease::succeed(TimePoint now, Duration latency, std::optional<double> used) {
  give_back_resources(now, used);
  if (RouteState* route = breaker_to_tell()) route->on_success(now, latency);
}

void AttemptLease::fail(TimePoint now, ErrorKind kind) {
  give_back_resources(now, std::nullopt);
  if (RouteState* route = breaker_to_tell()) route->on_failure(now, kind);
}

void AttemptLease::release_held() noexcept {
  const TimePoint now = now_ ? *now_ : TimePoint{};
  give_back_resources(now, std::nullopt);
  if (RouteState* route = breaker_to_tell()) {
    try {
      route->on_failure(now, ErrorKind::Cancelled);  // neutral: frees a half-open probe slot
    } catch (...) {
      // The breaker threw already, or throws now: nothing more can be done for it here.
    }
  }
}

}  // namespace failover::detail
