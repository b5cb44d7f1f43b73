// The time limits of one attempt, to exact values: the route's timeouts, the call's deadline,
// and the time an attempt leaves for a failover.

#include "core/attempt_limits.hpp"
#include "options/resolve.hpp"

#include <gtest/gtest.h>

namespace failover {
namespace {

using detail::attempt_limits;
using detail::AttemptLimits;
using std::chrono::seconds;

TEST(AttemptLimits, TheDefaultsWithTimeToSpare) {
  AttemptLimits l = attempt_limits(Timeouts{}, seconds(900), Duration::zero(), true);
  EXPECT_EQ(l.total, seconds(600));
  EXPECT_EQ(l.first_byte, seconds(600));
  EXPECT_EQ(l.headers, seconds(20));
  EXPECT_EQ(l.connect, seconds(5));
  EXPECT_EQ(l.idle, seconds(60));
  EXPECT_FALSE(l.clipped);
}

TEST(AttemptLimits, TheDeadlineClipsEveryLimit) {
  AttemptLimits l = attempt_limits(Timeouts{}, seconds(3), Duration::zero(), true);
  EXPECT_EQ(l.total, seconds(3));
  EXPECT_EQ(l.first_byte, seconds(3));
  EXPECT_EQ(l.headers, seconds(3));
  EXPECT_EQ(l.connect, seconds(3));
  EXPECT_TRUE(l.clipped);
}

TEST(AttemptLimits, AStreamLeavingTimeForAFailoverWaitsLessForItsFirstContentOnly) {
  AttemptLimits l = attempt_limits(Timeouts{}, seconds(8), seconds(3), true);
  EXPECT_EQ(l.first_byte, seconds(5));
  EXPECT_EQ(l.headers, seconds(5));
  EXPECT_EQ(l.total, seconds(8));  // once it shows life it may use the rest
  EXPECT_TRUE(l.clipped);
}

TEST(AttemptLimits, AnAnswerSentWholeLeavingTimeForAFailoverEndsEarlierAndUnclipped) {
  AttemptLimits l = attempt_limits(Timeouts{}, seconds(8), seconds(3), false);
  EXPECT_EQ(l.total, seconds(5));
  EXPECT_EQ(l.first_byte, seconds(5));
  EXPECT_EQ(l.connect, seconds(5));
  EXPECT_FALSE(l.clipped);  // a timeout there is the route's silence, not the deadline
  Timeouts short_attempt;
  short_attempt.attempt = seconds(2);
  AttemptLimits within = attempt_limits(short_attempt, seconds(8), seconds(3), false);
  EXPECT_EQ(within.total, seconds(2));  // its own limit ends it first: unchanged
  EXPECT_FALSE(within.clipped);
}

TEST(AttemptLimits, ACallsDeadlineIsItsTimeoutOrTheClientsTotalAndItsOwnDeadline) {
  const TimePoint now = TimePoint{} + seconds(10);
  CallOptions call;
  EXPECT_EQ(detail::call_deadline(call, Timeouts{}, now), now + seconds(900));
  call.timeout = seconds(30);
  EXPECT_EQ(detail::call_deadline(call, Timeouts{}, now), now + seconds(30));
  call.deadline = now + seconds(5);
  EXPECT_EQ(detail::call_deadline(call, Timeouts{}, now), now + seconds(5));
  CallOptions forever;
  forever.timeout = std::chrono::hours(24 * 365 * 100);  // a century
  EXPECT_EQ(detail::call_deadline(forever, Timeouts{}, now), now + std::chrono::hours(24 * 365));
}

TEST(AttemptLimits, ACallsOwnOptionsAreCheckedNamingTheField) {
  CallOptions call;
  EXPECT_EQ(detail::check_call_options(call), std::nullopt);
  call.timeout = Duration::zero();
  EXPECT_EQ(detail::check_call_options(call), "CallOptions.timeout must be positive");
  call.timeout.reset();
  call.headers["X-Bad"] = "a\r\nb";
  std::optional<std::string> problem = detail::check_call_options(call);
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("CallOptions.headers"), std::string::npos) << *problem;
}

}  // namespace
}  // namespace failover
