#pragma once

/** @file traffic.hpp  Traffic management: shadow mirroring with a comparison report, and canary
 *  roll-outs with automatic rollback. */

#include <failover/chat.hpp>
#include <failover/error.hpp>
#include <failover/export.hpp>
#include <failover/result.hpp>
#include <failover/time.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace failover {

// ---------------------------------------------------------------------------------------------
// Shadow traffic

/** When a shadow comparison recommends the candidate. */
struct ShadowThresholds {
  std::size_t min_pairs = 50;      ///< Fewer compared pairs than this: not enough evidence.
  double min_success_rate = 0.95;  ///< The candidate's success rate over the mirrored calls.
  double min_similarity = 0.80;    ///< Mean similarity over the pairs where both succeeded.
  double max_p95_ratio = 1.5;      ///< Candidate p95 latency / primary p95 latency, at most.
};

/**
 * Scores how alike two successful answers are, from 0 (nothing in common) to 1 (the same).
 * Replaces the built-in token similarity (`token_similarity`) in shadow comparisons; an
 * embedding distance or an LLM judge fits here. A score outside [0, 1] is clamped.
 */
using ShadowComparator = std::function<double(
    const ChatRequest& request, const ChatResponse& primary, const ChatResponse& candidate)>;

/**
 * Shadow traffic: a sampled fraction of calls is sent again, in the background, to a
 * candidate route, and each pair of answers is compared. A mirror never touches the caller's
 * call: it starts after the call has ended, runs on the engine thread with its own time limit,
 * makes exactly one attempt, and its failures are only counted in the report. It is real
 * traffic for everything else: the candidate's breaker, statistics, rate limits, cost and
 * budget see it. Off while `candidate` is empty or `sample` is zero.
 */
struct ShadowOptions {
  std::optional<RouteRef> candidate;  ///< The route to mirror to (its endpoint must exist).
  double sample = 0;                  ///< Fraction of calls mirrored, in [0, 1].
  /** Mirrors waiting or in flight at most; a sampled call beyond that is dropped (counted). */
  std::size_t queue = 64;
  /** Time limit of one mirror; empty = `Timeouts::total`. */
  std::optional<Duration> timeout;
  ShadowThresholds thresholds;   ///< For the report's recommendation.
  ShadowComparator comparator;   ///< Empty = `token_similarity` of the texts.
  std::size_t worst_pairs = 10;  ///< The least similar pairs kept for the report.
};

/** The comparison of one request's two answers. */
struct ShadowPair {
  std::string prompt;                        ///< The request's last user message.
  bool primary_ok = false;                   ///< The primary call succeeded.
  bool candidate_ok = false;                 ///< The candidate's attempt succeeded.
  std::optional<ErrorKind> primary_error;    ///< Why the primary failed, if it did.
  std::optional<ErrorKind> candidate_error;  ///< Why the candidate failed, if it did (the
                                             ///< last attempt's error when there was one).
  Duration primary_latency{};                ///< The primary call, start to end.
  Duration candidate_latency{};              ///< The candidate's attempt, start to end.
  // The fields below are meaningful only when both succeeded.
  bool exact_match = false;                  ///< The texts are equal once normalised.
  double similarity = 0;                     ///< From the comparator (or token similarity), 0..1.
  bool finish_reason_match = false;          ///< Same finish_reason.
  bool tool_names_match = false;             ///< Same tool names called, in the same order.
  std::string primary_text;                  ///< The primary's answer.
  std::string candidate_text;                ///< The candidate's answer.
  std::string primary_finish_reason;         ///< The primary's finish_reason.
  std::string candidate_finish_reason;       ///< The candidate's finish_reason.
  std::optional<double> candidate_cost_usd;  ///< The mirror's cost, when priced.
};

/** Lower-cases ASCII letters, trims, and collapses every run of white space into one space. */
FAILOVER_EXPORT std::string normalize_text(std::string_view text);

/**
 * Token-level similarity: the texts are split into lower-cased words (letters, digits and any
 * non-ASCII byte; punctuation is dropped) and scored as the F1 of their multisets, 2 * common
 * / (|a| + |b|). Two empty texts score 1.
 */
FAILOVER_EXPORT double token_similarity(std::string_view a, std::string_view b);

/** Compares two results of `request`: success on each side, latencies, and for two answers
 *  the normalised exact match, similarity (by `comparator` when set), finish_reason and tool
 *  names. */
