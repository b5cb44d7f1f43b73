// Route state shared through a StateStore: two clients on one in-process store (as two
// processes would share Redis), a fake transport and one manual clock. The store is read on a
// background thread, so each test waits (bounded) for the other client to see what changed.

#include "fake_client_test.hpp"
#include "store_contract.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <future>
#include <map>
#include <sstream>
#include <thread>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::eventually;
using testing::outcomes;
using testing::ping;
using testing::Strings;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";

struct SharedStateTest : testing::FakeClientTest {
  std::shared_ptr<StateStore> store = make_memory_store();

  ClientOptions options() {
    ClientOptions o =
        fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{{"a", "m"}, {"b", "m"}}}});
    CircuitBreakerOptions breaker;
    breaker.consecutive_failures = 1;
    breaker.open_duration = seconds(5);
    o.circuit_breaker = DefaultCircuitBreaker::factory(breaker);
    o.state.store = store;
    o.state.sync_interval = milliseconds(5);
    return o;
  }
  static BreakerState state_of(const Client& c, const std::string& endpoint) {
    for (const RouteHealth& h : c.health().routes) {
      if (h.route.endpoint == endpoint) return h.state;
    }
    return BreakerState::Closed;
  }
};

TEST_F(SharedStateTest, ABreakerTrippedInOneClientHoldsTheRouteInTheOther) {
  fake->sequence(testing::chat_url(kA), {testing::status(503), testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client first(options());
  Client second(options());
  auto r = first.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
  ASSERT_TRUE(eventually([&] { return state_of(second, "a") == BreakerState::Open; }));
  // The second client never asks a.
  auto again = second.chat(ping());
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(outcomes(again->attempts), (Strings{"b:success"}));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
  // The probe is the first client's: the second waits up to 10 s past the open period.
  const std::optional<TimePoint> reopens = first.health().routes[0].reopens_at;
  ASSERT_TRUE(reopens);
  EXPECT_EQ(second.health().routes[0].reopens_at, *reopens + seconds(10));
  clock->advance(*reopens - clock->now());
  EXPECT_EQ(state_of(second, "a"), BreakerState::Open);
  auto probe = first.chat(ping());  // the half-open probe passes...
  ASSERT_TRUE(probe);
  EXPECT_EQ(probe->served_by.endpoint, "a");
  // ...and the fleet hears of it.
  ASSERT_TRUE(eventually([&] { return state_of(second, "a") == BreakerState::Closed; }));
  auto after = second.chat(ping());
  ASSERT_TRUE(after);
  EXPECT_EQ(after->served_by.endpoint, "a");
}

TEST_F(SharedStateTest, WithoutAVerdictTheHoldEndsAfterTheProbeWindow) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(options());
  store->route_opened("a/m", clock->wall_now() + seconds(5));  // another process's trip
  ASSERT_TRUE(eventually([&] { return state_of(client, "a") == BreakerState::Open; }));
  clock->advance(seconds(14));
  EXPECT_EQ(state_of(client, "a"), BreakerState::Open);
  clock->advance(seconds(1));
  EXPECT_EQ(state_of(client, "a"), BreakerState::Closed);
}

TEST_F(SharedStateTest, AProbePassingElsewhereEndsTheHold) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(options());
  store->route_opened("a/m", clock->wall_now() + seconds(60));
  ASSERT_TRUE(eventually([&] { return state_of(client, "a") == BreakerState::Open; }));
  store->route_closed("a/m");
  ASSERT_TRUE(eventually([&] { return state_of(client, "a") == BreakerState::Closed; }));
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->served_by.endpoint, "a");
}

