// Prices, per-response cost (exact to the micro-dollar), and the usage report.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>

namespace failover {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::ping;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";

testing::Reply with_usage(std::int64_t prompt, std::int64_t cached, std::int64_t completion,
                          Duration latency = milliseconds(10)) {
  testing::Reply r;
  r.latency = latency;
  r.body =
      R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":)" +
      std::to_string(prompt) + R"(,"completion_tokens":)" + std::to_string(completion) +
      R"(,"total_tokens":)" + std::to_string(prompt + completion) +
      R"(,"prompt_tokens_details":{"cached_tokens":)" + std::to_string(cached) + "}}}";
  return r;
}

struct UsageTest : testing::FakeClientTest {
  ClientOptions options() {
    ClientOptions o = fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}},
                                   {Tier{{{"a", "gpt-4.1"}}}, Tier{{{"b", "local"}}}});
    o.prices["gpt-4.1"] = ModelPrice{8.0, 2.0, 8.0};
    return o;
  }
};

TEST_F(UsageTest, CostIsExactToTheMicroDollar) {
  // 600 uncached x $8 + 400 cached x $2 + 500 out x $8, per million tokens = $0.0096.
  fake->sequence(testing::chat_url(kA), {with_usage(1000, 400, 500)});
  Client client(options());
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->cost_usd.has_value());
  EXPECT_EQ(*r->cost_usd, 0.0096);
  EXPECT_EQ(std::llround(*r->cost_usd * 1e6), 9600);
}

TEST_F(UsageTest, CachedTokensFallBackToTheInputPrice) {
  ClientOptions o = options();
  o.prices["gpt-4.1"].cached_input_per_mtok.reset();
  fake->sequence(testing::chat_url(kA), {with_usage(1000, 400, 0)});
  Client client(o);
  EXPECT_EQ(*client.chat(ping())->cost_usd, 0.008);
}

TEST_F(UsageTest, TotalsStayExactOverManyCalls) {
  fake->sequence(testing::chat_url(kA), {with_usage(123, 0, 45)});  // 168 x $8 / 1e6
  Client client(options());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(client.chat(ping()));
  UsageReport report = client.usage_report();
  EXPECT_EQ(report.routes[0].prompt_tokens, 123000);
  EXPECT_EQ(report.routes[0].completion_tokens, 45000);
  EXPECT_EQ(std::llround(report.routes[0].cost_usd * 1e6), 1344000);  // $1.344000
  EXPECT_EQ(std::llround(report.cost_usd * 1e6), 1344000);
}

TEST_F(UsageTest, UnpricedModelsCountTokensButNoCost) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {with_usage(10, 0, 5)});
  Client client(options());
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->served_by.endpoint, "b");
  EXPECT_FALSE(r->cost_usd.has_value());
  UsageReport report = client.usage_report();
  EXPECT_FALSE(report.routes[1].priced);
  EXPECT_EQ(report.routes[1].prompt_tokens, 10);
  EXPECT_EQ(report.routes[1].cost_usd, 0);
}

TEST_F(UsageTest, ReportShowsCallsErrorRateAndLatency) {
  fake->sequence(testing::chat_url(kA),
                 {with_usage(10, 0, 1, milliseconds(10)), with_usage(10, 0, 1, milliseconds(30)),
                  testing::status(500), with_usage(10, 0, 1, milliseconds(20))});
  fake->sequence(testing::chat_url(kB), {with_usage(10, 0, 1)});
  ClientOptions o = options();
  RetryOptions no_retry_before_next_tier;
  no_retry_before_next_tier.retries_before_next_tier = 0;
  o.retry = std::make_shared<DefaultRetryPolicy>(no_retry_before_next_tier);
  Client client(o);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(client.chat(ping()));
  UsageReport report = client.usage_report();
  const RouteUsage& a = report.routes[0];
  EXPECT_EQ(a.route.endpoint, "a");
  EXPECT_EQ(a.calls, 3u);
  EXPECT_EQ(a.failures, 1u);
  EXPECT_DOUBLE_EQ(a.error_rate, 0.25);
  EXPECT_EQ(a.average_latency, Duration(milliseconds(20)));
  EXPECT_EQ(a.p99_latency, Duration(milliseconds(30)));
  EXPECT_EQ(report.calls, 4u);  // three on a, one on b after a's 500
  EXPECT_NE(client.metrics_text().find("failover_cost_usd_total{endpoint=\"a\",model=\"gpt-4.1\"}"),
            std::string::npos);
}

