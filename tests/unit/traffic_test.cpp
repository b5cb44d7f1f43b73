// Shadow traffic and canary roll-outs on a manual clock with a fake transport.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"
#include "traffic/canary.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <future>
#include <set>
#include <sstream>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::outcomes;
using testing::ping;
using testing::Reply;
using testing::Strings;

const std::string kA = "http://a.test/v1";
const std::string kC = "http://c.test/v1";

ChatRequest ask(const std::string& text) {
  ChatRequest r;
  r.messages = {Message::user(text)};
  return r;
}

Reply answer(const std::string& text, Duration latency, const std::string& finish = "stop") {
  Reply r = testing::ok(text, latency);
  if (finish != "stop") {
    const std::string from = R"("finish_reason":"stop")";
    r.body.replace(r.body.find(from), from.size(), R"("finish_reason":")" + finish + "\"");
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Comparison functions

TEST(ShadowCompare, NormalizationFoldsCaseAndWhiteSpace) {
  EXPECT_EQ(normalize_text("  Hello\n\n  World\t! "), "hello world !");
  EXPECT_EQ(normalize_text(""), "");
  EXPECT_EQ(normalize_text("Ünïcode STAYS"), "Ünïcode stays");  // only ASCII is folded
}

TEST(ShadowCompare, TokenSimilarityIsTheF1OfWordMultisets) {
  EXPECT_DOUBLE_EQ(token_similarity("", ""), 1.0);
  EXPECT_DOUBLE_EQ(token_similarity("a", ""), 0.0);
  EXPECT_DOUBLE_EQ(token_similarity("The cat, sat.", "the CAT sat"), 1.0);
  EXPECT_DOUBLE_EQ(token_similarity("the cat sat", "the cat ran"), 2.0 * 2 / 6);
  EXPECT_DOUBLE_EQ(token_similarity("a a a b", "a b b"), 2.0 * 2 / 7);  // multiset overlap
  EXPECT_DOUBLE_EQ(token_similarity("xin chào", "xin chào bạn"), 2.0 * 2 / 5);
}

TEST(ShadowCompare, PairFieldsAndACustomComparator) {
  ChatResponse a;
  a.choices.resize(1);
  a.choices[0].message.content = "Paris is the capital.";
  a.choices[0].finish_reason = "stop";
  ToolCall t;
  t.name = "lookup";
  a.choices[0].message.tool_calls = {t};
  ChatResponse b = a;
  b.choices[0].message.content = "paris  is the CAPITAL.";
  b.choices[0].finish_reason = "length";
  b.choices[0].message.tool_calls[0].name = "search";
  ShadowPair p = compare_results(ask("capital?"), a, milliseconds(100), b, milliseconds(250));
  EXPECT_EQ(p.prompt, "capital?");
  EXPECT_TRUE(p.primary_ok && p.candidate_ok);
  EXPECT_TRUE(p.exact_match);
  EXPECT_DOUBLE_EQ(p.similarity, 1.0);
  EXPECT_FALSE(p.finish_reason_match);
  EXPECT_FALSE(p.tool_names_match);
  EXPECT_EQ(p.candidate_latency - p.primary_latency, Duration(milliseconds(150)));

  auto judge = [](const ChatRequest&, const ChatResponse&, const ChatResponse&) { return 7.0; };
  EXPECT_DOUBLE_EQ(
      compare_results(ask("q"), a, milliseconds(1), b, milliseconds(1), judge).similarity, 1.0);
  Result<ChatResponse> failed = Error(ErrorKind::ServerError, "boom");
  ShadowPair f = compare_results(ask("q"), a, milliseconds(1), failed, milliseconds(1));
  EXPECT_FALSE(f.candidate_ok);
  EXPECT_EQ(f.candidate_error, ErrorKind::ServerError);
  EXPECT_DOUBLE_EQ(f.similarity, 0.0);
}

// ---------------------------------------------------------------------------------------------
// Shadow traffic through the client

struct ShadowTest : testing::FakeClientTest {
  ClientOptions options(double sample) {
    ClientOptions o = fake_options({{"a", kA, "sk-a"}, {"c", kC, "sk-c"}}, {Tier{{{"a", "m"}}}});
    o.rng = std::make_shared<SeededRng>(42);
    o.shadow.candidate = RouteRef{"c", "m2"};
    o.shadow.sample = sample;
    return o;
  }
};

TEST_F(ShadowTest, SamplesTheConfiguredFractionWithinTwoPercent) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kC), {testing::ok("c")});
  ClientOptions o = options(0.25);
  o.shadow.queue = 20000;
  Client client(o);
  const int kCalls = 10000;
  for (int i = 0; i < kCalls; ++i) ASSERT_TRUE(client.chat(ping()));
  ASSERT_TRUE(client.wait_for_shadow(std::chrono::seconds(60)));
  ShadowReport r = *client.shadow_report();
  std::printf("sampled %llu of %d calls at 0.25\n", static_cast<unsigned long long>(r.sampled),
              kCalls);
  EXPECT_NEAR(static_cast<double>(r.sampled) / kCalls, 0.25, 0.02) << r.sampled;
  EXPECT_EQ(r.pairs, r.sampled);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(fake->count(testing::chat_url(kC)), static_cast<int>(r.sampled));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), kCalls);
  // Mirrors are not calls of the client.
  EXPECT_NE(client.metrics_text().find("failover_calls_total{result=\"success\"} 10000\n"),
            std::string::npos);
}

