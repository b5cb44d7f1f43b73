#include "policy/retry_budget.hpp"

#include <algorithm>
#include <cmath>

namespace failover::detail {

RetryBudget::RetryBudget(RetryBudgetOptions options)
    : options_(options), tokens_(options.throttle_max_tokens) {}

void RetryBudget::call_started() {
  std::lock_guard<std::mutex> lock(mutex_);
  ++active_calls_;
}

void RetryBudget::call_finished() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (active_calls_ > 0) --active_calls_;
}

bool RetryBudget::try_acquire() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.throttle_max_tokens > 0 && tokens_ <= options_.throttle_max_tokens / 2) return false;
  double share = std::floor(options_.ratio * active_calls_);
  int cap = std::max(options_.min_concurrent, static_cast<int>(share));
  if (active_retries_ >= cap) return false;
  ++active_retries_;
  return true;
}

void RetryBudget::release() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (active_retries_ > 0) --active_retries_;
}

void RetryBudget::on_attempt(const std::optional<ErrorKind>& error) {
  if (options_.throttle_max_tokens <= 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!error) {
    tokens_ = std::min(options_.throttle_max_tokens, tokens_ + options_.throttle_token_ratio);
  } else if (is_transient(*error)) {
    tokens_ = std::max(0.0, tokens_ - 1);
  }
}

int RetryBudget::active_calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_calls_;
}

int RetryBudget::active_retries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return active_retries_;
}

double RetryBudget::tokens() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tokens_;
}

}  // namespace failover::detail
