#pragma once

/** @file options.hpp  Endpoints, routes, tiers, timeouts, and the client and call options. */

#include <failover/cancellation.hpp>
#include <failover/policy/balancer.hpp>
#include <failover/policy/circuit_breaker.hpp>
#include <failover/policy/retry.hpp>
#include <failover/state.hpp>
#include <failover/time.hpp>
#include <failover/traffic.hpp>
#include <failover/transport.hpp>
#include <failover/usage.hpp>

#include <spdlog/fwd.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace failover {

struct ChatRequest;

/** How the API key is presented. */
enum class AuthStyle {
  Bearer,  ///< `Authorization: Bearer <key>` (OpenAI and most providers).
  ApiKey,  ///< `api-key: <key>` (Azure OpenAI).
  None,    ///< No key (local servers); `api_key` must then be empty.
};

/**
 * Client-side limits of one endpoint, so the SDK slows down before the provider answers 429:
 * requests and tokens per minute (token buckets with continuous refill; a request's tokens are
 * estimated as prompt characters / 4 plus its output cap, then reconciled with the usage the
 * provider reports) and requests in flight at once. The provider's x-ratelimit-remaining-* and
 * x-ratelimit-reset-* headers are read as well: at zero remaining, the endpoint waits for the
 * reset. A route whose endpoint has no permit is skipped: the call fails over at once; when no
 * route has one, `CallOptions::when_unavailable` decides (fail with `RateLimited` carrying
 * when the first permit is due, or wait for it within the deadline).
 */
struct EndpointLimits {
  std::optional<double> rpm;           ///< Requests per minute.
  std::optional<double> tpm;           ///< Tokens per minute.
  std::optional<int> max_concurrency;  ///< Requests in flight at once.
};

/** The API an endpoint speaks. The application always uses `ChatRequest`, `ChatResponse` and
 *  `ChatChunk`; a native dialect is translated on the wire (docs/providers.md, "Dialects"). */
enum class Dialect {
  OpenAI,     ///< Chat Completions: `POST {base_url}/chat/completions` (and every compatible API).
  Anthropic,  ///< Anthropic Messages: `POST {base_url}/messages`, base URL ending in `/v1`.
  Gemini,     ///< Google Gemini: `POST {base_url}/models/{model}:generateContent`
              ///< (`:streamGenerateContent?alt=sse`), base URL ending in `/v1beta`.
};

/** Whether an endpoint can continue a partial answer (for `StreamRecovery::Continue`). */
enum class Continuation {
  None,  ///< It cannot: a broken stream is recovered there by a restart.
  /** A trailing assistant message is continued, not answered (Anthropic, DeepSeek, vLLM and
   *  llama.cpp servers): the next route receives the conversation plus the partial answer and
   *  streams only what follows it. */
  Prefill,
};

/** One server: OpenAI-compatible, or speaking a native dialect. */
struct Endpoint {
  Endpoint() = default;
  /** The fields in their order, as a braced list gives them (`{"primary", url, key}`), the
   *  others keeping their defaults: no `-Wmissing-field-initializers` warning. */
  Endpoint(std::string endpoint_name, std::string url, std::string key = {},
           std::map<std::string, std::string> extra_headers = {},
           AuthStyle auth_style = AuthStyle::Bearer, Dialect api = Dialect::OpenAI,
           std::map<std::string, std::string> query_parameters = {}, std::string region_label = {},
           EndpointLimits endpoint_limits = {}, Continuation continues = Continuation::None,
           bool streams = true)
      : name(std::move(endpoint_name)),
        base_url(std::move(url)),
        api_key(std::move(key)),
        headers(std::move(extra_headers)),
        auth(auth_style),
        dialect(api),
        query(std::move(query_parameters)),
        region(std::move(region_label)),
        limits(endpoint_limits),
        continuation(continues),
        streaming(streams) {}

