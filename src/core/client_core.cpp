#include "core/client_core.hpp"

#include "core/async_engine.hpp"
#include "core/call.hpp"
#include "core/call_env.hpp"
#include "core/state_sync.hpp"
#include "wire/json_codec.hpp"

#include <failover/config.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <tuple>

namespace failover::detail {

ClientCore::ClientCore(ClientOptions options) : options_(std::move(options)) {
  ClientOptions& o = options_;
  ResolvedOptions resolved = resolve_options(o);
  if (!o.retry) o.retry = std::make_shared<DefaultRetryPolicy>();
  if (!o.circuit_breaker) o.circuit_breaker = DefaultCircuitBreaker::factory();
  if (!o.clock) o.clock = std::make_shared<SystemClock>();
  if (!o.logger && !o.log.level.empty()) o.logger = make_logger(o.log);
  if (!o.rng) o.rng = std::make_shared<SystemRng>();
  if (!o.transport) o.transport = make_curl_transport();
  budget_ = std::make_unique<RetryBudget>(o.retry_budget);
  spend_ = std::make_unique<SpendTracker>(o.budget);
  for (const Endpoint& e : o.endpoints) {
    RateLimiter::Limits l{e.limits.rpm, e.limits.tpm, e.limits.max_concurrency};
    limiters_.push_back(l.rpm || l.tpm || l.max_concurrency
                            ? std::make_unique<RateLimiter>(l, o.clock->now())
                            : nullptr);
  }
  started_ = o.clock->now();
  endpoints_ = std::move(resolved.endpoints);
  plan_ = std::move(resolved.plan);
  add_tiers();
  canary_plan_ = resolved.canary_plan;
  shadow_plan_ = resolved.shadow_plan;
  if (canary_plan_) canary_ = std::make_unique<CanaryController>(o.canary, started_);
  if (shadow_plan_) {
    shadow_ = std::make_unique<ShadowAnalyzer>(o.shadow.thresholds, o.shadow.worst_pairs);
  }
  add_routes(resolved.routes);
  if (o.state.store) start_sync();
  make_call_env();
}

ClientCore::~ClientCore() { shutdown(); }

std::unique_ptr<TransportSession> ClientCore::acquire_session() {
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    if (!idle_sessions_.empty()) {
      auto s = std::move(idle_sessions_.back());
      idle_sessions_.pop_back();
      return s;
    }
  }
  return options_.transport->open_session();
}

void ClientCore::release_session(std::unique_ptr<TransportSession> session) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  idle_sessions_.push_back(std::move(session));
}

AsyncEngine& ClientCore::engine() {
  std::lock_guard<std::mutex> lock(engine_mutex_);
  return engine_locked();
}

AsyncEngine& ClientCore::engine_locked() {
  if (!engine_) engine_ = std::make_shared<AsyncEngine>(*this, shared_from_this());
  return *engine_;
}

void ClientCore::shutdown() {
  std::shared_ptr<AsyncEngine> engine;
  {
    std::lock_guard<std::mutex> lock(engine_mutex_);
    closed_ = true;
    if (engine_ && engine_->on_engine_thread()) {
      // Released from inside a callback: the thread cannot join itself. It stops once the
      // callback returns, cancelling the other calls, and its keep-alive of this core goes
      // last, destroying the core (and the engine) on that thread.
      engine_->stop_from_callback();
      return;
    }
    engine = std::move(engine_);
  }
  // The thread cancels its calls and ends; a mirror that still holds the engine finds it
  // stopped, and the last holder frees it.
  if (engine) engine->join();
}

std::optional<CanaryStatus> ClientCore::canary_status(TimePoint now) const {
  if (!canary_) return std::nullopt;
  const RouteState& route = *routes_[plan_[*canary_plan_].route];
  CanaryStatus s = canary_->status(now, route.in_flight.load(std::memory_order_relaxed));
  s.candidate = route.ref;
  return s;
}

