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

TEST_F(CandidatesTest, AnAttemptStartsTriedAndStreamedUnlessItsRouteAnswersWhole) {
  options.canary.candidate = RouteRef{"b", "m"};
  options.canary.steps = {100};
  Candidates& c = plan();
  ASSERT_EQ(c.route(0).ref.endpoint, "b");  // the canary's candidate first
  detail::Flight f = c.start(0, now, 1, /*whole=*/true);
  EXPECT_TRUE(c[0].tried);
  EXPECT_EQ(c[0].attempts, 1);
  EXPECT_EQ(f.candidate, 0u);
  EXPECT_EQ(f.route, &c.route(0));
  EXPECT_TRUE(f.canary);
  EXPECT_EQ(f.start, now);
  EXPECT_EQ(f.attempt, 1);
  EXPECT_NE(f.wire, nullptr);
  c[1].whole = true;  // a route that refused a stream
  detail::Flight g = c.start(1, now + seconds(1), 2, true);
  EXPECT_FALSE(g.canary);
  EXPECT_EQ(g.attempt, 2);
  EXPECT_EQ(g.wire, nullptr);
  EXPECT_EQ(c.start(0, now, 3, true).attempt, 3);
  EXPECT_EQ(c[0].attempts, 2);
}

TEST_F(CandidatesTest, AnOwedRetryGoesFirstDespiteItsCooldownButNotPastItsBreaker) {
  CircuitBreakerOptions b;
  b.consecutive_failures = 2;
  options.circuit_breaker = DefaultCircuitBreaker::factory(b);
  Candidates& c = plan();
  c[0].tried = true;  // its first attempt failed
  c.route(0).on_failure(now, ErrorKind::ServerError);
  c.route(0).cool_down_until(now + seconds(30));
  EXPECT_EQ(c.pick(now, lease, /*retry=*/0u), 0u);  // the call's wait honoured the cooldown
  lease.release();
  EXPECT_EQ(c.pick(now, lease, std::nullopt), 1u);
  lease.release();
  c[1].tried = false;
  c.route(0).on_failure(now, ErrorKind::ServerError);  // the breaker opens
  EXPECT_EQ(c.pick(now, lease, 0u), 1u);
}

TEST_F(CandidatesTest, TheRetryPolicyIsToldTheCallsStateAndItsTierAlternatives) {
  Candidates& c = plan();
  c[0].tried = true;
  c[0].attempts = 2;
  const TimePoint deadline = now + seconds(60);
  CallState s = c.call_state(now, 0, /*canary=*/false, 3, deadline);
  EXPECT_EQ(s.attempts, 3);
  EXPECT_EQ(s.route_attempts, 2);
  EXPECT_TRUE(s.has_alternative);
  EXPECT_TRUE(s.tier_alternative);  // b, in a's tier
  EXPECT_EQ(s.now, now);
  EXPECT_EQ(s.deadline, deadline);
  EXPECT_EQ(s.rng, &core->call_env().rng());
  c[1].tried = true;
  s = c.call_state(now, 0, false, 3, deadline);
  EXPECT_TRUE(s.has_alternative);    // c, in the next tier
  EXPECT_FALSE(s.tier_alternative);  // a downgrade
  EXPECT_TRUE(c.call_state(now, 0, /*canary=*/true, 3, deadline).tier_alternative);
  c[2].tried = true;
  EXPECT_FALSE(c.call_state(now, 0, true, 3, deadline).tier_alternative);
}

TEST_F(CandidatesTest, AnAttemptsRequestFieldsComeFromItsRouteFlightAndCall) {
  options.endpoints[1].limits.rpm = 60;
  options.ca_bundle = "/etc/ssl/ours.pem";
  options.max_response_bytes = 4096;
  Candidates& c = plan();
  CallOptions call;
  call.headers["x-trace"] = "1";
  detail::Flight f = c.start(1, now, 2, true);
  f.continuation = true;
  f.limits.total = seconds(9);
  f.limits.connect = seconds(2);
  f.limits.headers = seconds(5);
  detail::RequestWriter::Attempt a = c.attempt_of(f, call);
  EXPECT_EQ(a.route, &c.route(1));
  EXPECT_EQ(a.endpoint, &core->call_env().endpoints()[1]);
  EXPECT_EQ(a.call_headers, &call.headers);
  EXPECT_EQ(a.body, -1);
  EXPECT_TRUE(a.streamed);
  EXPECT_TRUE(a.continuation);
  EXPECT_EQ(a.number, 2);
  EXPECT_EQ(a.total, seconds(9));
  EXPECT_EQ(a.connect, seconds(2));
  EXPECT_EQ(a.headers, seconds(5));
  EXPECT_EQ(a.max_response_bytes, 4096u);
  EXPECT_EQ(*a.ca_bundle, "/etc/ssl/ours.pem");
  EXPECT_TRUE(a.success_headers);  // b has a rate limiter, which reads them
  EXPECT_FALSE(c.attempt_of(c.start(0, now, 3, true), call).success_headers);
}

TEST_F(CandidatesTest, OnlyAnEndpointThatContinuesAndDidNotRefuseThePrefixContinues) {
  options.endpoints[0].continuation = Continuation::Prefill;
  Candidates& c = plan();
  EXPECT_TRUE(c.can_continue(0));
  EXPECT_FALSE(c.can_continue(1));
  c[0].prefix_refused = true;
  EXPECT_FALSE(c.can_continue(0));
}

TEST_F(CandidatesTest, NoRouteServedSaysWhatWasPassedOverAndWhetherAnyApiTookTheRequest) {
  options.endpoints[0].dialect = Dialect::Anthropic;
  options.endpoints[1].dialect = Dialect::Anthropic;
  options.endpoints[2].dialect = Dialect::Anthropic;
  Candidates& c = plan();
  ChatRequest r;
  r.messages = {Message::user("hi")};
  detail::RequestWriter writer;
  ASSERT_FALSE(writer.encode(r, false));
  detail::CallTrace trace(core->call_env(), false);
  c.prepare(r, writer, trace);
  EXPECT_FALSE(c.untranslatable(writer));
  r.seed = 3;                    // Anthropic has no equivalent
  detail::RequestWriter seeded;  // a writer translates once per dialect: one per request
  ASSERT_FALSE(seeded.encode(r, false));
  Candidates d(core->call_env(), *admission);
  d.plan(now, {});
  d.prepare(r, seeded, trace);
  EXPECT_TRUE(d.untranslatable(seeded));

  c.route(1).cool_down_until(now + seconds(30));
  c[0].tried = true;
  EXPECT_EQ(c.pick(now, lease), 2u);
  detail::Exhaustion x = c.exhaustion(now);
  ASSERT_EQ(x.untried.size(), 2u);  // b, and c (picked, not yet started)
  EXPECT_EQ(x.untried[0].route.endpoint, "b");
  EXPECT_EQ(x.untried[0].until, now + seconds(30));
  EXPECT_EQ(x.untried[1].route.endpoint, "c");
  EXPECT_FALSE(x.rate_blocked);
  EXPECT_FALSE(x.spend_blocked);
  EXPECT_EQ(x.store, nullptr);
  EXPECT_EQ(x.now, now);
}

}  // namespace
}  // namespace failover
