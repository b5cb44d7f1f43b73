#pragma once

// Client-side rate limits of one endpoint: requests and tokens per minute as token buckets
// with continuous refill, a concurrency cap, and what the provider's x-ratelimit-* headers
// say. Sans-I/O and thread-safe.

#include <failover/time.hpp>
#include <failover/transport.hpp>

#include <mutex>
#include <optional>
#include <string_view>

namespace failover::detail {

/** An OpenAI rate-limit reset duration: `1s`, `6m0s`, `20ms`, `1h2m3.5s`, `0.5s`. */
std::optional<Duration> parse_reset_duration(std::string_view text);

/** The fleet's buckets of one endpoint, when processes share its rpm and tpm (StateSync
 *  implements it). */
class FleetBucket {
 public:
  virtual ~FleetBucket() = default;
  /** Empty when the fleet grants a request of `tokens` tokens (or cannot be asked now: the
   *  local buckets then decide alone), else how long until it could. */
  virtual std::optional<Duration> take(double tokens) = 0;
  /** Puts back what a request did not use (negative: takes what it used beyond its estimate);
   *  never blocks. */
  virtual void give_back(double requests, double tokens) = 0;
};

class RateLimiter {
 public:
  struct Limits {
    std::optional<double> rpm;           ///< Requests per minute.
    std::optional<double> tpm;           ///< Tokens per minute.
    std::optional<int> max_concurrency;  ///< Requests in flight at once.
  };
  RateLimiter(Limits limits, TimePoint now);

  /** Requests and tokens also come from `fleet` from now on (set before the first call, and
   *  only on a limiter with rpm or tpm); the concurrency cap and the provider's headers stay
   *  this process's. */
  void share(FleetBucket* fleet) { fleet_ = fleet; }
  const Limits& limits() const { return limits_; }

  bool limited() const { return limits_.rpm || limits_.tpm || limits_.max_concurrency; }

  /** Takes a permit for one request of about `tokens` tokens, or says when one may be due
   *  (empty when only a request in flight ending can free one). */
  struct Answer {
    bool granted = false;
    std::optional<TimePoint> retry_at;
  };
  Answer try_acquire(TimePoint now, double tokens);
  /** Whether `try_acquire(now, tokens)` would grant a permit, without taking it. */
  bool would_grant(TimePoint now, double tokens);
  /** The request ended: its concurrency slot is free; `actual` tokens replace the estimate. */
  void release(TimePoint now, double estimated, std::optional<double> actual);
  /** A permit taken but not used (the route was not tried after all): all of it comes back. */
  void refund(TimePoint now, double tokens);
  /** Reads the provider's remaining/reset headers (OpenAI's `x-ratelimit-*`, Anthropic's
   *  `anthropic-ratelimit-*`; a reset as a duration or an RFC 3339 time, read against `wall`):
   *  a provider at zero blocks until its reset. */
  void observe(TimePoint now, WallTime wall, const HttpHeaders& headers);

 private:
  void refill(TimePoint now);
  void give_back_locked(double requests, double tokens);    // ends a request in flight
  Answer check_locked(TimePoint now, double tokens) const;  // grants nothing

  Limits limits_;
  FleetBucket* fleet_ = nullptr;
  std::mutex mutex_;
  TimePoint last_{};
  double requests_ = 0;  // tokens in the request bucket
  double tokens_ = 0;    // tokens in the token bucket (may go negative after reconciliation)
  int in_flight_ = 0;
  TimePoint blocked_until_{};
};

}  // namespace failover::detail
