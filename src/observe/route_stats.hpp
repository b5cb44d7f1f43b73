#pragma once

// Passive statistics of one route and of the whole client, fed by the call machine.

#include <failover/error.hpp>
#include <failover/health.hpp>
#include <failover/policy/circuit_breaker.hpp>
#include <failover/usage.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace failover::detail {

/** Upper bounds (seconds) of the latency histogram buckets; +Inf is implied. */
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

/** A cumulative latency histogram (Prometheus style). Not synchronised: callers lock. */
struct Histogram {
  std::array<std::uint64_t, kLatencyBuckets.size() + 1> counts{};  // last: +Inf
  double sum_seconds = 0;
  std::uint64_t count = 0;
  void observe(Duration d);
};

class RouteStats {
 public:
  /** An attempt ended; `error` empty on success. */
  void record(TimePoint now, Duration latency, const std::optional<ErrorKind>& error,
              const std::string& message);
  /** The breaker moved from `from` to `to` (observed around breaker calls). */
  void record_transition(BreakerState from, BreakerState to);

  /** Fills the passive fields of `out` (not state, in-flight, EWMA, reopen, cooldown). */
  void fill(RouteHealth& out) const;
  /** Fills calls, failures, error rate and latencies of `out`. */
  void fill(RouteUsage& out) const;

  struct Counters {
    std::map<std::string, std::uint64_t> attempts_by_outcome;
    std::map<std::pair<BreakerState, BreakerState>, std::uint64_t> transitions;
    Histogram latency;
  };
  /** A copy of the counters for exposition. */
  Counters counters() const;

 private:
  static constexpr std::size_t kWindow = 100;
  static constexpr std::size_t kLatencies = 256;

  mutable std::mutex mutex_;
  std::array<std::uint8_t, kWindow> window_{};  // 1 = failure
  std::size_t window_next_ = 0;
  std::size_t window_size_ = 0;
  std::size_t window_failures_ = 0;
  std::array<Duration::rep, kLatencies> latencies_{};
  std::size_t latency_next_ = 0;
  std::size_t latency_size_ = 0;
  std::uint64_t successes_ = 0;
  Duration success_latency_total_{};
  std::uint64_t failures_ = 0;
  std::optional<ErrorKind> last_error_;
  std::string last_error_message_;
  TimePoint last_error_at_{};
  Counters counters_;
};

/** Client-wide counters. */
class ClientStats {
 public:
  void record_call(std::string_view result, Duration duration);
  void record_retry() { retries_.fetch_add(1, std::memory_order_relaxed); }
  void record_hedge() { hedges_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t retries() const { return retries_.load(std::memory_order_relaxed); }
  std::uint64_t hedges() const { return hedges_.load(std::memory_order_relaxed); }
  std::map<std::string, std::uint64_t> calls() const;
  Histogram call_latency() const;
  /** A streamed call that broke after content ended after a recovery: `continued` when the
   *  answer was finished from the partial one, else restarted; `served` when it succeeded. */
  void record_recovery(bool continued, bool served) {
    recoveries_[continued ? 1 : 0][served ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
  }
  /** Recoveries by mode (0 restart, 1 continue) and outcome (0 served, 1 failed). */
  std::uint64_t recoveries(int mode, int outcome) const {
    return recoveries_[mode][outcome].load(std::memory_order_relaxed);
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t, std::less<>> calls_;  // found by string_view
  Histogram call_latency_;
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> hedges_{0};
  std::atomic<std::uint64_t> recoveries_[2][2] = {};
};

}  // namespace failover::detail