FAILOVER_EXPORT ShadowPair compare_results(const ChatRequest& request,
                                           const Result<ChatResponse>& primary,
                                           Duration primary_latency,
                                           const Result<ChatResponse>& candidate,
                                           Duration candidate_latency,
                                           const ShadowComparator& comparator = {});

/** Latency percentiles (nearest rank) of one side. */
struct LatencySummary {
  std::size_t count = 0;  ///< Latencies summarised (successful calls only).
  Duration p50{};         ///< Median.
  Duration p95{};         ///< 95th percentile.
  Duration p99{};         ///< 99th percentile.
  Duration mean{};        ///< Arithmetic mean.
};

/** Whether the candidate may take traffic. */
enum class ShadowVerdict {
  Ready,        ///< Every threshold holds.
  NeedsTuning,  ///< At least one does not (see `ShadowReport::reasons`).
};

/** snake_case-free label of a verdict: `READY` or `NEEDS_TUNING`. */
FAILOVER_EXPORT std::string_view to_string(ShadowVerdict verdict) noexcept;

/** What shadow traffic found so far. */
struct ShadowReport {
  RouteRef candidate;                 ///< The candidate route (empty in offline analyses).
  std::uint64_t sampled = 0;          ///< Calls chosen for mirroring.
  std::uint64_t dropped = 0;          ///< ...dropped because the queue was full.
  std::uint64_t skipped = 0;          ///< ...that never reached the candidate (its breaker open,
                                      ///< no rate-limit permit, budget).
  std::uint64_t pairs = 0;            ///< Pairs compared.
  std::uint64_t primary_ok = 0;       ///< Pairs whose primary succeeded.
  std::uint64_t candidate_ok = 0;     ///< Pairs whose candidate succeeded.
  std::uint64_t both_ok = 0;          ///< Pairs where both succeeded.
  double primary_success_rate = 0;    ///< primary_ok / pairs.
  double candidate_success_rate = 0;  ///< candidate_ok / pairs.
  LatencySummary primary_latency;     ///< Successful primary calls.
  LatencySummary candidate_latency;   ///< Successful candidate attempts.
  /** Mean of candidate minus primary latency over the pairs where both succeeded. */
  Duration mean_latency_diff{};
  double mean_similarity = 0;           ///< Over the pairs where both succeeded.
  double exact_match_rate = 0;          ///< Over the pairs where both succeeded.
  double finish_reason_match_rate = 0;  ///< Over the pairs where both succeeded.
  double tool_names_match_rate = 0;     ///< Over the pairs where both succeeded.
  double candidate_cost_usd = 0;        ///< What the mirrors cost (priced models only).
  ShadowVerdict recommendation = ShadowVerdict::NeedsTuning;  ///< From the thresholds.
  std::vector<std::string> reasons;  ///< Each threshold that failed, in words.
  ShadowThresholds thresholds;       ///< The thresholds applied.
  /** Successful latencies of each side (the most recent ones, at most the analyser's
   *  capacity), for distribution charts. */
  std::vector<Duration> primary_latencies;
  std::vector<Duration> candidate_latencies;  ///< See `primary_latencies`.
  /** The least similar pairs where both succeeded, worst first, then pairs where the candidate
   *  alone failed. */
  std::vector<ShadowPair> worst;
};

/**
 * Accumulates compared pairs and writes the report. Thread-safe. Used by the client for live
 * shadow traffic and by `failover shadow` for offline replays; usable on its own to score any
 * two sets of answers.
 */
class FAILOVER_EXPORT ShadowAnalyzer {
 public:
  /** Keeps the latest `max_latencies` latencies per side and the `worst_pairs` worst pairs. */
  explicit ShadowAnalyzer(ShadowThresholds thresholds = {}, std::size_t worst_pairs = 10,
                          std::size_t max_latencies = 20000);
  ~ShadowAnalyzer();
  ShadowAnalyzer(const ShadowAnalyzer&) = delete;
  ShadowAnalyzer& operator=(const ShadowAnalyzer&) = delete;

