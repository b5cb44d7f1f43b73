#include "core/hedging.hpp"

#include "core/call_env.hpp"
#include "core/candidates.hpp"
#include "core/route_state.hpp"

namespace failover::detail {

TimePoint Hedging::due_after(const RouteState& route, TimePoint now) const {
  if (!allowed_ || options_.max_extra < 1 || started_ >= options_.max_extra) {
    return TimePoint::max();
  }
  Duration delay = options_.delay;
  if (options_.use_p95) {
    RouteHealth health;
    route.stats.fill(health);
    if (health.p95 > Duration::zero()) delay = health.p95;
  }
  return delay > Duration::zero() ? now + delay : TimePoint::max();
}

std::optional<std::size_t> Hedging::pick(TimePoint now, Candidates& candidates, AttemptLease& lease,
                                         AttemptLease& slot) {
  const CallEnv& env = candidates.env();
  if (!env.budget().try_acquire()) return std::nullopt;
  slot.hold_budget_slot(&env.budget());
  std::optional<std::size_t> c = candidates.pick(now, lease);
  if (!c) return std::nullopt;
  started();
  env.stats().record_hedge();
  return c;
}

}  // namespace failover::detail
