// DefaultCircuitBreaker on a manual clock.

#include <failover/policy/circuit_breaker.hpp>

#include "core/attempt_lease.hpp"
#include "core/client_core.hpp"

#include <gtest/gtest.h>

namespace failover {
namespace {

using std::chrono::seconds;

struct BreakerTest : ::testing::Test {
  DefaultCircuitBreaker breaker;
  TimePoint t{std::chrono::hours(1)};

  void fail(int n, ErrorKind kind = ErrorKind::ServerError) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(breaker.try_acquire(t));
      breaker.on_failure(t, kind);
    }
  }
  void succeed(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(breaker.try_acquire(t));
      breaker.on_success(t, std::chrono::milliseconds(5));
    }
  }
};

TEST_F(BreakerTest, OpensAfterFiveConsecutiveFailures) {
  fail(4);
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);
  fail(1);
  EXPECT_EQ(breaker.state(t), BreakerState::Open);
  EXPECT_FALSE(breaker.try_acquire(t));
  EXPECT_EQ(breaker.reopens_at(t), t + seconds(5));
}

TEST_F(BreakerTest, ASuccessResetsTheConsecutiveCount) {
  fail(4);
  succeed(1);
  fail(4);
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);
}

TEST_F(BreakerTest, OpensAtHalfFailuresOverTheWindowOnceTenCalls) {
  // S F S F ... : never 5 in a row. After 10 calls 5 failures = 50 % -> open.
  for (int i = 0; i < 4; ++i) {
    succeed(1);
    fail(1);
  }
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);  // 8 calls, below min_calls
  succeed(1);
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);  // 9 calls, 4 failures
  fail(1);
  EXPECT_EQ(breaker.state(t), BreakerState::Open);  // 10 calls, 5 failures
}

TEST_F(BreakerTest, WindowForgetsOldCalls) {
  // 9 failures spread among successes, then 20 successes: the window holds only successes.
  for (int i = 0; i < 9; ++i) {
    fail(1);
    succeed(2);
  }
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);  // 9/27 overall, never 50 % of the last 20
  succeed(20);
  fail(4);
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);  // 4/20 = 20 %
}

TEST_F(BreakerTest, HalfOpenAfterFiveSecondsWithOneProbe) {
  fail(5);
  t += seconds(4);
  EXPECT_EQ(breaker.state(t), BreakerState::Open);
  EXPECT_FALSE(breaker.try_acquire(t));
  EXPECT_FALSE(breaker.would_admit(t));
  t += seconds(1);
  EXPECT_TRUE(breaker.would_admit(t));
  EXPECT_EQ(breaker.state(t), BreakerState::HalfOpen);
  EXPECT_TRUE(breaker.try_acquire(t));
  EXPECT_FALSE(breaker.try_acquire(t));  // one probe at a time
  EXPECT_FALSE(breaker.would_admit(t));
  breaker.on_success(t, std::chrono::milliseconds(3));
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);
  EXPECT_TRUE(breaker.try_acquire(t));
}

TEST_F(BreakerTest, ReopenDoublesUpToEightSeconds) {
  fail(5);
  const std::vector<int> periods = {5, 8, 8, 8};
  for (std::size_t i = 0; i < periods.size(); ++i) {
    ASSERT_EQ(breaker.reopens_at(t), t + seconds(periods[i])) << i;
    t += seconds(periods[i]);
    ASSERT_TRUE(breaker.try_acquire(t));
    breaker.on_failure(t, ErrorKind::Timeout);  // the probe fails: open again
    ASSERT_EQ(breaker.state(t), BreakerState::Open);
  }
}

TEST_F(BreakerTest, ClosingResetsTheOpenPeriod) {
  fail(5);
  t += seconds(5);
  ASSERT_TRUE(breaker.try_acquire(t));
  breaker.on_failure(t, ErrorKind::ServerError);  // reopen: 8 s
  t += seconds(8);
  ASSERT_TRUE(breaker.try_acquire(t));
  breaker.on_success(t, {});
  fail(5);
  EXPECT_EQ(breaker.reopens_at(t), t + seconds(5));
}

