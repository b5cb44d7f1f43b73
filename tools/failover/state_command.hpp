#pragma once

// `failover state`: the state a fleet shares through the configured store (breakers,
// cooldowns, budget spend, the canary), and the operator's resets.

#include <string>

#include "cli_common.hpp"

namespace failover::tools {

struct StateArgs {
  std::string config;  // --config (empty: the default, see config_path)
  LogArgs log;
  bool as_json = false;
  std::string reset_breaker;  // endpoint/model
  bool reset_spend = false;   // today's and this month's spend, and every reservation
};

/** Exit code: 0 shown (or reset), 1 the store cannot be reached, 2 bad usage or configuration. */
int run_state(const StateArgs& args);

}  // namespace failover::tools