TEST(UsageConfig, PricesLoadAndAreChecked) {
  const char* base =
      R"({"endpoints": [{"name": "a", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}],
                         "priority": [{"model": "gpt-4.1", "routes": ["a"]}], "prices": )";
  ClientOptions o = options_from_json(
      std::string(base) +
      R"({"gpt-4.1": {"input_per_mtok": 8.0, "cached_input_per_mtok": 2.0, "output_per_mtok": 8.0}}})");
  EXPECT_EQ(o.prices.at("gpt-4.1").input_per_mtok, 8.0);
  EXPECT_EQ(o.prices.at("gpt-4.1").cached_input_per_mtok, 2.0);
  try {
    (void)options_from_json(std::string(base) +
                            R"({"gpt-4.1": {"input_per_mtok": -1, "output_per_mtok": 1}}})");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "prices.gpt-4.1.input_per_mtok must be a number from 0 to 1000000.0 (got -1)");
  }
}

}  // namespace
}  // namespace failover

namespace failover {
namespace {

// Spending budgets on the manual clock's wall time (UTC days).
struct SpendTest : UsageTest {
  std::vector<BudgetAlert> alerts;
  ClientOptions budgeted(bool with_cheap_tier) {
    ClientOptions o = options();
    if (!with_cheap_tier) o.priority.resize(1);
    o.budget.usd_per_day = 0.02;
    o.budget.on_alert = [this](const BudgetAlert& a) { alerts.push_back(a); };
    return o;
  }
};

TEST_F(SpendTest, AnExpensiveTierIsSkippedOnceSpentSoACheaperOneServes) {
  fake->sequence(testing::chat_url(kA), {with_usage(1000, 0, 0)});  // $0.008 a call
  fake->sequence(testing::chat_url(kB), {with_usage(1000, 0, 0)});  // unpriced
  Client client(budgeted(true));
  std::vector<std::string> served;
  for (int i = 0; i < 4; ++i) served.push_back(client.chat(ping())->served_by.endpoint);
  // 0.008, 0.016 (80 % alert), 0.024 (100 % alert: the third call fitted its estimate), then b.
  EXPECT_EQ(served, (std::vector<std::string>{"a", "a", "a", "b"}));
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].threshold, 0.8);
  EXPECT_EQ(alerts[0].period, BudgetAlert::Period::Day);
  EXPECT_DOUBLE_EQ(alerts[0].spent_usd, 0.016);
  EXPECT_EQ(alerts[1].threshold, 1.0);
  EXPECT_DOUBLE_EQ(alerts[1].spent_usd, 0.024);
  EXPECT_DOUBLE_EQ(alerts[1].limit_usd, 0.02);
}

TEST_F(SpendTest, NothingFitsGivesBudgetExceededUntilTheNextDay) {
  fake->sequence(testing::chat_url(kA), {with_usage(1000, 0, 0)});
  Client client(budgeted(false));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.chat(ping()));
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_TRUE(r.error().attempts().empty());
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 3);
  EXPECT_EQ(alerts.size(), 2u);            // each alert once
  clock->advance(std::chrono::hours(24));  // a new UTC day
  EXPECT_TRUE(client.chat(ping()));
}

