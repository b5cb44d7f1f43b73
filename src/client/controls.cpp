// The client's shadow report and canary controls.

#include "client/controls.hpp"

#include "core/client_core.hpp"

#include <spdlog/spdlog.h>

namespace failover::detail {

std::optional<ShadowReport> shadow_report_of(const ClientCore& core) {
  if (!core.shadow()) return std::nullopt;
  ShadowReport r = core.shadow()->report();
  r.candidate = core.routes()[core.plan()[*core.shadow_plan()].route]->ref;
  return r;
}

bool steer_canary(ClientCore& core, const char* what,
                  const std::function<bool(CanaryController&, TimePoint)>& command) {
  CanaryController* canary = core.canary();
  if (!canary || !command(*canary, core.clock().now())) return false;
  // A roll-out changing by hand is worth a line.
  if (spdlog::logger* log = core.logger()) {
    const RouteRef& c = core.routes()[core.plan()[*core.canary_plan()].route]->ref;
    log->warn("canary {}/{} {} by hand", c.endpoint, c.model, what);
  }
  return true;
}

}  // namespace failover::detail
