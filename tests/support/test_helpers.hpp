#pragma once

// Small helpers shared by the unit and integration tests.

#include <failover/failover.hpp>

#include <string>
#include <vector>

namespace failover::testing {

using Strings = std::vector<std::string>;

/** A one-message request: the user says "ping". */
inline ChatRequest ping() {
  ChatRequest r;
  r.messages = {Message::user("ping")};
  return r;
}

/** "endpoint:outcome" for each attempt of a trace. */
inline Strings outcomes(const std::vector<Attempt>& attempts) {
  Strings out;
  for (const Attempt& a : attempts) out.push_back(a.route.endpoint + ":" + a.outcome());
  return out;
}

}  // namespace failover::testing
