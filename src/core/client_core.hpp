#pragma once

// Validated client configuration and shared per-route state.

#include <failover/client.hpp>

#include "observe/route_stats.hpp"
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

/** An endpoint ready for requests: full URL and the headers every request carries. */
struct ResolvedEndpoint {
  std::string name;
  Dialect dialect = Dialect::OpenAI;
  std::string base;        // the base URL, checked, without a trailing slash
  std::string query;       // `?k=v&...`, or empty
  std::string url;         // .../chat/completions?query (.../messages?query for Anthropic)
  std::string models_url;  // .../models?query
  HttpHeaders headers;     // content type, accept, user agent, auth, endpoint headers
  /** The API key and the values of headers and query parameters that carry secrets (see
   *  util/secret_names.hpp), to redact wherever a server echoes one back. */
  std::vector<std::string> secrets;
  Continuation continuation = Continuation::None;
  bool streaming = true;  // Endpoint::streaming

  /** `text` with every occurrence of a secret replaced by `[redacted]`. */
  std::string redact(std::string text) const;
};

class StateSync;

/** Shared state of one (endpoint, model) route. */
struct RouteState {
  RouteRef ref;
  std::string model_json;  // ref.model as a JSON string, as request bodies carry it
  std::string url;         // where its requests go: the endpoint's URL, or Gemini's per model
  std::string stream_url;  // where its streamed requests go
  std::size_t endpoint = 0;
  std::unique_ptr<CircuitBreaker> breaker;
  std::atomic<TimePoint::rep> cooldown_until{TimePoint::min().time_since_epoch().count()};
  RouteStats stats;
  const ModelPrice* price = nullptr;  // from ClientOptions::prices, when the model has one
  std::atomic<std::int64_t> prompt_tokens{0};
  std::atomic<std::int64_t> cached_tokens{0};
  std::atomic<std::int64_t> completion_tokens{0};
  std::atomic<std::int64_t> cost_nanos{0};       // US dollars x 1e9, so totals never drift
  std::atomic<std::uint64_t> skipped_events{0};  // malformed stream events skipped
  /** Adds a served response's usage; returns its cost in nano-dollars when priced. */
  std::optional<std::int64_t> add_usage(const Usage& usage);
  mutable std::mutex probe_mutex;
  std::optional<TimePoint> probe_at;
  bool probe_ok = false;
  std::string probe_message;
  std::atomic<int> in_flight{0};               // attempts on this route in flight now
  std::atomic<Duration::rep> ewma_latency{0};  // of successful attempts; 0 = none yet
  /** Learned: it answered a streamed request whole, or refused to stream. Its requests go
   *  whole from then on (no headers limit: its answer shows no life before its end). */
  std::atomic<bool> answers_whole{false};

  /** Folds a successful attempt's latency into the EWMA (weight 0.2 for the newest). */
  void record_latency(Duration latency);
  /** Keeps the completion tokens of a served answer (the last 64), for budgets' estimates of
   *  requests without an output cap. */
  void record_output(std::int64_t tokens);
  /** The p95 (nearest rank) of the kept completion tokens; empty before any answer. */
  std::optional<std::int64_t> typical_output() const;
  mutable std::mutex outputs_mutex;
  std::array<std::int64_t, 64> outputs{};
  std::size_t outputs_kept = 0;
  std::size_t outputs_next = 0;
  std::atomic<int> last_state{static_cast<int>(BreakerState::Closed)};
  /** Times the breaker was seen to open: an attempt admitted while it was closed whose result
   *  comes after a later opening is stale (see AttemptLease). */
  std::atomic<std::uint64_t> trips{0};
  /** The last active probe's result. */
  void record_probe(TimePoint at, bool ok, std::string message);
  /** Fills the probe fields of `out`. */
  void fill_probe(RouteHealth& out) const;
  /** Records a breaker transition since the last observation. */
  void observe_breaker(TimePoint now);
  /** The breaker's calls, with transitions recorded in `stats`. The breaker may be the
   *  application's: what it throws comes back as a HookError naming it. */
  bool try_acquire(TimePoint now);
  void on_success(TimePoint now, Duration latency);
  void on_failure(TimePoint now, ErrorKind kind);
  BreakerState breaker_state(TimePoint now) const;
  std::optional<TimePoint> reopens_at(TimePoint now) const;
  bool would_admit(TimePoint now) const;
  /** For reports (health, metrics, probes): the breaker's state, or Open when it throws. */
  BreakerState reported_state(TimePoint now) const noexcept;
  std::string hook_name;  // "the circuit breaker of endpoint/model", for HookErrors

