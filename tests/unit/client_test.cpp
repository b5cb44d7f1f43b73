// The call state machine through Client, on a fake transport and a manual clock.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <failover/format.hpp>
#include <failover/json.hpp>

#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <future>
#include <sstream>

namespace failover {
namespace {

using testing::outcomes;
using testing::ping;
using testing::Strings;

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Reply;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";
const std::string kC = "http://c.test/v1";

struct ClientTest : testing::FakeClientTest {
  ClientOptions options(std::vector<Tier> priority) {
    return fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}, {"c", kC, "sk-c"}},
                        std::move(priority));
  }
  ClientOptions two_routes() { return options({Tier{{{"a", "m"}, {"b", "m"}}}}); }
};

TEST_F(ClientTest, HealthyFirstRouteServes) {
  fake->sequence(testing::chat_url(kA), {testing::ok("pong")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "pong");
  EXPECT_EQ(r->served_by.endpoint, "a");
  EXPECT_EQ(r->served_by.model, "m");
  ASSERT_EQ(r->attempts.size(), 1u);
  EXPECT_EQ(r->attempts[0].status, 200);
  EXPECT_EQ(r->attempts[0].latency, Duration(milliseconds(10)));
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(ClientTest, A404WithoutAMessageNamesTheURLAndHintsAtTheBasePath) {
  testing::Reply missing;
  missing.status = 404;
  missing.body = "404 page not found";
  testing::Reply empty;
  empty.status = 404;
  fake->sequence(testing::chat_url(kA), {missing, empty});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(r->attempts[0].message,
            "HTTP 404 from http://a.test/v1/chat/completions (404 page not found): is the "
            "endpoint's base_url the API's base path (such as https://host/v1)?");
  r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->attempts[0].message,
            "HTTP 404 from http://a.test/v1/chat/completions, with no error message: is the "
            "endpoint's base_url the API's base path (such as https://host/v1)?");
}

TEST_F(ClientTest, RoutesPassedOverBeforeAnyTrafficAreInTheTraceWithWhyAndUntilWhen) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(429, "rate_limit_exceeded", {{"retry-after", "30"}})});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client client(two_routes());
  auto first = client.chat(ping());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(first->skipped.empty());  // a was tried, not passed over
  const TimePoint cooled_until = clock->now() - milliseconds(10) + seconds(30);
  clock->advance(seconds(2));
  auto second = client.chat(ping());
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(outcomes(second->attempts), (Strings{"b:success"}));
  ASSERT_EQ(second->skipped.size(), 1u);
  const SkippedRoute& s = second->skipped[0];
  EXPECT_EQ(s.route, (RouteRef{"a", "m"}));
  EXPECT_EQ(s.reason, SkipReason::CoolingDown);
  EXPECT_EQ(to_string(s.reason), "cooling_down");
  ASSERT_TRUE(s.until);
  EXPECT_EQ(*s.until, cooled_until);
  EXPECT_EQ(s.message, "cooling down after a rate limit for 27980 ms");
  // A failed call carries them too.
  fake->sequence(testing::chat_url(kB), {testing::status(401)});
  auto third = client.chat(ping());
  ASSERT_FALSE(third);
  ASSERT_EQ(third.error().skipped().size(), 1u);
  EXPECT_EQ(third.error().skipped()[0].reason, SkipReason::CoolingDown);
}

TEST_F(ClientTest, ResultsPrintAsTextThroughStreamsAndFmtAndConvertToJson) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client client(options({Tier::of("m", {"a", "b"})}));  // a tier without triple braces
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(describe(*r),
            "served by b/m after 2 attempts\n"
            "  a/m: overloaded (HTTP 503) in 10 ms: scripted 503\n"
            "  b/m: success (HTTP 200) in 10 ms");
  EXPECT_EQ(fmt::format("{}", r->attempts[0]), "a/m: overloaded (HTTP 503) in 10 ms: scripted 503");
  nlohmann::json j = *r;
  EXPECT_EQ(j["served_by"]["endpoint"], "b");
  EXPECT_EQ(j["attempts"][0]["outcome"], "overloaded");
  EXPECT_EQ(j["attempts"][0]["status"], 503);
  EXPECT_EQ(j["attempts"][1]["latency_ms"], 10.0);
  EXPECT_EQ(j["text"], "b");
  fake->sequence(testing::chat_url(kB), {testing::status(401)});
  auto failed = client.chat(ping());
  ASSERT_FALSE(failed);
  std::ostringstream text;
  text << failed.error();
  EXPECT_EQ(text.str().rfind("all_routes_unavailable: all routes failed after 2 attempts:", 0), 0u)
      << text.str();
  EXPECT_NE(text.str().find("\n  b/m: authentication (HTTP 401) in 10 ms"), std::string::npos)
      << text.str();
  nlohmann::json e = failed.error();
  EXPECT_EQ(e["kind"], "all_routes_unavailable");
  EXPECT_EQ(e["attempts"].size(), 2u);
}

TEST_F(ClientTest, RequestCarriesModelKeyAndAttemptHeader) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("pong")});
  Client client(options({Tier{{{"a", "model-a"}, {"b", "model-b"}}}}));
  ASSERT_TRUE(client.chat(ping()));
  auto seen = fake->seen();
  ASSERT_EQ(seen.size(), 2u);
  auto header = [](const HttpRequest& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return std::string("<none>");
  };
  EXPECT_EQ(header(seen[0].request, "Authorization"), "Bearer sk-a");
  EXPECT_EQ(header(seen[1].request, "Authorization"), "Bearer sk-b");
  EXPECT_EQ(header(seen[0].request, "X-Failover-Attempt"), "1");
  EXPECT_EQ(header(seen[1].request, "X-Failover-Attempt"), "2");
  EXPECT_NE(seen[0].request.body.find("\"model\":\"model-a\""), std::string::npos);
  EXPECT_NE(seen[1].request.body.find("\"model\":\"model-b\""), std::string::npos);
}