  std::string name;  ///< Unique name, used by routes and in traces.
  /** e.g. `https://api.openai.com/v1`; `/chat/completions` is appended (`/messages` for
   *  Anthropic, `/models/{model}:generateContent` for Gemini). */
  std::string base_url;
  std::string api_key;  ///< Trimmed when the client is built; sent only to this endpoint.
  std::map<std::string, std::string> headers;  ///< Extra headers sent with every request.
  /** How the key is sent. `Bearer` means the dialect's own header for native dialects:
   *  `x-api-key` for Anthropic, `x-goog-api-key` for Gemini. */
  AuthStyle auth = AuthStyle::Bearer;
  Dialect dialect = Dialect::OpenAI;               ///< The API it speaks.
  std::map<std::string, std::string> query;        ///< Query parameters (Azure `api-version`).
  std::string region;                              ///< Free-form region label.
  EndpointLimits limits;                           ///< Client-side rate limits (none by default).
  Continuation continuation = Continuation::None;  ///< Whether it continues a partial answer.
  /** Whether requests may be streamed on the wire. Every request is, by default, also a
   *  `chat()` call's, whose answer is assembled from the stream: that is how a call sees signs
   *  of life (see `Timeouts::headers`). False for a server that cannot stream: its requests go
   *  whole, and a `stream()` call gets the answer as one chunk. A route that refuses a
   *  streamed request, or answers one whole, is sent whole from then on by itself. */
  bool streaming = true;
};

/**
 * Time limits. Each must be positive. Every request is streamed on the wire (a `chat()` call's
 * answer is assembled from the stream), so every call shows signs of life: a route that sends
 * no response headers within `headers` is abandoned, while one that shows life is never cut by
 * the defaults before `attempt` (the official OpenAI SDKs allow 600 s an attempt). A route sent
 * whole (`Endpoint::streaming` false) shows none before its end: `attempt` alone bounds it.
 * See docs/policies.md, "Timeouts".
 */
struct Timeouts {
  Duration connect = std::chrono::seconds(5);  ///< TCP + TLS connect.
  /** From the start of the attempt to the response headers (any first byte), for a request
   *  streamed on the wire: a healthy provider answers a stream's headers within seconds. A
   *  route that accepts and says nothing is left after this, with the call's time still ahead
   *  for its backups. Connecting is part of it. */
  Duration headers = std::chrono::seconds(20);
  /** From the start of the attempt to the first content, tool-call or reasoning delta (SSE
   *  comments, provider keep-alives and empty role chunks do not count): the bound on a model
   *  that thinks before it answers. */
  Duration first_byte = std::chrono::seconds(600);
  /** Longest gap between chunks once content or reasoning flows (SSE comments and
   *  keep-alives do not reset it). */
  Duration idle = std::chrono::seconds(60);
  Duration attempt = std::chrono::seconds(600);  ///< One attempt, whole.
  Duration total = std::chrono::seconds(900);    ///< The whole call: attempts and waits.
};

/** Per-tier or per-route replacements of some `Timeouts` (the call's `total` stays the
 *  client's or the call's). A route's override wins over its tier's, which wins over the
 *  client's. */
struct TimeoutOverrides {
  std::optional<Duration> connect;     ///< Replaces `Timeouts::connect`.
  std::optional<Duration> headers;     ///< Replaces `Timeouts::headers`.
  std::optional<Duration> first_byte;  ///< Replaces `Timeouts::first_byte`.
  std::optional<Duration> idle;        ///< Replaces `Timeouts::idle`.
  std::optional<Duration> attempt;     ///< Replaces `Timeouts::attempt`.
};

