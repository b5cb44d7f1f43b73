#pragma once

// Admission: whether one call may make an attempt on a route now. An attempt needs a permit
// of its endpoint's rate limiter, room in the spending budget for what it is estimated to cost,
// and its breaker's admission; what is granted goes into the attempt's lease. Admission
// remembers what refused, for the call's wait and for its error when nothing serves.

#include <failover/chat.hpp>
#include <failover/options.hpp>
#include <failover/time.hpp>

#include <cstdint>
#include <optional>

namespace failover::detail {

class AttemptLease;
class CallEnv;
struct RouteState;

class Admission {
 public:
  /** Why a route was passed over without an attempt. */
  enum class Block : char { None, Cooling, RateLimit, Budget, Breaker };

  explicit Admission(const CallEnv& env) : env_(env) {}

  /** Estimates the call's tokens: the prompt at about four characters a token and the output
   *  cap, or the client's token estimator (which may throw a HookError). */
  void estimate(const ChatRequest& request);

  /** A new round of choosing a route: forgets the refusals of rate limits and of a busy
   *  budget. */
  void start_round();
  /** An attempt on `route` now: a permit, a reservation and the breaker's admission into
   *  `lease`, or what refused (nothing is kept then). */
  Block admit(RouteState& route, TimePoint now, AttemptLease& lease);
  /** Of `admit`: the permit alone; false (noted) when none is due. */
  bool take_permit(const RouteState& route, AttemptLease& lease, TimePoint now);
  /** Of `admit`: the reservation alone; false (noted) when the budget has no room. */
  bool reserve_spend(const RouteState& route, AttemptLease& lease);
  /** Whether the budget has room for an attempt on `route`, taking nothing. */
  bool budget_allows(const RouteState& route) const;
  /** `budget_allows`, noting a refusal. */
  bool within_budget(const RouteState& route);
  /** Whether `admit` would grant `route` now, taking nothing. */
  bool would_admit(const RouteState& route, TimePoint now) const;
  /** The estimated cost of the call on `route`, in nano-dollars; empty when nothing is counted
   *  (no spending budget, or an unpriced route). `guess`: the output was guessed. */
  std::optional<std::int64_t> estimated_cost(const RouteState& route, bool* guess = nullptr) const;

  /** This round: a route was refused a rate-limit permit, and when the first is due. */
  bool rate_blocked() const { return rate_blocked_; }
  TimePoint rate_wait() const { return rate_wait_; }
  /** This round: the only refusal of the budget was another call of unknown cost in flight. */
  bool budget_busy() const { return budget_busy_; }
  /** Some round: a route was passed over for the spending budget... */
  bool spend_blocked() const { return spend_blocked_; }
  /** ...because the fleet's spend could not be checked. */
  bool budget_store_down() const { return budget_store_down_; }
  /** The prompt's estimated tokens. */
  std::int64_t prompt_tokens() const { return prompt_tokens_; }

 private:
  const CallEnv& env_;
  std::int64_t prompt_tokens_ = 0;
  std::int64_t output_tokens_ = 0;
  // The output estimate is a bound (the request's cap, or the application's estimator), not a
  // guess from what routes produce (see SpendCaps::admit_alone).
  bool output_capped_ = false;
  bool rate_blocked_ = false;
  TimePoint rate_wait_ = TimePoint::max();
  bool budget_busy_ = false;
  bool spend_blocked_ = false;
  bool budget_store_down_ = false;

  double permit_tokens() const { return static_cast<double>(prompt_tokens_ + output_tokens_); }
};

}  // namespace failover::detail