TEST_F(ClientTest, ServerErrorFailsOverToTheNextRouteAtOnce) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("from b")});
  Client client(two_routes());
  TimePoint start = clock->now();
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "from b");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
  EXPECT_EQ(r->attempts[0].status, 503);
  EXPECT_EQ(r->attempts[0].delay, Duration::zero());
  EXPECT_EQ(clock->now() - start, Duration(milliseconds(20)));  // no backoff before failover
}

TEST_F(ClientTest, RateLimitCoolsTheRouteDownAndFailsOver) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(429, "rate_limit_exceeded", {{"retry-after", "5"}})});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client client(two_routes());
  auto first = client.chat(ping());
  ASSERT_TRUE(first);
  EXPECT_EQ(outcomes(first->attempts), (Strings{"a:rate_limited", "b:success"}));
  // During the cooldown the next call goes straight to b.
  clock->advance(seconds(2));
  auto second = client.chat(ping());
  ASSERT_TRUE(second);
  EXPECT_EQ(outcomes(second->attempts), (Strings{"b:success"}));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
  // After it, a is tried again (and still says 429).
  clock->advance(seconds(4));
  auto third = client.chat(ping());
  ASSERT_TRUE(third);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 2);
}

TEST_F(ClientTest, LastRouteRateLimitedWaitsForRetryAfter) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(429, "", {{"retry-after-ms", "1500"}}), testing::ok("late")});
  Client client(options({Tier{{{"a", "m"}}}}));
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:rate_limited", "a:success"}));
  EXPECT_EQ(r->attempts[0].delay, Duration(milliseconds(1500)));
  auto seen = fake->seen();
  EXPECT_EQ(seen[1].at - seen[0].at, Duration(milliseconds(1510)));
}

TEST_F(ClientTest, InsufficientQuotaIsNeverRetriedInTheCall) {
  fake->sequence(testing::chat_url(kA), {testing::status(429, "insufficient_quota")});
  fake->sequence(testing::chat_url(kB), {testing::status(500)});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  // b, the last option, is retried up to 6 attempts in all; a never again.
  EXPECT_EQ(outcomes(r.error().attempts()),
            (Strings{"a:quota_exhausted", "b:server_error", "b:server_error", "b:server_error",
                     "b:server_error", "b:server_error"}));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
}

TEST_F(ClientTest, AuthenticationFailsOverAndIsNeverRetried) {
  fake->sequence(testing::chat_url(kA), {testing::status(401, "invalid_api_key")});
  fake->sequence(testing::chat_url(kB), {testing::status(401, "invalid_api_key")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"a:authentication", "b:authentication"}));
  EXPECT_EQ(r.error().http_status(), 401);
  EXPECT_NE(r.error().message().find("a/m: authentication (HTTP 401)"), std::string::npos)
      << r.error().message();
}

