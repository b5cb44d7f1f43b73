// The Redis state store against a redis-server of the test's own on 127.0.0.1: round trips,
// values that are not trusted, an outage and a restart while clients keep serving.

#include "fake_client_test.hpp"
#include "redis_server.hpp"
#include "store_contract.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <thread>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::eventually;
using testing::ping;
using testing::RedisServer;

// One raw command, for what the store itself would never write.
void raw(const RedisServer& redis, const std::vector<std::string>& args) {
  redisContext* c = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(c && !c->err);
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  ASSERT_NE(r, nullptr);
  freeReplyObject(r);
  redisFree(c);
}

long long pttl(const RedisServer& redis, const std::string& key) {
  redisContext* c = redisConnect("127.0.0.1", redis.port());
  auto* r = static_cast<redisReply*>(redisCommand(c, "PTTL %s", key.c_str()));
  long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
  if (r) freeReplyObject(r);
  redisFree(c);
  return v;
}

struct RedisStateTest : ::testing::Test {
  void SetUp() override {
    if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
    redis = std::make_unique<RedisServer>();
  }
  std::shared_ptr<StateStore> store(Duration timeout = milliseconds(200)) {
    RedisStoreOptions o;
    o.url = redis->url();
    o.timeout = timeout;
    return make_redis_store(o);
  }
  std::unique_ptr<RedisServer> redis;
};

