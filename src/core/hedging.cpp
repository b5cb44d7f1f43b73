#include "core/hedging.hpp"

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

}  // namespace failover::detail
