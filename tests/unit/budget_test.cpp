// The retry budget and throttle, retry storms, and what a call does when no route can serve.

#include "fake_client_test.hpp"
#include "policy/retry_budget.hpp"
#include "policy/spend.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::outcomes;
using testing::ping;
using testing::Strings;

TEST(SpendTracker, ReservationsOfCallsInFlightCountAgainstTheBudget) {
  BudgetOptions o;
  o.usd_per_day = 1.0;  // 1e9 nano-dollars
  detail::SpendTracker spend(o);
  const WallTime noon{std::chrono::hours(24 * 20000 + 12)};
  EXPECT_TRUE(spend.reserve(noon, 600'000'000));
  EXPECT_FALSE(spend.fits(noon, 500'000'000));  // 0.6 reserved + 0.5 > 1.0
  EXPECT_FALSE(spend.reserve(noon, 500'000'000));
  EXPECT_TRUE(spend.reserve(noon, 400'000'000));  // exactly full
  EXPECT_FALSE(spend.reserve(noon, 1));
  // The first call cost less than reserved: its real cost replaces the reservation.
  auto alerts = spend.settle(noon, 600'000'000, 300'000'000);
  EXPECT_TRUE(alerts.empty());
  EXPECT_TRUE(spend.reserve(noon, 300'000'000));  // 0.3 spent + 0.7 reserved
  // A failed attempt costs nothing; the 80 % alert comes with the spending that crosses it.
  spend.release(300'000'000);
  alerts = spend.settle(noon, 400'000'000, 500'000'000);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_DOUBLE_EQ(alerts[0].threshold, 0.8);
  EXPECT_TRUE(spend.fits(noon, 200'000'000));
  EXPECT_FALSE(spend.fits(noon, 200'000'001));
  // A new day starts over; reservations still in flight keep counting.
  EXPECT_TRUE(spend.reserve(noon, 100'000'000));
  const WallTime tomorrow = noon + std::chrono::hours(24);
  EXPECT_TRUE(spend.fits(tomorrow, 900'000'000));
  EXPECT_FALSE(spend.fits(tomorrow, 900'000'001));
}

TEST(SpendTracker, SettlingBelowTheReservationGivesTheRestOfItsRoomBack) {
  BudgetOptions o;
  o.usd_per_day = 1.0;
  detail::SpendTracker spend(o);
  const WallTime noon{std::chrono::hours(24 * 20000 + 12)};
  ASSERT_TRUE(spend.reserve(noon, 900'000'000));
  EXPECT_FALSE(spend.fits(noon, 100'000'001));
  spend.settle(noon, 900'000'000, 200'000'000);  // it cost 0.2 of the 0.9 reserved
  EXPECT_EQ(spend.reserved(), 0);
  EXPECT_TRUE(spend.fits(noon, 800'000'000));
  EXPECT_FALSE(spend.fits(noon, 800'000'001));
}

// A fleet whose answers the test chooses; it records what it is told.
struct ScriptedFleet final : detail::FleetSpend {
  std::optional<bool> answer = true;  // empty: it cannot be asked now (a busy store)
  std::vector<std::pair<std::int64_t, std::int64_t>> settled_calls;  // released, spent
  std::function<void()> meanwhile;  // runs once, while the fleet is being asked
  std::optional<bool> reserve(WallTime, std::int64_t, const SpendCaps&) override {
    if (auto run = std::exchange(meanwhile, nullptr)) run();
    return answer;
  }
  void settled(std::int64_t released, std::int64_t spent, bool) override {
    settled_calls.emplace_back(released, spent);
  }
};

TEST(SpendTracker, SpendTheFleetHasNotHeardOfStaysCountedWhenTheFleetsSpendIsRead) {
  BudgetOptions o;
  o.usd_per_day = 1.0;
  detail::SpendTracker spend(o);
  ScriptedFleet fleet;
  spend.share(&fleet);
  const WallTime noon{std::chrono::hours(24 * 20000 + 12)};
  ASSERT_TRUE(spend.reserve(noon, 300'000'000));
  spend.settle(noon, 300'000'000, 300'000'000);  // queued for the fleet's next round
  spend.observe_fleet(noon, 0, 0);  // a round read the fleet before that settlement reached it
  fleet.answer.reset();             // then the store is busy: this process decides alone
  EXPECT_TRUE(spend.fits(noon, 700'000'000));
  EXPECT_FALSE(spend.fits(noon, 700'000'001));
  // Once the fleet has it, its spend is not counted twice.
  spend.published(300'000'000);
  spend.observe_fleet(noon, 300'000'000, 300'000'000);
  EXPECT_TRUE(spend.fits(noon, 700'000'000));
  EXPECT_FALSE(spend.fits(noon, 700'000'001));
}

