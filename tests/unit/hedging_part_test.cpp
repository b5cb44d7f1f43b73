// When a call's next hedge is due, on its own, to exact values.

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

}  // namespace
}  // namespace failover
