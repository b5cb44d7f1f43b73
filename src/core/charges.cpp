#include "core/charges.hpp"

#include "core/admission.hpp"
#include "core/call_env.hpp"

#include <spdlog/spdlog.h>

namespace failover::detail {

std::optional<std::int64_t> Charges::stream(const AttemptStream& s, RouteState& route,
                                            std::int64_t reserved) const {
  const std::optional<std::int64_t> cost = route.add_usage(s.usage(admission_.prompt_tokens()));
  settle(reserved, cost.value_or(0));
  return cost;
}

std::optional<std::int64_t> Charges::answer(const ChatResponse& response, const AttemptStream* s,
                                            RouteState& route, std::int64_t reserved) const {
  std::optional<std::int64_t> cost;
  if (response.usage) {
    cost = route.add_usage(*response.usage);
    settle(reserved, cost.value_or(0));
    if (env_.spend().enabled()) route.record_output(response.usage->completion_tokens);
  } else if (s) {
    cost = stream(*s, route, reserved);
    if (env_.spend().enabled()) {
      route.record_output(s->usage(admission_.prompt_tokens()).completion_tokens);
    }
  } else {
    settle(reserved, 0);
  }
  return cost;
}

void Charges::settle(std::int64_t reserved, std::int64_t cost) const {
  if (!env_.spend().enabled()) return;
  for (const BudgetAlert& alert : env_.spend().settle(env_.clock().wall_now(), reserved, cost)) {
    if (!env_.spend().options().on_alert) break;
    try {
      env_.spend().options().on_alert(alert);
    } catch (...) {
      if (auto* log = env_.logger()) log->error("a budget alert callback threw");
    }
  }
}

}  // namespace failover::detail
