// The plan of one call's candidates and the choice of the next one, on the manual clock, to
// exact values: order, the models a call names, cooldowns and breakers, the time left for a
// failover, a Failover decision's stop and skip_tier, and what is said of routes passed over.

#include "core/candidates.hpp"
#include "core/admission.hpp"
#include "core/attempt_lease.hpp"
#include "core/call_env.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace failover {
namespace {

using detail::Candidates;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct CandidatesTest : testing::FakeClientTest {
  // Tier 1: a and b serving m; tier 2: c serving n.
  ClientOptions options = fake_options({{"a", "http://a.test/v1", "k"},
                                        {"b", "http://b.test/v1", "k"},
                                        {"c", "http://c.test/v1", "k"}},
                                       {Tier::of("m", {"a", "b"}), Tier::of("n", {"c"})});
  std::shared_ptr<detail::ClientCore> core;
  std::unique_ptr<detail::Admission> admission;
  std::unique_ptr<Candidates> candidates;
  detail::AttemptLease lease{nullptr};
  TimePoint now{};

  Candidates& plan(const CallOptions& call = {}) {
    core = std::make_shared<detail::ClientCore>(options);
    now = clock->now();
    lease = detail::AttemptLease(&now);
    admission = std::make_unique<detail::Admission>(core->call_env());
    ChatRequest r;
    r.messages = {Message::user("hi")};
    admission->estimate(r);
    candidates = std::make_unique<Candidates>(core->call_env(), *admission);
    candidates->plan(now, call);
    return *candidates;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (std::size_t c = 0; c < candidates->size(); ++c) {
      out.push_back(candidates->route(c).ref.endpoint);
    }
    return out;
  }
  ~CandidatesTest() override {
    lease.release();
    if (core) core->shutdown();
  }
};

TEST_F(CandidatesTest, TiersInOrderAndOnlyTheModelsACallNamesByItsPreference) {
  plan();
  EXPECT_EQ(names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(candidates->entry(2).tier, 1u);
  CallOptions call;
  call.models = {"n", "m"};
  plan(call);
  EXPECT_EQ(names(), (std::vector<std::string>{"c", "a", "b"}));
  call.models = {"x"};
  EXPECT_TRUE(plan(call).empty());
  EXPECT_EQ(detail::models_served(core->call_env()), (std::vector<std::string>{"m", "n"}));
}

TEST_F(CandidatesTest, APickPassesOverACoolingRouteAndSaysWhyAndUntilWhen) {
  Candidates& c = plan();
  c.route(0).cool_down_until(now + seconds(30));
  std::optional<std::size_t> pick = c.pick(now, lease);
  ASSERT_EQ(pick, 1u);
  EXPECT_EQ(c[0].blocked, detail::Admission::Block::Cooling);
  EXPECT_FALSE(c.available(0, now));
  EXPECT_TRUE(c.available(1, now));
  std::vector<SkippedRoute> skipped = c.skipped(now);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].route.endpoint, "a");
  EXPECT_EQ(skipped[0].until, now + seconds(30));
  // The cooling route is the first back, at the end of its cooldown.
  c[1].tried = true;
  c[2].tried = true;
  EXPECT_EQ(c.earliest_recovery(now), now + seconds(30));
  EXPECT_EQ(c.least_bad(now), 0u);
}

TEST_F(CandidatesTest, TriedRoutesAreNoAlternative) {
  Candidates& c = plan();
  EXPECT_TRUE(c.has_alternative(now));
  c[0].tried = true;
  c[1].tried = true;
  EXPECT_FALSE(c.has_alternative(now, /*tier=*/0));
  EXPECT_TRUE(c.has_alternative(now));
  c[2].tried = true;
  EXPECT_FALSE(c.has_alternative(now));
  EXPECT_EQ(c.pick(now, lease), std::nullopt);
  EXPECT_EQ(c.earliest_recovery(now), std::nullopt);
}

TEST_F(CandidatesTest, AFailoverLeavesTimeForTheNextRouteByItsLatency) {
  Candidates& c = plan();
  c[0].tried = true;  // the attempt about to start
  // No latency known yet: half of what remains.
  EXPECT_EQ(c.failover_reserve(now, seconds(8)), seconds(4));
  // Twice the best other route's latency, at least a second, at most half.
  c.route(1).ewma_latency.store(Duration(milliseconds(300)).count());
  c.route(2).ewma_latency.store(Duration(milliseconds(900)).count());
  EXPECT_EQ(c.failover_reserve(now, seconds(8)), seconds(1));
  c.route(1).ewma_latency.store(Duration(milliseconds(1500)).count());
  EXPECT_EQ(c.failover_reserve(now, seconds(8)), milliseconds(1800));
  EXPECT_EQ(c.failover_reserve(now, seconds(3)), milliseconds(1500));
  // Nobody to fail over to: nothing is reserved.
  c[1].tried = true;
  c[2].tried = true;
  EXPECT_EQ(c.failover_reserve(now, seconds(8)), Duration::zero());
}

TEST_F(CandidatesTest, AFailoverDecisionSkipsTheTierOrStopsTheCall) {
  Candidates& c = plan();
  Decision skip = Decision::failover();
  skip.skip_tier = true;
  EXPECT_FALSE(c.rule_out(0, skip));
  EXPECT_TRUE(c[1].tried);
  EXPECT_FALSE(c[2].tried);
  Decision stop = Decision::failover();
  stop.stop = true;
  EXPECT_TRUE(c.rule_out(2, stop));
  EXPECT_TRUE(c[2].tried);
}

TEST_F(CandidatesTest, ARouteWhoseApiCannotTakeTheRequestIsPassedOverWithWhy) {
  options.endpoints[1].dialect = Dialect::Anthropic;  // b
  options.endpoints[2].streaming = false;             // c
  Candidates& c = plan();
  ChatRequest r;
  r.messages = {Message::user("hi")};
  r.seed = 3;  // Anthropic has no equivalent
  detail::RequestWriter writer;
  ASSERT_FALSE(writer.encode(r, false));
  detail::CallTrace trace(core->call_env(), false);
  c.prepare(r, writer, trace);
  EXPECT_FALSE(c[0].tried);
  EXPECT_EQ(c[0].body, -1);  // Chat Completions: the body encoded once
  EXPECT_TRUE(c[1].tried);
  EXPECT_GE(c[1].body, 0);
  EXPECT_TRUE(c[2].whole);
  ASSERT_EQ(trace.size(), 1u);
  EXPECT_EQ(trace.last().route.endpoint, "b");
  EXPECT_EQ(trace.last().error, ErrorKind::InvalidRequest);
  EXPECT_NE(trace.last().message.find("anthropic route: seed"), std::string::npos)
      << trace.last().message;
}

TEST_F(CandidatesTest, AShadowCallHasItsCandidateAlone) {
  options.shadow.candidate = RouteRef{"c", "n"};
  options.shadow.sample = 1.0;
  Candidates& c = plan();
  c.plan_mirror();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c.route(0).ref.endpoint, "c");
  EXPECT_GE(c.entry(0).tier, 2u);  // a tier of its own, after the priority list
}

}  // namespace
}  // namespace failover