TEST_F(ShadowTest, AFailingShadowNeverReachesTheCaller) {
  fake->sequence(testing::chat_url(kA), {testing::ok("fine", milliseconds(40))});
  fake->sequence(testing::chat_url(kC),
                 {testing::status(500), testing::failure(ErrorKind::ConnectFailed),
                  testing::ok("late", seconds(5))});
  ClientOptions o = options(1.0);
  o.shadow.timeout = seconds(2);
  Client client(o);
  for (int i = 0; i < 3; ++i) {
    TimePoint start = clock->now();
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->text(), "fine");
    EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
    // The call took its own 40 ms; the mirror starts after it (the clock, shared with the
    // engine thread, may already have moved on for the mirror when it is read here).
    EXPECT_EQ(r->attempts[0].latency, Duration(milliseconds(40)));
    EXPECT_GE(clock->now() - start, Duration(milliseconds(40)));
    ASSERT_TRUE(client.wait_for_shadow(std::chrono::seconds(10)));
  }
  ShadowReport r = *client.shadow_report();
  EXPECT_EQ(r.candidate, (RouteRef{"c", "m2"}));
  EXPECT_EQ(r.pairs, 3u);
  EXPECT_EQ(r.primary_ok, 3u);
  EXPECT_EQ(r.candidate_ok, 0u);
  EXPECT_DOUBLE_EQ(r.candidate_success_rate, 0.0);
  EXPECT_EQ(r.recommendation, ShadowVerdict::NeedsTuning);
  ASSERT_EQ(r.worst.size(), 3u);
  EXPECT_EQ(r.worst[0].candidate_error, ErrorKind::ServerError);
  EXPECT_EQ(r.worst[1].candidate_error, ErrorKind::ConnectFailed);
  EXPECT_EQ(r.worst[2].candidate_error, ErrorKind::DeadlineExceeded);
  EXPECT_EQ(r.worst[2].candidate_latency, Duration(seconds(2)));  // the mirror's own limit
  // The primary route's health saw only its own successes; the candidate's its failures.
  HealthSnapshot h = client.health();
  ASSERT_EQ(h.routes.size(), 2u);
  EXPECT_EQ(h.routes[0].successes, 3u);
  EXPECT_EQ(h.routes[0].failures, 0u);
  EXPECT_EQ(h.routes[1].route, (RouteRef{"c", "m2"}));
  // The mirror that ran out of the shadow's own time limit is neutral for the route.
  EXPECT_EQ(h.routes[1].failures, 2u);
  EXPECT_NE(client.metrics_text().find("failover_calls_total{result=\"success\"} 3\n"),
            std::string::npos);
}