TEST_F(ClientTest, BadRequestFailsTheCallWithNoFurtherAttempt) {
  fake->sequence(testing::chat_url(kA), {testing::status(400, "invalid_value")});
  fake->sequence(testing::chat_url(kB), {testing::ok("never")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_EQ(r.error().http_status(), 400);
  EXPECT_EQ(r.error().provider_code(), "invalid_value");
  EXPECT_EQ(r.error().message(), "a/m: scripted 400");
  EXPECT_EQ(r.error().attempts().size(), 1u);
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(ClientTest, ContextLengthSkipsToTheNextTier) {
  fake->sequence(testing::chat_url(kA), {testing::status(400, "context_length_exceeded")});
  fake->sequence(testing::chat_url(kB), {testing::ok("never")});
  fake->sequence(testing::chat_url(kC), {testing::ok("big model")});
  Client client(options({Tier{{{"a", "small"}, {"b", "small"}}}, Tier{{{"c", "large"}}}}));
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:context_length_exceeded", "c:success"}));
}

TEST_F(ClientTest, EveryRouteDownGivesAllRoutesUnavailableWithTheFullTrace) {
  fake->sequence(testing::chat_url(kA), {testing::failure(ErrorKind::ConnectFailed)});
  fake->sequence(testing::chat_url(kB), {testing::status(503)});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  const Error& e = r.error();
  EXPECT_EQ(e.kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(outcomes(e.attempts()), (Strings{"a:connect_failed", "b:overloaded", "b:overloaded",
                                             "b:overloaded", "b:overloaded", "b:overloaded"}));
  // Backoff before each retry of b: 250, 500, 1000, 2000 ms (fixed draw 0.5).
  std::vector<Duration> delays;
  for (const Attempt& a : e.attempts()) delays.push_back(a.delay);
  EXPECT_EQ(delays,
            (std::vector<Duration>{Duration::zero(), milliseconds(250), milliseconds(500),
                                   milliseconds(1000), milliseconds(2000), Duration::zero()}));
}

TEST_F(ClientTest, OpenBreakersMakeTheCallFailFastWithTheReopenTime) {
  fake->sequence(testing::chat_url(kA), {testing::status(500)});
  ClientOptions o = options({Tier{{{"a", "m"}}}});
  RetryOptions once;
  once.max_attempts = 1;
  o.retry = std::make_shared<DefaultRetryPolicy>(once);
  Client client(o);
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(client.chat(ping()));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 5);
  TimePoint opened = clock->now();
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_TRUE(r.error().attempts().empty());
  ASSERT_TRUE(r.error().available_at().has_value());
  EXPECT_EQ(*r.error().available_at(), opened + seconds(5));
  EXPECT_EQ(r.error().message(), "no route is available: a/m: circuit open for 5000 ms");
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 5);
  // After 5 s one probe goes through and, answering well, closes the breaker.
  fake->sequence(testing::chat_url(kA), {testing::ok("back")});
  clock->advance(seconds(5));
  EXPECT_TRUE(client.chat(ping()));
}

TEST_F(ClientTest, TheDeadlineIsNeverExceeded) {
  // Every attempt takes 400 ms and fails; a 1 s call budget.
  fake->sequence(testing::chat_url(kA), {testing::status(500, "", {}, milliseconds(400))});
  Client client(options({Tier{{{"a", "m"}}}}));
  CallOptions call;
  call.timeout = seconds(1);
  TimePoint start = clock->now();
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_LE(clock->now() - start, Duration(seconds(1)));
  // 400 ms + 250 ms wait + 400 ms would end past 1 s: clipped attempt times out at the deadline.
  EXPECT_EQ(r.error().kind(), ErrorKind::DeadlineExceeded);
  EXPECT_EQ(clock->now() - start, Duration(seconds(1)));
}

TEST_F(ClientTest, AFirstByteTimeoutOfACutAttemptFailsOverWhileTimeRemains) {
  // The attempt's limit is cut to the call's 20 s; the first route stays silent past the 1 s
  // first-byte limit of a stream: that is the route's failure, not the deadline's.
  testing::Reply silent;
  silent.parts = {{seconds(60), testing::sse_role()}};
  silent.end = testing::Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {silent});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  ClientOptions o = two_routes();
  o.timeouts.first_byte = seconds(1);
  o.timeouts.total = seconds(20);
  Client client(o);
  TimePoint start = clock->now();
  auto r = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
  EXPECT_EQ(clock->now() - start, Duration(seconds(1) + milliseconds(30)));
  EXPECT_EQ(client.health().routes[0].failures, 1u);  // it counts against the silent route
}

TEST_F(ClientTest, ALongAnswerSentWholeIsNotCutByTheFirstByteLimit) {
  fake->sequence(testing::chat_url(kA), {testing::ok("long answer", seconds(3))});
  ClientOptions o = two_routes();
  o.endpoints[0].streaming = false;  // its answer shows no life before its end
  o.timeouts.first_byte = seconds(2);
  o.timeouts.attempt = seconds(10);
  o.timeouts.total = seconds(20);
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  EXPECT_EQ(fake->seen()[0].request.first_byte_timeout, Duration::zero());
  EXPECT_EQ(fake->seen()[0].request.total_timeout, Duration(seconds(10)));
}

TEST_F(ClientTest, ATimeoutTheDeadlineCausedIsNeutralForTheRoute) {
  // The route shows life (its stream opened), then takes longer than the call may.
  testing::Reply slow;
  slow.parts = {{milliseconds(10), testing::sse_role()},
                {seconds(5), testing::sse_content("too late")}};
  fake->sequence(testing::chat_url(kA), {slow});
  Client client(options({Tier{{{"a", "m"}}}}));  // no other route: the deadline ends it
  CallOptions call;
  call.timeout = seconds(1);
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::DeadlineExceeded);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"a:deadline_exceeded"}));
  HealthSnapshot h = client.health();
  EXPECT_EQ(h.routes[0].failures, 0u);
  EXPECT_DOUBLE_EQ(h.routes[0].success_rate, 1.0);
  EXPECT_EQ(h.routes[0].state, BreakerState::Closed);
  for (int i = 0; i < 6; ++i) ASSERT_FALSE(client.chat(ping(), call));
  EXPECT_EQ(client.health().routes[0].state, BreakerState::Closed);  // never opened by it
}

TEST_F(ClientTest, TiersAndRoutesMayHaveTheirOwnTimeLimits) {
  fake->sequence(testing::chat_url(kA), {testing::status(500)});
  fake->sequence(testing::chat_url(kB), {testing::status(500)});
  fake->sequence(testing::chat_url(kC), {testing::ok("c")});
  Tier fast{{{"a", "m"}, {"b", "m"}}};
  fast.timeouts.attempt = seconds(20);
  fast.timeouts.connect = seconds(2);
  fast.routes[1].timeouts.attempt = seconds(7);
  ClientOptions o = options({fast, Tier{{{"c", "big"}}}});
  Client client(o);
  ASSERT_TRUE(client.chat(ping()));
  auto seen = fake->seen();
  ASSERT_EQ(seen.size(), 4u);  // a, b, b again (the last of its tier), c
  EXPECT_EQ(seen[0].request.total_timeout, Duration(seconds(20)));   // the tier's
  EXPECT_EQ(seen[0].request.connect_timeout, Duration(seconds(2)));  // the tier's
  EXPECT_EQ(seen[1].request.total_timeout, Duration(seconds(7)));    // the route's
  EXPECT_EQ(seen[1].request.connect_timeout, Duration(seconds(2)));  // the tier's
  EXPECT_EQ(seen[2].request.total_timeout, Duration(seconds(7)));
  EXPECT_EQ(seen[3].request.total_timeout, Duration(seconds(600)));  // the client's default
  EXPECT_EQ(seen[3].request.connect_timeout, Duration(seconds(5)));
  Tier bad{{{"a", "m"}}};
  bad.routes[0].timeouts.idle = Duration::zero();
  try {
    Client invalid(options({bad}));
    ADD_FAILURE() << "a zero idle limit was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "priority[0].routes[0].timeouts.idle must be positive");
  }
}