TEST_F(SharedStateTest, AProbePassingHereClosesTheRouteForTheFleet) {
  fake->sequence(testing::chat_url(kA), {testing::status(503), testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client client(options());
  ASSERT_TRUE(client.chat(ping()));
  ASSERT_TRUE(eventually([&] { return store->routes({"a/m"})[0].open_until.has_value(); }));
  clock->advance(seconds(5));
  auto r = client.chat(ping());  // the half-open probe, which passes
  ASSERT_TRUE(r);
  EXPECT_EQ(r->served_by.endpoint, "a");
  EXPECT_TRUE(eventually([&] { return !store->routes({"a/m"})[0].open_until.has_value(); }));
}

TEST_F(SharedStateTest, ARateLimitCooldownIsShared) {
  fake->sequence(testing::chat_url(kA), {testing::status(429, "", {{"retry-after", "30"}})});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client first(options());
  Client second(options());
  ASSERT_TRUE(first.chat(ping()));
  ASSERT_TRUE(eventually([&] {
    const HealthSnapshot h = second.health();
    return h.routes[0].cooldown_until && *h.routes[0].cooldown_until > clock->now();
  }));
  auto r = second.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"b:success"}));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
}

TEST(MemoryStore, BudgetSpendAndReservationsFollowTheContract) {
  testing::check_spend_contract(*make_memory_store());
}

TEST(MemoryStore, RateLimitBucketsFollowTheContract) {
  testing::check_bucket_contract(*make_memory_store());
}

TEST_F(SharedStateTest, TwoClientsShareOneBudgetAndALaterOneIsRefusedBeforeAnyTraffic) {
  // A call is estimated at 7 tokens (the 1-token prompt and the model's 6 output tokens), 7e6
  // nano-dollars, and costs 7: two fit in 14e6.
  auto budgeted = [&] {
    ClientOptions o = options();
    o.priority = {Tier{{{"a", "m"}}}};
    o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};
    o.prices["m"].output_tokens = 6;
    o.budget.usd_per_day = 0.014;
    return o;
  };
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client first(budgeted());
  Client second(budgeted());
  ASSERT_TRUE(first.chat(ping()));
  ASSERT_TRUE(second.chat(ping()));
  ASSERT_TRUE(eventually([&] { return store->spend(clock->wall_now()).day_nanos == 14'000'000; }));
  EXPECT_EQ(store->spend(clock->wall_now()).held_nanos, 0);
  for (Client* c : {&first, &second}) {
    auto r = c->chat(ping());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  }
  Client third(budgeted());  // reads the fleet's spend before its first call
  auto r = third.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_TRUE(r.error().attempts().empty());
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 2);
}

TEST_F(SharedStateTest, AReservationInFlightElsewhereHoldsTheBudget) {
  ClientOptions o = options();
  o.priority = {Tier{{{"a", "m"}}}};
  o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};
  o.prices["m"].output_tokens = 1;  // an estimate of 2 tokens, 2e6
  o.budget.usd_per_day = 0.003;     // room for one estimate, not two
  Client first(o);
  Client second(o);
  // first's call is in flight (its answer waits on the test) when second asks.
  std::promise<void> answer;
  std::shared_future<void> answered = answer.get_future().share();
  std::atomic<bool> asked{false};
  fake->on(testing::chat_url(kA), [&](const HttpRequest&) {
    asked = true;
    answered.wait();
    return testing::ok("a");
  });
  auto pending = std::async(std::launch::async, [&] { return first.chat(ping()); });
  ASSERT_TRUE(eventually([&] { return asked.load(); }));
  EXPECT_EQ(store->spend(clock->wall_now()).held_nanos, 2'000'000);
  auto refused = second.chat(ping());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), ErrorKind::BudgetExceeded);
  answer.set_value();
  ASSERT_TRUE(pending.get());
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
}

// A call of unknown cost admitted alone (its estimate, a guess, is past the budget's room)
// holds the fleet's whole budget while it is in flight. Its settlement goes out before the call
// returns, not at the next round: the calls waiting on it, here and elsewhere, must see the room
// it leaves the moment this process does.
TEST_F(SharedStateTest, ACallAdmittedAloneIsSettledWithTheFleetBeforeItReturns) {
  ClientOptions o = options();
  o.priority = {Tier{{{"a", "m"}}}};
  o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};  // no output cap: 4096 tokens guessed
  o.budget.usd_per_day = 0.014;
  o.state.sync_interval = std::chrono::hours(1);  // no round within the test
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  const SharedSpend fleet = store->spend(clock->wall_now());
  EXPECT_EQ(fleet.held_nanos, 0);
  EXPECT_EQ(fleet.day_nanos, 7'000'000);
}