  TimePoint cooldown() const {
    return TimePoint{Duration{cooldown_until.load(std::memory_order_relaxed)}};
  }
  /** Extends the cooldown to `until` (never shortens it); the fleet hears of it when
   *  `publish` and state is shared. */
  void cool_down_until(TimePoint until, bool publish = true);

  // Shared state (StateOptions): the fleet's hold, a breaker tripped in another process, keeps
  // the route closed to this process's calls until it ends, whatever the local breaker says.
  StateSync* sync = nullptr;  // null: nothing is shared
  std::size_t index = 0;      // among the client's routes
  std::atomic<TimePoint::rep> held_until{TimePoint::min().time_since_epoch().count()};
  std::atomic<TimePoint::rep> published_open{0};  // the open period last published; 0 = none
  bool held(TimePoint now) const {
    return held_until.load(std::memory_order_relaxed) > now.time_since_epoch().count();
  }
  void hold_until(TimePoint until) {
    held_until.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  }
  /** The fleet closed the route (a probe passed elsewhere): the hold ends, and so does the
   *  local breaker's open period. */
  void release_hold(TimePoint now);
  /** The fleet's window of calls tripped or closed the route (a hold began or ended): the
   *  local default breaker's counts start over, and attempts admitted before the change
   *  no longer speak for the route's probe. */
  void fleet_decided(TimePoint now);
  /** Whether the local breaker itself (the fleet's hold aside) is closed. */
  bool own_breaker_closed(TimePoint now) const;
  /** The end of the local breaker's own open period, when it is open. */
  std::optional<TimePoint> own_open_until(TimePoint now) const;
  /** After a breaker call: a trip or a recovery is published to the fleet. */
  void publish_breaker(TimePoint now);
};

/** One entry of the priority list, in order. */
struct PlanEntry {
  std::size_t route = 0;  // index into ClientCore::routes
  std::size_t tier = 0;
  Timeouts timeouts;  // the client's, with the tier's and the route's overrides applied
  std::shared_ptr<const wire::RequestShaping> shaping;  // null: the body goes as encoded
};

/** A tier: its plan entries (consecutive, in listed order) and its balancer. */
struct TierState {
  std::size_t first = 0;  // index of the tier's first PlanEntry
  std::size_t count = 0;
  std::vector<int> weights;
  std::shared_ptr<Balancer> balancer;
  std::string hook_name;  // "the balancer of priority[i]", for HookErrors
};

/** Options checked and resolved, before any client state exists. */
struct ResolvedOptions {
  std::vector<ResolvedEndpoint> endpoints;
  std::vector<std::pair<RouteRef, std::size_t>> routes;  // distinct routes, with endpoint index
  std::vector<PlanEntry> plan;             // the priority list, then the candidates below
  std::optional<std::size_t> canary_plan;  // plan entry of the canary's candidate
  std::optional<std::size_t> shadow_plan;  // plan entry of the shadow's candidate
};

/** Validates `options` (trimming keys) and resolves URLs, headers and the plan; throws
 *  `ConfigError` naming the field. No side effects beyond `options`. */
ResolvedOptions resolve_options(ClientOptions& options);

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

/** Validates header names and values; throws `std::invalid_argument` naming `field`. */
void validate_headers(const std::map<std::string, std::string>& headers, std::string_view field);

}  // namespace failover::detail