TEST_F(ClientTest, AShortRateLimitIsWaitedForBeforeMovingToTheNextTier) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(429, "rate_limit_exceeded", {{"retry-after", "1"}}),
                  testing::ok("from the model asked for")});
  fake->sequence(testing::chat_url(kB), {testing::ok("a weaker model")});
  Client client(options({Tier{{{"a", "big"}}}, Tier{{{"b", "small"}}}}));
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "from the model asked for");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:rate_limited", "a:success"}));
  EXPECT_EQ(r->attempts[0].delay, Duration(seconds(1)));
  auto seen = fake->seen();
  EXPECT_EQ(seen[1].at - seen[0].at, Duration(seconds(1) + milliseconds(10)));
}

TEST_F(ClientTest, AFastServerErrorIsRetriedOnceBeforeMovingToTheNextTier) {
  fake->sequence(testing::chat_url(kA), {testing::status(500), testing::ok("big")});
  fake->sequence(testing::chat_url(kB), {testing::ok("small")});
  Client client(options({Tier{{{"a", "big"}}}, Tier{{{"b", "small"}}}}));
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:server_error", "a:success"}));
  EXPECT_EQ(r->attempts[0].delay, Duration(milliseconds(250)));  // the backoff, draw 0.5
  // A second failure of the same route moves on.
  fake->sequence(testing::chat_url(kA), {testing::status(500)});
  auto again = client.chat(ping());
  ASSERT_TRUE(again);
  EXPECT_EQ(outcomes(again->attempts), (Strings{"a:server_error", "a:server_error", "b:success"}));
}

TEST_F(ClientTest, ALongRateLimitOrASilentRouteMovesToTheNextTierAtOnce) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(429, "rate_limit_exceeded", {{"retry-after", "30"}})});
  fake->sequence(testing::chat_url(kB), {testing::ok("small")});
  Client client(options({Tier{{{"a", "big"}}}, Tier{{{"b", "small"}}}}));
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:rate_limited", "b:success"}));
  EXPECT_EQ(r->attempts[0].delay, Duration::zero());
  ClientOptions o = options({Tier{{{"c", "big"}}}, Tier{{{"b", "small"}}}});
  o.timeouts.attempt = seconds(2);
  fake->sequence(testing::chat_url(kC), {testing::ok("too slow", seconds(5))});
  Client silent(o);
  auto s = silent.chat(ping());
  ASSERT_TRUE(s);
  EXPECT_EQ(outcomes(s->attempts), (Strings{"c:timeout", "b:success"}));
}

TEST_F(ClientTest, MaxAttemptsCountsEveryAttemptOfTheCall) {
  std::vector<Endpoint> endpoints;
  Tier tier;
  for (int i = 0; i < 10; ++i) {
    const std::string name = "r" + std::to_string(i);
    endpoints.push_back({name, "http://" + name + ".test/v1", "sk"});
    tier.routes.push_back({name, "m"});
    fake->sequence(testing::chat_url("http://" + name + ".test/v1"), {testing::status(500)});
  }
  Client client(fake_options(endpoints, {tier}));
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(r.error().attempts().size(), 6u);
  EXPECT_NE(r.error().message().find("(the call's 6 attempts are spent)"), std::string::npos)
      << r.error().message();
}

