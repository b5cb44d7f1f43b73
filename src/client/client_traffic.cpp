// The client's shadow and canary controls.

#include <failover/client.hpp>

#include "core/client_core.hpp"

#include <spdlog/spdlog.h>

namespace failover {

std::optional<ShadowReport> Client::shadow_report() const {
  const detail::ClientCore& core = *core_;
  if (!core.shadow()) return std::nullopt;
  ShadowReport r = core.shadow()->report();
  r.candidate = core.routes()[core.plan()[*core.shadow_plan()].route]->ref;
  return r;
}

bool Client::wait_for_shadow(std::chrono::milliseconds timeout) {
  return core_->wait_for_mirrors(timeout);
}

std::optional<CanaryStatus> Client::canary() const {
  return core_->canary_status(core_->clock().now());
}

namespace {

// Runs a manual canary command and logs it (a roll-out changing by hand is worth a line).
template <typename Command>
bool steer(detail::ClientCore& core, const char* what, Command command) {
  detail::CanaryController* canary = core.canary();
  if (!canary) return false;
  const bool done = command(*canary, core.clock().now());
  if (done) {
    if (spdlog::logger* log = core.logger()) {
      const RouteRef& c = core.routes()[core.plan()[*core.canary_plan()].route]->ref;
      log->warn("canary {}/{} {} by hand", c.endpoint, c.model, what);
    }
  }
  return done;
}

}  // namespace

bool Client::canary_pause() {
  return steer(*core_, "paused", [](auto& c, TimePoint now) { return c.pause(now); });
}

bool Client::canary_resume() {
  return steer(*core_, "resumed", [](auto& c, TimePoint now) { return c.resume(now); });
}

bool Client::canary_promote() {
  return steer(*core_, "promoted", [](auto& c, TimePoint now) { return c.promote(now); });
}

bool Client::canary_rollback(const std::string& reason) {
  return steer(*core_, "rolled back", [&](auto& c, TimePoint) { return c.rollback(reason); });
}

bool Client::canary_drain() {
  return steer(*core_, "drained", [](auto& c, TimePoint) { return c.drain(); });
}

}  // namespace failover