TEST_F(ShadowTest, TheReportsNumbersAreExact) {
  fake->sequence(
      testing::chat_url(kA),
      {answer("Hello  World", milliseconds(100)), answer("the cat sat", milliseconds(200)),
       answer("anything", milliseconds(300)), answer("a b c d", milliseconds(400))});
  fake->sequence(testing::chat_url(kC), {answer("hello world", milliseconds(150)),
                                         answer("the cat ran", milliseconds(250), "length"),
                                         testing::status(503), answer("x y", milliseconds(450))});
  ClientOptions o = options(1.0);
  o.shadow.thresholds.min_pairs = 4;
  o.prices["m2"] = ModelPrice{1.0, std::nullopt, 2.0};  // 5 prompt, 2 completion tokens a call
  Client client(o);
  for (const char* q : {"q1", "q2", "q3", "q4"}) {
    ASSERT_TRUE(client.chat(ask(q)));
    ASSERT_TRUE(client.wait_for_shadow(std::chrono::seconds(10)));
  }
  ShadowReport r = *client.shadow_report();
  EXPECT_EQ(r.sampled, 4u);
  EXPECT_EQ(r.pairs, 4u);
  EXPECT_EQ(r.primary_ok, 4u);
  EXPECT_EQ(r.candidate_ok, 3u);
  EXPECT_EQ(r.both_ok, 3u);
  EXPECT_DOUBLE_EQ(r.primary_success_rate, 1.0);
  EXPECT_DOUBLE_EQ(r.candidate_success_rate, 0.75);
  EXPECT_EQ(r.primary_latency.count, 4u);
  EXPECT_EQ(r.primary_latency.p50, Duration(milliseconds(200)));
  EXPECT_EQ(r.primary_latency.p95, Duration(milliseconds(400)));
  EXPECT_EQ(r.primary_latency.p99, Duration(milliseconds(400)));
  EXPECT_EQ(r.primary_latency.mean, Duration(milliseconds(250)));
  EXPECT_EQ(r.candidate_latency.count, 3u);
  EXPECT_EQ(r.candidate_latency.p50, Duration(milliseconds(250)));
  EXPECT_EQ(r.candidate_latency.p95, Duration(milliseconds(450)));
  EXPECT_EQ(r.candidate_latency.mean, Duration(std::chrono::nanoseconds(283333333)));
  EXPECT_EQ(r.mean_latency_diff, Duration(milliseconds(50)));
  EXPECT_DOUBLE_EQ(r.mean_similarity, (1.0 + 2.0 / 3.0 + 0.0) / 3.0);
  EXPECT_DOUBLE_EQ(r.exact_match_rate, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.finish_reason_match_rate, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.tool_names_match_rate, 1.0);
  EXPECT_NEAR(r.candidate_cost_usd, 3 * (5 * 1.0 + 2 * 2.0) / 1e6, 1e-12);
  EXPECT_EQ(r.recommendation, ShadowVerdict::NeedsTuning);
  EXPECT_EQ(r.reasons, (Strings{"candidate success rate 75.0 % is below 95.0 %",
                                "mean similarity 0.556 is below 0.800"}));
  ASSERT_EQ(r.worst.size(), 4u);
  EXPECT_EQ(r.worst[0].prompt, "q4");
  EXPECT_EQ(r.worst[1].prompt, "q2");
  EXPECT_EQ(r.worst[1].candidate_finish_reason, "length");
  EXPECT_EQ(r.worst[2].prompt, "q1");
  EXPECT_EQ(r.worst[3].prompt, "q3");
  EXPECT_FALSE(r.worst[3].candidate_ok);
  // Mirrors are real traffic for money: the candidate's usage shows their cost.
  UsageReport u = client.usage_report();
  ASSERT_EQ(u.routes.size(), 2u);
  EXPECT_NEAR(u.routes[1].cost_usd, r.candidate_cost_usd, 1e-12);
}

