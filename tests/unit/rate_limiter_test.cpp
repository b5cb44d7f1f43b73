// Client-side rate limits on a manual clock: token buckets, reconciliation, headers, threads.

#include "policy/rate_limiter.hpp"
#include "wire/http_headers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace failover {
namespace {

using detail::parse_reset_duration;
using detail::RateLimiter;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ResetDuration, EveryFormAndGarbage) {
  EXPECT_EQ(parse_reset_duration("1s"), Duration(seconds(1)));
  EXPECT_EQ(parse_reset_duration("6m0s"), Duration(std::chrono::minutes(6)));
  EXPECT_EQ(parse_reset_duration("20ms"), Duration(milliseconds(20)));
  EXPECT_EQ(parse_reset_duration("1h2m3s"), Duration(seconds(3723)));
  EXPECT_EQ(parse_reset_duration("0.5s"), Duration(milliseconds(500)));
  EXPECT_EQ(parse_reset_duration("2m30.5s"), Duration(milliseconds(150500)));
  for (const char* bad : {"", "5", "soon", "1x", "s", "-1s", "1s2", "1.2.3s", "99999h"}) {
    EXPECT_FALSE(parse_reset_duration(bad).has_value()) << bad;
  }
}

TEST(RateLimiter, SixtyRpmGivesTheSixtyFirstItsPermitExactlyWhenTheBucketRefills) {
  TimePoint t{std::chrono::hours(1)};
  RateLimiter limiter(RateLimiter::Limits{60.0, std::nullopt, std::nullopt}, t);
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(limiter.try_acquire(t, 0).granted) << i;
    limiter.release(t, 0, std::nullopt);
  }
  RateLimiter::Answer a = limiter.try_acquire(t, 0);
  EXPECT_FALSE(a.granted);
  ASSERT_TRUE(a.retry_at.has_value());
  EXPECT_EQ(*a.retry_at, t + seconds(1));  // 60 per minute: one per second
  EXPECT_FALSE(limiter.try_acquire(t + milliseconds(999), 0).granted);
  EXPECT_TRUE(limiter.try_acquire(t + seconds(1), 0).granted);
}

TEST(RateLimiter, TokensPerMinuteWithReconciliation) {
  TimePoint t{std::chrono::hours(1)};
  RateLimiter limiter(RateLimiter::Limits{std::nullopt, 1200.0, std::nullopt}, t);  // 20/s
  ASSERT_TRUE(limiter.try_acquire(t, 1000).granted);  // estimated 1000
  limiter.release(t, 1000, 400.0);                    // used 400: 600 come back
  EXPECT_TRUE(limiter.try_acquire(t, 800).granted);   // 1200 - 400 = 800 left
  RateLimiter::Answer a = limiter.try_acquire(t, 100);
  EXPECT_FALSE(a.granted);
  EXPECT_EQ(*a.retry_at, t + seconds(5));  // 100 tokens at 20 a second
}

TEST(RateLimiter, ConcurrencyCap) {
  TimePoint t{std::chrono::hours(1)};
  RateLimiter limiter(RateLimiter::Limits{std::nullopt, std::nullopt, 2}, t);
  EXPECT_TRUE(limiter.try_acquire(t, 0).granted);
  EXPECT_TRUE(limiter.try_acquire(t, 0).granted);
  RateLimiter::Answer full = limiter.try_acquire(t, 0);
  EXPECT_FALSE(full.granted);
  EXPECT_FALSE(full.retry_at.has_value());  // only an end frees a slot
  limiter.release(t, 0, std::nullopt);
  EXPECT_TRUE(limiter.try_acquire(t, 0).granted);
}

TEST(RateLimiter, HeadersAtZeroBlockUntilTheReset) {
  TimePoint t{std::chrono::hours(1)};
  RateLimiter limiter(RateLimiter::Limits{1000.0, std::nullopt, std::nullopt}, t);
  limiter.observe(t, WallTime{}, {{"x-ratelimit-remaining-requests", "0"},
                      {"x-ratelimit-reset-requests", "6m0s"},
                      {"x-ratelimit-remaining-tokens", "5000"},
                      {"x-ratelimit-reset-tokens", "20ms"}});
  RateLimiter::Answer a = limiter.try_acquire(t, 0);
  EXPECT_FALSE(a.granted);
  EXPECT_EQ(*a.retry_at, t + std::chrono::minutes(6));
  EXPECT_TRUE(limiter.try_acquire(t + std::chrono::minutes(6), 0).granted);
  limiter.observe(t, WallTime{}, {{"x-ratelimit-remaining-requests", "garbage"},
                      {"x-ratelimit-reset-requests", "1s"}});  // ignored
  EXPECT_TRUE(limiter.try_acquire(t + std::chrono::minutes(6), 0).granted);
}

