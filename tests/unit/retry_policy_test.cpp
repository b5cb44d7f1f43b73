// DefaultRetryPolicy: decisions and exact delays with a fixed random source.

#include <failover/policy/retry.hpp>

#include <gtest/gtest.h>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct PolicyTest : ::testing::Test {
  FixedRng half{0.5};
  DefaultRetryPolicy policy;
  TimePoint now{std::chrono::hours(1)};

  // `alternative`: another route can serve, of the same tier (an equivalent route) unless
  // `next_tier_only`.
  CallState state(int attempts, int route_attempts, bool alternative, Duration left = seconds(180),
                  bool next_tier_only = false) {
    CallState s;
    s.attempts = attempts;
    s.route_attempts = route_attempts;
    s.has_alternative = alternative;
    s.tier_alternative = alternative && !next_tier_only;
    s.now = now;
    s.deadline = now + left;
    s.rng = &half;
    return s;
  }
  static AttemptOutcome outcome(ErrorKind kind, int status = 0) {
    AttemptOutcome o;
    o.kind = kind;
    o.http_status = status;
    return o;
  }
};

TEST_F(PolicyTest, TransientFailsOverAtOnceWhenAnEquivalentRouteCanServe) {
  for (ErrorKind k : {ErrorKind::ServerError, ErrorKind::Overloaded, ErrorKind::Timeout,
                      ErrorKind::ConnectFailed, ErrorKind::ConnectionLost, ErrorKind::Tls,
                      ErrorKind::Protocol, ErrorKind::Conflict, ErrorKind::RateLimited}) {
    Decision d = policy.decide(outcome(k), state(1, 1, true));
    EXPECT_EQ(d.action, Decision::Action::Failover) << to_string(k);
    EXPECT_EQ(d.delay, Duration::zero());
  }
}

TEST_F(PolicyTest, TheLastRouteOfATierRetriesOnceBeforeTheNextTier) {
  auto next_tier = [&](int route_attempts) {
    return state(route_attempts, route_attempts, true, seconds(180), /*next_tier_only=*/true);
  };
  // A fast failure: one retry after the backoff (250 ms with the fixed draw), then move on.
  for (ErrorKind k : {ErrorKind::ServerError, ErrorKind::Overloaded, ErrorKind::ConnectionLost,
                      ErrorKind::ConnectFailed, ErrorKind::Protocol}) {
    Decision d = policy.decide(outcome(k), next_tier(1));
    EXPECT_EQ(d.action, Decision::Action::Retry) << to_string(k);
    EXPECT_EQ(d.delay, Duration(milliseconds(250))) << to_string(k);
    EXPECT_EQ(policy.decide(outcome(k), next_tier(2)).action, Decision::Action::Failover);
  }
  // A route that stayed silent cost a whole timeout already: move on at once.
  EXPECT_EQ(policy.decide(outcome(ErrorKind::Timeout), next_tier(1)).action,
            Decision::Action::Failover);
  // A 429 is waited for when its wait is short (2 s by default), Retry-After honoured.
  AttemptOutcome limited = outcome(ErrorKind::RateLimited, 429);
  limited.retry_after = seconds(1);
  Decision one = policy.decide(limited, next_tier(1));
  EXPECT_EQ(one.action, Decision::Action::Retry);
  EXPECT_EQ(one.delay, Duration(seconds(1)));
  limited.retry_after = seconds(2);
  EXPECT_EQ(policy.decide(limited, next_tier(1)).delay, Duration(seconds(2)));
  limited.retry_after = milliseconds(2001);
  EXPECT_EQ(policy.decide(limited, next_tier(1)).action, Decision::Action::Failover);
  limited.retry_after = seconds(30);
  EXPECT_EQ(policy.decide(limited, next_tier(1)).action, Decision::Action::Failover);
  // Route-fatal kinds never wait.
  EXPECT_EQ(policy.decide(outcome(ErrorKind::QuotaExhausted), next_tier(1)).action,
            Decision::Action::Failover);
  // Both knobs.
  RetryOptions o;
  o.retries_before_next_tier = 0;
  EXPECT_EQ(DefaultRetryPolicy(o).decide(outcome(ErrorKind::ServerError), next_tier(1)).action,
            Decision::Action::Failover);
  o = RetryOptions{};
  o.max_wait_before_next_tier = milliseconds(100);
  EXPECT_EQ(DefaultRetryPolicy(o).decide(outcome(ErrorKind::ServerError), next_tier(1)).action,
            Decision::Action::Failover);
}

