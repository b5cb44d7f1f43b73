#include "core/retry_state.hpp"

#include "core/call_env.hpp"
#include "core/user_code.hpp"

#include <algorithm>

namespace failover::detail {

void RetryState::use_clone_of(const RetryPolicy& policy) {
  use(invoke_user("the retry policy", [&] { return policy.clone(); }));
  if (!policy_) throw HookError("the retry policy's clone() returned null");
}

bool RetryState::attempts_left(int attempts) const {
  const std::optional<int> limit = policy_->max_attempts();
  return !limit || attempts < *limit;
}

// A content filter is the provider's safety decision: the client's policy, not the retry
// policy, says whether another route may be asked.
Decision RetryState::decide(const AttemptOutcome& outcome, const CallState& state) {
  if (outcome.kind == ErrorKind::ContentFiltered) {
    return env_.options().content_filter == ContentFilterPolicy::FailOver ? Decision::failover()
                                                                          : Decision::fail();
  }
  return invoke_user("the retry policy", [&] { return policy_->decide(outcome, state); });
}

NextMove RetryState::after(const AttemptOutcome& outcome, const CallState& state, bool in_flight,
                           AttemptLease& slot) {
  NextMove m;
  m.decision = decide(outcome, state);
  if (in_flight && m.decision.action != Decision::Action::Fail) {
    m.kind = NextMove::Kind::Wait;  // what the decision ruled out stays ruled out
    return m;
  }
  switch (m.decision.action) {
    case Decision::Action::Retry:
      m.delay = std::max(m.decision.delay, Duration::zero());
      if (state.now + m.delay >= state.deadline) {  // a custom policy may ask for too much
        m.kind = NextMove::Kind::Exhausted;
      } else if (!env_.budget().try_acquire()) {
        m.kind = NextMove::Kind::Failover;  // the route is given up, as for Failover
        m.budget_denied = true;
      } else {
        slot.hold_budget_slot(&env_.budget());
        m.kind = NextMove::Kind::Retry;
      }
      return m;
    case Decision::Action::Failover:
      m.kind = NextMove::Kind::Failover;
      return m;
    case Decision::Action::Fail:
      m.kind = NextMove::Kind::Fail;
      return m;
  }
  return m;
}

}  // namespace failover::detail
