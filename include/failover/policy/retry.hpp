#pragma once

/**
 * @file policy/retry.hpp  The pluggable retry policy: after a failed attempt it decides whether
 * to retry the same route (and after how long), fail over to the next route, or fail the call.
 * Policies are sans-I/O: they read time and randomness only from what they are given.
 */

#include <failover/error.hpp>
#include <failover/export.hpp>
#include <failover/time.hpp>

#include <memory>
#include <optional>
#include <string>

namespace failover {

/** A failed attempt, classified. */
struct AttemptOutcome {
  RouteRef route;                           ///< The route that failed.
  ErrorKind kind = ErrorKind::ServerError;  ///< What went wrong.
  int http_status = 0;                      ///< HTTP status (0 when no response arrived).
  std::string provider_code;                ///< The provider's `error.code`, or empty.
  std::optional<Duration> retry_after;      ///< `retry-after-ms` / `Retry-After`, when sent.
  std::optional<bool> should_retry;         ///< The `x-should-retry` header, when sent.
  /** The request died on a kept-alive connection within a moment of its reuse, before any
   *  response byte (the stale keep-alive race): the server most likely never saw it, and a
   *  retry on a new connection is safe. Neutral for the route. */
  bool stale_connection = false;
  /** From the attempt's start to its failure (zero when the SDK did not measure it). */
  Duration elapsed{};

  /** Whether the failure came back fast: anything but a timeout, within a second. The one rule
   *  by which the SDK tells fast failures from slow ones: only a fast failure is retried on
   *  its route before the call moves on to a weaker model, and a kept-alive connection that
   *  died is the stale keep-alive race only when fast (else it held the request silently). */
  bool came_back_fast() const {
    return kind != ErrorKind::Timeout && kind != ErrorKind::DeadlineExceeded &&
           elapsed < kFastFailure;
  }
  /** The bound of `came_back_fast`. */
  static constexpr Duration kFastFailure = std::chrono::seconds(1);
};

/** What the call knows when it asks the policy. */
struct CallState {
  int attempts = 0;              ///< Attempts made so far in the call (retries, failovers, hedges),
                                 ///< the failed one included.
  int route_attempts = 0;        ///< Attempts made on the failed route in this call.
  bool has_alternative = false;  ///< Another route not yet tried in this call can serve now.
  /** Another route of the failed route's own tier (an equivalent route), not yet tried in this
   *  call, can serve now. When false but `has_alternative` holds, failing over means moving to
   *  a later tier: another, usually weaker, model. */
  bool tier_alternative = false;
  TimePoint now{};       ///< Current time.
  TimePoint deadline{};  ///< The call's overall deadline.
  Rng* rng = nullptr;    ///< Randomness for jitter (never null when called by the SDK).
};

/** The policy's answer. */
struct Decision {
  /** What to do next. */
  enum class Action {
    Retry,     ///< Try the same route again after `delay`.
    Failover,  ///< Give up on this route for this call; use the next one if any.
    Fail,      ///< The call fails with this attempt's error (the request fails everywhere).
  };
  Action action = Action::Failover;  ///< What to do.
  Duration delay{};                  ///< For `Retry`: wait before the next attempt.
  bool skip_tier = false;            ///< For `Failover`: skip the rest of the failed route's tier.
  /** For `Failover`: make no further attempt in this call (its attempts are spent); the call
   *  ends as `AllRoutesUnavailable` with the trace. */
  bool stop = false;