TEST_F(ShadowTest, ACustomComparatorDecidesAndReadyNeedsEveryThreshold) {
  fake->sequence(testing::chat_url(kA), {testing::ok("one wording", milliseconds(100))});
  fake->sequence(testing::chat_url(kC), {testing::ok("another phrasing", milliseconds(120))});
  ClientOptions o = options(1.0);
  o.shadow.thresholds.min_pairs = 3;
  o.shadow.comparator = [](const ChatRequest&, const ChatResponse&, const ChatResponse&) {
    return 0.9;  // say, an embedding distance that finds the two equivalent
  };
  Client client(o);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.chat(ping()));
    ASSERT_TRUE(client.wait_for_shadow(std::chrono::seconds(10)));
  }
  ShadowReport r = *client.shadow_report();
  EXPECT_DOUBLE_EQ(r.mean_similarity, 0.9);
  EXPECT_DOUBLE_EQ(r.exact_match_rate, 0.0);
  EXPECT_EQ(r.recommendation, ShadowVerdict::Ready) << r.reasons.front();
  EXPECT_TRUE(r.reasons.empty());
}

TEST_F(ShadowTest, AFullQueueDropsMirrorsAndCountsThem) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->on(testing::chat_url(kC), [released](const HttpRequest&) {
    released.wait();  // holds the engine thread: the first mirror stays in flight
    return testing::ok("c");
  });
  ClientOptions o = options(1.0);
  o.shadow.queue = 1;
  Client client(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.chat(ping()));
  release.set_value();
  ASSERT_TRUE(client.wait_for_shadow(std::chrono::seconds(10)));
  ShadowReport r = *client.shadow_report();
  EXPECT_EQ(r.sampled, 3u);
  EXPECT_EQ(r.dropped, 2u);
  EXPECT_EQ(r.pairs, 1u);
  EXPECT_NE(client.metrics_text().find(
                "failover_shadow_mirrors_total{endpoint=\"c\",model=\"m2\",result=\"dropped\"} 2"),
            std::string::npos);
}

TEST_F(ShadowTest, NoReportWithoutShadowTraffic) {
  ClientOptions o = options(0.5);
  o.shadow.candidate.reset();
  Client client(o);
  EXPECT_FALSE(client.shadow_report());
  EXPECT_TRUE(client.wait_for_shadow(milliseconds(1)));
}

// ---------------------------------------------------------------------------------------------
// Canary

struct CanaryTest : testing::FakeClientTest {
  std::vector<CanaryAlert> alerts;
  std::ostringstream log;

