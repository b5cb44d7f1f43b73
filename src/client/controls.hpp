#pragma once

// A client's shadow report and the canary's manual controls, which Client forwards to.

#include <failover/traffic.hpp>

#include <optional>
#include <string>

namespace failover::detail {

class ClientCore;

/** What shadow traffic found so far, when it is configured. */
std::optional<ShadowReport> shadow_report_of(const ClientCore& core);

enum class CanaryCommand { Pause, Resume, Promote, Rollback, Drain };
/** Steers the canary by hand, logged as a warning; false when there is no canary or the
 *  command does not apply in its state. `reason` is the rollback's. */
bool steer_canary(ClientCore& core, CanaryCommand command, const std::string& reason = {});

}  // namespace failover::detail
