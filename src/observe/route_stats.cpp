#include "observe/route_stats.hpp"

#include "util/percentile.hpp"

#include <algorithm>

namespace failover::detail {

void Histogram::observe(Duration d) {
  double seconds = std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
  ++counts[i];
  sum_seconds += seconds;
  ++count;
}

void RouteStats::record(TimePoint now, Duration latency, const std::optional<ErrorKind>& error,
                        const std::string& message) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.attempts_by_outcome[error ? std::string(to_string(*error)) : "success"];
  counters_.latency.observe(latency);
  // The caller's choice (a cancellation, a deadline) says nothing of the route.
  if (error == ErrorKind::Cancelled || error == ErrorKind::DeadlineExceeded) return;
  const std::uint8_t failed = error ? 1 : 0;
  if (window_size_ == kWindow) {
    window_failures_ -= window_[window_next_];
  } else {
    ++window_size_;
  }
  window_[window_next_] = failed;
  window_failures_ += failed;
  window_next_ = (window_next_ + 1) % kWindow;
  if (error) {
    ++failures_;
    last_error_ = error;
    last_error_message_ = message;
    last_error_at_ = now;
  } else {
    ++successes_;
    success_latency_total_ += latency;
    latencies_[latency_next_] = latency.count();
    latency_next_ = (latency_next_ + 1) % kLatencies;
    latency_size_ = std::min(latency_size_ + 1, kLatencies);
  }
}

void RouteStats::record_transition(BreakerState from, BreakerState to) {
  if (from == to) return;
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_.transitions[{from, to}];
}

void RouteStats::fill(RouteHealth& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  out.window = window_size_;
  out.success_rate = window_size_ == 0 ? 1.0
                                       : 1.0 - static_cast<double>(window_failures_) /
                                                   static_cast<double>(window_size_);
  out.successes = successes_;
  out.failures = failures_;
  out.last_error = last_error_;
  out.last_error_message = last_error_message_;
  if (last_error_) out.last_error_at = last_error_at_;
  if (latency_size_ > 0) {
    std::vector<Duration::rep> sorted(
        latencies_.begin(), latencies_.begin() + static_cast<std::ptrdiff_t>(latency_size_));
    std::sort(sorted.begin(), sorted.end());
    auto pct = [&](double p) { return Duration(nearest_rank(sorted, p)); };
    out.p50 = pct(0.50);
    out.p95 = pct(0.95);
    out.p99 = pct(0.99);
  }
}

void RouteStats::fill(RouteUsage& out) const {
  RouteHealth h;
  fill(h);
  std::lock_guard<std::mutex> lock(mutex_);
  out.calls = successes_;
  out.failures = failures_;
  const std::uint64_t all = successes_ + failures_;
  out.error_rate = all == 0 ? 0.0 : static_cast<double>(failures_) / static_cast<double>(all);
  out.average_latency = successes_ == 0
                            ? Duration::zero()
                            : success_latency_total_ / static_cast<Duration::rep>(successes_);
  out.p99_latency = h.p99;
}

RouteStats::Counters RouteStats::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

void ClientStats::record_call(std::string_view result, Duration duration) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = calls_.find(result);
  if (it == calls_.end()) it = calls_.emplace(std::string(result), 0).first;
  ++it->second;
  call_latency_.observe(duration);
}

std::map<std::string, std::uint64_t> ClientStats::calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {calls_.begin(), calls_.end()};
}

Histogram ClientStats::call_latency() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return call_latency_;
}

}  // namespace failover::detail
