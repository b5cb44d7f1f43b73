#include <failover/options.hpp>
#include <failover/policy/balancer.hpp>

#include "util/hash.hpp"

#include <algorithm>
#include <atomic>
#include <numeric>

namespace failover {

std::string_view to_string(BalanceStrategy strategy) noexcept {
  switch (strategy) {
    case BalanceStrategy::Ordered:
      return "ordered";
    case BalanceStrategy::Weighted:
      return "weighted";
    case BalanceStrategy::RoundRobin:
      return "round_robin";
    case BalanceStrategy::LeastOutstanding:
      return "least_outstanding";
    case BalanceStrategy::ConsistentHash:
      return "consistent_hash";
    case BalanceStrategy::LatencyAware:
      return "latency";
  }
  return "unknown";
}

namespace {

double uniform(const BalanceContext& c) { return c.rng ? c.rng->uniform() : 0.0; }

void identity(std::size_t n, std::vector<std::size_t>& order) {
  order.resize(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
}

class OrderedBalancer final : public Balancer {
 public:
  void order(const std::vector<RouteView>& routes, const BalanceContext&,
             std::vector<std::size_t>& out) override {
    identity(routes.size(), out);
  }
};

// Weighted random order without replacement: each position is drawn in proportion to weight
// among the routes not placed yet.
class WeightedBalancer final : public Balancer {
 public:
  void order(const std::vector<RouteView>& routes, const BalanceContext& c,
             std::vector<std::size_t>& out) override {
    identity(routes.size(), out);
    for (std::size_t placed = 0; placed + 1 < out.size(); ++placed) {
      double total = 0;
      for (std::size_t i = placed; i < out.size(); ++i) total += routes[out[i]].weight;
      double draw = uniform(c) * total;
      std::size_t pick = out.size() - 1;
      for (std::size_t i = placed; i < out.size(); ++i) {
        draw -= routes[out[i]].weight;
        if (draw < 0) {
          pick = i;
          break;
        }
      }
      std::swap(out[placed], out[pick]);
    }
  }
};

class RoundRobinBalancer final : public Balancer {
 public:
  void order(const std::vector<RouteView>& routes, const BalanceContext&,
             std::vector<std::size_t>& out) override {
    identity(routes.size(), out);
    if (out.empty()) return;
    std::size_t start = next_.fetch_add(1, std::memory_order_relaxed) % out.size();
    std::rotate(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(start), out.end());
  }

 private:
  std::atomic<std::size_t> next_{0};
};

// Fewest in flight first; ties broken at random so equal routes share the load.
class LeastOutstandingBalancer final : public Balancer {
 public:
  void order(const std::vector<RouteView>& routes, const BalanceContext& c,
             std::vector<std::size_t>& out) override {
    identity(routes.size(), out);
    std::vector<double> tie(routes.size());
    for (double& t : tie) t = uniform(c);
    std::sort(out.begin(), out.end(), [&](std::size_t a, std::size_t b) {
      if (routes[a].in_flight != routes[b].in_flight) {
        return routes[a].in_flight < routes[b].in_flight;
      }
      return tie[a] < tie[b];
    });
  }
};

// A hash ring with virtual nodes (kPointsPerWeight per unit of weight). A user's owner is the
// first node clockwise from hash(user); the routes after it on the ring come next, so when the
// owner cannot serve, the next ring node does. Adding a route moves only the keys it takes over.
class ConsistentHashBalancer final : public Balancer {
 public:
  static constexpr int kPointsPerWeight = 160;

  explicit ConsistentHashBalancer(const std::vector<Route>& routes) : fallback_() {
    for (std::size_t i = 0; i < routes.size(); ++i) {
      const std::string id = routes[i].endpoint + "/" + routes[i].model;
      for (int p = 0; p < kPointsPerWeight * std::max(1, routes[i].weight); ++p) {
        ring_.emplace_back(detail::stable_hash(id + "#" + std::to_string(p)), i);
      }
    }
    std::sort(ring_.begin(), ring_.end());
  }

  void order(const std::vector<RouteView>& routes, const BalanceContext& c,
             std::vector<std::size_t>& out) override {
    if (c.user.empty()) return fallback_.order(routes, c, out);  // nothing to be sticky to
    out.clear();
    std::vector<bool> seen(routes.size(), false);
    auto it = std::lower_bound(ring_.begin(), ring_.end(),
                               std::make_pair(detail::stable_hash(c.user), std::size_t{0}));
    for (std::size_t step = 0; step < ring_.size() && out.size() < routes.size(); ++step) {
      if (it == ring_.end()) it = ring_.begin();
      std::size_t route = it->second;
      if (!seen[route]) {
        seen[route] = true;
        out.push_back(route);
      }
      ++it;
    }
  }

 private:
  std::vector<std::pair<std::uint64_t, std::size_t>> ring_;
  WeightedBalancer fallback_;
};

// Power of two choices: two routes drawn at random, the one with the lower latency EWMA first
// (a route with no latency yet counts as fastest, so new routes get explored); the rest by EWMA.
class LatencyAwareBalancer final : public Balancer {
 public:
  void order(const std::vector<RouteView>& routes, const BalanceContext& c,
             std::vector<std::size_t>& out) override {
    identity(routes.size(), out);
    const std::size_t n = out.size();
    if (n < 2) return;
    std::size_t a = static_cast<std::size_t>(uniform(c) * static_cast<double>(n)) % n;
    std::size_t b = static_cast<std::size_t>(uniform(c) * static_cast<double>(n - 1)) % (n - 1);
    if (b >= a) ++b;
    std::size_t first = routes[b].ewma_latency < routes[a].ewma_latency ? b : a;
    std::swap(out[0], out[first]);
    std::sort(out.begin() + 1, out.end(), [&](std::size_t x, std::size_t y) {
      return routes[x].ewma_latency < routes[y].ewma_latency;
    });
  }
};

}  // namespace

std::unique_ptr<Balancer> make_balancer(BalanceStrategy strategy,
                                        const std::vector<Route>& routes) {
  switch (strategy) {
    case BalanceStrategy::Ordered:
      return std::make_unique<OrderedBalancer>();
    case BalanceStrategy::Weighted:
      return std::make_unique<WeightedBalancer>();
    case BalanceStrategy::RoundRobin:
      return std::make_unique<RoundRobinBalancer>();
    case BalanceStrategy::LeastOutstanding:
      return std::make_unique<LeastOutstandingBalancer>();
    case BalanceStrategy::ConsistentHash:
      return std::make_unique<ConsistentHashBalancer>(routes);
    case BalanceStrategy::LatencyAware:
      return std::make_unique<LatencyAwareBalancer>();
  }
  return std::make_unique<OrderedBalancer>();
}

}  // namespace failover
