#pragma once

// Everything shared by the calls of one client: its resolved options, routes, tiers, limits,
// spend, canary and shadow.

#include <failover/client.hpp>

#include "core/route_state.hpp"
#include "options/resolve.hpp"
#include "policy/rate_limiter.hpp"
#include "policy/retry_budget.hpp"
#include "policy/spend.hpp"
#include "traffic/canary.hpp"
#include "wire/shaping.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace failover::detail {

class AsyncEngine;
class CallEnv;
class CallMachine;
class StateSync;

/** A tier: its plan entries (consecutive, in listed order) and its balancer. */
struct TierState {
  std::size_t first = 0;  // index of the tier's first PlanEntry
  std::size_t count = 0;
  std::vector<int> weights;
  std::shared_ptr<Balancer> balancer;
  std::string hook_name;  // "the balancer of priority[i]", for HookErrors
};

/** Everything shared by the calls of one client. Always owned by a `shared_ptr`: the engine
 *  thread keeps the core alive while it runs, so the `Client` may be released from inside its
 *  own callbacks. */
class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  explicit ClientCore(ClientOptions options);
  ~ClientCore();
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;

  const ClientOptions& options() const { return options_; }
  Clock& clock() const { return *options_.clock; }
  Rng& rng() const { return *options_.rng; }
  const std::vector<ResolvedEndpoint>& endpoints() const { return endpoints_; }
  const std::vector<std::unique_ptr<RouteState>>& routes() const { return routes_; }
  const std::vector<PlanEntry>& plan() const { return plan_; }
  const std::vector<TierState>& tiers() const { return tiers_; }
  spdlog::logger* logger() const { return options_.logger.get(); }
  std::uint64_t next_exchange_id() {
    return next_exchange_.fetch_add(1, std::memory_order_relaxed);
  }
  RetryBudget& budget() { return *budget_; }
  SpendTracker& spend() { return *spend_; }
  /** The rate limiter of `endpoint`, or null when it has no limits. */
  RateLimiter* limiter(std::size_t endpoint) const { return limiters_[endpoint].get(); }
  /** When the client was built (the start of its usage report). */
  TimePoint started() const { return started_; }
  ClientStats& stats() { return stats_; }
  const ClientStats& stats() const { return stats_; }

  /** A transport session for the calling thread (from the idle pool or new). */
  std::unique_ptr<TransportSession> acquire_session();
  /** Returns a session to the idle pool. */
  void release_session(std::unique_ptr<TransportSession> session);

  /** The canary, when one is configured. */
  CanaryController* canary() const { return canary_.get(); }
  /** Plan entry of the canary's candidate, when a canary is configured. */
  std::optional<std::size_t> canary_plan() const { return canary_plan_; }
  /** Plan entry of the shadow candidate, when shadow traffic is configured. */
  std::optional<std::size_t> shadow_plan() const { return shadow_plan_; }
  /** The shadow analyser, when shadow traffic is configured. */
  ShadowAnalyzer* shadow() const { return shadow_.get(); }
  /** The canary's status, when one is configured. */
  std::optional<CanaryStatus> canary_status(TimePoint now) const;
  /** The sharing of route state with the fleet, when a store is configured. */
  const StateSync* sync() const { return sync_.get(); }
  /** What a call needs of this client (the call machine sees nothing else). */
  const CallEnv& call_env() const { return *call_env_; }
  /** A call ended with `result`: mirrors it when it was sampled for shadow traffic. */
  void after_call(CallMachine& machine, const Result<ChatResponse>& result);
  /** Waits until no mirror is queued or in flight; false on timeout. */
  bool wait_for_mirrors(std::chrono::steady_clock::duration timeout);

  /** The engine thread for asynchronous calls, started on first use. */
  AsyncEngine& engine();
  /** Stops the engine thread, cancelling its calls. From the engine thread itself (a callback
   *  releasing the client), it only asks the thread to stop: the thread ends after the
   *  callback, and the core goes with it. */
  void shutdown();

 private:
  // The constructor's steps, in order.
  void add_tiers();
  void add_routes(const std::vector<std::pair<RouteRef, std::size_t>>& routes);
  void start_sync();
  void make_call_env();

  ClientOptions options_;
  std::vector<ResolvedEndpoint> endpoints_;
  std::vector<std::unique_ptr<RouteState>> routes_;
  std::vector<PlanEntry> plan_;
  std::vector<TierState> tiers_;
  ClientStats stats_;
  TimePoint started_{};
  std::unique_ptr<RetryBudget> budget_;
  std::unique_ptr<SpendTracker> spend_;
  std::vector<std::unique_ptr<RateLimiter>> limiters_;  // per endpoint
  std::atomic<std::uint64_t> next_exchange_{1};
  std::mutex sessions_mutex_;
  std::vector<std::unique_ptr<TransportSession>> idle_sessions_;
  std::optional<std::size_t> canary_plan_;
  std::optional<std::size_t> shadow_plan_;
  std::unique_ptr<CanaryController> canary_;
  std::unique_ptr<ShadowAnalyzer> shadow_;
  std::mutex mirrors_mutex_;
  std::condition_variable mirrors_idle_;
  std::size_t mirrors_pending_ = 0;  // queued or in flight
  std::mutex engine_mutex_;
  // Shared with whoever submits outside the engine lock (a mirror of a synchronous call on
  // another thread), so that shutdown cannot free it under them.
  std::shared_ptr<AsyncEngine> engine_;
  std::atomic<bool> closed_{false};    // shut down: no new engine, no new mirror
  std::unique_ptr<CallEnv> call_env_;  // refers to the members above
  std::unique_ptr<StateSync> sync_;    // with a shared store; goes first (its thread reads routes_)

  void mirror(ChatRequest request, const Result<ChatResponse>& primary, Duration primary_latency);
  AsyncEngine& engine_locked();  // with engine_mutex_ held and closed_ false
};

}  // namespace failover::detail