  ClientOptions options() {
    ClientOptions o = fake_options({{"a", kA, "sk-a"}, {"c", kC, "sk-c"}}, {Tier{{{"a", "m"}}}});
    o.rng = std::make_shared<SeededRng>(7);
    o.canary.candidate = RouteRef{"c", "m2"};
    o.canary.step = seconds(60);
    o.canary.rollback.min_calls = 50;
    o.canary.on_rollback = [this](const CanaryAlert& a) { alerts.push_back(a); };
    auto logger = std::make_shared<spdlog::logger>(
        "canary", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
    logger->set_level(spdlog::level::warn);
    o.logger = logger;
    return o;
  }
  // One call by `user`; true when it tried the candidate first.
  bool call(Client& client, const std::string& user) {
    CallOptions co;
    co.user = user;
    auto r = client.chat(ping(), co);
    EXPECT_TRUE(r) << r.error().message();
    clock->advance(milliseconds(90));  // with the fake's 10 ms: one call every 100 ms
    return r && r->attempts.front().route.endpoint == "c";
  }
};

TEST_F(CanaryTest, AdvancesThroughEveryStepOnHealthyTraffic) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kC), {testing::ok("c")});
  Client client(options());
  std::vector<double> seen = {client.canary()->percent};
  std::vector<TimePoint> started = {client.canary()->step_started};
  std::map<double, std::pair<int, int>> share;  // percent -> (calls, canary calls)
  int i = 0;
  while (client.canary()->state == CanaryState::Running && i < 20000) {
    const double percent = client.canary()->percent;
    bool canary = call(client, "user-" + std::to_string(i++));
    CanaryStatus s = *client.canary();
    if (s.percent == percent) {
      share[percent].first += 1;
      share[percent].second += canary ? 1 : 0;
    }
    if (s.percent != seen.back()) {
      seen.push_back(s.percent);
      started.push_back(s.step_started);
    }
  }
  EXPECT_EQ(seen, (std::vector<double>{5, 10, 25, 50, 100}));
  EXPECT_EQ(client.canary()->state, CanaryState::Completed);
  for (std::size_t k = 1; k < started.size(); ++k) {
    EXPECT_GE(started[k] - started[k - 1], Duration(seconds(60))) << "step " << k;
  }
  for (const auto& [percent, counts] : share) {
    if (percent >= 100) {
      EXPECT_EQ(counts.second, counts.first);
      continue;
    }
    EXPECT_NEAR(100.0 * counts.second / counts.first, percent, 3.0) << "at " << percent << " %";
  }
  EXPECT_TRUE(alerts.empty());
  HealthSnapshot h = client.health();
  ASSERT_TRUE(h.canary);
  EXPECT_EQ(h.canary->state, CanaryState::Completed);
  EXPECT_NE(client.metrics_text().find(
                "failover_canary_state{endpoint=\"c\",model=\"m2\",state=\"completed\"} 1"),
            std::string::npos);
}

TEST_F(CanaryTest, TenPercentErrorsAtTheQuarterStepRollBackWithExactlyOneAlert) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  bool inject = false;
  int candidate_calls = 0;
  fake->on(testing::chat_url(kC), [&](const HttpRequest&) {
    ++candidate_calls;
    if (inject && candidate_calls % 10 == 0) return testing::status(500);
    return testing::ok("c");
  });
  Client client(options());
  int i = 0;
  while (client.canary()->percent < 25 && i < 20000) call(client, "user-" + std::to_string(i++));
  ASSERT_EQ(client.canary()->percent, 25);
  const TimePoint step_started = client.canary()->step_started;
  inject = true;
  candidate_calls = 0;
  int failures_seen_by_callers = 0;
  for (int k = 0; k < 2000; ++k) {
    CallOptions co;
    co.user = "user-" + std::to_string(i++);
    auto r = client.chat(ping(), co);
    if (!r) ++failures_seen_by_callers;
    clock->advance(milliseconds(90));
  }
  EXPECT_EQ(failures_seen_by_callers, 0);  // a failing candidate costs a failover, not an error
  ASSERT_EQ(alerts.size(), 1u);
  const CanaryAlert& alert = alerts[0];
  EXPECT_EQ(alert.candidate, (RouteRef{"c", "m2"}));
  EXPECT_EQ(alert.percent, 25);
  EXPECT_EQ(alert.step, 2u);
  EXPECT_LT(alert.at - step_started, Duration(seconds(60)));  // within the step's window
  // 3 errors in 30 calls: 3 / 50 is already 6 % whatever the next 20 calls bring.
  EXPECT_EQ(alert.window.calls, 30u);
  EXPECT_EQ(alert.window.errors, 3u);
  EXPECT_EQ(alert.reason,
            "3 errors in the first 30 calls of step 3: already 6 % of the step's first 50 calls, "
            "above the 5 % limit");
  EXPECT_EQ(candidate_calls, 30);  // nothing went to the candidate after the rollback
  CanaryStatus s = *client.canary();
  EXPECT_EQ(s.state, CanaryState::RolledBack);
  EXPECT_EQ(s.percent, 0);
  EXPECT_EQ(s.rollbacks, 1u);
  EXPECT_NE(log.str().find("[error] canary c/m2 rolled back from 25%: 3 errors in the first 30"),
            std::string::npos)
      << log.str();
}

