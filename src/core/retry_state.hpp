#pragma once

// What follows a failed attempt, kept apart as Envoy keeps them: what the retry policy would
// do (retry, fail over, fail; for a content filter the client's content_filter option says),
// whether the call may (attempts left, the retry budget, the deadline), and how long it waits.

#include "core/attempt_lease.hpp"

#include <failover/policy/retry.hpp>
#include <failover/time.hpp>

#include <memory>
#include <optional>

namespace failover::detail {

class CallEnv;

/** What the call does after a failed attempt. */
struct NextMove {
  enum class Kind {
    Wait,       ///< Another attempt is in flight: wait for it.
    Retry,      ///< The same route after `delay` (a retry-budget slot is held).
    Failover,   ///< The next route.
    Exhausted,  ///< No further attempt fits: the call ends as no route served.
    Fail,       ///< The call ends with this failure.
  };
  Kind kind = Kind::Failover;
  Decision decision;           // the policy's; a Failover's stop and skip_tier apply
  Duration delay{};            // for Retry
  bool budget_denied = false;  // a retry the retry budget refused: the route is given up
};

class RetryState {
 public:
  explicit RetryState(const CallEnv& env) : env_(env) {}
  /** The call's own clone of the client's retry policy, before any attempt. */
  void use(std::unique_ptr<RetryPolicy> policy) { policy_ = std::move(policy); }
  /** `use` a clone of `policy`; throws a HookError when its clone() throws or returns null. */
  void use_clone_of(const RetryPolicy& policy);

  /** Whether a call that made `attempts` may make another (the policy's max_attempts). */
  bool attempts_left(int attempts) const;
  /** What follows `outcome`, the call being as `state` says; `in_flight`: another attempt is.
   *  A retry takes a retry-budget slot into `slot`. May throw a HookError (the policy). */
  NextMove after(const AttemptOutcome& outcome, const CallState& state, bool in_flight,
                 AttemptLease& slot);

 private:
  Decision decide(const AttemptOutcome& outcome, const CallState& state);

  const CallEnv& env_;
  std::unique_ptr<RetryPolicy> policy_;
};

}  // namespace failover::detail
