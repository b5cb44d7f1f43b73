#pragma once

// A client's reports, which Client forwards to.

#include <failover/health.hpp>
#include <failover/usage.hpp>

#include <string>

namespace failover::detail {

class ClientCore;

/** Every route's breaker, cooldown, statistics and probe, and the canary. */
HealthSnapshot health_of(const ClientCore& core);
/** Tokens and cost per route since the client was built. */
UsageReport usage_of(const ClientCore& core);
/** The Prometheus text exposition (format 0.0.4) of the client's metrics. */
std::string metrics_text_of(const ClientCore& core);

}  // namespace failover::detail