// Anthropic's headers, and resets given as RFC 3339 times.
TEST(RateLimiter, AnthropicHeadersAndResetTimesBlockUntilTheReset) {
  TimePoint t{std::chrono::hours(1)};
  const WallTime wall = *wire::parse_rfc3339("2030-01-01T00:00:00Z");
  RateLimiter anthropic(RateLimiter::Limits{1000.0, std::nullopt, std::nullopt}, t);
  anthropic.observe(t, wall, {{"anthropic-ratelimit-requests-remaining", "0"},
                              {"anthropic-ratelimit-requests-reset", "2030-01-01T00:00:30Z"}});
  RateLimiter::Answer a = anthropic.try_acquire(t, 0);
  EXPECT_FALSE(a.granted);
  EXPECT_EQ(*a.retry_at, t + seconds(30));
  EXPECT_TRUE(anthropic.try_acquire(t + seconds(30), 0).granted);

  RateLimiter relay(RateLimiter::Limits{1000.0, std::nullopt, std::nullopt}, t);
  relay.observe(t, wall, {{"x-ratelimit-remaining-requests", "0"},
                          {"x-ratelimit-reset-requests", "2030-01-01T01:00:10.5+01:00"}});
  a = relay.try_acquire(t, 0);
  EXPECT_FALSE(a.granted);
  EXPECT_EQ(*a.retry_at, t + milliseconds(10500));

  RateLimiter tokens(RateLimiter::Limits{1000.0, std::nullopt, std::nullopt}, t);
  tokens.observe(t, wall, {{"anthropic-ratelimit-output-tokens-remaining", "0"},
                           {"anthropic-ratelimit-output-tokens-reset", "2030-01-01T00:00:05Z"}});
  EXPECT_FALSE(tokens.try_acquire(t, 0).granted);
  // A reset in the past, or garbage, blocks nothing.
  RateLimiter past(RateLimiter::Limits{1000.0, std::nullopt, std::nullopt}, t);
  past.observe(t, wall, {{"anthropic-ratelimit-requests-remaining", "0"},
                         {"anthropic-ratelimit-requests-reset", "2029-12-31T23:59:00Z"},
                         {"anthropic-ratelimit-tokens-remaining", "0"},
                         {"anthropic-ratelimit-tokens-reset", "soon"}});
  EXPECT_TRUE(past.try_acquire(t, 0).granted);
}

TEST(RateLimiter, ATinyRateWaitsAtMostAYear) {
  TimePoint t{std::chrono::hours(1)};
  RateLimiter limiter(RateLimiter::Limits{1e-12, std::nullopt, std::nullopt}, t);
  limiter.try_acquire(t, 0);  // the bucket starts with a fraction of a request: none granted
  RateLimiter::Answer a = limiter.try_acquire(t, 0);
  ASSERT_FALSE(a.granted);
  ASSERT_TRUE(a.retry_at.has_value());
  EXPECT_LE(*a.retry_at - t, Duration(std::chrono::hours(24 * 365) + seconds(1)));
  EXPECT_GT(*a.retry_at, t);
}

TEST(Rfc3339, FormsAndGarbage) {
  EXPECT_EQ(wire::parse_rfc3339("1970-01-01T00:01:00Z"), WallTime{seconds(60)});
  EXPECT_EQ(wire::parse_rfc3339("1970-01-01t01:01:00+01:00"), WallTime{seconds(60)});
  EXPECT_EQ(wire::parse_rfc3339("1970-01-01T00:00:00-00:30"), WallTime{seconds(1800)});
  EXPECT_EQ(wire::parse_rfc3339("1970-01-01T00:00:01.250Z"), WallTime{milliseconds(1250)});
  for (const char* bad : {"", "2030-01-01", "2030-01-01T00:00:30", "2030-13-01T00:00:00Z",
                          "2030-01-01T25:00:00Z", "2030-01-01T00:00:00+1:00", "x030-01-01T00:00:00Z",
                          "2030-01-01T00:00:00.Z"}) {
    EXPECT_FALSE(wire::parse_rfc3339(bad).has_value()) << bad;
  }
}

TEST(RateLimiter, SixteenThreadsNeverExceedTheLimit) {
  TimePoint t{std::chrono::hours(1)};
  RateLimiter limiter(RateLimiter::Limits{100.0, std::nullopt, std::nullopt}, t);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 50; ++k) {
        if (limiter.try_acquire(t, 0).granted) ++granted;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), 100);
}

}  // namespace
}  // namespace failover

// ---- through the client -------------------------------------------------------------------------

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

