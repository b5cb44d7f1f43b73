// What follows a failed attempt, on its own: what the policy would do, whether the call may
// (the deadline, the retry budget), how long it waits, and a content filter's own rule.

#include "core/retry_state.hpp"
#include "core/call_env.hpp"
#include "core/client_core.hpp"
#include "core/user_code.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace failover {
namespace {

using detail::NextMove;
using detail::RetryState;
using Kind = NextMove::Kind;
using std::chrono::seconds;

// Says what it was told to, and counts how often it was asked.
struct Scripted : RetryPolicy {
  Decision next = Decision::failover();
  std::optional<int> limit;
  int asked = 0;
  Decision decide(const AttemptOutcome&, const CallState&) override {
    ++asked;
    return next;
  }
  std::unique_ptr<RetryPolicy> clone() const override { return std::make_unique<Scripted>(*this); }
  std::optional<int> max_attempts() const override { return limit; }
};

struct RetryStateTest : testing::FakeClientTest {
  ClientOptions options = fake_options({{"a", "http://a.test/v1", "k"}}, {Tier::of("m", {"a"})});
  std::shared_ptr<detail::ClientCore> core;
  std::unique_ptr<RetryState> retries;
  Scripted* policy = nullptr;
  detail::AttemptLease slot;
  CallState state;

  void make(Decision next, std::optional<int> limit = std::nullopt) {
    core = std::make_shared<detail::ClientCore>(options);
    auto p = std::make_unique<Scripted>();
    p->next = next;
    p->limit = limit;
    policy = p.get();
    retries = std::make_unique<RetryState>(core->call_env());
    retries->use(std::move(p));
    state.now = clock->now();
    state.deadline = state.now + seconds(60);
  }
  static AttemptOutcome outcome(ErrorKind kind) {
    AttemptOutcome o;
    o.kind = kind;
    return o;
  }
  ~RetryStateTest() override {
    slot.release();
    if (core) core->shutdown();
  }
};

TEST_F(RetryStateTest, ARetryWaitsItsDelayHoldingABudgetSlot) {
  make(Decision::retry(seconds(2)));
  NextMove m = retries->after(outcome(ErrorKind::ServerError), state, false, slot);
  EXPECT_EQ(m.kind, Kind::Retry);
  EXPECT_EQ(m.delay, seconds(2));
  EXPECT_FALSE(m.budget_denied);
  EXPECT_EQ(policy->asked, 1);
}

TEST_F(RetryStateTest, ARetryPastTheDeadlineEndsTheCall) {
  make(Decision::retry(seconds(61)));
  EXPECT_EQ(retries->after(outcome(ErrorKind::ServerError), state, false, slot).kind,
            Kind::Exhausted);
}

TEST_F(RetryStateTest, ARetryTheBudgetRefusesGivesTheRouteUp) {
  options.retry_budget.ratio = 0;
  options.retry_budget.min_concurrent = 1;
  make(Decision::retry(seconds(1)));
  detail::AttemptLease first;
  EXPECT_EQ(retries->after(outcome(ErrorKind::ServerError), state, false, first).kind, Kind::Retry);
  NextMove m = retries->after(outcome(ErrorKind::ServerError), state, false, slot);
  EXPECT_EQ(m.kind, Kind::Failover);
  EXPECT_TRUE(m.budget_denied);
  first.release();
}

TEST_F(RetryStateTest, WithAnotherAttemptInFlightTheCallWaitsUnlessItFails) {
  make(Decision::failover(/*skip_tier=*/true));
  NextMove m = retries->after(outcome(ErrorKind::ServerError), state, /*in_flight=*/true, slot);
  EXPECT_EQ(m.kind, Kind::Wait);
  EXPECT_TRUE(m.decision.skip_tier);  // what it rules out still applies
  policy->next = Decision::fail();
  EXPECT_EQ(retries->after(outcome(ErrorKind::InvalidRequest), state, true, slot).kind, Kind::Fail);
}

TEST_F(RetryStateTest, AContentFilterIsTheClientsCallNotThePolicys) {
  make(Decision::retry(seconds(1)));
  EXPECT_EQ(retries->after(outcome(ErrorKind::ContentFiltered), state, false, slot).kind,
            Kind::Fail);
  EXPECT_EQ(policy->asked, 0);
  options.content_filter = ContentFilterPolicy::FailOver;
  make(Decision::retry(seconds(1)));
  EXPECT_EQ(retries->after(outcome(ErrorKind::ContentFiltered), state, false, slot).kind,
            Kind::Failover);
}

TEST_F(RetryStateTest, AttemptsAreLeftBelowThePolicysLimit) {
  make(Decision::failover(), 3);
  EXPECT_TRUE(retries->attempts_left(2));
  EXPECT_FALSE(retries->attempts_left(3));
  make(Decision::failover());
  EXPECT_TRUE(retries->attempts_left(1000));
}

// Clones the policy it was made with, or nothing, or throws.
struct Cloning : RetryPolicy {
  enum class Clone { Copy, Null, Throw } how = Clone::Copy;
  Decision decide(const AttemptOutcome&, const CallState&) override { return Decision::fail(); }
  std::unique_ptr<RetryPolicy> clone() const override {
    if (how == Clone::Throw) throw std::runtime_error("no clones today");
    if (how == Clone::Null) return nullptr;
    auto c = std::make_unique<Scripted>();
    c->limit = 3;
    return c;
  }
};

TEST_F(RetryStateTest, TheCallUsesItsOwnCloneAndABadCloneIsAHookError) {
  core = std::make_shared<detail::ClientCore>(options);
  retries = std::make_unique<RetryState>(core->call_env());
  Cloning client_policy;
  retries->use_clone_of(client_policy);
  EXPECT_TRUE(retries->attempts_left(2));
  EXPECT_FALSE(retries->attempts_left(3));  // the clone's limit
  client_policy.how = Cloning::Clone::Null;
  try {
    retries->use_clone_of(client_policy);
    ADD_FAILURE() << "a null clone was taken";
  } catch (const detail::HookError& e) {
    EXPECT_STREQ(e.what(), "the retry policy's clone() returned null");
  }
  client_policy.how = Cloning::Clone::Throw;
  try {
    retries->use_clone_of(client_policy);
    ADD_FAILURE() << "a throwing clone was taken";
  } catch (const detail::HookError& e) {
    EXPECT_NE(std::string(e.what()).find("no clones today"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace failover
