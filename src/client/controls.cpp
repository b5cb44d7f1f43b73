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

bool steer_canary(ClientCore& core, CanaryCommand command, const std::string& reason) {
  CanaryController* canary = core.canary();
  if (!canary) return false;
  const TimePoint now = core.clock().now();
  bool done = false;
  const char* what = "";
  switch (command) {
    case CanaryCommand::Pause:
      done = canary->pause(now);
      what = "paused";
      break;
    case CanaryCommand::Resume:
      done = canary->resume(now);
      what = "resumed";
      break;
    case CanaryCommand::Promote:
      done = canary->promote(now);
      what = "promoted";
      break;
    case CanaryCommand::Rollback:
      done = canary->rollback(reason);
      what = "rolled back";
      break;
    case CanaryCommand::Drain:
      done = canary->drain();
      what = "drained";
      break;
  }
  // A roll-out changing by hand is worth a line.
  if (done) {
    if (spdlog::logger* log = core.logger()) {
      const RouteRef& c = core.routes()[core.plan()[*core.canary_plan()].route]->ref;
      log->warn("canary {}/{} {} by hand", c.endpoint, c.model, what);
    }
  }
  return done;
}

}  // namespace failover::detail
