#pragma once

// What one call needs of its client, named one dependency at a time (STYLE.md, example 2: give
// the machine values, not the world). The call machine sees this and nothing else of the
// client: no engine, no transport sessions, no shutdown, no mirrors. The client's core builds
// one and keeps it; everything it refers to lives as long as the core.

#include "core/client_core.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace failover::detail {

class CallEnv {
 public:
  /** The parts, each owned by the client's core. */
  struct Parts {
    const ClientOptions* options = nullptr;
    const std::vector<ResolvedEndpoint>* endpoints = nullptr;
    const std::vector<std::unique_ptr<RouteState>>* routes = nullptr;
    const std::vector<PlanEntry>* plan = nullptr;
    const std::vector<TierState>* tiers = nullptr;
    const std::vector<std::unique_ptr<RateLimiter>>* limiters = nullptr;  // per endpoint
    RetryBudget* budget = nullptr;
    SpendTracker* spend = nullptr;
    ClientStats* stats = nullptr;
    std::atomic<std::uint64_t>* exchange_ids = nullptr;
    CanaryController* canary = nullptr;  // null without a canary
    std::optional<std::size_t> canary_plan;
    ShadowAnalyzer* shadow = nullptr;  // null without shadow traffic
    std::optional<std::size_t> shadow_plan;
    bool translating = false;  // some endpoint's dialect translates requests (DialectApi)
    bool continuing = false;   // some endpoint continues a partial answer (Continuation::Prefill)
  };

  explicit CallEnv(Parts parts) : p_(parts) {}

  const ClientOptions& options() const { return *p_.options; }
  Clock& clock() const { return *p_.options->clock; }
  Rng& rng() const { return *p_.options->rng; }
  spdlog::logger* logger() const { return p_.options->logger.get(); }
  const std::vector<ResolvedEndpoint>& endpoints() const { return *p_.endpoints; }
  const std::vector<std::unique_ptr<RouteState>>& routes() const { return *p_.routes; }
  const std::vector<PlanEntry>& plan() const { return *p_.plan; }
  const std::vector<TierState>& tiers() const { return *p_.tiers; }
  /** The rate limiter of `endpoint`, or null when it has no limits. */
  RateLimiter* limiter(std::size_t endpoint) const { return (*p_.limiters)[endpoint].get(); }
  RetryBudget& budget() const { return *p_.budget; }
  SpendTracker& spend() const { return *p_.spend; }
  ClientStats& stats() const { return *p_.stats; }
  std::uint64_t next_exchange_id() const {
    return p_.exchange_ids->fetch_add(1, std::memory_order_relaxed);
  }
  /** The canary, when one is configured, and the plan entry of its candidate. */
  CanaryController* canary() const { return p_.canary; }
  std::optional<std::size_t> canary_plan() const { return p_.canary_plan; }
  /** An attempt on the canary's candidate ended (`error` empty on success): the canary judges
   *  it, and a rollback it causes is logged and reported to `CanaryOptions::on_rollback`. */
  void canary_record(TimePoint now, const std::optional<ErrorKind>& error, Duration latency) const;
  /** The shadow analyser and the plan entry of its candidate, when shadow traffic is on. */
  ShadowAnalyzer* shadow() const { return p_.shadow; }
  std::optional<std::size_t> shadow_plan() const { return p_.shadow_plan; }
  /** Whether some endpoint's dialect translates requests into a body of its own. */
  bool translating() const { return p_.translating; }
  /** Whether some endpoint can continue a partial answer (Continuation::Prefill). */
  bool continuing() const { return p_.continuing; }

 private:
  Parts p_;
};

}  // namespace failover::detail
