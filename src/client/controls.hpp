#pragma once

// A client's shadow report and the canary's manual controls, which Client forwards to.

#include <failover/traffic.hpp>

#include <functional>
#include <optional>
#include <string>

namespace failover::detail {

class CanaryController;
class ClientCore;

/** What shadow traffic found so far, when it is configured. */
std::optional<ShadowReport> shadow_report_of(const ClientCore& core);

/** Steers the canary by hand: `command` acts on it at the clock's now and says whether it
 *  applied, which is logged as a warning (the canary `what`); false when there is no canary or
 *  the command did not apply in its state. */
bool steer_canary(ClientCore& core, const char* what,
                  const std::function<bool(CanaryController&, TimePoint)>& command);

}  // namespace failover::detail