  /** Adds one compared pair. */
  void add(ShadowPair pair);
  /** Counts a call chosen for mirroring (whatever became of its mirror). */
  void count_sampled();
  /** Counts a sampled call dropped because the queue was full. */
  void count_dropped();
  /** Counts a sampled call whose mirror never reached the candidate. */
  void count_skipped();
  /** The report as of now. */
  ShadowReport report() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ---------------------------------------------------------------------------------------------
// Canary roll-out

/** When a canary rolls back. Each rate is over the current step's window. */
struct CanaryRollback {
  double error_rate = 0.05;                ///< Roll back when errors / calls exceed this.
  Duration p99 = std::chrono::seconds(5);  ///< ...or the p99 latency of successes exceeds this.
  double min_success_rate = 0.95;          ///< ...or successes / calls falls below this.
  /** Calls a step needs before it may advance. Before that many, a threshold counts as crossed
   *  only when it would be crossed whatever the rest of those calls bring (three errors in a
   *  row at 5 % of 50 already are), so a broken candidate rolls back at once. */
  std::size_t min_calls = 50;
};

/** What a canary is doing. */
enum class CanaryState {
  Running,     ///< Serving its step's share; advances when the step has held.
  Paused,      ///< Serving its step's share; not advancing (rollback still armed).
  RolledBack,  ///< Serving nothing after a rollback (automatic or manual).
  Drained,     ///< Serving nothing by request, without a verdict.
  Completed,   ///< Promoted: serves every call, no longer judged.
};

/** snake_case name of a canary state. */
FAILOVER_EXPORT std::string_view to_string(CanaryState state) noexcept;

/** Counts of the current step's window. */
struct CanaryWindow {
  std::uint64_t calls = 0;      ///< Attempts on the candidate that count (see below).
  std::uint64_t successes = 0;  ///< ...that succeeded.
  std::uint64_t errors = 0;     ///< ...that failed by the candidate's fault (5xx, timeouts,
                                ///< connection and protocol failures, auth, not found).
  std::uint64_t slow = 0;       ///< Successes slower than the rollback's p99 limit.
  double error_rate = 0;        ///< errors / calls (0 without calls).
  double success_rate = 1;      ///< successes / calls (1 without calls).
  Duration p99{};               ///< p99 of the window's recent successes (up to 1024).
};

/** The canary's state as of now (`Client::canary`, `HealthSnapshot::canary`). */
struct CanaryStatus {
  RouteRef candidate;                        ///< The candidate route.
  CanaryState state = CanaryState::Running;  ///< What it is doing.
  double percent = 0;                        ///< Share of calls sent to the candidate now.
  std::size_t step = 0;                      ///< Index into the steps.
  std::vector<double> steps;                 ///< The configured steps, in percent.
  TimePoint step_started{};                  ///< When the current step began.
  CanaryWindow window;                       ///< The current step's window.
  int in_flight = 0;                         ///< Attempts on the candidate in flight now.
  std::uint64_t rollbacks = 0;               ///< Rollbacks so far.
  std::string reason;                        ///< Why the last rollback, drain or pause happened.
};

/** An automatic rollback, handed to `CanaryOptions::on_rollback`. */
struct CanaryAlert {
  RouteRef candidate;    ///< The candidate route.
  double percent = 0;    ///< The share it served when it was rolled back.
  std::size_t step = 0;  ///< The step it was at.
  std::string reason;    ///< The threshold crossed, with the figures.
  CanaryWindow window;   ///< The window that crossed it.
  TimePoint at{};        ///< When.
};

/**
 * A canary roll-out: a share of calls tries the candidate route first (sticky per
 * `CallOptions::user` by hashing; calls without a user are drawn at random), with the priority
 * list behind it, so a failing candidate costs a failover, not an error. The share climbs
 * through `steps`; a step advances when it has held for `step` with at least
 * `rollback.min_calls` calls and every threshold holds. When a threshold is crossed the canary
 * rolls back to 0 %, logs at error level and calls `on_rollback` once. The state shows in
 * `Client::health()` and the metrics; `Client::canary_pause`, `canary_resume`,
 * `canary_promote`, `canary_rollback` and `canary_drain` steer it by hand. Off while
 * `candidate` is empty. The candidate may also be in the priority list: other calls keep using
 * it there, and a canary call tries it once, first; only canary calls' attempts are judged.
 */
struct CanaryOptions {
  std::optional<RouteRef> candidate;                 ///< The route being rolled out.
  std::vector<double> steps = {5, 10, 25, 50, 100};  ///< Shares in percent, increasing.
  Duration step = std::chrono::minutes(10);          ///< How long each step must hold.
  CanaryRollback rollback;                           ///< Rollback thresholds.
  /** Called once per automatic rollback, on the thread whose call crossed the threshold (the
   *  engine thread for asynchronous calls): it must not block. */
  std::function<void(const CanaryAlert&)> on_rollback;
};

}  // namespace failover