/** (endpoint, model): the unit of health. */
struct Route {
  Route() = default;
  /** The fields in their order, as a braced list gives them (`{"primary", "gpt-4.1"}`), the
   *  others keeping their defaults: no `-Wmissing-field-initializers` warning. */
  Route(std::string endpoint_name, std::string model_name, int route_weight = 1,
        TimeoutOverrides limits = {}, std::string body_params = {},
        std::vector<std::string> dropped = {}, bool rules = true)
      : endpoint(std::move(endpoint_name)),
        model(std::move(model_name)),
        weight(route_weight),
        timeouts(limits),
        params(std::move(body_params)),
        drop_params(std::move(dropped)),
        model_rules(rules) {}

  std::string endpoint;       ///< Name of an `Endpoint`.
  std::string model;          ///< Model requested from that endpoint.
  int weight = 1;             ///< Relative weight for weighted balancing (must be >= 1).
  TimeoutOverrides timeouts;  ///< Time limits of this route in this tier.
  /** A JSON object merged into the request body for this route only, last (a member set to
   *  null is removed): `{"reasoning_effort": "low"}`. May not set `model`, `stream` or
   *  `messages`. */
  std::string params;
  /** Top-level request fields never sent to this route (`max_tokens`, `temperature`, ...). */
  std::vector<std::string> drop_params;
  /** Apply the built-in rules of the model's family (docs/providers.md): for OpenAI's
   *  reasoning models, `max_tokens` is sent as `max_completion_tokens` and the sampling fields
   *  they refuse are dropped. `params` can send a dropped field anyway. */
  bool model_rules = true;
};

/** One level of the priority list. */
struct Tier {
  Tier() = default;
  /** The fields in their order, as a braced list gives them
   *  (`Tier{{{"primary", "gpt-4.1"}, {"backup", "gpt-4.1"}}}`), the others keeping their
   *  defaults: no `-Wmissing-field-initializers` warning. */
  Tier(std::vector<Route> tier_routes, BalanceStrategy strategy = BalanceStrategy::Ordered,
       std::shared_ptr<Balancer> own_balancer = {}, TimeoutOverrides limits = {})
      : routes(std::move(tier_routes)),
        balance(strategy),
        balancer(std::move(own_balancer)),
        timeouts(limits) {}

  /** A tier of `endpoints`, all serving `model`, in that order, as the config file's
   *  `{"model": ..., "routes": [...]}`: `Tier::of("gpt-4.1", {"primary", "backup"})`. */
  static Tier of(const std::string& model, const std::vector<std::string>& endpoints) {
    Tier t;
    for (const std::string& e : endpoints) t.routes.push_back(Route{e, model});
    return t;
  }

  std::vector<Route> routes;                           ///< Routes of this tier; not empty.
  BalanceStrategy balance = BalanceStrategy::Ordered;  ///< How the routes are ordered per call.
  /** A balancer of your own; when set it replaces `balance`. Shared by all calls: must be
   *  thread-safe. */
  std::shared_ptr<Balancer> balancer;
  TimeoutOverrides timeouts;  ///< Time limits of this tier's routes.
};

/**
 * Limits retries of the same route (and hedges) across the whole client, so an outage cannot
 * become a retry storm. Two limits, both must allow: retries in flight at most
 * `max(min_concurrent, ratio * calls in flight)` (Envoy's retry budget), and a throttle token
 * bucket (gRPC retry throttling): each transient failure costs a token, each success earns
 * `throttle_token_ratio`, and retries pause while the bucket is at or below half of
 * `throttle_max_tokens`. When spent, calls still fail over to untried routes.
 */
struct RetryBudgetOptions {
  double ratio = 0.2;                 ///< Share of calls in flight that may be retrying.
  int min_concurrent = 3;             ///< Retries always allowed in flight at once.
  double throttle_max_tokens = 100;   ///< Bucket size (0 turns the throttle off).
  double throttle_token_ratio = 0.1;  ///< Tokens a success earns back.
};

/**
 * Hedging (Tail at Scale, gRPC A6): when an attempt has been in flight for `delay` (or, with
 * `use_p95`, the route's observed p95 latency), start the next route as well; the first
 * success wins and the others are cancelled, counted neither as failures nor in the traffic
 * statistics. Hedges draw from the retry budget. Off while `delay` is zero and `use_p95` is
 * false. Streamed calls are not hedged.
 */
