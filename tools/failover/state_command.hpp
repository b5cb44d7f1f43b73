#pragma once

// `failover state`: the route state a fleet shares through the configured store, and the
// operator's resets.

#include <string>

namespace failover::tools {

struct StateArgs {
  std::string config;  // path (resolved by the caller)
  bool as_json = false;
  std::string reset_breaker;  // endpoint/model
};

/** Exit code: 0 shown (or reset), 1 the store cannot be reached, 2 bad usage or configuration. */
int run_state(const StateArgs& args);

}  // namespace failover::tools