TEST_F(SharedStateTest, TwoClientsShareAnEndpointsRequestsPerMinute) {
  ClientOptions o = options();
  o.endpoints[0].limits.rpm = 3;  // one every 20 s, three at once
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client first(o);
  Client second(o);
  EXPECT_EQ(first.chat(ping())->served_by.endpoint, "a");
  EXPECT_EQ(second.chat(ping())->served_by.endpoint, "a");
  EXPECT_EQ(first.chat(ping())->served_by.endpoint, "a");
  // The fleet's three are spent, though each client took fewer than its own three.
  EXPECT_EQ(second.chat(ping())->served_by.endpoint, "b");
  EXPECT_EQ(first.chat(ping())->served_by.endpoint, "b");
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 3);
  clock->advance(seconds(20));
  EXPECT_EQ(second.chat(ping())->served_by.endpoint, "a");
  EXPECT_EQ(first.chat(ping())->served_by.endpoint, "b");
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 4);
}

struct SharedCanaryTest : SharedStateTest {
  ClientOptions canary_options() {
    ClientOptions o = options();
    o.priority = {Tier{{{"a", "m"}}}};
    o.canary.candidate = RouteRef{"b", "m"};
    o.canary.steps = {50, 100};
    o.canary.step = seconds(60);
    o.canary.rollback.min_calls = 1;
    return o;
  }
  static CanaryStatus canary_of(const Client& c) { return *c.canary(); }
};

TEST_F(SharedCanaryTest, ARollbackInOneClientStopsTheCandidateInAll) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::status(503)});
  ClientOptions o = canary_options();
  o.canary.steps = {100};
  Client first(o);
  Client second(o);
  auto r = first.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"b:overloaded", "a:success"}));
  EXPECT_EQ(canary_of(first).state, CanaryState::RolledBack);
  ASSERT_TRUE(eventually([&] { return canary_of(second).state == CanaryState::RolledBack; }));
  EXPECT_EQ(canary_of(second).percent, 0);
  EXPECT_EQ(canary_of(second).rollbacks, 1u);
  EXPECT_NE(canary_of(second).reason.find("1 error in 1 call of step 1 (100 %)"), std::string::npos)
      << canary_of(second).reason;
  for (int i = 0; i < 5; ++i) {
    auto again = second.chat(ping());
    ASSERT_TRUE(again);
    EXPECT_EQ(outcomes(again->attempts), (Strings{"a:success"}));
  }
  Client third(o);  // starts from the fleet's verdict
  EXPECT_EQ(canary_of(third).state, CanaryState::RolledBack);
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 1);
}

TEST_F(SharedCanaryTest, AStepAndCommandsByHandHoldForTheFleetAndUsersStaySticky) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client first(canary_options());
  Client second(canary_options());
  // At 50 %, both clients send the same users to the candidate.
  for (int u = 0; u < 20; ++u) {
    CallOptions co;
    co.user = "user-" + std::to_string(u);
    auto one = first.chat(ping(), co);
    auto other = second.chat(ping(), co);
    ASSERT_TRUE(one && other);
    EXPECT_EQ(one->served_by.endpoint, other->served_by.endpoint) << co.user;
  }
  clock->advance(seconds(60));
  EXPECT_EQ(canary_of(first).percent, 100);  // the step held: first advances...
  ASSERT_TRUE(eventually([&] { return canary_of(second).percent == 100; }));  // ...for all
  EXPECT_EQ(canary_of(second).step, 1u);
  EXPECT_TRUE(second.canary_pause());
  ASSERT_TRUE(eventually([&] { return canary_of(first).state == CanaryState::Paused; }));
  EXPECT_EQ(canary_of(first).reason, "paused by hand");
  EXPECT_TRUE(first.canary_rollback("bad answers in review"));
  ASSERT_TRUE(eventually([&] { return canary_of(second).state == CanaryState::RolledBack; }));
  EXPECT_EQ(canary_of(second).reason, "bad answers in review");
  EXPECT_TRUE(second.canary_resume());  // starts over from the first step, everywhere
  ASSERT_TRUE(eventually([&] { return canary_of(first).state == CanaryState::Running; }));
  EXPECT_EQ(canary_of(first).percent, 50);
  const SharedCanary fleet = store->canary("b/m");
  EXPECT_EQ(fleet.state, CanaryState::Running);
  EXPECT_EQ(fleet.step, 0u);
  EXPECT_GE(fleet.generation, 3u);  // the pause, the rollback, the resume (and the advance)
}