TEST_F(ClientTest, ARouteWithoutAPermitIsNoAlternative) {
  // b, a's equal in tier 1, has spent its one request a minute: a is the last route of its tier
  // that can serve, and its fast failure is retried before the next tier.
  std::vector<Endpoint> endpoints = {{"a", kA, "sk-a"}, {"b", kB, "sk-b"}, {"c", kC, "sk-c"}};
  endpoints[1].limits.rpm = 1;
  fake->sequence(testing::chat_url(kA),
                 {testing::status(500), testing::status(500), testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  fake->sequence(testing::chat_url(kC), {testing::ok("c")});
  Client client(fake_options(endpoints, {Tier{{{"a", "m"}, {"b", "m"}}}, Tier{{{"c", "n"}}}}));
  auto first = client.chat(ping());
  ASSERT_TRUE(first);
  EXPECT_EQ(outcomes(first->attempts), (Strings{"a:server_error", "b:success"}));
  auto second = client.chat(ping());
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(outcomes(second->attempts), (Strings{"a:server_error", "a:success"}));
}

TEST_F(ClientTest, APrimaryBackFromAnOutageServesAgainWithinTenSeconds) {
  // The primary answers 503 for 20 s, then well; one call a second for 40 s.
  const TimePoint start = clock->now();
  fake->on(testing::chat_url(kA), [&](const HttpRequest&) {
    return clock->now() - start < seconds(20) ? testing::status(503) : testing::ok("primary");
  });
  fake->sequence(testing::chat_url(kB), {testing::ok("backup")});
  Client client(options({Tier{{{"a", "big"}}}, Tier{{{"b", "small"}}}}));
  std::optional<Duration> back;  // when the primary served again
  int primary_attempts_while_down = 0;
  for (int second = 0; second < 40; ++second) {
    clock->advance_to(start + seconds(second));
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << "at " << second << " s: " << r.error().message();
    for (const Attempt& a : r->attempts) {
      if (a.route.endpoint == "a" && a.error) ++primary_attempts_while_down;
    }
    if (!back && r->served_by.endpoint == "a" && second >= 20) back = seconds(second);
  }
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, Duration(seconds(26)));  // 6 s after recovering (at most 8 s + a call's gap)
  // While down, it saw the calls that opened its breaker and then one probe per open period.
  EXPECT_LE(primary_attempts_while_down, 10);
}

TEST_F(ClientTest, SlowAttemptIsCutAtTheAttemptTimeoutAndFailsOver) {
  fake->sequence(testing::chat_url(kA), {testing::ok("slow", seconds(10))});
  fake->sequence(testing::chat_url(kB), {testing::ok("fast")});
  ClientOptions o = two_routes();
  o.timeouts.attempt = seconds(2);
  Client client(o);
  TimePoint start = clock->now();
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
  EXPECT_EQ(r->attempts[0].latency, Duration(seconds(2)));
  EXPECT_EQ(clock->now() - start, Duration(seconds(2) + milliseconds(10)));
}

TEST_F(ClientTest, MalformedSuccessIsAProtocolErrorAndFailsOver) {
  Reply bad;
  bad.body = "{\"choices\": [ not json";
  fake->sequence(testing::chat_url(kA), {bad});
  fake->sequence(testing::chat_url(kB), {testing::ok("good")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:protocol", "b:success"}));
  EXPECT_EQ(r->attempts[0].status, 200);
}

TEST_F(ClientTest, ErrorObjectInsideA200IsClassified) {
  Reply in_band;
  in_band.body = R"({"error":{"message":"relay overloaded","code":"503"}})";
  fake->sequence(testing::chat_url(kA), {in_band});
  fake->sequence(testing::chat_url(kB), {testing::ok("good")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
}

Reply body_reply(int status, std::string body) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST_F(ClientTest, AnErrorChoiceInsideA200FailsOver) {
  fake->sequence(
      testing::chat_url(kA),
      {body_reply(200, R"({"choices":[{"message":{"content":""},"finish_reason":"error"}]})")});
  fake->sequence(testing::chat_url(kB), {testing::ok("good")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:server_error", "b:success"}));
  EXPECT_EQ(r->attempts[0].message, "the provider ended the answer with finish_reason \"error\"");
}

TEST_F(ClientTest, DeadAccountsBadKeysAndMissingModelsSentAs4xxFailOver) {
  const std::vector<std::pair<Reply, std::string>> cases = {
      {body_reply(402, R"({"error":{"message":"Insufficient Balance","type":"unknown_error"}})"),
       "a:quota_exhausted"},
      {body_reply(
           400,
           R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the API."}})"),
       "a:quota_exhausted"},
      {body_reply(
           400,
           R"({"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}})"),
       "a:authentication"},
      {body_reply(400,
                  R"({"error":{"message":"Unable to access model","code":"model_not_available"}})"),
       "a:not_found"},
      {body_reply(403, R"({"error":{"code":403,"message":"This account has no credits"}})"),
       "a:quota_exhausted"},
  };
  for (const auto& [reply, first] : cases) {
    fake->sequence(testing::chat_url(kA), {reply});
    fake->sequence(testing::chat_url(kB), {testing::ok("good")});
    Client client(two_routes());
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << reply.body << ": " << r.error().message();
    EXPECT_EQ(outcomes(r->attempts), (Strings{first, "b:success"})) << reply.body;
  }
}

TEST_F(ClientTest, AContentFilterFailsTheCallUnlessFailoverIsChosen) {
  const Reply filtered = body_reply(
      403,
      R"({"error":{"code":403,"message":"Request blocked: prompt injection patterns detected"}})");
  fake->sequence(testing::chat_url(kA), {filtered});
  fake->sequence(testing::chat_url(kB), {testing::ok("elsewhere")});
  {
    Client client(two_routes());
    auto r = client.chat(ping());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::ContentFiltered);
    EXPECT_EQ(r.error().message(), "a/m: Request blocked: prompt injection patterns detected");
    EXPECT_EQ(r.error().http_status(), 403);
    EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
  }
  ClientOptions o = two_routes();
  o.content_filter = ContentFilterPolicy::FailOver;
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:content_filtered", "b:success"}));
}

TEST_F(ClientTest, AFilteredAnswerIsReturnedAndFlaggedNotRetried) {
  fake->sequence(
      testing::chat_url(kA),
      {body_reply(200,
                  R"({"choices":[{"message":{"content":""},"finish_reason":"content_filter"}]})")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->content_filtered());
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(ClientTest, UnsupportedParameterFailsTheCallWithNoSecondAttempt) {
  fake->sequence(
      testing::chat_url(kA),
      {body_reply(
          400,
          R"({"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})")});
  fake->sequence(testing::chat_url(kB), {testing::ok("never")});
  Client client(two_routes());
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_EQ(r.error().param(), "max_tokens");
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(ClientTest, InvalidRequestFailsBeforeAnyTraffic) {
  Client client(two_routes());
  ChatRequest empty;
  auto r = client.chat(empty);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_EQ(r.error().message(), "invalid request: messages is empty");
  CallOptions bad_header;
  bad_header.headers["X-Evil"] = "a\r\nHost: elsewhere";
  auto h = client.chat(ping(), bad_header);
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_EQ(h.error().message(),
            "CallOptions.headers[X-Evil] contains CR, LF or other control characters");
  EXPECT_TRUE(fake->seen().empty());
  EXPECT_THROW((void)r.value(), Error);
}

TEST_F(ClientTest, ModelsOptionRestrictsAndOrdersRoutes) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kC), {testing::ok("c")});
  Client client(options({Tier{{{"a", "gpt"}}}, Tier{{{"c", "claude"}}}}));
  CallOptions call;
  call.models = {"claude"};
  auto r = client.chat(ping(), call);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->served_by.model, "claude");
  call.models = {"unknown"};
  auto none = client.chat(ping(), call);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind(), ErrorKind::InvalidRequest);
}

// A user-defined policy: retry the same route exactly once after 42 ms, then fail.
class RetryOnceThenFail final : public RetryPolicy {
 public:
  Decision decide(const AttemptOutcome&, const CallState& state) override {
    return state.route_attempts == 1 ? Decision::retry(milliseconds(42)) : Decision::fail();
  }
  std::unique_ptr<RetryPolicy> clone() const override {
    return std::make_unique<RetryOnceThenFail>();
  }
};

TEST_F(ClientTest, UserDefinedRetryPolicyIsObeyed) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("never")});
  ClientOptions o = two_routes();
  o.retry = std::make_shared<RetryOnceThenFail>();
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Overloaded);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"a:overloaded", "a:overloaded"}));
  EXPECT_EQ(r.error().attempts()[0].delay, Duration(milliseconds(42)));
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

