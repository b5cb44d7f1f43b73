#include "core/admission.hpp"

#include "core/attempt_lease.hpp"
#include "core/call_env.hpp"
#include "core/user_code.hpp"
#include "policy/rate_limiter.hpp"
#include "policy/spend.hpp"

#include <algorithm>
#include <cmath>

namespace failover::detail {

void Admission::estimate(const ChatRequest& request) {
  const ClientOptions& options = env_.options();
  // About four characters a token, plus the output cap.
  std::size_t chars = 0;
  for (const Message& m : request.messages) {
    chars += m.content ? m.content->size() : 0;
    for (const ContentPart& p : m.parts) chars += p.text.size();
    for (const ToolCall& t : m.tool_calls) chars += t.name.size() + t.arguments.size();
  }
  prompt_tokens_ = static_cast<std::int64_t>((chars + 3) / 4);
  output_tokens_ = request.max_completion_tokens.value_or(request.max_tokens.value_or(0));
  output_capped_ = request.max_completion_tokens || request.max_tokens || options.token_estimator;
  if (options.token_estimator) {  // the user's estimate covers prompt and output together
    prompt_tokens_ = std::max<std::int64_t>(
        0, invoke_user("the token estimator", [&] { return options.token_estimator(request); }));
    output_tokens_ = 0;
  }
}

void Admission::start_round() {
  rate_blocked_ = false;
  budget_busy_ = false;
  rate_wait_ = TimePoint::max();
}

// The estimated cost of this call on `route`, in nano-dollars; empty when nothing is counted
// (no spending budget, or an unpriced route, which costs nothing). Without an output cap, the
// output is what the model is said to produce, else what the route's answers have been (their
// p95), else the budget's conservative default, a guess (`guess`, see SpendCaps::admit_alone).
std::optional<std::int64_t> Admission::estimated_cost(const RouteState& route, bool* guess) const {
  if (!env_.spend().enabled() || !route.price) return std::nullopt;
  const ModelPrice& p = *route.price;
  std::int64_t output = output_tokens_;
  if (!output_capped_) {
    if (p.output_tokens) {
      output = *p.output_tokens;
    } else if (const std::optional<std::int64_t> seen = route.typical_output()) {
      output = *seen;
    } else {
      output = env_.spend().options().default_output_tokens;
      if (guess) *guess = true;
    }
  }
  const double nanos = static_cast<double>(prompt_tokens_) * p.input_per_mtok * 1000.0 +
                       static_cast<double>(output) * p.output_per_mtok * 1000.0;
  return std::llround(nanos);
}

bool Admission::budget_allows(const RouteState& route) const {
  bool guess = false;
  std::optional<std::int64_t> cost = estimated_cost(route, &guess);
  return !cost || env_.spend().fits(env_.clock().wall_now(), *cost, guess);
}

// Reserves the estimated cost of an attempt on `route` into `lease`, so that calls in flight
// together cannot spend past the budget; false (and the route noted as ruled out) when the
// budget has no room for it.
bool Admission::reserve_spend(const RouteState& route, AttemptLease& lease) {
  bool unknown = false;
  std::optional<std::int64_t> cost = estimated_cost(route, &unknown);
  if (!cost) return true;
  if (!env_.spend().reserve(env_.clock().wall_now(), *cost, unknown, &budget_store_down_)) {
    spend_blocked_ = true;
    // Refused only because another call of unknown cost is alone in flight: its answer makes
    // room or the estimate known.
    if (unknown && !budget_store_down_ && !env_.spend().exhausted(env_.clock().wall_now())) {
      budget_busy_ = true;
    }
    return false;
  }
  lease.hold_reservation(&env_.spend(), *cost);
  return true;
}

bool Admission::within_budget(const RouteState& route) {
  if (budget_allows(route)) return true;
  spend_blocked_ = true;
  return false;
}

bool Admission::take_permit(const RouteState& route, AttemptLease& lease, TimePoint now) {
  RateLimiter* limiter = env_.limiter(route.endpoint);
  if (!limiter) return true;
  const double tokens = permit_tokens();
  RateLimiter::Answer a = limiter->try_acquire(now, tokens);
  if (!a.granted) {
    rate_blocked_ = true;
    // Without a due time only a request ending frees a slot: look again shortly.
    rate_wait_ = std::min(rate_wait_, a.retry_at.value_or(now + std::chrono::milliseconds(50)));
    return false;
  }
  lease.hold_permit(limiter, tokens);
  return true;
}

// An attempt on `route` now, if its endpoint's limiter has a permit and its breaker admits it:
// the lease holds both (into `into`). When either says no, what was taken is given back.
Admission::Block Admission::admit(RouteState& route, TimePoint now, AttemptLease& into) {
  AttemptLease lease(into.clock());
  if (!take_permit(route, lease, now)) return Block::RateLimit;
  if (!reserve_spend(route, lease)) return Block::Budget;
  if (!route.try_acquire(now)) return Block::Breaker;
  lease.hold_breaker(&route);
  into = std::move(lease);
  return Block::None;
}

bool Admission::would_admit(const RouteState& route, TimePoint now) const {
  if (!budget_allows(route)) return false;
  if (RateLimiter* limiter = env_.limiter(route.endpoint)) {
    if (!limiter->would_grant(now, permit_tokens())) return false;
  }
  return route.would_admit(now);
}

}  // namespace failover::detail