  /** Retry the same route after `delay`. */
  static Decision retry(Duration delay) { return {Action::Retry, delay, false, false}; }
  /** Fail over to the next route; `skip_tier` also skips the rest of the tier. */
  static Decision failover(bool skip_tier = false) {
    return {Action::Failover, {}, skip_tier, false};
  }
  /** Try no other route: the call's attempts are spent. */
  static Decision stop_trying() { return {Action::Failover, {}, false, true}; }
  /** Fail the call. */
  static Decision fail() { return {Action::Fail, {}, false, false}; }
};

/**
 * Decides what follows a failed attempt. One instance serves one call (the options hold a
 * prototype that is cloned per call), so an implementation may keep per-call state.
 */
class FAILOVER_EXPORT RetryPolicy {
 public:
  virtual ~RetryPolicy() = default;
  /** Decides what follows the failed attempt `outcome`. */
  virtual Decision decide(const AttemptOutcome& outcome, const CallState& state) = 0;
  /** A fresh copy for a new call. */
  virtual std::unique_ptr<RetryPolicy> clone() const = 0;
  /** The most attempts a call may make in all, when the policy has such a limit: the call
   *  then starts no hedge and no restart past it, which `decide` is not asked about. */
  virtual std::optional<int> max_attempts() const { return std::nullopt; }
};

/** Settings of `DefaultRetryPolicy` (docs/policies.md; the config file's `retry`,
 *  docs/configuration.md). */
struct RetryOptions {
  int max_attempts = 6;                                  ///< Attempts per call, all routes.
  Duration base_delay = std::chrono::milliseconds(500);  ///< First backoff ceiling.
  Duration max_delay = std::chrono::seconds(8);          ///< Backoff ceiling cap.
  Duration max_retry_after = std::chrono::seconds(60);   ///< Longest Retry-After waited for.
  /** On the last route of a tier, before moving to the next tier: the longest wait (backoff or
   *  Retry-After) for a retry of the same route. */
  Duration max_wait_before_next_tier = std::chrono::seconds(2);
  /** On the last route of a tier: retries of that route before moving to the next tier (0 =
   *  move on at once). */
  int retries_before_next_tier = 1;
};

/**
 * The default policy:
 * - transient failures (5xx, 408, 409, connect, TLS, timeouts, malformed responses) and 429
 *   fail over at once to another route of the same tier (an equivalent route) when one can
 *   serve;
 * - on the last route of a tier, before moving to a later tier (another, usually weaker
 *   model): a failure that came back fast (not a timeout) is retried on that route up to
 *   `retries_before_next_tier` times when the wait, `max(Retry-After, backoff)`, is at most
 *   `max_wait_before_next_tier`; otherwise the call moves on at once;
 * - as the last option of the call, the route is retried with full-jitter exponential backoff
 *   (`base_delay * 2^(n-1)`, capped at `max_delay`, times a uniform draw), waiting
 *   `max(Retry-After, backoff)` when Retry-After is at most `max_retry_after`, otherwise
 *   giving the route up;
 * - quota, authentication, permission and not-found errors and redirects (3xx, never followed)
 *   fail over and never retry the route;
 * - `context_length_exceeded` fails over to a later tier; other 400/422 fail the call;
 * - content-filter refusals fail the call (the client, not the policy, decides them: see
 *   `ClientOptions::content_filter`);
 * - `x-should-retry: false` forbids retrying the route, `true` allows it;
 * - a stale kept-alive connection (`AttemptOutcome::stale_connection`) is retried at once, once
 *   per route;
 * - never more than `max_attempts` attempts in all (retries, failovers, hedges), never a wait
 *   that ends past the deadline.
 */
class FAILOVER_EXPORT DefaultRetryPolicy final : public RetryPolicy {
 public:
  /** Throws `std::invalid_argument` naming the bad field. */
  explicit DefaultRetryPolicy(RetryOptions options = {});
  /** See the class comment. */
  Decision decide(const AttemptOutcome& outcome, const CallState& state) override;
  /** A copy with the same options. */
  std::unique_ptr<RetryPolicy> clone() const override;
  /** `RetryOptions::max_attempts`. */
  std::optional<int> max_attempts() const override { return options_.max_attempts; }
  /** The options in force. */
  const RetryOptions& options() const noexcept { return options_; }
  /** The backoff ceiling before the `retry_number`-th retry (1-based), without jitter. */
  Duration backoff_ceiling(int retry_number) const;

 private:
  RetryOptions options_;
};

}  // namespace failover
