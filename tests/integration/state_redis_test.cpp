// The Redis state store against a redis-server of the test's own on 127.0.0.1: round trips,
// values that are not trusted, an outage and a restart while clients keep serving.

#include "fake_client_test.hpp"
#include "loopback.hpp"
#include "redis_server.hpp"
#include "store_contract.hpp"
#include "test_helpers.hpp"

#include "util/utc_date.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::eventually;
using testing::outcomes;
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

// A "Redis" on 127.0.0.1 that answers every connection with `reply`, over and over, one byte
// every `gap`: each read gets a byte well within the socket's timeout, yet no command ends.
class TricklingServer {
 public:
  TricklingServer(std::string reply, Duration gap) : reply_(std::move(reply)), gap_(gap) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(a.sin_port);
    accepter_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c >= 0) writers_.emplace_back([this, c] { trickle(c); });
      }
    });
  }
  ~TricklingServer() {
    stop_ = true;
    accepter_.join();
    for (std::thread& t : writers_) t.join();
    ::close(fd_);
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  void trickle(int c) {
    char sink[4096];
    for (std::size_t i = 0; !stop_; ++i) {
      while (::recv(c, sink, sizeof sink, MSG_DONTWAIT) > 0) {
      }
      if (::send(c, &reply_[i % reply_.size()], 1, MSG_NOSIGNAL) != 1) break;
      for (auto slept = Duration::zero(); slept < gap_ && !stop_; slept += milliseconds(5)) {
        std::this_thread::sleep_for(milliseconds(5));
      }
    }
    ::close(c);
  }
  std::string reply_;
  Duration gap_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accepter_;
  std::vector<std::thread> writers_;  // only the accepter adds to it, joined before they are
};

Duration since(std::chrono::steady_clock::time_point start) {
  return std::chrono::steady_clock::now() - start;
}

// The store's timeout bounds a whole command, not each read: a server that trickles its reply
// fails the command at the timeout.
TEST(RedisStoreTimeout, ATricklingReplyFailsEachCommandAtTheTimeout) {
  TricklingServer slow("*2\r\n$-1\r\n$-1\r\n", milliseconds(150));  // HMGET's reply
  RedisStoreOptions o;
  o.url = slow.url();
  o.timeout = milliseconds(200);
  auto s = make_redis_store(o);
  const auto start = std::chrono::steady_clock::now();
  try {
    s->routes({"a/m", "b/m", "c/m"});  // was 7 s: 16 bytes a reply, 150 ms a byte
    ADD_FAILURE() << "a trickled reply was waited for";
  } catch (const StateStoreError& e) {
    EXPECT_NE(std::string(e.what()).find("no whole reply within 200 ms"), std::string::npos)
        << e.what();
  }
  EXPECT_LT(since(start), seconds(2));
}

TEST(RedisStoreTimeout, AClientOnATricklingStoreIsBuiltWithinTheTimeout) {
  TricklingServer slow("*2\r\n$-1\r\n$-1\r\n", milliseconds(150));
  ClientOptions o;
  o.endpoints = {{"a", "http://127.0.0.1:9/v1", "sk-a"}};
  o.priority = {Tier{{{"a", "m1"}, {"a", "m2"}, {"a", "m3"}}}};
  RedisStoreOptions r;
  r.url = slow.url();
  r.timeout = milliseconds(200);
  o.state.store = make_redis_store(r);
  const auto start = std::chrono::steady_clock::now();
  {
    Client client(o);  // its first round reads the three routes
    EXPECT_LT(since(start), seconds(2));
  }  // and its last round publishes nothing: nothing is pending
  EXPECT_LT(since(start), seconds(3));
}

