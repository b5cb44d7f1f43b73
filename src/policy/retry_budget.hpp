#pragma once

// The client-wide retry budget (Envoy) and retry throttle (gRPC). Sans-I/O and thread-safe.

#include <failover/error.hpp>
#include <failover/options.hpp>

#include "policy/kinds.hpp"

#include <mutex>

namespace failover::detail {

class RetryBudget {
 public:
  explicit RetryBudget(RetryBudgetOptions options);

  /** A call began / ended (the budget is a share of calls in flight). */
  void call_started();
  void call_finished();
  /** May a retry (or hedge) start now? `true` takes a slot, given back by `release()`. */
  bool try_acquire();
  void release();
  /** Feeds the throttle: a success earns tokens, a transient failure costs one. */
  void on_attempt(const std::optional<ErrorKind>& error);

  int active_calls() const;
  int active_retries() const;
  double tokens() const;

 private:
  RetryBudgetOptions options_;
  mutable std::mutex mutex_;
  int active_calls_ = 0;
  int active_retries_ = 0;
  double tokens_;
};

}  // namespace failover::detail