TEST_F(RedisStateTest, RoutesRoundTripAndTheLaterTimeWins) {
  auto s = store();
  const WallTime now =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  s->route_opened("a/m", now + seconds(5));
  s->route_opened("a/m", now + seconds(2));  // an earlier time never shortens it
  s->route_cooling("b/m", now + seconds(30));
  std::vector<SharedRoute> got = s->routes({"a/m", "b/m", "c/m"});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].open_until, now + seconds(5));
  EXPECT_FALSE(got[0].cooldown_until);
  EXPECT_EQ(got[1].cooldown_until, now + seconds(30));
  EXPECT_FALSE(got[2].open_until);
  EXPECT_TRUE(got[2].refused.empty());
  // Keys expire a minute after the latest time they hold.
  const long long ttl = pttl(*redis, "failover:v1:route:b/m");
  EXPECT_GT(ttl, 80'000);
  EXPECT_LE(ttl, 90'000);
  s->route_closed("a/m");
  EXPECT_FALSE(s->routes({"a/m"})[0].open_until);
  s->reset_route("b/m");
  EXPECT_FALSE(s->routes({"b/m"})[0].cooldown_until);
}

TEST_F(RedisStateTest, ValuesThatAreNotOursAreRefusedPerKey) {
  auto s = store();
  raw(*redis, {"HSET", "failover:v1:route:a/m", "open_until", "soon"});
  raw(*redis, {"SET", "failover:v1:route:b/m", "not a hash"});
  const WallTime later = std::chrono::system_clock::now() + seconds(9);
  s->route_cooling("c/m", later);
  std::vector<SharedRoute> got = s->routes({"a/m", "b/m", "c/m"});
  EXPECT_FALSE(got[0].open_until);
  EXPECT_EQ(got[0].refused, "open_until is not a time in ms (\"soon\")");
  EXPECT_FALSE(got[1].open_until);
  EXPECT_NE(got[1].refused.find("WRONGTYPE"), std::string::npos) << got[1].refused;
  EXPECT_TRUE(got[2].cooldown_until);  // one bad key spoils no other
  EXPECT_TRUE(got[2].refused.empty());
}

TEST_F(RedisStateTest, BudgetSpendAndReservationsFollowTheContract) {
  auto s = store();
  testing::check_spend_contract(*s);
  // Keys are per UTC period, versioned, and expire: a day's after three days.
  s->settle_spend("h", testing::kNoon, 0, 5);
  const long long day = pttl(*redis, "failover:v1:spend:day:2026-12-01");
  EXPECT_GT(day, 3LL * 24 * 3600 * 1000 - 60000);
  EXPECT_LE(day, 3LL * 24 * 3600 * 1000);
  EXPECT_GT(pttl(*redis, "failover:v1:spend:month:2026-12"), 61LL * 24 * 3600 * 1000);
}

TEST_F(RedisStateTest, RateLimitBucketsFollowTheContract) {
  auto s = store();
  testing::check_bucket_contract(*s);
  EXPECT_GT(pttl(*redis, "failover:v1:limit:r"), 0);
  EXPECT_LE(pttl(*redis, "failover:v1:limit:r"), 61000);
}

TEST_F(RedisStateTest, SpendAndBucketsThatAreNotNumbersAreRefused) {
  auto s = store();
  raw(*redis, {"SET", "failover:v1:spend:day:2026-12-01", "lots"});
  raw(*redis, {"HSET", "failover:v1:limit:e", "requests", "x", "tokens", "1", "at", "1"});
  EXPECT_THROW(s->spend(testing::kNoon), StateStoreError);
  EXPECT_THROW(s->reserve_spend("h", testing::kNoon, 1, SpendCaps{10, std::nullopt},
                                testing::kNoon + seconds(10)),
               StateStoreError);
  try {
    s->take_permits("e", testing::kNoon, BucketLimits{1.0, std::nullopt}, 1, 1);
    ADD_FAILURE() << "a bucket of garbage was trusted";
  } catch (const StateStoreError& e) {
    EXPECT_NE(std::string(e.what()).find("bucket holds something not a number"), std::string::npos)
        << e.what();
  }
  // Nothing else is spoilt.
  EXPECT_EQ(s->take_permits("f", testing::kNoon, BucketLimits{1.0, std::nullopt}, 1, 1).granted, 1);
}

TEST_F(RedisStateTest, TheCanaryRoundTripsAndAStaleAdvanceLosesToANewerChange) {
  auto s = store();
  EXPECT_EQ(s->canary("c/m").generation, 0u);  // never published
  SharedCanary advanced;
  advanced.step = 1;
  EXPECT_EQ(s->publish_canary("c/m", advanced, 0u), 1u);
  EXPECT_EQ(s->publish_canary("c/m", advanced, 0u), 0u);  // another process moved first
  SharedCanary rolled;
  rolled.state = CanaryState::RolledBack;
  rolled.step = 1;
  rolled.reason = "error rate 9.0 % is above 5.0 %";
  EXPECT_EQ(s->publish_canary("c/m", rolled, std::nullopt), 2u);  // a rollback always wins
  const SharedCanary got = s->canary("c/m");
  EXPECT_EQ(got.generation, 2u);
  EXPECT_EQ(got.state, CanaryState::RolledBack);
  EXPECT_EQ(got.step, 1u);
  EXPECT_FALSE(got.promoted);
  EXPECT_EQ(got.reason, "error rate 9.0 % is above 5.0 %");
  EXPECT_TRUE(got.refused.empty());
  EXPECT_GT(pttl(*redis, "failover:v1:canary:c/m"), 30LL * 24 * 3600 * 1000);
  raw(*redis, {"HSET", "failover:v1:canary:c/m", "state", "exploded"});
  const SharedCanary bad = s->canary("c/m");
  EXPECT_EQ(bad.generation, 0u);
  EXPECT_FALSE(bad.refused.empty());
}

TEST_F(RedisStateTest, AStoppedServerIsATypedErrorAndTheStoreReconnects) {
  auto s = store();
  s->route_closed("a/m");
  redis->stop();
  EXPECT_THROW(s->routes({"a/m"}), StateStoreError);
  EXPECT_THROW(s->route_closed("a/m"), StateStoreError);
  redis->start();
  EXPECT_NO_THROW(s->routes({"a/m"}));
}

TEST_F(RedisStateTest, APasswordIsSentAndNeverShown) {
  raw(*redis, {"CONFIG", "SET", "requirepass", "hunter2-secret"});
  RedisStoreOptions o;
  o.url = "redis://:hunter2-secret@127.0.0.1:" + std::to_string(redis->port()) + "/3";
  auto s = make_redis_store(o);
  EXPECT_NO_THROW(s->route_closed("a/m"));
  EXPECT_EQ(s->describe(), "redis://127.0.0.1:" + std::to_string(redis->port()) + "/3");
  o.url = "redis://:wrong@127.0.0.1:" + std::to_string(redis->port()) + "/0";
  try {
    make_redis_store(o)->routes({"a/m"});
    FAIL() << "a wrong password was accepted";
  } catch (const StateStoreError& e) {
    EXPECT_EQ(std::string(e.what()).find("wrong"), std::string::npos) << e.what();
  }
}

struct RedisClientTest : testing::FakeClientTest {
  void SetUp() override {
    if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
    redis = std::make_unique<RedisServer>();
  }
  ClientOptions options() {
    ClientOptions o =
        fake_options({{"a", "http://a.test/v1", "sk-a"}, {"b", "http://b.test/v1", "sk-b"}},
                     {Tier{{{"a", "m"}, {"b", "m"}}}});
    CircuitBreakerOptions breaker;
    breaker.consecutive_failures = 1;
    breaker.open_duration = seconds(5);
    o.circuit_breaker = DefaultCircuitBreaker::factory(breaker);
    RedisStoreOptions r;
    r.url = redis->url();
    r.timeout = milliseconds(100);
    o.state.store = make_redis_store(r);
    o.state.sync_interval = milliseconds(10);
    return o;
  }
  std::unique_ptr<RedisServer> redis;
};

TEST_F(RedisClientTest, AnOutageNeverFailsACallAndTheStateResyncsAfterARestart) {
  fake->sequence(testing::chat_url("http://a.test/v1"), {testing::status(503)});
  fake->sequence(testing::chat_url("http://b.test/v1"), {testing::ok("b")});
  Client client(options());
  redis->stop();
  for (int i = 0; i < 3; ++i) {  // the first trips a's breaker while the store is down
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->served_by.endpoint, "b");
  }
  ASSERT_TRUE(eventually([&] {
    return client.metrics_text().find("failover_state_store_errors_total 0\n") == std::string::npos;
  }));
  redis->start();  // empty: what the client knows is published again
  RedisStoreOptions r;
  r.url = redis->url();
  auto reader = make_redis_store(r);
  EXPECT_TRUE(eventually([&] { return reader->routes({"a/m"})[0].open_until.has_value(); }));
}

}  // namespace
}  // namespace failover
