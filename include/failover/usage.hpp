#pragma once

/** @file usage.hpp  Prices, per-call cost, and the usage report per route and model. */

#include <failover/error.hpp>
#include <failover/time.hpp>

#include <cstdint>
#include <optional>
#include <vector>

namespace failover {

/** What a model costs, in US dollars per million tokens. No price is built in as truth. */
struct ModelPrice {
  double input_per_mtok = 0;                    ///< Prompt tokens.
  std::optional<double> cached_input_per_mtok;  ///< Cached prompt tokens (input price if unset).
  double output_per_mtok = 0;                   ///< Completion tokens (reasoning included).
};

/** Traffic and money of one route since the client started. */
struct RouteUsage {
  RouteRef route;                      ///< The route.
  std::uint64_t calls = 0;             ///< Calls it served (successful attempts).
  std::uint64_t failures = 0;          ///< Its failed attempts (cancellations excluded).
  double error_rate = 0;               ///< failures / (calls + failures).
  std::int64_t prompt_tokens = 0;      ///< Prompt tokens reported by the provider.
  std::int64_t cached_tokens = 0;      ///< ...of which cached.
  std::int64_t completion_tokens = 0;  ///< Completion tokens reported by the provider.
  double cost_usd = 0;                 ///< Cost of those tokens (0 without a price).
  bool priced = false;                 ///< A price is configured for the route's model.
  Duration average_latency{};          ///< Mean latency of its successful attempts.
  Duration p99_latency{};              ///< p99 of its last 256 successful attempts.
};

/** Usage of every route, in priority order, with totals. */
struct UsageReport {
  TimePoint since{};               ///< When the client started counting.
  TimePoint at{};                  ///< When the report was made.
  std::vector<RouteUsage> routes;  ///< One entry per distinct route.
  std::uint64_t calls = 0;         ///< Sum over the routes.
  double cost_usd = 0;             ///< Sum over the routes.
};

}  // namespace failover