// Forwards every call to an in-process store; a test overrides what it changes.
struct ForwardingStore : StateStore {
  std::shared_ptr<StateStore> inner = make_memory_store();
  void route_opened(const std::string& r, WallTime t) override { inner->route_opened(r, t); }
  void route_closed(const std::string& r) override { inner->route_closed(r); }
  void route_cooling(const std::string& r, WallTime t) override { inner->route_cooling(r, t); }
  std::vector<SharedRoute> routes(const std::vector<std::string>& names) override {
    return inner->routes(names);
  }
  void reset_route(const std::string& r) override { inner->reset_route(r); }
  std::string describe() const override { return inner->describe(); }
  bool reserve_spend(const std::string& h, WallTime now, std::int64_t nanos, const SpendCaps& caps,
                     WallTime alive) override {
    return inner->reserve_spend(h, now, nanos, caps, alive);
  }
  void settle_spend(const std::string& h, WallTime now, std::int64_t released,
                    std::int64_t spent) override {
    inner->settle_spend(h, now, released, spent);
  }
  void keep_holder(const std::string& h, WallTime alive,
                   std::optional<std::int64_t> held) override {
    inner->keep_holder(h, alive, held);
  }
  SharedSpend spend(WallTime now) override { return inner->spend(now); }
  void reset_spend(WallTime now) override { inner->reset_spend(now); }
  SharedCanary canary(const std::string& c) override { return inner->canary(c); }
  std::uint64_t publish_canary(const std::string& c, const SharedCanary& next,
                               std::optional<std::uint64_t> expected) override {
    return inner->publish_canary(c, next, expected);
  }
  Permits take_permits(const std::string& e, WallTime now, const BucketLimits& l, double tokens,
                       int count) override {
    return inner->take_permits(e, now, l, tokens, count);
  }
  void return_permit(const std::string& e, WallTime now, const BucketLimits& l, double requests,
                     double tokens) override {
    inner->return_permit(e, now, l, requests, tokens);
  }
};

// A store that is down: every call throws.
struct DownStore final : ForwardingStore {
  std::atomic<int> calls{0};
  [[noreturn]] void down() {
    ++calls;
    throw StateStoreError("redis://127.0.0.1:1/0: Connection refused");
  }
  void route_opened(const std::string&, WallTime) override { down(); }
  void route_closed(const std::string&) override { down(); }
  void route_cooling(const std::string&, WallTime) override { down(); }
  std::vector<SharedRoute> routes(const std::vector<std::string>&) override { down(); }
  void reset_route(const std::string&) override { down(); }
  std::string describe() const override { return "redis://127.0.0.1:1/0"; }
  bool reserve_spend(const std::string&, WallTime, std::int64_t, const SpendCaps&,
                     WallTime) override {
    down();
  }
  void settle_spend(const std::string&, WallTime, std::int64_t, std::int64_t) override { down(); }
  void keep_holder(const std::string&, WallTime, std::optional<std::int64_t>) override { down(); }
  SharedSpend spend(WallTime) override { down(); }
  void reset_spend(WallTime) override { down(); }
  Permits take_permits(const std::string&, WallTime, const BucketLimits&, double, int) override {
    down();
  }
  void return_permit(const std::string&, WallTime, const BucketLimits&, double, double) override {
    down();
  }
  SharedCanary canary(const std::string&) override { down(); }
  std::uint64_t publish_canary(const std::string&, const SharedCanary&,
                               std::optional<std::uint64_t>) override {
    down();
  }
};