TEST(SpendTracker, WhatThisProcessAdmittedAloneHoldsAgainstTheFleetsNextAnswer) {
  BudgetOptions o;
  o.usd_per_day = 1.0;
  detail::SpendTracker spend(o);
  ScriptedFleet fleet;
  spend.share(&fleet);
  const WallTime noon{std::chrono::hours(24 * 20000 + 12)};
  fleet.meanwhile = [&] {
    fleet.answer.reset();  // busy for another call: admitted here, the fleet never hears of it
    EXPECT_TRUE(spend.reserve(noon, 600'000'000));
    fleet.answer = true;
  };
  EXPECT_FALSE(spend.reserve(noon, 500'000'000));  // the fleet admits it, not knowing
  ASSERT_EQ(fleet.settled_calls.size(), 1u);       // and gets its reservation back
  EXPECT_EQ(fleet.settled_calls[0].first, 500'000'000);
  EXPECT_EQ(fleet.settled_calls[0].second, 0);
  EXPECT_TRUE(spend.reserve(noon, 400'000'000));
  EXPECT_EQ(spend.reserved(), 1'000'000'000);
}

TEST(RetryBudget, AtLeastMinConcurrentThenAShareOfCallsInFlight) {
  detail::RetryBudget b(RetryBudgetOptions{0.2, 3, 0, 0.1});  // throttle off
  b.call_started();
  EXPECT_TRUE(b.try_acquire());
  EXPECT_TRUE(b.try_acquire());
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());  // 1 call in flight: max(3, 0.2 x 1) = 3
  for (int i = 0; i < 19; ++i) b.call_started();
  EXPECT_TRUE(b.try_acquire());  // 20 calls: max(3, 0.2 x 20) = 4
  EXPECT_FALSE(b.try_acquire());
  for (int i = 0; i < 5; ++i) b.call_started();
  EXPECT_TRUE(b.try_acquire());  // 25 calls: 5
  EXPECT_FALSE(b.try_acquire());
  b.release();
  EXPECT_TRUE(b.try_acquire());
  EXPECT_EQ(b.active_retries(), 5);
  for (int i = 0; i < 25; ++i) b.call_finished();
  EXPECT_EQ(b.active_calls(), 0);
  EXPECT_FALSE(b.try_acquire());  // 5 held, cap back to 3
}

TEST(RetryBudget, ThrottlePausesRetriesAtHalfTheBucketAndSuccessesEarnItBack) {
  detail::RetryBudget b(RetryBudgetOptions{1.0, 1000, 10, 0.5});
  b.call_started();
  for (int i = 0; i < 4; ++i) b.on_attempt(ErrorKind::ServerError);
  EXPECT_DOUBLE_EQ(b.tokens(), 6);
  EXPECT_TRUE(b.try_acquire());
  b.release();
  b.on_attempt(ErrorKind::Timeout);
  EXPECT_DOUBLE_EQ(b.tokens(), 5);
  EXPECT_FALSE(b.try_acquire());            // at half: paused
  b.on_attempt(ErrorKind::InvalidRequest);  // not transient: no cost
  EXPECT_DOUBLE_EQ(b.tokens(), 5);
  b.on_attempt(std::nullopt);  // a success earns 0.5
  EXPECT_DOUBLE_EQ(b.tokens(), 5.5);
  EXPECT_TRUE(b.try_acquire());
  for (int i = 0; i < 100; ++i) b.on_attempt(std::nullopt);
  EXPECT_DOUBLE_EQ(b.tokens(), 10);  // capped at the bucket size
}

struct StormTest : testing::FakeClientTest {
  ClientOptions options(int routes) {
    std::vector<Endpoint> endpoints;
    Tier tier;
    for (int i = 0; i < routes; ++i) {
      std::string name(1, static_cast<char>('a' + i));
      endpoints.push_back({name, "http://" + name + ".test/v1", "sk"});
      tier.routes.push_back({name, "m"});
    }
    return fake_options(std::move(endpoints), {tier});
  }
};

TEST_F(StormTest, AnOutageDoesNotBecomeARetryStorm) {
  // The first exchange waits at a gate until all 100 calls are submitted, so they are truly
  // in flight together (the engine admits the rest in one batch meanwhile).
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  fake->on(testing::chat_url("http://a.test/v1"), [&](const HttpRequest&) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return open; });
    return testing::status(503);
  });
  fake->sequence(testing::chat_url("http://b.test/v1"), {testing::status(503)});
  Client client(options(2));
  std::vector<std::future<Result<ChatResponse>>> calls;
  for (int i = 0; i < 100; ++i) calls.push_back(client.chat_async(ping()));
  {
    std::lock_guard<std::mutex> lock(m);
    open = true;
  }
  cv.notify_all();
  for (auto& f : calls) {
    auto r = f.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  }
  // Without a budget each call would make 6 attempts (600). With it: every route once per
  // call, and retries only within 20 % of the calls in flight.
  const std::size_t attempts = fake->seen().size();
  RecordProperty("attempts", static_cast<int>(attempts));
  EXPECT_LE(attempts, 100u * 2 + 20);
  EXPECT_GE(attempts, 100u * 2);
}

