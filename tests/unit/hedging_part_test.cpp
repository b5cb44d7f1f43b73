// When a call's next hedge is due, on its own, to exact values.

#include "core/admission.hpp"
#include "core/attempt_lease.hpp"
#include "core/call_env.hpp"
#include "core/candidates.hpp"
#include "core/client_core.hpp"
#include "core/hedging.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace failover {
namespace {

using detail::Hedging;
using std::chrono::milliseconds;

struct HedgingPartTest : testing::FakeClientTest {
  std::shared_ptr<detail::ClientCore> core;
  HedgingOptions options;
  TimePoint t0{};
  void SetUp() override {
    core = std::make_shared<detail::ClientCore>(
        fake_options({{"a", "http://a.test/v1", "k"}}, {Tier::of("m", {"a"})}));
    t0 = clock->now();
    options.max_extra = 2;
    options.delay = milliseconds(300);
  }
  void TearDown() override { core->shutdown(); }
  detail::RouteState& route() { return *core->routes()[0]; }
};

TEST_F(HedgingPartTest, AHedgeIsDueAfterTheDelayUpToMaxExtra) {
  Hedging h(options, true);
  EXPECT_EQ(h.due_after(route(), t0), t0 + milliseconds(300));
  h.started();
  EXPECT_EQ(h.due_after(route(), t0), t0 + milliseconds(300));
  h.started();
  EXPECT_EQ(h.due_after(route(), t0), TimePoint::max());
}

TEST_F(HedgingPartTest, WithP95TheRoutesObservedLatencyOnceKnown) {
  options.use_p95 = true;
  Hedging h(options, true);
  EXPECT_EQ(h.due_after(route(), t0), t0 + milliseconds(300));  // nothing observed yet
  for (int i = 1; i <= 20; ++i) route().stats.record(t0, milliseconds(10 * i), std::nullopt, "");
  EXPECT_EQ(h.due_after(route(), t0), t0 + milliseconds(190));
}

TEST_F(HedgingPartTest, StreamAndShadowCallsAndAZeroDelayDoNotHedge) {
  EXPECT_EQ(Hedging(options, /*allowed=*/false).due_after(route(), t0), TimePoint::max());
  options.delay = Duration::zero();
  EXPECT_EQ(Hedging(options, true).due_after(route(), t0), TimePoint::max());
}

TEST_F(HedgingPartTest, AHedgeTakesARetryBudgetSlotAndTheNextRouteOrNothing) {
  ClientOptions o = fake_options({{"a", "http://a.test/v1", "k"}, {"b", "http://b.test/v1", "k"}},
                                 {Tier::of("m", {"a", "b"})});
  o.retry_budget.min_concurrent = 1;
  o.retry_budget.ratio = 0;
  auto two = std::make_shared<detail::ClientCore>(o);
  detail::Admission admission(two->call_env());
  detail::Candidates candidates(two->call_env(), admission);
  candidates.plan(t0, {});
  candidates.start(0, t0, 1, true);  // the attempt in flight
  TimePoint now = t0 + milliseconds(300);
  detail::AttemptLease lease(&now), slot(&now);
  Hedging h(options, true);
  EXPECT_EQ(h.pick(now, candidates, lease, slot), 1u);
  EXPECT_EQ(two->stats().hedges(), 1u);
  EXPECT_EQ(two->budget().active_retries(), 1);  // held by `slot` until the hedge ends
  EXPECT_EQ(h.due_after(route(), now), now + milliseconds(300));  // one of two started
  // The budget's one slot is taken: no second hedge, and nothing is held for it.
  detail::AttemptLease lease2(&now), slot2(&now);
  EXPECT_EQ(h.pick(now, candidates, lease2, slot2), std::nullopt);
  slot.release();
  EXPECT_EQ(two->budget().active_retries(), 0);
  // Every route tried: no hedge, and its slot is given back with `slot2`.
  candidates[1].tried = true;
  EXPECT_EQ(h.pick(now, candidates, lease2, slot2), std::nullopt);
  slot2.release();
  EXPECT_EQ(two->budget().active_retries(), 0);
  EXPECT_EQ(two->stats().hedges(), 1u);
  lease.release();
  two->shutdown();
}

}  // namespace
}  // namespace failover