TEST_F(SharedStateTest, AStoreThatIsDownNeverStopsACallAndIsReportedOnce) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  auto down = std::make_shared<DownStore>();
  std::ostringstream log;
  ClientOptions o = options();
  o.state.store = down;
  o.logger = std::make_shared<spdlog::logger>(
      "state", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  Client client(o);
  for (int i = 0; i < 3; ++i) {
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->served_by.endpoint, "b");
  }
  EXPECT_GE(down->calls.load(), 1);
  const std::string text = log.str();
  const std::string said = "the shared state store redis://127.0.0.1:1/0 is unreachable";
  ASSERT_NE(text.find(said), std::string::npos) << text;
  EXPECT_EQ(text.find(said), text.rfind(said));  // once per outage
  EXPECT_NE(client.metrics_text().find("failover_state_store_errors_total "), std::string::npos);
  EXPECT_EQ(client.metrics_text().find("failover_state_store_errors_total 0\n"), std::string::npos);
}

// A store too busy with this process's other calls to take a reservation within the call's
// limit is not down: that call decides on what this process knows, and the store stays in use.
TEST_F(SharedStateTest, AStoreTooBusyForOneCallIsNotDown) {
  struct BusyStore final : ForwardingStore {
    std::atomic<int> refused{0};
    bool reserve_spend(const std::string&, WallTime, std::int64_t, const SpendCaps&,
                       WallTime) override {
      ++refused;
      throw StateBusy("redis://127.0.0.1:6379/0: busy: the connection was not free within 10 ms");
    }
  };
  auto busy = std::make_shared<BusyStore>();
  std::ostringstream log;
  ClientOptions o = options();
  o.priority = {Tier{{{"a", "m"}}}};
  o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};
  o.prices["m"].output_tokens = 6;
  o.budget.usd_per_day = 1;
  o.state.store = busy;
  o.logger = std::make_shared<spdlog::logger>(
      "state", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(o);
  for (int i = 0; i < 2; ++i) {
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
  }
  EXPECT_EQ(busy->refused.load(), 2);  // asked each time: busy is not an outage to wait out
  EXPECT_EQ(log.str().find("unreachable"), std::string::npos) << log.str();
}

TEST_F(SharedStateTest, RefusedValuesAreLoggedAndNotTrusted) {
  struct GarbageStore final : ForwardingStore {
    std::vector<SharedRoute> routes(const std::vector<std::string>& names) override {
      std::vector<SharedRoute> out(names.size());
      out[0].refused = "open_until is not a time in ms (\"soon\")";
      return out;
    }
  };
  std::ostringstream log;
  ClientOptions o = options();
  o.state.store = std::make_shared<GarbageStore>();
  o.logger = std::make_shared<spdlog::logger>(
      "state", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(o);
  EXPECT_NE(log.str().find("shared state of route a/m refused: open_until is not a time in ms"),
            std::string::npos)
      << log.str();
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->served_by.endpoint, "a");
}

TEST_F(SharedStateTest, PermitsComeALeaseAtATimeAndWhatIsLeftGoesBack) {
  struct CountingStore final : ForwardingStore {
    std::atomic<int> takes{0};
    Permits take_permits(const std::string& e, WallTime now, const BucketLimits& l, double tokens,
                         int count) override {
      ++takes;
      EXPECT_EQ(count, 10);  // a tenth of a second of 6000 a minute
      return inner->take_permits(e, now, l, tokens, count);
    }
    void return_permit(const std::string& e, WallTime now, const BucketLimits& l, double requests,
                       double tokens) override {
      returned += requests;
      inner->return_permit(e, now, l, requests, tokens);
    }
    double returned = 0;  // written by the client's sync thread, read after it ended
  };
  auto counting = std::make_shared<CountingStore>();
  ClientOptions o = options();
  o.state.store = counting;
  o.endpoints[0].limits.rpm = 6000;
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  {
    Client client(o);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(client.chat(ping())->served_by.endpoint, "a");
    EXPECT_EQ(counting->takes.load(), 1);  // one round trip for three calls
  }                                        // the client ends: the 7 permits it did not use go back
  EXPECT_EQ(counting->returned, 7.0);
}

