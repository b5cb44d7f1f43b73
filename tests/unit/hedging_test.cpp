// Hedging on a manual clock with a fake transport.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::outcomes;
using testing::ping;
using testing::Strings;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";

struct HedgingTest : testing::FakeClientTest {
  ClientOptions options(Duration delay) {
    ClientOptions o =
        fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{{"a", "m"}, {"b", "m"}}}});
    o.hedging.delay = delay;
    return o;
  }
};

TEST_F(HedgingTest, HedgeFiresAtTheDelayAndTheFirstSuccessWins) {
  fake->sequence(testing::chat_url(kA), {testing::ok("slow a", seconds(3))});
  fake->sequence(testing::chat_url(kB), {testing::ok("fast b", milliseconds(100))});
  Client client(options(milliseconds(500)));
  TimePoint start = clock->now();
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "fast b");
  EXPECT_EQ(clock->now() - start, Duration(milliseconds(600)));
  EXPECT_EQ(outcomes(r->attempts), (Strings{"b:success", "a:cancelled"}));
  EXPECT_EQ(r->attempts[1].message, "lost the hedge race to b/m");
  auto seen = fake->seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].at - seen[0].at, Duration(milliseconds(500)));  // the hedge started at 500 ms
  // The loser counts neither against its breaker nor in its statistics.
  HealthSnapshot h = client.health();
  EXPECT_EQ(h.routes[0].failures, 0u);
  EXPECT_EQ(h.routes[0].in_flight, 0);
  EXPECT_EQ(h.routes[1].in_flight, 0);
  EXPECT_NE(client.metrics_text().find("failover_hedges_total 1"), std::string::npos);
}

TEST_F(HedgingTest, NoHedgeWhenTheFirstAnswersInTime) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a", milliseconds(100))});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client client(options(milliseconds(500)));
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "a");
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(HedgingTest, TheOriginalCanStillWin) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a", milliseconds(700))});
  fake->sequence(testing::chat_url(kB), {testing::ok("b", seconds(2))});
  Client client(options(milliseconds(500)));
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "a");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success", "b:cancelled"}));
}

TEST_F(HedgingTest, AFailureWhileTheOtherIsInFlightWaitsForIt) {
  fake->sequence(testing::chat_url(kA), {testing::status(503, "", {}, milliseconds(700))});
  fake->sequence(testing::chat_url(kB), {testing::ok("b", milliseconds(400))});
  Client client(options(milliseconds(500)));
  TimePoint start = clock->now();
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "b");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
  EXPECT_EQ(clock->now() - start, Duration(milliseconds(900)));
}

TEST_F(HedgingTest, HedgesDrawFromTheRetryBudget) {
  fake->sequence(testing::chat_url(kA), {testing::ok("slow a", seconds(2))});
  fake->sequence(testing::chat_url(kB), {testing::ok("b", milliseconds(10))});
  ClientOptions o = options(milliseconds(500));
  o.retry_budget.ratio = 0;
  o.retry_budget.min_concurrent = 0;
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "slow a");
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(HedgingTest, P95DelayComesFromTheRoutesHistory) {
  // Twenty answers at 100 ms give a p95 of 100 ms; then a slow one is hedged after 100 ms.
  std::vector<testing::Reply> replies(20, testing::ok("a", milliseconds(100)));
  replies.push_back(testing::ok("slow a", seconds(5)));
  fake->sequence(testing::chat_url(kA), replies);
  fake->sequence(testing::chat_url(kB), {testing::ok("b", milliseconds(10))});
  ClientOptions o = options(seconds(10));  // the fixed fallback: far too late to matter
  o.hedging.use_p95 = true;
  Client client(o);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(client.chat(ping())->text(), "a");
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
  TimePoint start = clock->now();
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "b");
  EXPECT_EQ(clock->now() - start, Duration(milliseconds(110)));
}

TEST_F(HedgingTest, StreamsAreNotHedged) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"slow"}, milliseconds(300))});
  fake->sequence(testing::chat_url(kB), {testing::sse({"never"})});
  Client client(options(milliseconds(100)));
  auto r = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "slow");
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(HedgingTest, AsyncCallsHedgeToo) {
  fake->sequence(testing::chat_url(kA), {testing::ok("slow a", seconds(3))});
  fake->sequence(testing::chat_url(kB), {testing::ok("fast b", milliseconds(100))});
  Client client(options(milliseconds(500)));
  auto r = client.chat_async(ping()).get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "fast b");
}

// max_attempts bounds every attempt of a call, hedges included.
TEST_F(HedgingTest, MaxAttemptsBoundsHedges) {
  for (int max : {1, 2}) {
    fake->sequence(testing::chat_url(kA), {testing::ok("slow a", seconds(3))});
    fake->sequence(testing::chat_url(kB), {testing::ok("slow b", seconds(3))});
    ClientOptions o = options(milliseconds(500));
    o.endpoints.push_back({"c", "http://c.test/v1", "sk-c"});
    o.priority[0].routes.push_back({"c", "m"});
    fake->sequence(testing::chat_url("http://c.test/v1"), {testing::ok("slow c", seconds(3))});
    o.hedging.max_extra = 2;
    RetryOptions r;
    r.max_attempts = max;
    o.retry = std::make_shared<DefaultRetryPolicy>(r);
    const std::size_t before = fake->seen().size();
    Client client(o);
    auto result = client.chat(ping());
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(fake->seen().size() - before, static_cast<std::size_t>(max)) << "max " << max;
  }
}

// A failure whose decision rules out its tier, while a hedge is still in flight: the rest of
// the tier stays ruled out for the attempts after the hedge.
TEST_F(HedgingTest, ASkipTierDecisionMadeWhileAHedgeIsInFlightHolds) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(400, "context_length_exceeded", {}, milliseconds(500))});
  fake->sequence(testing::chat_url(kB), {testing::status(401, "", {}, seconds(1))});
  fake->sequence(testing::chat_url("http://c.test/v1"), {testing::ok("c")});
  fake->sequence(testing::chat_url("http://d.test/v1"), {testing::ok("d")});
  ClientOptions o = options(milliseconds(100));
  o.endpoints.push_back({"c", "http://c.test/v1", "sk-c"});
  o.endpoints.push_back({"d", "http://d.test/v1", "sk-d"});
  o.priority = {Tier{{{"a", "m"}, {"b", "m"}, {"c", "m"}}}, Tier{{{"d", "bigger"}}}};
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "d");
  EXPECT_EQ(outcomes(r->attempts),
            (Strings{"a:context_length_exceeded", "b:authentication", "d:success"}));
  EXPECT_EQ(fake->count(testing::chat_url("http://c.test/v1")), 0);
}

// A hedge that lost the race is not charged, even when its answer had arrived at the same
// moment as the winner's: the client does not read a loser's usage.
TEST_F(HedgingTest, ALoserThatCompletedTogetherWithTheWinnerIsNotCharged) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a", milliseconds(600))});
  fake->sequence(testing::chat_url(kB), {testing::ok("b", milliseconds(100))});
  ClientOptions o = options(milliseconds(500));
  o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(fake->seen().size(), 2u);  // both answered at 600 ms
  EXPECT_NEAR(client.usage_report().cost_usd, 7 * 1000.0 / 1e6, 1e-12);  // one answer's 7 tokens
}

}  // namespace
}  // namespace failover