namespace failover {
namespace {

using testing::outcomes;

struct LimitedClientTest : testing::FakeClientTest {
  ClientOptions options(bool second_route) {
    ClientOptions o =
        fake_options({{"a", "http://a.test/v1", "sk-a"}, {"b", "http://b.test/v1", "sk-b"}},
                     {Tier{{{"a", "m"}}}});
    o.endpoints[0].limits.rpm = 60;
    if (second_route) o.priority.push_back(Tier{{{"b", "m"}}});
    fake->sequence(testing::chat_url("http://a.test/v1"), {testing::ok("a", Duration::zero())});
    fake->sequence(testing::chat_url("http://b.test/v1"), {testing::ok("b", Duration::zero())});
    return o;
  }
};

TEST_F(LimitedClientTest, WithoutAPermitTheCallFailsOverAtOnce) {
  Client client(options(true));
  for (int i = 0; i < 60; ++i) ASSERT_EQ(client.chat(testing::ping())->served_by.endpoint, "a");
  auto r = client.chat(testing::ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->served_by.endpoint, "b");
  EXPECT_EQ(r->attempts.size(), 1u);  // a was skipped, not tried
  EXPECT_EQ(fake->count(testing::chat_url("http://a.test/v1")), 60);
}

TEST_F(LimitedClientTest, FailFastSaysWhenThePermitIsDue) {
  Client client(options(false));
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(client.chat(testing::ping()));
  TimePoint now = clock->now();
  auto r = client.chat(testing::ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::RateLimited);
  EXPECT_EQ(r.error().available_at(), now + seconds(1));
  EXPECT_EQ(fake->count(testing::chat_url("http://a.test/v1")), 60);
}

TEST_F(LimitedClientTest, WaitForRecoveryWaitsForThePermit) {
  Client client(options(false));
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(client.chat(testing::ping()));
  TimePoint now = clock->now();
  CallOptions call;
  call.when_unavailable = WhenUnavailable::WaitForRecovery;
  auto r = client.chat(testing::ping(), call);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(clock->now(), now + seconds(1));
}

TEST_F(LimitedClientTest, ProviderHeadersCoolTheEndpointBefore429) {
  ClientOptions o = options(true);
  testing::Reply last_one = testing::ok("a", Duration::zero());
  last_one.headers = {{"x-ratelimit-remaining-requests", "0"},
                      {"x-ratelimit-reset-requests", "20s"}};
  fake->sequence(testing::chat_url("http://a.test/v1"), {last_one, testing::ok("a again")});
  Client client(o);
  EXPECT_EQ(client.chat(testing::ping())->served_by.endpoint, "a");
  EXPECT_EQ(client.chat(testing::ping())->served_by.endpoint, "b");  // a waits for its reset
  clock->advance(seconds(20));
  EXPECT_EQ(client.chat(testing::ping())->served_by.endpoint, "a");
}

// A retry whose rate-limit permit is not there yet: waiting for recovery sends it when the
// permit comes; failing fast ends the call at once. Only a retry that is sent is counted.
TEST_F(LimitedClientTest, WaitForRecoverySendsTheRetryWhenItsPermitComes) {
  ClientOptions o = options(false);
  o.endpoints[0].limits.rpm = 1;
  fake->sequence(testing::chat_url("http://a.test/v1"),
                 {testing::status(500, "", {}, milliseconds(10)), testing::ok("a", Duration::zero())});
  Client client(o);
  CallOptions call;
  call.when_unavailable = WhenUnavailable::WaitForRecovery;
  call.timeout = seconds(120);
  const TimePoint start = clock->now();
  auto r = client.chat(testing::ping(), call);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (testing::Strings{"a:server_error", "a:success"}));
  EXPECT_EQ(clock->now() - start, Duration(seconds(60)));  // the second permit of rpm 1
  EXPECT_EQ(fake->count(testing::chat_url("http://a.test/v1")), 2);
  EXPECT_NE(client.metrics_text().find("failover_retries_total 1\n"), std::string::npos);
}

TEST_F(LimitedClientTest, FailFastEndsAtOnceWhenTheRetryHasNoPermitAndCountsNoRetry) {
  ClientOptions o = options(false);
  o.endpoints[0].limits.rpm = 1;
  fake->sequence(testing::chat_url("http://a.test/v1"),
                 {testing::status(500, "", {}, milliseconds(10)), testing::ok("a", Duration::zero())});
  Client client(o);
  auto r = client.chat(testing::ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(fake->count(testing::chat_url("http://a.test/v1")), 1);
  EXPECT_NE(client.metrics_text().find("failover_retries_total 0\n"), std::string::npos);
}

// Without configured limits the client keeps no rate limiter: a provider's remaining: 0 does
// not pace it, and its 429 (with Retry-After) cools the route down instead.
TEST_F(LimitedClientTest, WithoutLimitsProviderHeadersDoNotPace) {
  ClientOptions o = options(true);
  o.endpoints[0].limits = {};
  testing::Reply last_one = testing::ok("a", Duration::zero());
  last_one.headers = {{"anthropic-ratelimit-requests-remaining", "0"},
                      {"anthropic-ratelimit-requests-reset", "2099-01-01T00:00:00Z"}};
  fake->sequence(testing::chat_url("http://a.test/v1"), {last_one, testing::ok("a again")});
  Client client(o);
  EXPECT_EQ(client.chat(testing::ping())->served_by.endpoint, "a");
  EXPECT_EQ(client.chat(testing::ping())->served_by.endpoint, "a");
}

}  // namespace
}  // namespace failover