TEST_F(SpendTest, WaitingForRecoveryWithTheBudgetSpentEndsAtOnce) {
  fake->sequence(testing::chat_url(kA), {with_usage(1000, 0, 0)});
  Client client(budgeted(false));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.chat(ping()));
  CallOptions call;
  call.when_unavailable = WhenUnavailable::WaitForRecovery;
  const TimePoint before = clock->now();
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_EQ(clock->now(), before);  // no wait for a budget that will not come back
}

TEST_F(SpendTest, TheEstimateIncludesTheOutputCap) {
  fake->sequence(testing::chat_url(kA), {with_usage(10, 0, 10)});
  Client client(budgeted(false));
  ChatRequest big = ping();
  big.max_tokens = 3000;  // 3000 x $8 / 1e6 = $0.024 > $0.02: refused before any traffic
  auto r = client.chat(big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 0);
  big.max_tokens = 1000;  // $0.008: fits
  EXPECT_TRUE(client.chat(big));
}

}  // namespace
}  // namespace failover

namespace failover {
namespace {

// Without an output cap, a call is reserved for what the model is said to produce, else the
// p95 of what the route's answers were, else the budget's conservative default; while only the
// default is known, the budget serves such calls one at a time.
TEST_F(SpendTest, AnUncappedRequestIsReservedForWhatTheRouteProduces) {
  fake->sequence(testing::chat_url(kA), {with_usage(1, 0, 999)});  // $0.008 a call
  ClientOptions o = budgeted(false);
  o.budget.usd_per_day = 0.02;  // the default (4096 tokens, $0.033) does not fit
  {
    Client client(o);
    auto first = client.chat(ping());  // admitted alone: nothing else is in flight
    ASSERT_TRUE(first) << first.error().message();
    // Now the route's answers are known: $0.008 each, and one more fits in $0.02.
    ASSERT_TRUE(client.chat(ping()));
    auto third = client.chat(ping());
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error().kind(), ErrorKind::BudgetExceeded);
    EXPECT_EQ(fake->count(testing::chat_url(kA)), 2);
  }
  // The model's own output size goes first: 3000 tokens ($0.024) never fit $0.02, and since
  // it is known, not guessed, the call is refused even alone.
  clock->advance(std::chrono::hours(24));
  o.prices["gpt-4.1"].output_tokens = 3000;
  Client sized(o);
  auto r = sized.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 2);
}

TEST(UsageConfig, OutputSizesLoadAndAreChecked) {
  const std::string base =
      R"({"endpoints": [{"name": "a", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}],
          "priority": [{"model": "gpt-4.1", "routes": ["a"]}], )";
  ClientOptions o =
      options_from_json(base + R"("prices": {"gpt-4.1": {"input_per_mtok": 1, "output_per_mtok": 2,
                "output_tokens": 800}}, "budget": {"usd_per_day": 1, "default_output_tokens": 2048,
                "fail_closed": true}})");
  EXPECT_EQ(o.prices.at("gpt-4.1").output_tokens, 800);
  EXPECT_EQ(o.budget.default_output_tokens, 2048);
  EXPECT_TRUE(o.budget.fail_closed);
  const json again = json::parse(options_to_json(o));
  EXPECT_EQ(again["prices"]["gpt-4.1"]["output_tokens"], 800);
  EXPECT_EQ(again["budget"]["default_output_tokens"], 2048);
  EXPECT_EQ(again["budget"]["fail_closed"], true);
  try {
    (void)options_from_json(base + R"("budget": {"usd_per_day": 1, "default_output_tokens": 0}})");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "budget.default_output_tokens must be a positive whole number (got 0)");
  }
}

TEST_F(SpendTest, AUserSuppliedEstimatorReplacesTheBuiltInOne) {
  fake->sequence(testing::chat_url(kA), {with_usage(10, 0, 10)});
  ClientOptions o = budgeted(false);
  o.token_estimator = [](const ChatRequest&) { return std::int64_t{5000}; };  // $0.04 > $0.02
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 0);
}

}  // namespace
}  // namespace failover