TEST_F(BreakerTest, APassingActiveProbeEndsTheOpenPeriod) {
  fail(5);
  t += seconds(1);
  breaker.on_probe_success(t);
  EXPECT_EQ(breaker.state(t), BreakerState::HalfOpen);
  EXPECT_TRUE(breaker.try_acquire(t));  // the next call is the probe
  breaker.on_failure(t, ErrorKind::ServerError);
  EXPECT_EQ(breaker.reopens_at(t), t + seconds(8));  // it was not well after all
}

TEST_F(BreakerTest, RateLimitsAndRequestErrorsAreNeutral) {
  fail(10, ErrorKind::RateLimited);
  fail(10, ErrorKind::InvalidRequest);
  fail(10, ErrorKind::Cancelled);
  EXPECT_EQ(breaker.state(t), BreakerState::Closed);
  EXPECT_FALSE(DefaultCircuitBreaker::counts_as_failure(ErrorKind::ContextLengthExceeded));
  EXPECT_TRUE(DefaultCircuitBreaker::counts_as_failure(ErrorKind::Authentication));
}

TEST_F(BreakerTest, NeutralOutcomeReleasesTheHalfOpenProbe) {
  fail(5);
  t += seconds(5);
  ASSERT_TRUE(breaker.try_acquire(t));
  breaker.on_failure(t, ErrorKind::Cancelled);  // e.g. a hedge loser
  EXPECT_EQ(breaker.state(t), BreakerState::HalfOpen);
  EXPECT_TRUE(breaker.try_acquire(t));
}

TEST(BreakerOptions, AreValidatedWithTheFieldName) {
  CircuitBreakerOptions o;
  o.min_calls = 30;
  try {
    DefaultCircuitBreaker b(o);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "circuit_breaker.min_calls must be between 1 and window");
  }
  o = CircuitBreakerOptions{};
  o.failure_rate = 0;
  EXPECT_THROW(DefaultCircuitBreaker::factory(o), std::invalid_argument);
}

// Results of attempts admitted before the breaker opened arrive late, while it is half-open:
// they are stale, and never taken for the probe's result.
struct LateResultTest : ::testing::Test {
  detail::RouteState route;
  TimePoint t{std::chrono::hours(1)};
  LateResultTest() {
    CircuitBreakerOptions o;
    o.consecutive_failures = 1;
    o.open_duration = seconds(5);
    route.breaker = std::make_unique<DefaultCircuitBreaker>(o);
    route.hook_name = "the circuit breaker of a/m";
  }
  detail::AttemptLease admitted(TimePoint at) {
    detail::AttemptLease lease;
    EXPECT_TRUE(route.try_acquire(at));
    lease.hold_breaker(&route);
    return lease;
  }
};

TEST_F(LateResultTest, ACancelledAttemptFromBeforeTheTripFreesNoProbeSlot) {
  detail::AttemptLease early = admitted(t);
  admitted(t).fail(t, ErrorKind::ServerError);  // trips the breaker
  detail::AttemptLease probe = admitted(t + seconds(5));
  early.fail(t + seconds(5), ErrorKind::Cancelled);
  EXPECT_FALSE(route.try_acquire(t + seconds(5)));  // the one slot is still the probe's
  probe.succeed(t + seconds(6), std::chrono::milliseconds(5), std::nullopt);
  EXPECT_EQ(route.breaker_state(t + seconds(6)), BreakerState::Closed);
}

TEST_F(LateResultTest, ALateTimeoutFromBeforeTheTripNeitherReopensNorSpoilsTheProbe) {
  detail::AttemptLease early = admitted(t);
  admitted(t).fail(t, ErrorKind::ServerError);
  detail::AttemptLease probe = admitted(t + seconds(5));
  early.fail(t + seconds(5), ErrorKind::Timeout);
  EXPECT_EQ(route.breaker_state(t + seconds(5)), BreakerState::HalfOpen);
  probe.succeed(t + seconds(6), std::chrono::milliseconds(5), std::nullopt);
  EXPECT_EQ(route.breaker_state(t + seconds(6)), BreakerState::Closed);
}

}  // namespace
}  // namespace failover
