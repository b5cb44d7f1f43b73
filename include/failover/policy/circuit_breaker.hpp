#pragma once

/**
 * @file policy/circuit_breaker.hpp  Per-route circuit breakers. The SDK makes one breaker per
 * route through `CircuitBreakerFactory`, asks `try_acquire` before each attempt and reports
 * every attempt's end. Breakers are sans-I/O: time comes in as arguments.
 */

#include <failover/error.hpp>
#include <failover/export.hpp>
#include <failover/time.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

namespace failover {

/** Breaker states. */
enum class BreakerState {
  Closed,    ///< Traffic flows.
  Open,      ///< The route is skipped until the open period ends.
  HalfOpen,  ///< A limited number of probe attempts decide whether to close again.
};

/** snake_case name: `closed`, `open`, `half_open`. */
FAILOVER_EXPORT std::string_view to_string(BreakerState state) noexcept;

/** A circuit breaker for one route. Implementations must be thread-safe. */
class FAILOVER_EXPORT CircuitBreaker {
 public:
  virtual ~CircuitBreaker() = default;
  /** May an attempt start now? `false`: skip this route for now. A `true` in half-open takes a
   *  probe slot, released by the attempt's `on_success` or `on_failure`. */
  virtual bool try_acquire(TimePoint now) = 0;
  /** The acquired attempt succeeded after `latency`. Not called for an attempt admitted while
   *  the breaker was closed whose result comes after the breaker opened (a stale result, never
   *  to be taken for a half-open probe's); likewise `on_failure`. */
  virtual void on_success(TimePoint now, Duration latency) = 0;
  /** The acquired attempt failed with `kind` (the breaker decides which kinds count). */
  virtual void on_failure(TimePoint now, ErrorKind kind) = 0;
  /** Current state (no side effects). */
  virtual BreakerState state(TimePoint now) const = 0;
  /** When an open breaker lets the next probe through; empty when not open. */
  virtual std::optional<TimePoint> reopens_at(TimePoint now) const {
    (void)now;
    return std::nullopt;
  }
  /** Whether `try_acquire(now)` would say yes, without taking anything (a free half-open
   *  probe slot included). The default: not open. */
  virtual bool would_admit(TimePoint now) const { return state(now) != BreakerState::Open; }
  /** An active health probe of the route passed (`HealthProbeOptions`): a breaker may end its
   *  open period early. The default ignores it. */
  virtual void on_probe_success(TimePoint now) { (void)now; }
};

/** Makes the breaker of one route. */
using CircuitBreakerFactory = std::function<std::unique_ptr<CircuitBreaker>(const RouteRef&)>;

/** Settings of `DefaultCircuitBreaker` (docs/policies.md; the config file's
 *  `circuit_breaker`, docs/configuration.md). */
struct CircuitBreakerOptions {
  int consecutive_failures = 5;  ///< Opens after this many failures in a row.
  double failure_rate = 0.5;     ///< ...or when failures / calls in the window reach this,
  int window = 20;               ///< ...over the last `window` calls,
  int min_calls = 10;            ///< ...once the window holds at least this many calls.
  /** First open period. Short, so that a healed route serves again soon: each period ends in
   *  one probe (a real call, which fails over when the probe fails). */
  Duration open_duration = std::chrono::seconds(5);
  /** Cap of the doubling period: a route back from an outage serves again at most this long
   *  after it recovered; a dead route sees at most one probe per period. */
  Duration max_open_duration = std::chrono::seconds(8);
  int half_open_probes = 1;  ///< Probes allowed at once in half-open.
};

/** The factory `DefaultCircuitBreaker::factory()` puts in a `CircuitBreakerFactory`; reachable
 *  through `std::function::target`, so its options can be read back (e.g. to write a config). */
struct FAILOVER_EXPORT DefaultCircuitBreakerFactory {
  CircuitBreakerOptions options;  ///< Options of every breaker it makes.
  /** A new default breaker. */
  std::unique_ptr<CircuitBreaker> operator()(const RouteRef& route) const;
};

/**
 * The default breaker (Envoy outlier detection): opens after `consecutive_failures` failures in
 * a row or when the failure rate over the last `window` calls reaches `failure_rate` with at
 * least `min_calls` calls; stays open `open_duration` (5 s), doubling on each re-open up to
 * `max_open_duration` (8 s); half-open lets `half_open_probes` probes through at a time; a
 * probe's success closes it, a probe's failure re-opens it. A passing active health probe ends
 * an open period at once (the next call is the half-open probe).
 *
 * Counted as failures: server errors, overload, conflicts, timeouts, connection and TLS
 * failures, protocol errors, oversized responses, authentication, permission, not-found and
 * quota errors. Neutral (neither success nor failure): rate limits (the route cools down
 * instead), request errors that would fail anywhere, cancellations and deadlines.
 */
class FAILOVER_EXPORT DefaultCircuitBreaker final : public CircuitBreaker {
 public:
  /** Throws `std::invalid_argument` naming the bad field. */
  explicit DefaultCircuitBreaker(CircuitBreakerOptions options = {});
  /** Closed: yes. Open: no until the period ends, then half-open. Half-open: while a probe
   *  slot is free. */
  bool try_acquire(TimePoint now) override;
  /** Closed: records a success. Half-open: closes and resets the open period. */
  void on_success(TimePoint now, Duration latency) override;
  /** Closed: records a counted failure and opens on the thresholds. Half-open: a counted
   *  failure re-opens with a doubled period; a neutral one only frees the probe slot. */
  void on_failure(TimePoint now, ErrorKind kind) override;
  /** Open turns into half-open once the period has passed. */
  BreakerState state(TimePoint now) const override;
  /** End of the current open period, when open. */
  std::optional<TimePoint> reopens_at(TimePoint now) const override;
  /** Closed: yes; open: no until the period ends; half-open: while a probe slot is free. */
  bool would_admit(TimePoint now) const override;
  /** Open: the period ends now (half-open at the next `try_acquire`). */
  void on_probe_success(TimePoint now) override;
  /** Closed: forgets the calls counted so far, as after a recovery. A shared state store's
   *  window of the fleet's calls counted them already when it trips or closes the route for
   *  the fleet: they are not counted here a second time. */
  void forget_calls();

  /** Whether the default breaker counts `kind` as a failure of the route. */
  static bool counts_as_failure(ErrorKind kind) noexcept;
  /** A factory making default breakers with `options` (validated now). */
  static CircuitBreakerFactory factory(CircuitBreakerOptions options = {});

 private:
  void open_locked(TimePoint now);
  void close_locked();
  void record_locked(bool failure);

  CircuitBreakerOptions options_;
  mutable std::mutex mutex_;
  BreakerState state_ = BreakerState::Closed;
  TimePoint open_until_{};
  int reopen_count_ = 0;  // opens since the last close; sets the next open period
  int consecutive_ = 0;
  int probes_in_flight_ = 0;
  std::vector<std::uint8_t> window_;  // ring of outcomes: 1 = failure
  int window_next_ = 0;
  int window_size_ = 0;
  int window_failures_ = 0;
};

}  // namespace failover
