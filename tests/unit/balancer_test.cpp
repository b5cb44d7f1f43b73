// Balancers over 10 000 picks with a seeded Rng, and through the client.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <failover/failover.hpp>

#include <gtest/gtest.h>

#include <map>

namespace failover {
namespace {

using std::chrono::milliseconds;
using testing::ping;
using testing::Strings;

std::vector<Route> routes_of(int n, std::vector<int> weights = {}) {
  std::vector<Route> out;
  for (int i = 0; i < n; ++i) {
    Route r{"ep" + std::to_string(i), "m"};
    if (!weights.empty()) r.weight = weights[static_cast<std::size_t>(i)];
    out.push_back(r);
  }
  return out;
}

std::vector<RouteView> views_of(const std::vector<Route>& routes) {
  std::vector<RouteView> out;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    RouteView v;
    v.index = i;
    v.weight = routes[i].weight;
    out.push_back(v);
  }
  return out;
}

std::vector<std::size_t> order(Balancer& b, const std::vector<RouteView>& views, Rng& rng,
                               std::string_view user = {}) {
  BalanceContext c;
  c.rng = &rng;
  c.user = user;
  std::vector<std::size_t> out;
  b.order(views, c, out);
  return out;
}

bool is_permutation_of(const std::vector<std::size_t>& order, std::size_t n) {
  std::vector<bool> seen(n, false);
  for (std::size_t i : order) {
    if (i >= n || seen[i]) return false;
    seen[i] = true;
  }
  return order.size() == n;
}

TEST(Balancer, OrderedKeepsTheListedOrder) {
  SeededRng rng(1);
  auto b = make_balancer(BalanceStrategy::Ordered, routes_of(3));
  EXPECT_EQ(order(*b, views_of(routes_of(3)), rng), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(Balancer, WeightedFollowsTheWeightsWithinTwoPercent) {
  const std::vector<int> weights = {1, 3, 6};
  auto routes = routes_of(3, weights);
  auto views = views_of(routes);
  auto b = make_balancer(BalanceStrategy::Weighted, routes);
  SeededRng rng(42);
  std::map<std::size_t, int> first;
  for (int i = 0; i < 10000; ++i) {
    auto o = order(*b, views, rng);
    ASSERT_TRUE(is_permutation_of(o, 3));
    ++first[o[0]];
  }
  for (std::size_t i = 0; i < 3; ++i) {
    double expected = weights[i] / 10.0;
    EXPECT_NEAR(first[i] / 10000.0, expected, 0.02) << "route " << i;
  }
}

TEST(Balancer, RoundRobinRotatesExactly) {
  auto routes = routes_of(3);
  auto views = views_of(routes);
  auto b = make_balancer(BalanceStrategy::RoundRobin, routes);
  SeededRng rng(1);
  EXPECT_EQ(order(*b, views, rng), (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(order(*b, views, rng), (std::vector<std::size_t>{1, 2, 0}));
  EXPECT_EQ(order(*b, views, rng), (std::vector<std::size_t>{2, 0, 1}));
  std::map<std::size_t, int> first;
  for (int i = 0; i < 9999; ++i) ++first[order(*b, views, rng)[0]];
  EXPECT_EQ(first[0], 3333);
  EXPECT_EQ(first[1], 3333);
  EXPECT_EQ(first[2], 3333);
}

TEST(Balancer, LeastOutstandingFollowsInFlightCounts) {
  auto routes = routes_of(3);
  auto views = views_of(routes);
  auto b = make_balancer(BalanceStrategy::LeastOutstanding, routes);
  SeededRng rng(3);
  views[0].in_flight = 5;
  views[1].in_flight = 0;
  views[2].in_flight = 2;
  EXPECT_EQ(order(*b, views, rng), (std::vector<std::size_t>{1, 2, 0}));
  views[1].in_flight = 9;
  EXPECT_EQ(order(*b, views, rng), (std::vector<std::size_t>{2, 0, 1}));
  // Ties are shared at random: two idle routes each lead about half the time.
  views[0].in_flight = views[1].in_flight = 0;
  views[2].in_flight = 1;
  int zero_first = 0;
  for (int i = 0; i < 10000; ++i) zero_first += order(*b, views, rng)[0] == 0 ? 1 : 0;
  EXPECT_NEAR(zero_first / 10000.0, 0.5, 0.02);
}

TEST(Balancer, ConsistentHashIsStableAndRemapsAboutAQuarterFromThreeToFour) {
  auto three = routes_of(3);
  auto four = routes_of(4);
  auto b3 = make_balancer(BalanceStrategy::ConsistentHash, three);
  auto b4 = make_balancer(BalanceStrategy::ConsistentHash, four);
  SeededRng rng(9);
  int moved = 0;
  std::map<std::size_t, int> owners;
  for (int u = 0; u < 10000; ++u) {
    std::string user = "user-" + std::to_string(u);
    auto before = order(*b3, views_of(three), rng, user);
    ASSERT_TRUE(is_permutation_of(before, 3));
    ASSERT_EQ(order(*b3, views_of(three), rng, user), before);  // stable while nothing changes
    auto after = order(*b4, views_of(four), rng, user);
    ASSERT_TRUE(is_permutation_of(after, 4));
    if (after[0] != before[0]) {
      ++moved;
      EXPECT_EQ(after[0], 3u) << "a user moved to an old route";  // only to the new route
    }
    ++owners[before[0]];
  }
  double fraction = moved / 10000.0;
  EXPECT_GE(fraction, 0.15);
  EXPECT_LE(fraction, 0.35);
  for (const auto& [route, count] : owners) EXPECT_GT(count, 2500) << route;  // roughly even
}

TEST(Balancer, ConsistentHashNextRingNodeServesWhenTheOwnerCannot) {
  auto routes = routes_of(3);
  auto b = make_balancer(BalanceStrategy::ConsistentHash, routes);
  SeededRng rng(2);
  auto o = order(*b, views_of(routes), rng, "alice");
  ASSERT_TRUE(is_permutation_of(o, 3));
  // Removing the owner: alice lands on the second node of her old order.
  std::vector<Route> without;
  for (std::size_t i = 0; i < 3; ++i) {
    if (i != o[0]) without.push_back(routes[i]);
  }
  auto b2 = make_balancer(BalanceStrategy::ConsistentHash, without);
  auto o2 = order(*b2, views_of(without), rng, "alice");
  EXPECT_EQ(without[o2[0]].endpoint, routes[o[1]].endpoint);
}

TEST(Balancer, LatencyAwareUsesPowerOfTwoChoices) {
  auto routes = routes_of(3);
  auto views = views_of(routes);
  views[0].ewma_latency = milliseconds(100);
  views[1].ewma_latency = milliseconds(10);
  views[2].ewma_latency = milliseconds(50);
  auto b = make_balancer(BalanceStrategy::LatencyAware, routes);
  SeededRng rng(5);
  std::map<std::size_t, int> first;
  for (int i = 0; i < 10000; ++i) {
    auto o = order(*b, views, rng);
    ASSERT_TRUE(is_permutation_of(o, 3));
    ++first[o[0]];
  }
  // Of three routes, the fastest is in 2 of the 3 possible pairs, the middle one in 1 of 3
  // (when paired with the slowest), the slowest never wins.
  EXPECT_NEAR(first[1] / 10000.0, 2.0 / 3.0, 0.02);
  EXPECT_NEAR(first[2] / 10000.0, 1.0 / 3.0, 0.02);
  EXPECT_EQ(first[0], 0);
}

// ---- through the client ------------------------------------------------------------------------

struct BalancedClientTest : testing::FakeClientTest {
  ClientOptions options(BalanceStrategy strategy) {
    std::vector<Endpoint> endpoints;
    Tier tier;
    for (const char* name : {"a", "b", "c"}) {
      std::string url = std::string("http://") + name + ".test/v1";
      endpoints.push_back({name, url, std::string("sk-") + name});
      fake->sequence(testing::chat_url(url), {testing::ok(name)});
      tier.routes.push_back({name, "m"});
    }
    tier.balance = strategy;
    ClientOptions o = fake_options(std::move(endpoints), {tier});
    o.rng = std::make_shared<SeededRng>(11);
    return o;
  }
};

TEST_F(BalancedClientTest, RoundRobinSpreadsCallsInTurn) {
  Client client(options(BalanceStrategy::RoundRobin));
  Strings served;
  for (int i = 0; i < 6; ++i) served.push_back(client.chat(ping())->served_by.endpoint);
  EXPECT_EQ(served, (Strings{"a", "b", "c", "a", "b", "c"}));
}

TEST_F(BalancedClientTest, ConsistentHashKeepsEachUserOnOneRouteAndFailsOverOnTheRing) {
  Client client(options(BalanceStrategy::ConsistentHash));
  CallOptions alice;
  alice.user = "alice";
  std::string home = client.chat(ping(), alice)->served_by.endpoint;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(client.chat(ping(), alice)->served_by.endpoint, home);
  // alice's route fails: the next ring node serves her, and still the same one each time.
  fake->sequence(testing::chat_url("http://" + home + ".test/v1"), {testing::status(503)});
  auto r = client.chat(ping(), alice);
  ASSERT_TRUE(r);
  std::string next = r->served_by.endpoint;
  EXPECT_NE(next, home);
  EXPECT_EQ(r->attempts.size(), 2u);
}

TEST_F(BalancedClientTest, WeightedTierServesByWeight) {
  ClientOptions o = options(BalanceStrategy::Weighted);
  o.priority[0].routes[0].weight = 8;
  o.priority[0].routes[1].weight = 1;
  o.priority[0].routes[2].weight = 1;
  Client client(o);
  std::map<std::string, int> served;
  for (int i = 0; i < 2000; ++i) ++served[client.chat(ping())->served_by.endpoint];
  EXPECT_NEAR(served["a"] / 2000.0, 0.8, 0.04);
}

// A user-defined balancer: always the last route first.
class Reverse final : public Balancer {
 public:
  void order(const std::vector<RouteView>& routes, const BalanceContext&,
             std::vector<std::size_t>& out) override {
    out.clear();
    for (std::size_t i = routes.size(); i-- > 0;) out.push_back(i);
  }
};

TEST_F(BalancedClientTest, UserDefinedBalancerIsObeyed) {
  ClientOptions o = options(BalanceStrategy::Ordered);
  o.priority[0].balancer = std::make_shared<Reverse>();
  Client client(o);
  EXPECT_EQ(client.chat(ping())->served_by.endpoint, "c");
}

}  // namespace
}  // namespace failover
