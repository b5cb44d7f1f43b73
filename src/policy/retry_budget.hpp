#pragma once

// The client-wide retry budget (Envoy) and retry throttle (gRPC). Sans-I/O and thread-safe:
// every call touches it, so its counters are atomics rather than a lock.

#include <failover/error.hpp>
#include <failover/options.hpp>

#include "policy/kinds.hpp"

#include <atomic>

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
  std::atomic<int> active_calls_{0};
  std::atomic<int> active_retries_{0};
  std::atomic<double> tokens_;
};

}  // namespace failover::detail