TEST_F(SharedStateTest, ASettlementThatTimedOutStillReachesTheFleetAsTheClientEnds) {
  // The one settlement a call sends itself (it was admitted alone) meets a store slower than
  // a call's limit: the store counts as unreachable, and the settlement waits for a round. The
  // client ends before the next attempt: its last round must still try, or the fleet holds the
  // reservation until this holder expires and refuses everyone meanwhile.
  struct SlowOnceStore final : ForwardingStore {
    std::atomic<int> slow{1};
    void settle_spend(const std::string& h, WallTime now, std::int64_t released,
                      std::int64_t spent) override {
      if (slow.fetch_sub(1) > 0) {
        throw StateStoreError("redis://127.0.0.1:6379/0: no whole reply within 10 ms");
      }
      inner->settle_spend(h, now, released, spent);
    }
  };
  auto slow = std::make_shared<SlowOnceStore>();
  ClientOptions o = options();
  o.priority = {Tier{{{"a", "m"}}}};
  o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};  // no output cap: admitted alone
  o.budget.usd_per_day = 0.014;
  o.state.store = slow;
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  {
    Client client(o);
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
  }
  const SharedSpend fleet = slow->inner->spend(clock->wall_now());
  EXPECT_EQ(fleet.held_nanos, 0);
  EXPECT_EQ(fleet.day_nanos, 7'000'000);
}

TEST_F(SharedStateTest, SpendSettledWhileTheFleetsSpendIsBeingReadIsNotForgotten) {
  // The state thread reads the fleet's spend; before it applies what it read, a call admitted
  // alone settles with the store directly. Then the store goes down: the process decides on
  // its own view, which must still hold that call's spend.
  struct GatedStore final : ForwardingStore {
    std::mutex m;
    std::condition_variable cv;
    bool armed = false, inside = false, released = false, down = false;
    std::atomic<int> failed_reads{0};
    SharedSpend spend(WallTime now) override {
      {
        std::unique_lock<std::mutex> lock(m);
        if (down) {
          ++failed_reads;
          throw StateStoreError("redis://127.0.0.1:6379/0: connection reset");
        }
      }
      const SharedSpend read = inner->spend(now);
      std::unique_lock<std::mutex> lock(m);
      if (armed) {
        armed = false;
        inside = true;
        cv.notify_all();
        cv.wait_for(lock, seconds(10), [&] { return released; });
        down = true;  // the store fails from the next round on
      }
      return read;
    }
  };
  auto gated = std::make_shared<GatedStore>();
  ClientOptions o = options();
  o.priority = {Tier{{{"a", "m"}}}};
  o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};  // no output cap: admitted alone
  o.budget.usd_per_day = 0.007;                              // a call costs 7e6: all of it
  o.state.store = gated;
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(o);
  {
    std::unique_lock<std::mutex> lock(gated->m);
    gated->armed = true;
    ASSERT_TRUE(gated->cv.wait_for(lock, seconds(10), [&] { return gated->inside; }));
  }
  auto r = client.chat(ping());  // settled with the fleet before it returns
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(gated->inner->spend(clock->wall_now()).day_nanos, 7'000'000);
  {
    std::lock_guard<std::mutex> lock(gated->m);
    gated->released = true;
  }
  gated->cv.notify_all();
  ASSERT_TRUE(eventually([&] { return gated->failed_reads.load() > 0; }));  // the store is down
  auto again = client.chat(ping());  // decided on what the process knows: the day is spent
  ASSERT_FALSE(again) << "admitted again: the process forgot the 7e6 it spent";
  EXPECT_EQ(again.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
}

// ---- Failure windows kept for the fleet ----------------------------------------------------

