#pragma once

/** @file usage.hpp  Prices, per-call cost, and the usage report per route and model. */

#include <failover/error.hpp>
#include <failover/time.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace failover {

/** What a model costs, in US dollars per million tokens. No price is built in as truth. */
struct ModelPrice {
  double input_per_mtok = 0;                    ///< Prompt tokens.
  std::optional<double> cached_input_per_mtok;  ///< Cached prompt tokens (input price if unset).
  double output_per_mtok = 0;                   ///< Completion tokens (reasoning included).
  /** Prompt tokens written to a cache (`Usage::cache_write_tokens`, Anthropic's
   *  `cache_creation_input_tokens`); 1.25 x the input price if unset, as Anthropic bills its
   *  default five-minute cache (its one-hour cache costs 2 x: say so here). */
  std::optional<double> cache_write_per_mtok;
  /** What a request without an output cap (`max_tokens`) is expected to produce, for spending
   *  budgets' reservations. Unset: the completion tokens observed on the route (a high
   *  percentile of its recent answers), else `BudgetOptions::default_output_tokens`. */
  std::optional<std::int64_t> output_tokens;
};

/** A spending budget crossed 80 % or 100 % of its limit (reported once per period). */
struct BudgetAlert {
  /** Which budget period. */
  enum class Period { Day, Month };
  Period period = Period::Day;  ///< Which budget.
  double threshold = 0;         ///< 0.8 or 1.0.
  double spent_usd = 0;         ///< Spent in the period so far.
  double limit_usd = 0;         ///< The period's limit.
};

/**
 * Spending limits over UTC calendar days and months (from the clock's wall time). Before an
 * attempt on a priced route the call's cost is estimated (prompt characters / 4 plus
 * `max_completion_tokens` or `max_tokens`); a route that would exceed a limit is skipped, so a
 * cheaper or unpriced tier still serves. When only the budget stops a call, it fails with
 * `BudgetExceeded`. Unpriced routes never count against a budget.
 */
struct BudgetOptions {
  std::optional<double> usd_per_day;    ///< Daily limit, if any.
  std::optional<double> usd_per_month;  ///< Monthly limit, if any.
  /** The output reserved for a request without an output cap on a route that has answered
   *  nothing yet and whose model has no `ModelPrice::output_tokens`: conservative, since an
   *  estimate too low lets calls in flight together spend past the budget. */
  std::int64_t default_output_tokens = 4096;
  /** With a shared state store (`StateOptions::store`): while the store cannot be reached,
   *  priced calls are refused with `BudgetExceeded` naming the store, since the fleet's spend
   *  cannot be checked. False (the default): each process spends on what it knows, so N
   *  processes may each spend up to the whole budget during an outage. Rate limits and
   *  breakers always go on without the store. */
  bool fail_closed = false;
  /** Called at 80 % and at 100 % of each limit, once each per period, on the thread whose call
   *  crossed it (the engine thread for asynchronous calls): it must not block. */
  std::function<void(const BudgetAlert&)> on_alert;
};

/** Traffic and money of one route since the client started. */
struct RouteUsage {
  RouteRef route;              ///< The route.
  std::uint64_t calls = 0;     ///< Calls it served (successful attempts).
  std::uint64_t failures = 0;  ///< Its failed attempts (cancellations excluded).
  double error_rate = 0;       ///< failures / (calls + failures).
  /** Prompt tokens reported by the provider (estimated for a stream that broke before it
   *  reported usage: its tokens were spent all the same). */
  std::int64_t prompt_tokens = 0;
  std::int64_t cached_tokens = 0;      ///< ...of which cached.
  std::int64_t completion_tokens = 0;  ///< Completion tokens, likewise.
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