namespace failover {
namespace {

// A breaker that throws once from on_success.
struct ThrowsOnceOnSuccess final : CircuitBreaker {
  std::shared_ptr<std::atomic<int>> throws = std::make_shared<std::atomic<int>>(1);
  bool try_acquire(TimePoint) override { return true; }
  void on_success(TimePoint, Duration) override {
    if (throws->fetch_sub(1) > 0) throw std::runtime_error("breaker bug");
  }
  void on_failure(TimePoint, ErrorKind) override {}
  BreakerState state(TimePoint) const override { return BreakerState::Closed; }
};

TEST_F(SpendTest, ABreakerThatThrowsOnSuccessStillSettlesTheReservation) {
  fake->sequence(testing::chat_url(kA), {with_usage(100, 0, 0)});  // $0.0008 a call
  ClientOptions o = budgeted(false);
  o.token_estimator = [](const ChatRequest&) { return std::int64_t{2000}; };  // $0.016
  o.circuit_breaker = [](const RouteRef&) -> std::unique_ptr<CircuitBreaker> {
    return std::make_unique<ThrowsOnceOnSuccess>();
  };
  Client client(o);
  auto first = client.chat(ping());
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().kind(), ErrorKind::HookFailed);
  // The answer's tokens were spent and are charged; the reservation does not linger.
  for (int i = 0; i < 2; ++i) {
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
  }
  EXPECT_NEAR(client.usage_report().cost_usd, 3 * 0.0008, 1e-12);
}

// A stream is charged the same whether or not the provider reported usage: by usage when
// given, by estimate otherwise (the prompt, and what it sent at four characters a token).
TEST_F(SpendTest, AStreamWithoutUsageIsChargedAnEstimateAndCountsAgainstTheBudget) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"Hel", "lo"})});
  ClientOptions o = budgeted(false);
  o.budget.usd_per_day = 0.0001;  // $100e-6
  Client client(o);
  int served = 0, refused = 0;
  for (int i = 0; i < 40; ++i) {
    auto r = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
    if (r) {
      ++served;
      // ping: 1 prompt token; "Hello": 2 completion tokens; $8 per million each.
      EXPECT_NEAR(r->cost_usd.value_or(0), 24e-6, 1e-12);
      EXPECT_FALSE(r->usage);  // the provider's usage, which it did not send
    } else {
      EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
      ++refused;
    }
  }
  // Each call reserves 1 token ($8e-6) and spends $24e-6: four fit in $100e-6.
  EXPECT_EQ(served, 4);
  EXPECT_EQ(refused, 36);
  EXPECT_NEAR(client.usage_report().cost_usd, 96e-6, 1e-12);
  EXPECT_NE(client.metrics_text().find("failover_cost_usd_total"), std::string::npos);
}

// A stream request answered with a plain completion, stopped by its handler on the one chunk
// it was handed: the whole answer was spent and is charged, like a stopped SSE stream.
TEST_F(SpendTest, AStreamAnsweredPlainlyAndStoppedByItsHandlerIsCharged) {
  testing::Reply plain;
  plain.headers = {{"content-type", "application/json"}};
  plain.parts = {{milliseconds(10), testing::completion_body("all at once")}};
  fake->sequence(testing::chat_url(kA), {plain});
  Client client(budgeted(false));
  auto r = client.chat_stream(ping(), [](const ChatChunk&) { return false; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  EXPECT_NEAR(client.usage_report().cost_usd, 7 * 8.0 / 1e6, 1e-12);  // its reported 7 tokens
}

TEST_F(SpendTest, AStreamStoppedByItsHandlerAfterContentIsCharged) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"Hel", "lo", "there"})});
  Client client(budgeted(false));
  auto r = client.chat_stream(ping(), [](const ChatChunk& c) { return c.content() != "Hel"; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  // The prompt (1 token) and "Hel" (1 token), at $8 per million.
  EXPECT_NEAR(client.usage_report().cost_usd, 16e-6, 1e-12);
}

}  // namespace
}  // namespace failover