// A user-defined breaker that refuses route "a" outright and counts what it is told.
class DenyBreaker final : public CircuitBreaker {
 public:
  explicit DenyBreaker(bool deny, std::shared_ptr<int> successes)
      : deny_(deny), successes_(std::move(successes)) {}
  bool try_acquire(TimePoint) override { return !deny_; }
  void on_success(TimePoint, Duration) override { ++*successes_; }
  void on_failure(TimePoint, ErrorKind) override {}
  BreakerState state(TimePoint) const override {
    return deny_ ? BreakerState::Open : BreakerState::Closed;
  }

 private:
  bool deny_;
  std::shared_ptr<int> successes_;
};

TEST_F(ClientTest, UserDefinedCircuitBreakerIsObeyed) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  auto successes = std::make_shared<int>(0);
  ClientOptions o = two_routes();
  o.circuit_breaker = [successes](const RouteRef& route) {
    return std::make_unique<DenyBreaker>(route.endpoint == "a", successes);
  };
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->served_by.endpoint, "b");
  EXPECT_EQ(*successes, 1);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 0);
}

TEST_F(ClientTest, CancelledTokenEndsTheCall) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(two_routes());
  CancellationSource source;
  source.cancel();
  CallOptions call;
  call.cancel = source.token();
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  EXPECT_TRUE(fake->seen().empty());
}

TEST_F(ClientTest, AsyncCallsRunTheSameMachine) {
  fake->sequence(testing::chat_url(kA), {testing::status(502)});
  fake->sequence(testing::chat_url(kB), {testing::ok("async b")});
  Client client(two_routes());
  auto future = client.chat_async(ping());
  auto r = future.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "async b");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:server_error", "b:success"}));
}

TEST_F(ClientTest, AttemptLinesAreLoggedWithoutKeys) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  std::ostringstream out;
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  logger->set_level(spdlog::level::trace);
  ClientOptions o = two_routes();
  o.logger = logger;
  Client client(o);
  ASSERT_TRUE(client.chat(ping()));
  logger->flush();
  std::string log = out.str();
  EXPECT_NE(log.find("attempt 1 route=a/m outcome=overloaded status=503 latency_ms=10.000 "
                     "next_delay_ms=0.000"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("attempt 2 route=b/m outcome=success status=200"), std::string::npos) << log;
  EXPECT_EQ(log.find("sk-a"), std::string::npos);
  EXPECT_EQ(log.find("sk-b"), std::string::npos);
}

// ---- options validation ----------------------------------------------------------------------

std::string construction_error(ClientOptions o) {
  try {
    Client c(std::move(o));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<accepted>";
}

TEST_F(ClientTest, InvalidOptionsNameTheField) {
  ClientOptions o = two_routes();
  o.endpoints.clear();
  EXPECT_EQ(construction_error(o), "endpoints is empty: at least one endpoint is required");
  o = two_routes();
  o.endpoints[1].name = "a";
  EXPECT_EQ(construction_error(o), "endpoints[1].name \"a\" is a duplicate");
  o = two_routes();
  o.endpoints[0].base_url = "ftp://x";
  EXPECT_EQ(construction_error(o),
            "endpoints[0].base_url must start with http:// or https:// (got \"ftp://x\")");
  o = two_routes();
  o.endpoints[2].api_key = "sk-secret\r\nX-Injected: 1";
  EXPECT_EQ(construction_error(o),
            "endpoints[2].api_key contains control characters (the key is not shown)");
  o = two_routes();
  o.priority = {Tier{{{"a", "m"}, {"zzz", "m"}}}};
  EXPECT_EQ(construction_error(o),
            "priority[0].routes[1].endpoint \"zzz\" is not a defined endpoint");
  o = two_routes();
  o.priority = {Tier{{{"a", "m"}, {"b", "gpt-\xff"}}}};  // every request body carries it
  EXPECT_EQ(construction_error(o), "priority[0].routes[1].model is not valid UTF-8");
  o = two_routes();
  o.priority = {Tier{}};
  EXPECT_EQ(construction_error(o), "priority[0].routes is empty");
  o = two_routes();
  o.timeouts.connect = Duration::zero();
  EXPECT_EQ(construction_error(o), "timeouts.connect must be positive");
  o = two_routes();
  o.endpoints[0].headers["Bad Name"] = "x";
  EXPECT_EQ(construction_error(o), "endpoints[0].headers has an invalid header name \"Bad Name\"");
}

TEST_F(ClientTest, KeysAreTrimmed) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  ClientOptions o = two_routes();
  o.endpoints[0].api_key = "  sk-padded\n";
  Client client(o);
  ASSERT_TRUE(client.chat(ping()));
  bool found = false;
  const auto seen = fake->seen();
  for (const auto& [k, v] : seen[0].request.headers) {
    if (k == "Authorization") found = v == "Bearer sk-padded";
  }
  EXPECT_TRUE(found);
}