// A store that keeps windows of calls, as Redis does (the memory store keeps none).
struct WindowStore final : ForwardingStore {
  std::mutex mutex;
  std::map<std::string, std::vector<bool>> windows;
  std::atomic<int> appends{0};
  std::optional<std::vector<bool>> record_calls(const std::string& route,
                                                const std::vector<bool>& calls, std::size_t keep,
                                                Duration ttl) override {
    EXPECT_EQ(ttl, std::chrono::minutes(10));
    std::lock_guard<std::mutex> lock(mutex);
    ++appends;
    std::vector<bool>& w = windows[route];
    w.insert(w.end(), calls.begin(), calls.end());
    if (w.size() > keep) w.erase(w.begin(), w.end() - static_cast<std::ptrdiff_t>(keep));
    return w;
  }
  std::size_t size_of(const std::string& route) {
    std::lock_guard<std::mutex> lock(mutex);
    return windows[route].size();
  }
  void route_opened(const std::string& r, WallTime t) override {
    forget(r);
    inner->route_opened(r, t);
  }
  void route_closed(const std::string& r) override {
    forget(r);
    inner->route_closed(r);
  }
  void reset_route(const std::string& r) override {
    forget(r);
    inner->reset_route(r);
  }
  void forget(const std::string& r) {
    std::lock_guard<std::mutex> lock(mutex);
    windows.erase(r);
  }
};

TEST(WindowStore, TheTestsStoreOfWindowsFollowsTheContract) {
  WindowStore windows;
  testing::check_window_contract(windows);
}

// Clients standing for short-lived processes (each sends one call, which fails over from a to
// b), with the default breaker: 5 failures in a row open it.
struct FleetWindowTest : SharedStateTest {
  std::shared_ptr<WindowStore> windows = std::make_shared<WindowStore>();
  ClientOptions fleet_options() {
    ClientOptions o = options();
    o.circuit_breaker = DefaultCircuitBreaker::factory();
    o.state.store = windows;
    return o;
  }
  // One process's life: a call, then the client ends (what it learnt goes out as it ends).
  Strings one_process_call() {
    Client process(fleet_options());
    auto r = process.chat(ping());
    EXPECT_TRUE(r) << r.error().message();
    return r ? outcomes(r->attempts) : Strings{};
  }
  std::optional<WallTime> open_until(const std::string& route) {
    return windows->routes({route})[0].open_until;
  }
};

TEST_F(FleetWindowTest, FailuresOfShortLivedProcessesAddUpAndTripTheRouteForTheFleet) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  const Strings failed_over = {"a:overloaded", "b:success"};
  EXPECT_EQ(one_process_call(), failed_over);
  EXPECT_EQ(windows->size_of("a/m"), 1u);  // published as the process ended
  for (int i = 0; i < 3; ++i) EXPECT_EQ(one_process_call(), failed_over);
  EXPECT_FALSE(open_until("a/m"));  // 4 in a row: not yet
  EXPECT_EQ(one_process_call(), failed_over);
  // 5 in a row: the fleet's breaker opened for the default 5 s, and its window starts over.
  ASSERT_TRUE(open_until("a/m"));
  EXPECT_EQ(*open_until("a/m"), std::chrono::time_point_cast<std::chrono::milliseconds>(
                                    clock->wall_now() + seconds(5)));
  EXPECT_EQ(windows->size_of("a/m"), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(one_process_call(), (Strings{"b:success"}));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 5);
}

TEST_F(FleetWindowTest, TheFailureRateOverTheFleetsLastCallsTripsItToo) {
  // Every other request to a fails: never two failures in a row, but half of the fleet's calls
  // on a fail. With the 10th call (min_calls), 5 of 10 open it.
  std::atomic<int> requests{0};
  fake->on(testing::chat_url(kA), [&](const HttpRequest&) {
    return requests++ % 2 == 0 ? testing::status(503) : testing::ok("a");
  });
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(one_process_call(), (Strings{"a:overloaded", "b:success"}));
    if (i < 4) {
      EXPECT_EQ(one_process_call(), (Strings{"a:success"}));
    }
  }
  EXPECT_FALSE(open_until("a/m"));  // 5 of 9
  EXPECT_EQ(one_process_call(), (Strings{"a:success"}));
  EXPECT_TRUE(open_until("a/m"));  // 5 of 10
  EXPECT_EQ(one_process_call(), (Strings{"b:success"}));
}

