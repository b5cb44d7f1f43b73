#pragma once

/** @file health.hpp  Passive health of each route, as seen from real traffic. */

#include <failover/error.hpp>
#include <failover/policy/circuit_breaker.hpp>
#include <failover/time.hpp>
#include <failover/traffic.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace failover {

/** One route's health. Rates and percentiles cover recent attempts (see the field notes). */
struct RouteHealth {
  RouteRef route;                             ///< The route.
  BreakerState state = BreakerState::Closed;  ///< Its breaker, now.
  int in_flight = 0;                          ///< Attempts in flight now.
  std::size_t window = 0;                     ///< Attempts in the success-rate window (<= 100).
  double success_rate = 1.0;                  ///< Successes / attempts over that window.
  Duration p50{};                             ///< Latency percentiles of recent successful
  Duration p95{};                             ///< attempts (the last 256);
  Duration p99{};                             ///< zero while there are none.
  Duration ewma{};                            ///< Latency EWMA of successful attempts.
  std::uint64_t successes = 0;                ///< Successful attempts since the client started.
  std::uint64_t failures = 0;                 ///< Failed attempts since the client started.
  std::optional<ErrorKind> last_error;        ///< The most recent failure, if any,
  std::string last_error_message;             ///< its message,
  std::optional<TimePoint> last_error_at;     ///< and when it happened.
  std::optional<TimePoint> reopens_at;        ///< When an open breaker lets a probe through.
  std::optional<TimePoint> cooldown_until;    ///< When a rate-limit cooldown ends.
  std::optional<TimePoint> last_probe_at;     ///< When an active probe last ended, if any,
  bool last_probe_ok = false;                 ///< whether it passed,
  std::string last_probe_message;             ///< and why not.
};

/** Health of every route, in priority order. */
struct HealthSnapshot {
  TimePoint at{};                      ///< When the snapshot was taken.
  std::vector<RouteHealth> routes;     ///< One entry per distinct route.
  std::optional<CanaryStatus> canary;  ///< The canary roll-out, when one is configured.
};

}  // namespace failover