TEST_F(CanaryTest, ASlowCandidateRollsBackOnP99) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kC),
                 {testing::ok("c", milliseconds(50)), testing::ok("c", milliseconds(50)),
                  testing::ok("slow", milliseconds(5100))});
  ClientOptions o = options();
  o.canary.steps = {100};
  Client client(o);
  for (int i = 0; i < 3; ++i) call(client, "u" + std::to_string(i));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].reason,
            "1 of 3 successes of step 1 slower than 5000 ms: the p99 latency is above the 5000 "
            "ms limit");
  EXPECT_EQ(alerts[0].window.successes, 3u);
}

TEST_F(CanaryTest, StickyUsersStayOnTheirSideAcrossSteps) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kC), {testing::ok("c")});
  ClientOptions o = options();
  o.canary.rollback.min_calls = 20;
  Client client(o);
  const int kUsers = 1000;
  std::vector<int> first_canary_round(kUsers, -1);
  std::vector<double> percents;
  for (int round = 0; round < 6; ++round) {
    percents.push_back(client.canary()->percent);
    int on_canary = 0;
    for (int u = 0; u < kUsers; ++u) {  // 10 s a round: the step holds for the whole round
      CallOptions co;
      co.user = "user-" + std::to_string(u);
      auto r = client.chat(ping(), co);
      ASSERT_TRUE(r) << r.error().message();
      const bool canary = r->attempts.front().route.endpoint == "c";
      on_canary += canary ? 1 : 0;
      if (canary && first_canary_round[u] < 0) first_canary_round[u] = round;
      if (!canary) {  // once a user is on the canary, it stays there
        EXPECT_EQ(first_canary_round[u], -1) << "user " << u << " round " << round;
      }
    }
    EXPECT_NEAR(100.0 * on_canary / kUsers, percents.back(), 2.0) << "round " << round;
    clock->advance(seconds(60));
  }
  EXPECT_EQ(percents, (std::vector<double>{5, 10, 25, 50, 100, 100}));
  // The same user gets the same side from a fresh client (the hash is stable).
  std::set<std::uint32_t> buckets;
  for (int u = 0; u < 3; ++u) {
    buckets.insert(detail::CanaryController::bucket("user-" + std::to_string(u)));
  }
  EXPECT_EQ(buckets.size(), 3u);
  EXPECT_EQ(detail::CanaryController::bucket("user-0"), detail::CanaryController::bucket("user-0"));
}

TEST_F(CanaryTest, ManualPauseResumePromoteRollbackAndDrain) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kC), {testing::ok("c")});
  Client client(options());
  EXPECT_TRUE(client.canary_pause());
  EXPECT_FALSE(client.canary_pause());
  for (int i = 0; i < 1500; ++i) call(client, "user-" + std::to_string(i));
  EXPECT_EQ(client.canary()->state, CanaryState::Paused);
  EXPECT_EQ(client.canary()->percent, 5);  // held, though the step held long enough
  EXPECT_TRUE(client.canary_resume());
  EXPECT_EQ(client.canary()->window.calls, 0u);  // the step starts over

  EXPECT_TRUE(client.canary_promote());
  EXPECT_EQ(client.canary()->state, CanaryState::Completed);
  EXPECT_EQ(client.canary()->percent, 100);
  EXPECT_TRUE(call(client, "anyone"));

  EXPECT_TRUE(client.canary_rollback("bad reviews"));
  EXPECT_EQ(client.canary()->state, CanaryState::RolledBack);
  EXPECT_EQ(client.canary()->reason, "bad reviews");
  for (int i = 0; i < 200; ++i) EXPECT_FALSE(call(client, "user-" + std::to_string(i)));
  EXPECT_TRUE(alerts.empty());  // no page for a rollback by hand
  EXPECT_NE(log.str().find("[warning] canary c/m2 rolled back by hand"), std::string::npos);

  EXPECT_TRUE(client.canary_resume());  // starts again at the first step
  EXPECT_EQ(client.canary()->percent, 5);
  EXPECT_TRUE(client.canary_drain());
  EXPECT_EQ(client.canary()->state, CanaryState::Drained);
  EXPECT_EQ(client.canary()->percent, 0);
  EXPECT_EQ(client.canary()->in_flight, 0);
  EXPECT_FALSE(client.canary_drain());
  EXPECT_EQ(client.canary()->rollbacks, 1u);
}