TEST_F(PolicyTest, SpentAttemptsStopTheCallWhateverRoutesAreLeft) {
  Decision d = policy.decide(outcome(ErrorKind::ServerError), state(6, 1, true));
  EXPECT_EQ(d.action, Decision::Action::Failover);
  EXPECT_TRUE(d.stop);
  EXPECT_EQ(policy.decide(outcome(ErrorKind::InvalidRequest, 400), state(6, 1, true)).action,
            Decision::Action::Fail);
}

TEST_F(PolicyTest, LastRouteRetriesWithExactFullJitterBackoff) {
  // ceiling = 500 ms * 2^(n-1), capped at 8 s; the fixed draw is 0.5.
  const std::vector<Duration> expected = {milliseconds(250),  milliseconds(500),
                                          milliseconds(1000), milliseconds(2000),
                                          milliseconds(4000), milliseconds(4000)};
  for (int n = 1; n <= 6; ++n) {
    Decision d = policy.decide(outcome(ErrorKind::ServerError, 500), state(1, n, false));
    ASSERT_EQ(d.action, Decision::Action::Retry) << n;
    EXPECT_EQ(d.delay, expected[static_cast<std::size_t>(n - 1)]) << n;
  }
  EXPECT_EQ(policy.backoff_ceiling(1), Duration(milliseconds(500)));
  EXPECT_EQ(policy.backoff_ceiling(5), Duration(seconds(8)));
  EXPECT_EQ(policy.backoff_ceiling(40), Duration(seconds(8)));
}

// A cap that is not base x 2^k: the ceiling stops at the cap itself.
TEST_F(PolicyTest, TheBackoffCeilingStopsAtACapThatIsNoPowerOfTwoOfTheBase) {
  RetryOptions o;
  o.base_delay = milliseconds(500);
  o.max_delay = seconds(5);
  DefaultRetryPolicy capped(o);
  EXPECT_EQ(capped.backoff_ceiling(4), Duration(seconds(4)));
  EXPECT_EQ(capped.backoff_ceiling(5), Duration(seconds(5)));  // not 8 s
  EXPECT_EQ(capped.backoff_ceiling(9), Duration(seconds(5)));
  Decision d = capped.decide(outcome(ErrorKind::ServerError, 500), state(1, 5, false));
  ASSERT_EQ(d.action, Decision::Action::Retry);
  EXPECT_EQ(d.delay, Duration(milliseconds(2500)));  // the fixed draw 0.5 of 5 s
}

TEST_F(PolicyTest, AStaleKeptAliveConnectionIsRetriedAtOnceOncePerRoute) {
  AttemptOutcome stale = outcome(ErrorKind::ConnectionLost);
  stale.stale_connection = true;
  Decision d = policy.decide(stale, state(1, 1, true));  // even with another route to go to
  EXPECT_EQ(d.action, Decision::Action::Retry);
  EXPECT_EQ(d.delay, Duration::zero());
  d = policy.decide(stale, state(2, 2, true));  // the second time: a failure like any other
  EXPECT_EQ(d.action, Decision::Action::Failover);
  EXPECT_EQ(policy.decide(stale, state(6, 1, false)).action, Decision::Action::Failover);  // spent
}

TEST_F(PolicyTest, SeededJitterStaysUnderTheCeiling) {
  SeededRng seeded(7);
  for (int n = 1; n <= 10; ++n) {
    CallState s = state(1, n, false);
    s.rng = &seeded;
    Decision d = policy.decide(outcome(ErrorKind::ServerError), s);
    ASSERT_EQ(d.action, Decision::Action::Retry);
    EXPECT_GE(d.delay, Duration::zero());
    EXPECT_LT(d.delay, policy.backoff_ceiling(n));
  }
}

TEST_F(PolicyTest, RetryAfterIsHonouredUpToTheLimit) {
  AttemptOutcome o = outcome(ErrorKind::RateLimited, 429);
  o.retry_after = seconds(3);
  Decision d = policy.decide(o, state(1, 1, false));
  EXPECT_EQ(d.action, Decision::Action::Retry);
  EXPECT_EQ(d.delay, Duration(seconds(3)));
  o.retry_after = milliseconds(10);  // shorter than the backoff: the backoff wins
  EXPECT_EQ(policy.decide(o, state(1, 1, false)).delay, Duration(milliseconds(250)));
  o.retry_after = seconds(61);  // beyond 60 s: the route is cooling down, give it up
  EXPECT_EQ(policy.decide(o, state(1, 1, false)).action, Decision::Action::Failover);
}

