#pragma once

/** @file error.hpp  Error kinds, the attempt trace and the `Error` type every failed call returns.
 */

#include <failover/export.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace failover {

struct ChatResponse;

/** What went wrong, as a closed set. `to_string()` gives the snake_case name used on the wire. */
enum class ErrorKind {
  InvalidRequest,         ///< 400/422 (and other 4xx) or a request refused before any traffic.
  Authentication,         ///< 401: the key is wrong or missing.
  PermissionDenied,       ///< 403: the key may not use this model or endpoint.
  NotFound,               ///< 404: unknown model or path.
  Conflict,               ///< 409: transient conflict on the provider side.
  ContextLengthExceeded,  ///< 400 `context_length_exceeded`: the prompt does not fit this model.
  ContentFiltered,        ///< The provider's content filter refused the request.
  RateLimited,            ///< 429: too many requests or tokens for now.
  QuotaExhausted,         ///< 429 `insufficient_quota`: the account is out of credit.
  ServerError,            ///< 500, 502, 504 and other 5xx.
  Overloaded,             ///< 503 and 529: the provider is overloaded.
  ConnectFailed,          ///< DNS, refused or unreachable: no connection was made.
  ConnectionLost,         ///< The connection broke after it was made (reset, empty reply).
  Tls,                    ///< TLS handshake or certificate verification failed.
  Timeout,                ///< Connect, first-byte or attempt timeout, or HTTP 408.
  Protocol,               ///< The response is not what the API promises (bad JSON, redirect, ...).
  ResponseTooLarge,       ///< The response exceeded `ClientOptions::max_response_bytes`.
  DeadlineExceeded,       ///< The call's overall deadline passed.
  AllRoutesUnavailable,   ///< No route could serve the call (all failed, open or cooling down).
  Cancelled,              ///< The caller cancelled the call, or the client shut down.
  StreamInterrupted,      ///< A stream broke after content was handed to the caller.
  BudgetExceeded,         ///< Every route that could serve would exceed a spending budget.
  /** Application code the SDK called for this call threw (a retry policy, balancer, circuit
   *  breaker, token estimator or stream handler); the message names it and what it threw. */
  HookFailed,
};

/** snake_case name of `kind`, e.g. `all_routes_unavailable`. */
FAILOVER_EXPORT std::string_view to_string(ErrorKind kind) noexcept;

/** An (endpoint, model) pair naming a route. */
struct RouteRef {
  std::string endpoint;  ///< Endpoint name.
  std::string model;     ///< Model name sent to that endpoint.
};

/** Equality of routes. */
inline bool operator==(const RouteRef& a, const RouteRef& b) {
  return a.endpoint == b.endpoint && a.model == b.model;
}

/** One HTTP exchange with one route, as recorded in a call's trace. */
struct Attempt {
  RouteRef route;                  ///< The route that was tried.
  std::optional<ErrorKind> error;  ///< Empty on success; otherwise what went wrong.
  int status = 0;                  ///< HTTP status, 0 when no response arrived.
  Duration latency{};              ///< From the start of the exchange to its end.
  Duration delay{};                ///< Wait before the next attempt (0 for the last one).
  std::string message;             ///< Short description of the failure (never contains a key).
  int skipped_events = 0;          ///< Malformed stream events skipped during the attempt.
  /** A stream attempt that broke after content: chunks and text bytes (content and
   *  reasoning) the handler received from it. */
  int delivered_chunks = 0;
  std::size_t delivered_chars = 0;  ///< See `delivered_chunks`.
  /** An attempt that recovered a broken stream: `"restart"` (the whole answer again) or
   *  `"continue"` (the partial answer sent as a prefix to continue); empty otherwise. */
  std::string recovery;

  /** `"success"` or the snake_case error kind. */
  std::string outcome() const {
    return error ? std::string(to_string(*error)) : std::string("success");
  }
};

/** Why a call passed a route over without sending it anything. */
enum class SkipReason {
  CoolingDown,  ///< A 429's Retry-After (its own, or shared by the fleet) has not passed.
  CircuitOpen,  ///< Its breaker is open (or half-open with its probe in flight).
  RateLimited,  ///< Its endpoint is at the client-side rate limit (rpm, tpm, concurrency).
  OverBudget,   ///< Its estimated cost would take the spending past a budget.
};

/** `"cooling_down"`, `"circuit_open"`, `"rate_limited"` or `"over_budget"`. */
FAILOVER_EXPORT std::string_view to_string(SkipReason reason) noexcept;

/** A route a call passed over before sending it anything, in the order of the call's plan.
 *  (A route whose API cannot express the request is an `Attempt` with `InvalidRequest`.) */
struct SkippedRoute {
  RouteRef route;
  SkipReason reason = SkipReason::CircuitOpen;
  /** When it may serve again, when known (the end of a cooldown or open period, the next
   *  permit). */
  std::optional<TimePoint> until;
  std::string message;  ///< e.g. "cooling down after a rate limit for 27980 ms".
};

/** Extra facts carried by an `Error`. */
struct ErrorDetails {
  int http_status = 0;                    ///< HTTP status of the failure (0 when none).
  std::string provider_code;              ///< `error.code` from the provider's body.
  std::string provider_type;              ///< `error.type` from the provider's body.
  std::string param;                      ///< `error.param` from the provider's body.
  std::optional<Duration> retry_after;    ///< Retry-After given by the provider, if any.
  std::optional<TimePoint> available_at;  ///< Earliest time a route may serve again, if known.
  std::vector<Attempt> attempts;          ///< The call's trace.
  std::vector<SkippedRoute> skipped;      ///< Routes passed over before any traffic.
  /** For `StreamInterrupted` (and a cancelled stream): what was received before the break —
   *  text, tool calls, finish state and usage so far. */
  std::shared_ptr<const ChatResponse> partial;
};

/** A failed call: a typed kind, a message without secrets, and the attempt trace. */
class FAILOVER_EXPORT Error : public std::runtime_error {
 public:
  /** Builds an error of `kind` with `message` and optional details. */
  Error(ErrorKind kind, const std::string& message, ErrorDetails details = {});

  /** What went wrong. */
  ErrorKind kind() const noexcept { return kind_; }
  /** The message (same as `what()`). */
  std::string message() const { return what(); }
  /** HTTP status, or 0 when no HTTP response was involved. */
  int http_status() const noexcept { return details_->http_status; }
  /** The provider's `error.code`, or empty. */
  const std::string& provider_code() const noexcept { return details_->provider_code; }
  /** The provider's `error.type`, or empty. */
  const std::string& provider_type() const noexcept { return details_->provider_type; }
  /** The provider's `error.param`, or empty. */
  const std::string& param() const noexcept { return details_->param; }
  /** The provider's Retry-After, if it sent one. */
  const std::optional<Duration>& retry_after() const noexcept { return details_->retry_after; }
  /** For `AllRoutesUnavailable`: the earliest time a route reopens, if known. */
  const std::optional<TimePoint>& available_at() const noexcept { return details_->available_at; }
  /** Every attempt the call made, in order. */
  const std::vector<Attempt>& attempts() const noexcept { return details_->attempts; }
  /** Routes the call passed over before sending them anything, with why and until when. */
  const std::vector<SkippedRoute>& skipped() const noexcept { return details_->skipped; }
  /** The partial response of an interrupted or cancelled stream, or null. */
  const ChatResponse* partial() const noexcept { return details_->partial.get(); }
  /** All details at once. */
  const ErrorDetails& details() const noexcept { return *details_; }

 private:
  ErrorKind kind_;
  std::shared_ptr<const ErrorDetails> details_;
};

}  // namespace failover