TEST_F(StormTest, WithAHealthyLastRouteEveryCallSucceeds) {
  fake->sequence(testing::chat_url("http://a.test/v1"), {testing::status(503)});
  fake->sequence(testing::chat_url("http://b.test/v1"), {testing::status(500)});
  fake->sequence(testing::chat_url("http://c.test/v1"), {testing::ok("c")});
  Client client(options(3));
  std::vector<std::future<Result<ChatResponse>>> calls;
  for (int i = 0; i < 100; ++i) calls.push_back(client.chat_async(ping()));
  int ok = 0;
  for (auto& f : calls) {
    auto r = f.get();
    ok += r && r->served_by.endpoint == "c" ? 1 : 0;
  }
  EXPECT_EQ(ok, 100);
}

TEST_F(StormTest, SpentBudgetStillFailsOverButNeverRetriesTheSameRoute) {
  fake->sequence(testing::chat_url("http://a.test/v1"), {testing::status(503)});
  fake->sequence(testing::chat_url("http://b.test/v1"), {testing::status(503), testing::ok("b")});
  ClientOptions o = options(2);
  o.retry_budget.min_concurrent = 0;
  o.retry_budget.ratio = 0;  // no retries at all
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"a:overloaded", "b:overloaded"}));
  EXPECT_NE(r.error().message().find("paused by the client's retry budget"), std::string::npos);
}

// ---- when no route can serve ------------------------------------------------------------------

struct UnavailableTest : StormTest {
  // Opens a's breaker with five failed calls (one attempt each).
  Client opened_client() {
    fake->sequence(testing::chat_url("http://a.test/v1"),
                   {testing::status(500), testing::status(500), testing::status(500),
                    testing::status(500), testing::status(500), testing::ok("back")});
    ClientOptions o = options(1);
    RetryOptions once;
    once.max_attempts = 1;
    o.retry = std::make_shared<DefaultRetryPolicy>(once);
    Client client(o);
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(client.chat(ping()));
    return client;
  }
};

TEST_F(UnavailableTest, FailFastCarriesTheReopenTime) {
  Client client = opened_client();
  TimePoint now = clock->now();
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(r.error().available_at(), now + seconds(5));
  EXPECT_EQ(clock->now(), now);
}

TEST_F(UnavailableTest, WaitForRecoveryWaitsForTheReopenWithinTheDeadline) {
  Client client = opened_client();
  TimePoint now = clock->now();
  CallOptions call;
  call.when_unavailable = WhenUnavailable::WaitForRecovery;
  call.timeout = seconds(60);
  auto r = client.chat(ping(), call);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "back");
  EXPECT_EQ(clock->now(), now + seconds(5) + milliseconds(10));  // the wait, then the probe
}

TEST_F(UnavailableTest, WaitForRecoveryFailsAtOnceWhenTheReopenIsPastTheDeadline) {
  Client client = opened_client();
  TimePoint now = clock->now();
  CallOptions call;
  call.when_unavailable = WhenUnavailable::WaitForRecovery;
  call.timeout = seconds(3);
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(clock->now(), now);
}

TEST_F(UnavailableTest, PanicTriesTheLeastBadRouteAnyway) {
  Client client = opened_client();
  CallOptions call;
  call.when_unavailable = WhenUnavailable::Panic;
  auto r = client.chat(ping(), call);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "back");
  // The panic attempt does not touch the breaker: it stays open for other calls.
  EXPECT_EQ(client.health().routes[0].state, BreakerState::Open);
}

// Panic overrides the breaker, not the account's own limits: a panic attempt takes a
// rate-limit permit like any other.
TEST_F(UnavailableTest, PanicStaysWithinTheClientSideRateLimit) {
  const std::string a = "http://a.test/v1";
  fake->sequence(testing::chat_url(a), {testing::status(500)});
  ClientOptions o = fake_options({{"a", a, "sk-a"}}, {Tier{{{"a", "m"}}}});
  o.endpoints[0].limits.rpm = 1;
  CircuitBreakerOptions breaker;
  breaker.consecutive_failures = 1;
  o.circuit_breaker = DefaultCircuitBreaker::factory(breaker);
  RetryOptions once;
  once.max_attempts = 1;
  o.retry = std::make_shared<DefaultRetryPolicy>(once);
  Client client(o);
  CallOptions call;
  call.when_unavailable = WhenUnavailable::Panic;
  ASSERT_FALSE(client.chat(ping(), call));  // sent: the minute's permit, and a trip
  for (int i = 0; i < 2; ++i) {
    auto r = client.chat(ping(), call);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::RateLimited);
  }
  EXPECT_EQ(fake->count(testing::chat_url(a)), 1);
}

TEST(SpendTracker, ACallAnsweredAfterMidnightSpendsTheNewDay) {
  BudgetOptions o;
  o.usd_per_day = 1.0;
  detail::SpendTracker spend(o);
  const WallTime midnight{std::chrono::hours(24 * 20001)};
  ASSERT_TRUE(spend.reserve(midnight - seconds(1), 100'000'000));
  spend.settle(midnight + seconds(1), 100'000'000, 300'000'000);
  EXPECT_TRUE(spend.fits(midnight + seconds(2), 700'000'000));  // the new day holds 0.3
  EXPECT_FALSE(spend.fits(midnight + seconds(2), 700'000'001));
}

}  // namespace
}  // namespace failover
