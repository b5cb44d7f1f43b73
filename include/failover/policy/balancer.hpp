#pragma once

/**
 * @file policy/balancer.hpp  Load balancing inside a tier: a balancer orders the tier's routes
 * for one call, best first. The call then tries them in that order (skipping routes whose
 * breaker is open or that are cooling down). Balancers are sans-I/O.
 */

#include <failover/error.hpp>
#include <failover/export.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace failover {

struct Route;

/** The built-in strategies (config key `"balance"`). */
enum class BalanceStrategy {
  Ordered,           ///< `ordered`: listed order.
  Weighted,          ///< `weighted`: random, in proportion to `Route::weight`.
  RoundRobin,        ///< `round_robin`: each call starts one route further along.
  LeastOutstanding,  ///< `least_outstanding`: fewest calls in flight now first.
  ConsistentHash,    ///< `consistent_hash`: a hash ring keyed by `CallOptions::user`.
  LatencyAware,      ///< `latency`: power of two choices on the latency EWMA.
};

/** snake_case config name of `strategy` (`round_robin`, ...). */
FAILOVER_EXPORT std::string_view to_string(BalanceStrategy strategy) noexcept;

/** What a balancer sees of one route of its tier. */
struct RouteView {
  std::size_t index = 0;    ///< Position of the route in its tier.
  int weight = 1;           ///< `Route::weight`.
  int in_flight = 0;        ///< Attempts on this route in flight now (all calls).
  Duration ewma_latency{};  ///< Smoothed latency of successful attempts; zero while unknown.
};

/** What a balancer knows of the call. */
struct BalanceContext {
  std::string_view user;  ///< `CallOptions::user` (empty when not given).
  Rng* rng = nullptr;     ///< Randomness (never null when called by the SDK).
  TimePoint now{};        ///< Current time.
};

/** Orders the routes of one tier for one call. Implementations must be thread-safe. */
class FAILOVER_EXPORT Balancer {
 public:
  virtual ~Balancer() = default;
  /** Writes into `order` the tier positions of `routes`, best first; every position once. */
  virtual void order(const std::vector<RouteView>& routes, const BalanceContext& context,
                     std::vector<std::size_t>& order) = 0;
};

/** A built-in balancer for a tier's `routes`. */
FAILOVER_EXPORT std::unique_ptr<Balancer> make_balancer(BalanceStrategy strategy,
                                                        const std::vector<Route>& routes);

}  // namespace failover