TEST_F(ClientTest, AzureStyleKeyAndQuery) {
  ClientOptions o = two_routes();
  o.endpoints[0].auth = AuthStyle::ApiKey;
  o.endpoints[0].query = {{"api-version", "2024-10-21"}};
  fake->sequence(testing::chat_url(kA) + "?api-version=2024-10-21", {testing::ok("azure")});
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "azure");
  bool api_key = false, bearer = false;
  const auto seen = fake->seen();
  for (const auto& [k, v] : seen[0].request.headers) {
    api_key = api_key || (k == "api-key" && v == "sk-a");
    bearer = bearer || k == "Authorization";
  }
  EXPECT_TRUE(api_key);
  EXPECT_FALSE(bearer);
}

// ---- issue 38: the tests that would catch subtle planted bugs --------------------------------

// Concurrent calls on a half-open route: exactly one of them is its probe. The calls are
// submitted from one callback on the engine thread, so the engine admits them all in one
// turn, before any of them can end.
TEST_F(ClientTest, ConcurrentCallsOnAHalfOpenRouteSendExactlyOneProbe) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(500), testing::status(500), testing::status(500),
                  testing::status(500), testing::status(500), testing::ok("a", seconds(1))});
  fake->on(testing::chat_url(kB), [](const HttpRequest&) { return testing::ok("b"); });
  ClientOptions o = options({Tier{{{"a", "m"}}}, Tier{{{"b", "m2"}}}});
  RetryOptions once;
  once.max_attempts = 1;
  o.retry = std::make_shared<DefaultRetryPolicy>(once);
  Client client(o);
  for (int i = 0; i < 5; ++i)
    ASSERT_FALSE(client.chat(ping(), [] {
      CallOptions only_a;
      only_a.models = {"m"};
      return only_a;
    }()));
  ASSERT_EQ(client.health().routes[0].state, BreakerState::Open);
  clock->advance(seconds(5));  // half-open: one probe slot
  constexpr int kCalls = 8;
  std::vector<std::promise<Result<ChatResponse>>> done(kCalls);
  CallOptions only_b;
  only_b.models = {"m2"};  // the callback's own call never asks a
  client.chat_async(ping(), only_b, [&](Result<ChatResponse>) {
    for (int i = 0; i < kCalls; ++i) {
      client.chat_async(ping(), {}, [&done, i](Result<ChatResponse> r) {
        done[static_cast<std::size_t>(i)].set_value(std::move(r));
      });
    }
  });
  int on_a = 0;
  for (auto& d : done) {
    auto r = d.get_future().get();
    ASSERT_TRUE(r) << r.error().message();
    on_a += r->served_by.endpoint == "a" ? 1 : 0;
  }
  EXPECT_EQ(on_a, 1);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 6);  // five failures, one probe
}

// The backoff cap bites in a call: base 500 ms, cap 5 s, the fixed draw 0.5.
TEST_F(ClientTest, ACallWaitsAtTheCappedBackoff) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(500), testing::status(500), testing::status(500),
                  testing::status(500), testing::status(500), testing::ok("a")});
  ClientOptions o = options({Tier{{{"a", "m"}}}});
  RetryOptions r;
  r.base_delay = milliseconds(500);
  r.max_delay = seconds(5);
  o.retry = std::make_shared<DefaultRetryPolicy>(r);
  CircuitBreakerOptions patient;
  patient.consecutive_failures = 10;
  o.circuit_breaker = DefaultCircuitBreaker::factory(patient);
  Client client(o);
  const TimePoint start = clock->now();
  auto result = client.chat(ping());
  ASSERT_TRUE(result) << result.error().message();
  ASSERT_EQ(result->attempts.size(), 6u);
  EXPECT_EQ(result->attempts[3].delay, Duration(milliseconds(2000)));
  EXPECT_EQ(result->attempts[4].delay, Duration(milliseconds(2500)));  // 0.5 x the 5 s cap
  // 250 + 500 + 1000 + 2000 + 2500 ms of waits, and six attempts of 10 ms.
  EXPECT_EQ(clock->now() - start, Duration(milliseconds(6310)));
}

