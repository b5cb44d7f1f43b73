#pragma once

// The shared state of one (endpoint, model) route: its breaker, cooldown, statistics, usage
// and the fleet's hold on it.

#include <failover/chat.hpp>
#include <failover/health.hpp>
#include <failover/policy/circuit_breaker.hpp>
#include <failover/usage.hpp>

#include "observe/route_stats.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace failover::detail {

class StateSync;

/** Shared state of one (endpoint, model) route. */
struct RouteState {
  RouteRef ref;
  std::string model_json;  // ref.model as a JSON string, as request bodies carry it
  std::string url;         // where its requests go (the dialect's URL for its model)
  std::string stream_url;  // where its streamed requests go
  std::size_t endpoint = 0;
  std::unique_ptr<CircuitBreaker> breaker;
  std::atomic<TimePoint::rep> cooldown_until{TimePoint::min().time_since_epoch().count()};
  RouteStats stats;
  const ModelPrice* price = nullptr;  // from ClientOptions::prices, when the model has one
  std::atomic<std::int64_t> prompt_tokens{0};
  std::atomic<std::int64_t> cached_tokens{0};
  std::atomic<std::int64_t> completion_tokens{0};
  std::atomic<std::int64_t> cost_nanos{0};       // US dollars x 1e9, so totals never drift
  std::atomic<std::uint64_t> skipped_events{0};  // malformed stream events skipped
  /** Adds a served response's usage; returns its cost in nano-dollars when priced. */
  std::optional<std::int64_t> add_usage(const Usage& usage);
  mutable std::mutex probe_mutex;
  std::optional<TimePoint> probe_at;
  bool probe_ok = false;
  std::string probe_message;
  std::atomic<int> in_flight{0};               // attempts on this route in flight now
  std::atomic<Duration::rep> ewma_latency{0};  // of successful attempts; 0 = none yet
  /** Learned: it answered a streamed request whole, or refused to stream. Its requests go
   *  whole from then on (no headers limit: its answer shows no life before its end). */
  std::atomic<bool> answers_whole{false};

  /** Folds a successful attempt's latency into the EWMA (weight 0.2 for the newest). */
  void record_latency(Duration latency);
  /** Keeps the completion tokens of a served answer (the last 64), for budgets' estimates of
   *  requests without an output cap. */
  void record_output(std::int64_t tokens);
  /** The p95 (nearest rank) of the kept completion tokens; empty before any answer. */
  std::optional<std::int64_t> typical_output() const;
  mutable std::mutex outputs_mutex;
  std::array<std::int64_t, 64> outputs{};
  std::size_t outputs_kept = 0;
  std::size_t outputs_next = 0;
  std::atomic<int> last_state{static_cast<int>(BreakerState::Closed)};
  /** Times the breaker was seen to open: an attempt admitted while it was closed whose result
   *  comes after a later opening is stale (see AttemptLease). */
  std::atomic<std::uint64_t> trips{0};
  /** The last active probe's result. */
  void record_probe(TimePoint at, bool ok, std::string message);
  /** Fills the probe fields of `out`. */
  void fill_probe(RouteHealth& out) const;
  /** Records a breaker transition since the last observation. */
  void observe_breaker(TimePoint now);
  /** The breaker's calls, with transitions recorded in `stats`. The breaker may be the
   *  application's: what it throws comes back as a HookError naming it. */
  bool try_acquire(TimePoint now);
  void on_success(TimePoint now, Duration latency);
  void on_failure(TimePoint now, ErrorKind kind);
  BreakerState breaker_state(TimePoint now) const;
  std::optional<TimePoint> reopens_at(TimePoint now) const;
  bool would_admit(TimePoint now) const;
  /** For reports (health, metrics, probes): the breaker's state, or Open when it throws. */
  BreakerState reported_state(TimePoint now) const noexcept;
  std::string hook_name;  // "the circuit breaker of endpoint/model", for HookErrors

  TimePoint cooldown() const {
    return TimePoint{Duration{cooldown_until.load(std::memory_order_relaxed)}};
  }
  /** Extends the cooldown to `until` (never shortens it); the fleet hears of it when
   *  `publish` and state is shared. */
  void cool_down_until(TimePoint until, bool publish = true);

  // Shared state (StateOptions): the fleet's hold, a breaker tripped in another process, keeps
  // the route closed to this process's calls until it ends, whatever the local breaker says.
  StateSync* sync = nullptr;  // null: nothing is shared
  std::size_t index = 0;      // among the client's routes
  std::atomic<TimePoint::rep> held_until{TimePoint::min().time_since_epoch().count()};
  std::atomic<TimePoint::rep> published_open{0};  // the open period last published; 0 = none
  bool held(TimePoint now) const {
    return held_until.load(std::memory_order_relaxed) > now.time_since_epoch().count();
  }
  void hold_until(TimePoint until) {
    held_until.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  }
  /** The fleet closed the route (a probe passed elsewhere): the hold ends, and so does the
   *  local breaker's open period. */
  void release_hold(TimePoint now);
  /** The fleet's window of calls tripped or closed the route (a hold began or ended): the
   *  local default breaker's counts start over, and attempts admitted before the change
   *  no longer speak for the route's probe. */
  void fleet_decided(TimePoint now);
  /** Whether the local breaker itself (the fleet's hold aside) is closed. */
  bool own_breaker_closed(TimePoint now) const;
  /** The end of the local breaker's own open period, when it is open. */
  std::optional<TimePoint> own_open_until(TimePoint now) const;
  /** After a breaker call: a trip or a recovery is published to the fleet. */
  void publish_breaker(TimePoint now);
};

}  // namespace failover::detail