void CallEnv::canary_record(TimePoint now, const std::optional<ErrorKind>& error,
                            Duration latency) const {
  std::optional<CanaryAlert> alert = canary()->record(now, canary_outcome(error), latency);
  if (!alert) return;
  alert->candidate = routes()[plan()[*canary_plan()].route]->ref;
  if (spdlog::logger* log = logger()) {
    log->error("canary {}/{} rolled back from {}%: {}", alert->candidate.endpoint,
               alert->candidate.model, alert->percent, alert->reason);
  }
  if (!options().canary.on_rollback) return;
  try {
    options().canary.on_rollback(*alert);
  } catch (const std::exception& e) {
    if (spdlog::logger* log = logger())
      log->error("a canary rollback callback threw: {}", e.what());
  } catch (...) {
    if (spdlog::logger* log = logger()) log->error("a canary rollback callback threw");
  }
}

// Hands a sampled call's request to the engine as a mirror of one attempt on the candidate.
// The caller's result was already decided: nothing here can change it.
void ClientCore::mirror(ChatRequest request, const Result<ChatResponse>& primary,
                        Duration primary_latency) {
  shadow_->count_sampled();
  {
    std::lock_guard<std::mutex> lock(mirrors_mutex_);
    if (closed_ || mirrors_pending_ >= options_.shadow.queue) {
      shadow_->count_dropped();
      return;
    }
    ++mirrors_pending_;
  }
  auto request_copy = std::make_shared<ChatRequest>(std::move(request));
  auto primary_copy = std::make_shared<Result<ChatResponse>>(primary);
  CallOptions options;
  options.timeout = options_.shadow.timeout.value_or(options_.timeouts.total);
  auto done = [this, request_copy, primary_copy, primary_latency](Result<ChatResponse> result) {
    const std::vector<Attempt>& attempts =
        result.ok() ? result.value().attempts : result.error().attempts();
    const bool reached = !attempts.empty() && attempts.back().error != ErrorKind::Cancelled;
    try {
      if (!reached) throw HookError("");  // nothing to compare
      shadow_->add(invoke_user("the shadow comparator", [&] {
        return compare_results(*request_copy, *primary_copy, primary_latency, result,
                               attempts.back().latency, options_.shadow.comparator);
      }));
    } catch (const HookError& e) {
      shadow_->count_skipped();
      spdlog::logger* log = logger();
      if (log && *e.what()) log->error("a shadow pair was skipped: {}", e.what());
    }
    std::lock_guard<std::mutex> lock(mirrors_mutex_);
    --mirrors_pending_;
    mirrors_idle_.notify_all();
  };
  std::shared_ptr<AsyncEngine> engine;  // held: the client may be shut down meanwhile
  {
    std::lock_guard<std::mutex> lock(engine_mutex_);
    if (!closed_) {
      engine_locked();
      engine = engine_;
    }
  }
  if (!engine) {  // shutting down: nothing more is sent
    shadow_->count_dropped();
    std::lock_guard<std::mutex> lock(mirrors_mutex_);
    --mirrors_pending_;
    mirrors_idle_.notify_all();
    return;
  }
  engine->submit(ChatRequest(*request_copy), std::move(options), nullptr, std::move(done),
                 /*mirror=*/true);
}

bool ClientCore::wait_for_mirrors(std::chrono::steady_clock::duration timeout) {
  std::unique_lock<std::mutex> lock(mirrors_mutex_);
  return mirrors_idle_.wait_for(lock, timeout, [&] { return mirrors_pending_ == 0; });
}

void ClientCore::after_call(CallMachine& machine, const Result<ChatResponse>& result) {
  if (std::optional<ChatRequest> request = machine.take_shadow()) {
    mirror(std::move(*request), result, machine.elapsed());
  }
}