TEST_F(CanaryTest, AFailingCandidateFailsOverToThePriorityList) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kC), {testing::status(503)});
  ClientOptions o = options();
  o.canary.steps = {100};
  Client client(o);
  CallOptions co;
  co.user = "u";
  auto r = client.chat(ping(), co);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"c:overloaded", "a:success"}));
  EXPECT_EQ(client.canary()->window.errors, 1u);
}

TEST(CanaryOutcome, OnlyTheCandidatesFaultsAreErrors) {
  using detail::CanaryOutcome;
  EXPECT_EQ(detail::canary_outcome(std::nullopt), CanaryOutcome::Success);
  EXPECT_EQ(detail::canary_outcome(ErrorKind::ServerError), CanaryOutcome::Error);
  EXPECT_EQ(detail::canary_outcome(ErrorKind::Timeout), CanaryOutcome::Error);
  EXPECT_EQ(detail::canary_outcome(ErrorKind::NotFound), CanaryOutcome::Error);
  EXPECT_EQ(detail::canary_outcome(ErrorKind::RateLimited), CanaryOutcome::Other);
  EXPECT_EQ(detail::canary_outcome(ErrorKind::InvalidRequest), CanaryOutcome::Ignored);
  EXPECT_EQ(detail::canary_outcome(ErrorKind::Cancelled), CanaryOutcome::Ignored);
}

// Every alert states its counts, the step, the rate and what the rate is taken over.
TEST(CanaryWording, EveryAlertReadsRight) {
  using detail::CanaryController;
  using detail::CanaryOutcome;
  CanaryOptions o;
  o.candidate = RouteRef{"c", "m"};
  o.steps = {10, 50};
  o.rollback.min_calls = 20;
  const TimePoint t0{};
  auto reason = [&](std::vector<CanaryOutcome> outcomes, CanaryOptions options) {
    CanaryController c(options, t0);
    for (CanaryOutcome outcome : outcomes) {
      if (auto alert = c.record(t0, outcome, milliseconds(10))) return alert->reason;
    }
    return std::string("(none)");
  };
  const auto S = CanaryOutcome::Success;
  const auto E = CanaryOutcome::Error;
  const auto O = CanaryOutcome::Other;
  // Before the minimum: the counts so far already decide the step's first 20 calls.
  EXPECT_EQ(reason({E, E}, o),
            "2 errors in the first 2 calls of step 1: already 10 % of the step's first 20 calls, "
            "above the 5 % limit");
  EXPECT_EQ(reason({S, E, S, E}, o),
            "2 errors in the first 4 calls of step 1: already 10 % of the step's first 20 "
            "calls, above the 5 % limit");
  CanaryOptions lenient = o;
  lenient.rollback.error_rate = 0.5;
  EXPECT_EQ(reason({O, O}, lenient),
            "2 calls without success in the first 2 calls of step 1: at most 90 % of the step's "
            "first 20 calls can succeed, below the 95 % minimum");
  // Past the minimum: the step's own calls.
  CanaryOptions few = o;
  few.rollback.min_calls = 1;
  few.rollback.error_rate = 0.4;
  few.rollback.min_success_rate = 0;
  EXPECT_EQ(reason({S, S, E, E}, few),
            "2 errors in 4 calls of step 1 (50 %), above the 40 % limit");
  few.rollback.error_rate = 1.0;
  few.rollback.min_success_rate = 0.8;
  EXPECT_EQ(reason({S, S, S, O}, few),
            "3 successes in 4 calls of step 1 (75 %), below the 80 % minimum");
  EXPECT_EQ(reason({S, E}, few).find("1 success in 2 calls of step 1 (50 %)"), 0u);
}

}  // namespace
}  // namespace failover
