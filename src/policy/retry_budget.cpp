#include "policy/retry_budget.hpp"

#include <algorithm>
#include <cmath>

namespace failover::detail {

namespace {

// Takes one from `n` unless it is already 0 (an unmatched release never drives it negative).
void decrement_to_zero(std::atomic<int>& n) {
  int v = n.load();
  while (v > 0 && !n.compare_exchange_weak(v, v - 1)) {
  }
}

}  // namespace

RetryBudget::RetryBudget(RetryBudgetOptions options)
    : options_(options), tokens_(options.throttle_max_tokens) {}

void RetryBudget::call_started() { ++active_calls_; }

void RetryBudget::call_finished() { decrement_to_zero(active_calls_); }

bool RetryBudget::try_acquire() {
  if (options_.throttle_max_tokens > 0 && tokens_.load() <= options_.throttle_max_tokens / 2) {
    return false;
  }
  double share = std::floor(options_.ratio * active_calls_.load());
  int cap = std::max(options_.min_concurrent, static_cast<int>(share));
  int v = active_retries_.load();
  do {
    if (v >= cap) return false;
  } while (!active_retries_.compare_exchange_weak(v, v + 1));
  return true;
}

void RetryBudget::release() { decrement_to_zero(active_retries_); }

void RetryBudget::on_attempt(const std::optional<ErrorKind>& error) {
  if (options_.throttle_max_tokens <= 0) return;
  if (error && !is_transient(*error)) return;
  double v = tokens_.load();
  double next = 0;
  do {
    next = error ? std::max(0.0, v - 1)
                 : std::min(options_.throttle_max_tokens, v + options_.throttle_token_ratio);
    if (next == v) return;  // full (the usual case) or empty: nothing to write
  } while (!tokens_.compare_exchange_weak(v, next));
}

int RetryBudget::active_calls() const { return active_calls_.load(); }

int RetryBudget::active_retries() const { return active_retries_.load(); }

double RetryBudget::tokens() const { return tokens_.load(); }

}  // namespace failover::detail