// Each tier's balancer, weights and place among the plan's entries.
void ClientCore::add_tiers() {
  const ClientOptions& o = options_;
  for (std::size_t ti = 0; ti < o.priority.size(); ++ti) {
    TierState t;
    t.first = tiers_.empty() ? 0 : tiers_.back().first + tiers_.back().count;
    t.count = o.priority[ti].routes.size();
    t.hook_name = "the balancer of priority[" + std::to_string(ti) + "]";
    for (const Route& r : o.priority[ti].routes) t.weights.push_back(r.weight);
    t.balancer = o.priority[ti].balancer ? o.priority[ti].balancer
                                         : std::shared_ptr<Balancer>(make_balancer(
                                               o.priority[ti].balance, o.priority[ti].routes));
    tiers_.push_back(std::move(t));
  }
}

// Each distinct route's state: its URLs, breaker and price.
void ClientCore::add_routes(const std::vector<std::pair<RouteRef, std::size_t>>& routes) {
  const ClientOptions& o = options_;
  for (auto& [ref, endpoint] : routes) {
    auto state = std::make_unique<RouteState>();
    state->ref = ref;
    state->endpoint = endpoint;
    wire::append_json(nlohmann::json(ref.model), state->model_json);  // checked valid above
    const ResolvedEndpoint& e = endpoints_[endpoint];
    wire::RouteUrls urls = e.api->urls(e.base, e.query, ref.model);
    state->url = std::move(urls.whole);
    state->stream_url = std::move(urls.stream);
    state->hook_name = "the circuit breaker of " + ref.endpoint + "/" + ref.model;
    state->breaker = o.circuit_breaker(state->ref);
    if (auto price = o.prices.find(ref.model); price != o.prices.end())
      state->price = &price->second;
    if (!state->breaker) {
      throw ConfigError("circuit_breaker factory returned null for " + ref.endpoint + "/" +
                        ref.model);
    }
    routes_.push_back(std::move(state));
  }
}

// The fleet's shared state, read before the first call.
void ClientCore::start_sync() {
  const ClientOptions& o = options_;
  StateSync::Parts shared;
  shared.routes = &routes_;
  shared.spend = spend_.get();
  shared.limiters = &limiters_;
  for (const Endpoint& e : o.endpoints) shared.endpoints.push_back(e.name);
  if (canary_) {
    shared.canary = canary_.get();
    shared.canary_candidate = o.canary.candidate->endpoint + "/" + o.canary.candidate->model;
  }
  if (const auto* factory = o.circuit_breaker.target<DefaultCircuitBreakerFactory>()) {
    shared.breaker = factory->options;
  }
  sync_ = std::make_unique<StateSync>(o.state, std::move(shared), *o.clock, o.logger.get());
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    routes_[i]->sync = sync_.get();
    routes_[i]->index = i;
  }
  sync_->start();  // reads the fleet's state before the first call
}

// What one call needs of the client (see CallEnv).
void ClientCore::make_call_env() {
  CallEnv::Parts parts;
  parts.options = &options_;
  parts.endpoints = &endpoints_;
  parts.routes = &routes_;
  parts.plan = &plan_;
  parts.tiers = &tiers_;
  parts.limiters = &limiters_;
  parts.budget = budget_.get();
  parts.spend = spend_.get();
  parts.stats = &stats_;
  parts.exchange_ids = &next_exchange_;
  parts.canary = canary_.get();
  parts.canary_plan = canary_plan_;
  parts.shadow = shadow_.get();
  parts.shadow_plan = shadow_plan_;
  parts.translating = std::any_of(endpoints_.begin(), endpoints_.end(),
                                  [](const ResolvedEndpoint& e) { return e.api->translates(); });
  parts.continuing = std::any_of(
      endpoints_.begin(), endpoints_.end(),
      [](const ResolvedEndpoint& e) { return e.continuation == Continuation::Prefill; });
  call_env_ = std::make_unique<CallEnv>(parts);
}

}  // namespace failover::detail
