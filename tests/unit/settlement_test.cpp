// What an ended attempt does to its route and the call's books, on its own: a served answer's
// cost, latency and trace entry; a failure's cooldown, breaker and neutral cases; a break's
// entry; and attempts cancelled quietly, logged, or counted.

#include "core/settlement.hpp"
#include "core/admission.hpp"
#include "core/call_env.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace failover {
namespace {

using detail::Failure;
using detail::Flight;
using detail::Settlement;
using detail::Verdict;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct SettlementTest : testing::FakeClientTest {
  std::shared_ptr<detail::ClientCore> core;
  std::unique_ptr<detail::Admission> admission;
  std::unique_ptr<detail::Charges> charges;
  std::unique_ptr<detail::CallTrace> trace;
  std::unique_ptr<Settlement> settlement;
  TimePoint t0{};

  void SetUp() override {
    ClientOptions o = fake_options({{"a", "http://a.test/v1", "k"}}, {Tier::of("m", {"a"})});
    ModelPrice price;
    price.input_per_mtok = 1.0;
    price.output_per_mtok = 2.0;
    o.prices["m"] = price;
    core = std::make_shared<detail::ClientCore>(o);
    admission = std::make_unique<detail::Admission>(core->call_env());
    charges = std::make_unique<detail::Charges>(core->call_env(), *admission);
    trace = std::make_unique<detail::CallTrace>(core->call_env(), false);
    settlement = std::make_unique<Settlement>(core->call_env(), *charges, *trace);
    t0 = clock->now();
  }
  void TearDown() override { core->shutdown(); }
  detail::RouteState& route() { return *core->routes()[0]; }
  Flight flight(bool streamed = false) {
    Flight f;
    f.route = &route();
    f.start = t0;
    if (streamed) {
      f.wire = std::make_unique<detail::AttemptStream>(wire::api_of(Dialect::OpenAI), t0, false);
    }
    return f;
  }
  std::uint64_t failures() {
    RouteHealth h;
    route().stats.fill(h);
    return h.failures;
  }
  std::uint64_t cancelled() { return route().stats.counters().attempts_by_outcome["cancelled"]; }
};

TEST_F(SettlementTest, AServedAnswerIsChargedTimedAndTraced) {
  Flight f = flight();
  ChatResponse r;
  Usage u;
  u.prompt_tokens = 100;
  u.completion_tokens = 50;
  u.total_tokens = 150;
  r.usage = u;
  settlement->served(f, t0 + milliseconds(400), r);
  EXPECT_DOUBLE_EQ(r.cost_usd.value_or(0), (100 * 1000 + 50 * 2000) / 1e9);
  EXPECT_EQ(Duration(route().ewma_latency.load()), milliseconds(400));
  ASSERT_EQ(trace->size(), 1u);
  EXPECT_EQ(trace->last().status, 200);
  EXPECT_FALSE(trace->last().error);
}

TEST_F(SettlementTest, AFailureRestsItsRouteAndANeutralOneIsNotCounted) {
  Flight f = flight();
  Failure x;
  x.outcome.kind = ErrorKind::RateLimited;
  x.outcome.http_status = 429;
  x.message = "slow down";
  Verdict v;
  v.breaker = ErrorKind::RateLimited;
  v.rest_until = t0 + seconds(2);
  settlement->failed(f, t0, x, v);
  EXPECT_EQ(route().cooldown(), t0 + seconds(2));
  EXPECT_EQ(failures(), 1u);
  EXPECT_EQ(trace->last().message, "slow down");
  EXPECT_EQ(trace->last().status, 429);

  Flight g = flight(true);
  Failure refused;
  refused.outcome.kind = ErrorKind::InvalidRequest;
  refused.stream_refused = true;
  Verdict neutral;
  neutral.neutral = true;
  neutral.breaker = ErrorKind::Cancelled;
  settlement->failed(g, t0, refused, neutral);
  EXPECT_TRUE(route().answers_whole.load());
  EXPECT_EQ(failures(), 1u);  // unchanged
  EXPECT_EQ(trace->size(), 2u);
}

TEST_F(SettlementTest, ABreakIsTracedWithWhatTheHandlerWasShown) {
  Flight f = flight(true);
  f.wire->delivered_chunks = 3;
  f.wire->delivered_chars = 12;
  f.wire->received_chars = 12;
  std::string why = settlement->broke(f, t0 + seconds(1), ErrorKind::ConnectionLost, "reset",
                                      /*deadline_cut=*/false);
  EXPECT_EQ(why, "a/m: the stream broke after content was delivered (connection_lost: reset)");
  EXPECT_EQ(trace->last().error, ErrorKind::StreamInterrupted);
  EXPECT_EQ(trace->last().delivered_chunks, 3);
  EXPECT_EQ(trace->last().delivered_chars, 12u);
  settlement->broke(f, t0 + seconds(1), ErrorKind::DeadlineExceeded, "late", true);
  EXPECT_EQ(trace->last().error, ErrorKind::DeadlineExceeded);
}

TEST_F(SettlementTest, CancelledAttemptsAreCountedOnlyWhenTheCallerCancelled) {
  Flight quiet = flight();
  settlement->dropped(quiet, t0, "hook failed", 0, Settlement::Drop::Quietly);
  Flight lost = flight();
  settlement->dropped(lost, t0, "lost the hedge race", 0, Settlement::Drop::Logged);
  EXPECT_EQ(cancelled(), 0u);
  Flight stopped = flight();
  settlement->dropped(stopped, t0, "the stream handler asked to stop", 200,
                      Settlement::Drop::Counted);
  EXPECT_EQ(cancelled(), 1u);
  EXPECT_EQ(failures(), 0u);  // the caller's choice says nothing of the route
  ASSERT_EQ(trace->size(), 3u);
  EXPECT_EQ(trace->last().error, ErrorKind::Cancelled);
  EXPECT_EQ(trace->last().status, 200);
}

}  // namespace
}  // namespace failover