// What a call waits for is bounded by call_timeout, including the wait for the connection
// while other calls use it.
TEST(RedisStoreTimeout, CallsQueuedOnASlowStoreEachWaitAtMostTheCallTimeout) {
  TricklingServer slow(":1\r\n", milliseconds(80));  // 320 ms a reply, 80 ms a read
  RedisStoreOptions o;
  o.url = slow.url();
  o.call_timeout = milliseconds(100);
  auto s = make_redis_store(o);
  std::vector<std::thread> calls;
  std::atomic<std::int64_t> longest_ms{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < 8; ++i) {
    calls.emplace_back([&] {
      const auto start = std::chrono::steady_clock::now();
      try {
        s->reserve_spend("h", testing::kNoon, 1, SpendCaps{}, testing::kNoon + seconds(10));
      } catch (const StateStoreError&) {
        ++failed;
      }
      const auto ms = std::chrono::duration_cast<milliseconds>(since(start)).count();
      std::int64_t seen = longest_ms.load();
      while (ms > seen && !longest_ms.compare_exchange_weak(seen, ms)) {
      }
    });
  }
  for (std::thread& t : calls) t.join();
  EXPECT_EQ(failed.load(), 8);
  EXPECT_LT(longest_ms.load(), 1000);  // was 8 x 320 ms for the last in the queue
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

TEST_F(RedisStateTest, WindowsOfCallsFollowTheContract) {
  auto s = store();
  testing::check_window_contract(*s);
  // Versioned, and forgotten ten minutes after the last call.
  s->record_calls("a/m", {true}, 5, std::chrono::minutes(10));
  const long long ttl = pttl(*redis, "failover:v1:calls:a/m");
  EXPECT_GT(ttl, 10LL * 60 * 1000 - 60000);
  EXPECT_LE(ttl, 10LL * 60 * 1000);
}

TEST_F(RedisStateTest, AWindowOfCallsThatIsNotZerosAndOnesIsRefused) {
  auto s = store();
  raw(*redis, {"SET", "failover:v1:calls:a/m", "0x1"});
  raw(*redis, {"HSET", "failover:v1:calls:b/m", "f", "1"});
  for (const char* route : {"a/m", "b/m"}) {
    EXPECT_THROW(s->record_calls(route, {true}, 5, std::chrono::minutes(10)), StateRefused)
        << route;
  }
  s->route_opened("a/m", testing::kNoon);  // a trip clears it
  EXPECT_EQ(s->record_calls("a/m", {true}, 5, std::chrono::minutes(10)), std::vector<bool>{true});
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

// A key of the budget or the canary that holds garbage costs only itself: breakers and
// cooldowns are still shared.
TEST_F(RedisClientTest, GarbageInTheSpendAndCanaryKeysStillSharesTheBreakers) {
  fake->sequence(testing::chat_url("http://a.test/v1"), {testing::ok("a")});
  fake->sequence(testing::chat_url("http://b.test/v1"), {testing::ok("b")});
  ClientOptions o = options();
  o.prices["m"] = ModelPrice{1.0, std::nullopt, 1.0};
  o.budget.usd_per_day = 100;
  o.canary.candidate = RouteRef{"b", "m2"};
  const WallTime wall = clock->wall_now();
  raw(*redis, {"SET", "failover:v1:spend:day:" + detail::day_text(wall), "lots"});
  raw(*redis, {"SET", "failover:v1:canary:b/m2", "not a hash"});
  Client client(o);
  RedisStoreOptions r;
  r.url = redis->url();
  auto other = make_redis_store(r);  // another process trips a's breaker
  other->route_opened("a/m", wall + seconds(60));
  ASSERT_TRUE(eventually([&] {
    auto got = client.chat(ping());
    return got && got->served_by.endpoint == "b";
  }));
  auto served = client.chat(ping());
  ASSERT_TRUE(served) << served.error().message();
  EXPECT_EQ(served->served_by.endpoint, "b");
  EXPECT_EQ(outcomes(served->attempts), (testing::Strings{"b:success"}));  // a is held
}

// ---- Budgets without an output cap -----------------------------------------------------------

// 64 threads x 4 calls without max_tokens against $0.010 a day at $100 per million tokens;
// each answer is 1 prompt and 16 completion tokens, $0.0017. Returns what was spent.
double race_uncapped_calls(std::shared_ptr<StateStore> store) {
  testing::LoopbackServer server;
  server.on_chat([](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(milliseconds(20));  // calls overlap
    res.set_content(
        R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"sixteen tokens"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":16,"total_tokens":17}})",
        "application/json");
  });
  server.start();
  testing::widen_backlog(server.port());
  ClientOptions o;
  o.endpoints = {{"priced", server.base_url(), "sk-priced"}};
  o.endpoints[0].streaming = false;
  o.priority = {Tier{{{"priced", "m"}}}};
  o.prices["m"] = ModelPrice{100.0, std::nullopt, 100.0};
  o.budget.usd_per_day = 0.010;
  o.state.store = std::move(store);
  Client client(o);
  const testing::BudgetRace race = testing::race_for_the_budget(client, ping(), 64, 4);  // uncapped
  EXPECT_EQ(race.served + race.refused, 256);
  EXPECT_GE(race.served, 5);  // the budget's worth: once answers are seen, estimates are exact
  return client.usage_report().cost_usd;
}

TEST(UncappedBudget, ParallelCallsSpendAtMostOneAnswerPastTheBudget) {
  EXPECT_LE(race_uncapped_calls(nullptr), 0.010 + 0.0017 + 1e-12);
}

TEST_F(RedisClientTest, ParallelUncappedCallsSpendAtMostOneAnswerPastTheFleetsBudget) {
  RedisStoreOptions r;
  r.url = redis->url();
  EXPECT_LE(race_uncapped_calls(make_redis_store(r)), 0.010 + 0.0017 + 1e-12);
}

}  // namespace
}  // namespace failover