TEST_F(FleetWindowTest, AfterItsOpenPeriodTheNextFailureReopensItAndASuccessClosesIt) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  for (int i = 0; i < 5; ++i) one_process_call();
  ASSERT_TRUE(open_until("a/m"));
  // Another process (not the one that tripped it) waits 10 s past the open period for the
  // tripper's verdict, then tries a itself: a failure opens it again, for 8 s (doubled, capped).
  clock->advance(seconds(15));
  EXPECT_EQ(one_process_call(), (Strings{"a:overloaded", "b:success"}));
  ASSERT_TRUE(open_until("a/m"));
  EXPECT_EQ(*open_until("a/m"), std::chrono::time_point_cast<std::chrono::milliseconds>(
                                    clock->wall_now() + seconds(8)));
  // Recovered: after that period the next call passes, and the route is closed for all.
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  clock->advance(seconds(18));
  EXPECT_EQ(one_process_call(), (Strings{"a:success"}));
  EXPECT_FALSE(open_until("a/m"));
  EXPECT_EQ(windows->size_of("a/m"), 0u);
}

TEST_F(FleetWindowTest, ALongLivedProcessThatTrippedItStartsItsOwnCountsOver) {
  // One failure in a short-lived process, four in a worker: the fleet trips at five. The
  // worker's own breaker must not keep its four, or the next failure after the open period
  // would trip it alone, for the first period, instead of the fleet's doubled one.
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  const Strings failed_over = {"a:overloaded", "b:success"};
  EXPECT_EQ(one_process_call(), failed_over);
  Client worker(fleet_options());
  for (int i = 0; i < 4; ++i) {
    auto r = worker.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(outcomes(r->attempts), failed_over);
  }
  ASSERT_TRUE(eventually([&] { return open_until("a/m").has_value(); }));
  const WallTime first = *open_until("a/m");
  EXPECT_EQ(first, std::chrono::time_point_cast<std::chrono::milliseconds>(clock->wall_now() +
                                                                           seconds(5)));
  clock->advance(seconds(5));  // the worker tripped it: its hold ends with the period
  auto r = worker.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), failed_over);
  ASSERT_TRUE(eventually([&] { return open_until("a/m") && *open_until("a/m") > first; }));
  EXPECT_EQ(*open_until("a/m"), std::chrono::time_point_cast<std::chrono::milliseconds>(
                                    clock->wall_now() + seconds(8)));
}

TEST_F(FleetWindowTest, ACallSentBeforeTheFleetsTripDoesNotDecideItsHalfOpen) {
  auto worker = std::make_unique<Client>(fleet_options());
  std::atomic<bool> first{true};
  fake->on(testing::chat_url(kA), [&](const HttpRequest&) {
    if (first.exchange(false)) {
      windows->route_opened("a/m", clock->wall_now() + seconds(5));  // another process's trip
      EXPECT_TRUE(eventually([&] { return state_of(*worker, "a") == BreakerState::Open; }));
      return testing::ok("a", seconds(6));  // the answer comes after the open period
    }
    return testing::status(503);
  });
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  auto r = worker->chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  worker.reset();  // what it learnt goes out as it ends
  EXPECT_TRUE(open_until("a/m").has_value())
      << "the fleet's route was closed by a call sent before its trip";
}

TEST_F(FleetWindowTest, TheMemoryStoreAndAnApplicationsBreakerKeepNoFleetWindow) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  const Strings failed_over = {"a:overloaded", "b:success"};
  auto memory = [&] {
    ClientOptions o = fleet_options();
    o.state.store = store;
    return o;
  };
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(outcomes(Client(memory()).chat(ping()).value().attempts), failed_over);
  }
  EXPECT_FALSE(store->routes({"a/m"})[0].open_until);  // each process counted its own one
  auto own_breaker = [&] {
    ClientOptions o = fleet_options();
    o.circuit_breaker = [](const RouteRef&) { return std::make_unique<DefaultCircuitBreaker>(); };
    return o;
  };
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(outcomes(Client(own_breaker()).chat(ping()).value().attempts), failed_over);
  }
  EXPECT_EQ(windows->appends.load(), 0);  // its thresholds are its own: nothing to count
}

}  // namespace
}  // namespace failover