// A reservation settled at a lower cost gives its room back to the budget, with the fleet's
// memory store as without a store.
TEST_F(ClientTest, ASettledReservationGivesItsRoomBackWithTheMemoryStore) {
  testing::Reply cheap = testing::ok("a");  // usage: 5 prompt, 2 completion tokens
  fake->on(testing::chat_url(kA), [cheap](const HttpRequest&) { return cheap; });
  for (bool shared : {false, true}) {
    ClientOptions o = options({Tier{{{"a", "m"}}}});
    o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};  // 7 tokens: $0.007
    o.budget.usd_per_day = 0.025;
    o.token_estimator = [](const ChatRequest&) { return std::int64_t{15}; };  // $0.015
    if (shared) {
      o.state.store = make_memory_store();
      o.state.sync_interval = milliseconds(5);
    }
    Client client(o);
    // Each reservation is $0.015; the room of the first must come back for the second.
    ASSERT_TRUE(client.chat(ping())) << shared;
    ASSERT_TRUE(testing::eventually([&] { return client.chat(ping()).ok(); })) << shared;
    EXPECT_NEAR(client.usage_report().cost_usd, 0.014, 1e-12) << shared;
    // $0.014 spent: a third $0.015 reservation does not fit.
    auto third = client.chat(ping());
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error().kind(), ErrorKind::BudgetExceeded);
  }
}

// A 429 rests the route; it is not the route failing: repeated 429s leave the breaker closed,
// and the route serves again once its cooldown ends.
TEST_F(ClientTest, RepeatedRateLimitsLeaveTheBreakerClosed) {
  std::vector<testing::Reply> replies;
  for (int i = 0; i < 7; ++i) replies.push_back(testing::status(429, "", {{"retry-after", "2"}}));
  replies.push_back(testing::ok("a"));
  fake->sequence(testing::chat_url(kA), replies);
  fake->on(testing::chat_url(kB), [](const HttpRequest&) { return testing::ok("b"); });
  Client client(two_routes());
  for (int i = 0; i < 7; ++i) {
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(outcomes(r->attempts), (Strings{"a:rate_limited", "b:success"})) << i;
    EXPECT_EQ(client.health().routes[0].state, BreakerState::Closed) << i;
    clock->advance(seconds(2));  // the cooldown ends
  }
  auto back = client.chat(ping());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->served_by.endpoint, "a");
}

// ---- issue 27: time left for failover -------------------------------------------------------

// Only the call's deadline set: a silent first route leaves the second time to answer.
TEST_F(ClientTest, ASilentRouteLeavesTheNextRouteTimeWithinTheDeadline) {
  fake->sequence(testing::chat_url(kA), {testing::ok("too late", seconds(60))});
  fake->sequence(testing::chat_url(kB), {testing::ok("b", milliseconds(100))});
  ClientOptions o = two_routes();
  o.timeouts.total = seconds(8);
  Client client(o);
  const TimePoint start = clock->now();
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "b");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
  EXPECT_EQ(r->attempts[0].latency, Duration(seconds(4)));  // half of what remained
  EXPECT_EQ(clock->now() - start, Duration(seconds(4) + milliseconds(100)));
  // Next time the second route's latency is known: the first gets all but twice it (at least
  // a second).
  fake->sequence(testing::chat_url(kA), {testing::ok("too late", seconds(60))});
  auto again = client.chat(ping());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(again->attempts[0].latency, Duration(seconds(7)));
}

// A streamed attempt keeps the whole remaining time once it shows life; only its wait for the
// first content leaves the next route time.
TEST_F(ClientTest, AStreamThatShowsLifeKeepsTheRemainingTime) {
  // Content at 3 s (within the 4 s the first content may take), the answer whole at 7.5 s.
  fake->sequence(testing::chat_url(kA),
                 {testing::sse({"slow", "but", "alive"}, milliseconds(1500))});
  ClientOptions o = two_routes();
  o.timeouts.total = seconds(8);
  Client client(o);
  auto r = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "slowbutalive");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
}

// A stream that says nothing until the deadline ends it is evidence against its route: a hung
// route opens like a failing one.
TEST_F(ClientTest, ASilentStreamEndedByTheDeadlineCountsAgainstItsRoute) {
  testing::Reply silent;
  silent.parts = {{seconds(3600), ""}};
  silent.end = testing::Reply::End::Hang;
  fake->on(testing::chat_url(kA), [silent](const HttpRequest&) { return silent; });
  ClientOptions o = options({Tier{{{"a", "m"}}}});  // no other route: the deadline ends it
  CircuitBreakerOptions breaker;
  breaker.consecutive_failures = 2;
  o.circuit_breaker = DefaultCircuitBreaker::factory(breaker);
  Client client(o);
  CallOptions call;
  call.timeout = seconds(2);
  for (int i = 0; i < 2; ++i) {
    auto r = client.chat_stream(
        ping(), [](const ChatChunk&) { return true; }, call);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::DeadlineExceeded);
  }
  EXPECT_EQ(client.health().routes[0].state, BreakerState::Open);
}

// The error of a deadline that left routes untried names them and the settings to change.
TEST_F(ClientTest, ADeadlineThatLeftRoutesUntriedSaysWhichAndWhatToChange) {
  fake->sequence(testing::chat_url(kA), {testing::ok("too late", seconds(60))});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  ClientOptions o = two_routes();
  o.timeouts.attempt = seconds(600);
  RetryOptions one;
  one.max_attempts = 1;  // no attempt left for b: a takes the whole call
  o.retry = std::make_shared<DefaultRetryPolicy>(one);
  Client client(o);
  CallOptions call;
  call.timeout = seconds(3);
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::DeadlineExceeded);
  EXPECT_NE(r.error().message().find("never tried: b/m"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("timeouts.attempt_ms"), std::string::npos);
}

}  // namespace
}  // namespace failover