struct HedgingOptions {
  Duration delay{};      ///< Fixed hedge delay (also the fallback while p95 is unknown).
  bool use_p95 = false;  ///< Use the route's observed p95 latency as the delay when known.
  int max_extra = 1;     ///< Hedges a call may add at most.
};

/** How active health probes ask a route whether it is well. */
enum class ProbeMethod {
  Models,  ///< `GET {base_url}/models` once per endpoint (free; checks the model is listed).
  Chat,    ///< A one-token chat completion per route (costs a token; tests the model itself).
};

/**
 * Active health probes on the engine thread's timers. Off while `interval` is zero. A probe
 * result reaches a route's breaker only through `try_acquire`, so a passing probe closes a
 * half-open breaker (no user call is spent on the route), a failing one counts against a
 * closed breaker, and an open breaker ignores probes until its open period ends. Only
 * transient failures count: a relay without `/models` is not penalised. Probes never spend a
 * call's retries and are not part of the traffic statistics.
 */
struct HealthProbeOptions {
  Duration interval{};                          ///< Time between probes of a target; 0 = off.
  ProbeMethod method = ProbeMethod::Models;     ///< What a probe sends.
  Duration timeout = std::chrono::seconds(10);  ///< Limit of one probe.
  double jitter = 0.1;  ///< Each wait is `interval * (1 + jitter * u)`, u uniform in [-1, 1).
};

/** Logging set up by the client itself (`ClientOptions::log`). */
struct LogOptions {
  /** trace, debug (a line per attempt and probe), info, warn, error, critical or off; empty =
   *  no logger is made. */
  std::string level;
  /** Appended to; empty = stderr. */
  std::string file;
};

/** What a call does when no route can serve it now (all open, cooling down or tried). */
enum class WhenUnavailable {
  FailFast,         ///< Fail at once with `AllRoutesUnavailable` (carrying `available_at`).
  WaitForRecovery,  ///< Wait for the first route to come back, if that is before the deadline.
  Panic,            ///< Try the route that comes back soonest anyway (Envoy's panic mode).
};

/** What a content-filter rejection does to a call (config `"content_filter"`). */
enum class ContentFilterPolicy {
  /** The call fails with `ContentFiltered`, carrying the provider's reason; no other route is
   *  tried: routing around a provider's safety decision is not the caller's expectation. */
  Fail,
  /** The route is given up and the call tries the next route (opt-in). */
  FailOver,
};

/**
 * What a streamed call does when its stream breaks after content reached the handler (a cut
 * connection, a stall past `Timeouts::idle`, an error event): config `"stream_recovery"`, per
 * call `CallOptions::stream_recovery`. A recovery takes the next attempt the retry policy
 * allows (another route, or the same one after its delay), within the call's deadline; when
 * none serves, the call ends with `StreamInterrupted` for the original break, with what the
 * handler was shown as the partial. See docs/policies.md, "Stream recovery".
 */
enum class StreamRecovery {
  /** The call ends with `StreamInterrupted` carrying the partial answer (the default: a
   *  handler written without recovery in mind never sees text twice). */
  Fail,
  /** The handler receives a restart notice (`ChatChunk::restart`: discard what was shown),
   *  then the whole answer from the next route; the response is that route's answer. */
  Restart,
  /** A route whose endpoint has `Continuation::Prefill` receives the partial answer as a
   *  trailing assistant message and the handler receives only the new text; the response is
   *  partial + continuation. Where the next route cannot continue (or refuses the prefix with
   *  a 400, or the partial holds tool calls), the call restarts there instead. */
  Continue,
};