TEST_F(PolicyTest, RouteFatalErrorsNeverRetryTheRoute) {
  for (ErrorKind k : {ErrorKind::Authentication, ErrorKind::PermissionDenied, ErrorKind::NotFound,
                      ErrorKind::QuotaExhausted, ErrorKind::ResponseTooLarge}) {
    EXPECT_EQ(policy.decide(outcome(k), state(1, 1, true)).action, Decision::Action::Failover);
    EXPECT_EQ(policy.decide(outcome(k), state(1, 1, false)).action, Decision::Action::Failover);
  }
}

TEST_F(PolicyTest, RedirectIsNeverRetried) {
  EXPECT_EQ(policy.decide(outcome(ErrorKind::Protocol, 302), state(1, 1, false)).action,
            Decision::Action::Failover);
  // A malformed 200 is transient: the last route is retried.
  EXPECT_EQ(policy.decide(outcome(ErrorKind::Protocol, 200), state(1, 1, false)).action,
            Decision::Action::Retry);
}

TEST_F(PolicyTest, ContextLengthSkipsTheTier) {
  Decision d = policy.decide(outcome(ErrorKind::ContextLengthExceeded, 400), state(1, 1, true));
  EXPECT_EQ(d.action, Decision::Action::Failover);
  EXPECT_TRUE(d.skip_tier);
}

TEST_F(PolicyTest, InvalidRequestFailsTheCall) {
  EXPECT_EQ(policy.decide(outcome(ErrorKind::InvalidRequest, 400), state(1, 1, true)).action,
            Decision::Action::Fail);
}

TEST_F(PolicyTest, ContentFilterFailsTheCall) {
  // ClientOptions::content_filter may route around it; the policy alone never does.
  EXPECT_EQ(policy.decide(outcome(ErrorKind::ContentFiltered, 400), state(1, 1, true)).action,
            Decision::Action::Fail);
}

TEST_F(PolicyTest, ShouldRetryHeaderIsObeyed) {
  AttemptOutcome no = outcome(ErrorKind::ServerError, 500);
  no.should_retry = false;
  EXPECT_EQ(policy.decide(no, state(1, 1, false)).action, Decision::Action::Failover);
  AttemptOutcome yes = outcome(ErrorKind::InvalidRequest, 400);
  yes.should_retry = true;
  EXPECT_EQ(policy.decide(yes, state(1, 1, false)).action, Decision::Action::Retry);
}

TEST_F(PolicyTest, MaxAttemptsAndDeadlineStopRetries) {
  EXPECT_EQ(policy.decide(outcome(ErrorKind::ServerError), state(6, 5, false)).action,
            Decision::Action::Failover);
  EXPECT_EQ(policy.decide(outcome(ErrorKind::ServerError), state(5, 5, false)).action,
            Decision::Action::Retry);
  // 250 ms backoff but only 200 ms left.
  EXPECT_EQ(
      policy.decide(outcome(ErrorKind::ServerError), state(1, 1, false, milliseconds(200))).action,
      Decision::Action::Failover);
}

TEST_F(PolicyTest, OptionsAreValidated) {
  RetryOptions bad;
  bad.max_attempts = 0;
  EXPECT_THROW(DefaultRetryPolicy{bad}, std::invalid_argument);
  bad = RetryOptions{};
  bad.max_delay = milliseconds(1);
  try {
    DefaultRetryPolicy p(bad);
    FAIL() << "accepted max_delay < base_delay";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "retry.max_delay must be at least retry.base_delay");
  }
}

TEST_F(PolicyTest, CloneKeepsOptions) {
  RetryOptions o;
  o.max_attempts = 3;
  DefaultRetryPolicy p(o);
  auto copy = p.clone();
  auto* typed = dynamic_cast<DefaultRetryPolicy*>(copy.get());
  ASSERT_NE(typed, nullptr);
  EXPECT_EQ(typed->options().max_attempts, 3);
}

}  // namespace
}  // namespace failover