/** Everything a `Client` is built from. Plain struct; every field has a sensible default. */
struct ClientOptions {
  std::vector<Endpoint> endpoints;  ///< The servers.
  std::vector<Tier> priority;       ///< The ordered model-priority list; tier 1 first.
  Timeouts timeouts;                ///< Time limits.
  /** Retry policy prototype, cloned per call; null = `DefaultRetryPolicy`. */
  std::shared_ptr<const RetryPolicy> retry;
  /** Client-wide limit on retries of the same route and on hedges. */
  RetryBudgetOptions retry_budget;
  /** What a content-filter rejection does (a 200 whose `finish_reason` is `content_filter` is
   *  an answer, returned as it is: see `ChatResponse::content_filtered`). */
  ContentFilterPolicy content_filter = ContentFilterPolicy::Fail;
  /** What a streamed call does when its stream breaks after the first content. */
  StreamRecovery stream_recovery = StreamRecovery::Fail;
  /** Prices by model name (the route's model); no price is built in. */
  std::map<std::string, ModelPrice> prices;
  /**
   * Estimates the tokens a request will use (prompt and output together), for rate limits
   * and budgets. Empty: prompt characters / 4 plus `max_completion_tokens` or `max_tokens`.
   * Estimates are reconciled with the usage the provider reports.
   */
  std::function<std::int64_t(const ChatRequest&)> token_estimator;
  /** Spending limits (off by default). */
  BudgetOptions budget;
  /** Hedged attempts (off by default). */
  HedgingOptions hedging;
  /** Active health probes (off by default). */
  HealthProbeOptions health_probe;
  /** Shadow traffic to a candidate route, with a comparison report (off by default). */
  ShadowOptions shadow;
  /** A canary roll-out of a candidate route with automatic rollback (off by default). */
  CanaryOptions canary;
  /** Route state shared with the clients of other processes (off by default). */
  StateOptions state;
  /** Makes one breaker per route; empty = `DefaultCircuitBreaker`. */
  CircuitBreakerFactory circuit_breaker;
  std::size_t max_response_bytes = 64u << 20;  ///< Response body cap (`ResponseTooLarge`).
  std::string ca_bundle;   ///< CA bundle path for TLS verification (empty = system store).
  std::string user_agent;  ///< Appended to the SDK's own User-Agent when non-empty.
  /** Logger for attempt lines (debug) and warnings; null = the one `log` asks for, if any.
   *  Keys are never logged. */
  std::shared_ptr<spdlog::logger> logger;
  /** Logging without code (the config file's `log` section): when `logger` is null and
   *  `log.level` is set, the client logs at that level to `log.file`, or to stderr. */
  LogOptions log;
  /** Null = `SystemClock`. Policies, deadlines and traces read this clock; the libcurl
   *  transport keeps its own socket timeouts on the steady clock, so a `ManualClock` is meant
   *  for tests with a fake transport. */
  std::shared_ptr<Clock> clock;
  std::shared_ptr<Rng> rng;              ///< Null = `SystemRng`.
  std::shared_ptr<Transport> transport;  ///< Null = libcurl (`make_curl_transport()`).
};

/** Per-call options. */
struct CallOptions {
  /** Overall time limit of this call; empty = `Timeouts::total`. */
  std::optional<Duration> timeout;
  /** Absolute deadline; when both are set the earlier one holds. */
  std::optional<TimePoint> deadline;
  /** End-user id (for sticky routing). */
  std::string user;
  /** When non-empty, only routes serving these models are used, in this order of preference. */
  std::vector<std::string> models;
  /** Cancels the call when its source is cancelled. */
  CancellationToken cancel;
  /** What to do when no route can serve the call now. */
  WhenUnavailable when_unavailable = WhenUnavailable::FailFast;
  /** Extra headers for this call's requests (validated: no CR/LF). */
  std::map<std::string, std::string> headers;
  /** Replaces `ClientOptions::stream_recovery` for this call. */
  std::optional<StreamRecovery> stream_recovery;
};

}  // namespace failover
