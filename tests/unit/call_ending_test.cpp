// How a call ends, on its own: a served answer's route, trace and skipped routes; a failure
// while a broken stream was being recovered, reported as that break; a break that ends the
// call; a call no route served; and the call statistics, which a shadow call stays out of.

#include "core/call_ending.hpp"
#include "core/admission.hpp"
#include "core/attempt_lease.hpp"
#include "core/call_env.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace failover {
namespace {

using detail::CallEnding;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::shared_ptr<const ChatResponse> shown(const std::string& text) {
  auto r = std::make_shared<ChatResponse>();
  Choice c;
  c.message = Message::assistant(text);
  r->choices.push_back(std::move(c));
  return r;
}

struct CallEndingTest : testing::FakeClientTest {
  ClientOptions options =
      fake_options({{"a", "http://a.test/v1", "k"}, {"b", "http://b.test/v1", "k"}},
                   {Tier::of("m", {"a", "b"})});
  std::shared_ptr<detail::ClientCore> core;
  std::unique_ptr<detail::Admission> admission;
  std::unique_ptr<detail::Candidates> candidates;
  std::unique_ptr<detail::CallTrace> trace;
  std::unique_ptr<detail::Recovery> recovery;
  std::unique_ptr<detail::HandlerFeed> feed;
  detail::RequestWriter writer;
  ChatRequest request;
  TimePoint t0{};

  CallEnding make(bool mirror = false, StreamHandler handler = nullptr) {
    core = std::make_shared<detail::ClientCore>(options);
    t0 = clock->now();
    request.messages = {Message::user("hi")};
    EXPECT_FALSE(writer.encode(request, false));
    admission = std::make_unique<detail::Admission>(core->call_env());
    admission->estimate(request);
    candidates = std::make_unique<detail::Candidates>(core->call_env(), *admission);
    candidates->plan(t0, {});
    trace = std::make_unique<detail::CallTrace>(core->call_env(), mirror);
    candidates->prepare(request, writer, *trace);
    recovery = std::make_unique<detail::Recovery>(StreamRecovery::Restart, request, false);
    feed = std::make_unique<detail::HandlerFeed>(std::move(handler));
    return CallEnding(core->call_env(), *candidates, *trace, *recovery, *feed, mirror, t0);
  }
  Attempt attempt(const char* endpoint, int status) {
    Attempt a;
    a.route = RouteRef{endpoint, "m"};
    a.status = status;
    if (status != 200) a.error = ErrorKind::ServerError;
    return a;
  }
  std::uint64_t calls(const std::string& result) { return core->stats().calls()[result]; }
  ~CallEndingTest() override {
    if (core) core->shutdown();
  }
};

TEST_F(CallEndingTest, AServedAnswerNamesItsRouteCarriesTheTraceAndCountsASuccess) {
  CallEnding ending = make();
  candidates->route(0).cool_down_until(t0 + seconds(30));
  detail::AttemptLease lease(&t0);
  ASSERT_EQ(candidates->pick(t0, lease), 1u);  // a passed over, cooling
  detail::Flight f = candidates->start(1, t0, 1, true);
  trace->add(attempt("b", 200));
  EXPECT_FALSE(ending.done());
  ending.served(t0 + seconds(2), f, ChatResponse{});
  ASSERT_TRUE(ending.done());
  Result<ChatResponse> r = ending.take();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->served_by.endpoint, "b");
  ASSERT_EQ(r->attempts.size(), 1u);
  EXPECT_EQ(r->attempts[0].status, 200);
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_EQ(r->skipped[0].route.endpoint, "a");
  EXPECT_EQ(calls("success"), 1u);
  lease.release();
}

TEST_F(CallEndingTest, AShadowCallIsNotCounted) {
  options.shadow.candidate = RouteRef{"b", "m"};
  CallEnding ending = make(/*mirror=*/true);
  ending.failed(t0, ErrorKind::ServerError, "b/m: 503", {});
  ASSERT_TRUE(ending.done());
  EXPECT_EQ(ending.take().error().kind(), ErrorKind::ServerError);
  EXPECT_TRUE(core->stats().calls().empty());
}

TEST_F(CallEndingTest, AFailureWhileRecoveringIsReportedAsTheBreakWithWhatWasShown) {
  CallEnding ending = make();
  recovery->begin("a/m: the stream broke", shown("Once upon"), writer);
  std::string seam;
  EXPECT_FALSE(recovery->start_attempt(false, -1, writer, seam));  // on b, restarting
  ErrorDetails d;
  d.http_status = 503;
  d.available_at = t0 + seconds(9);
  d.attempts = {attempt("a", 200), attempt("b", 503)};
  ending.failed(t0 + seconds(1), ErrorKind::ServerError, "b/m: 503", std::move(d));
  Result<ChatResponse> r = ending.take();
  ASSERT_FALSE(r.ok());
  const Error& e = r.error();
  EXPECT_EQ(e.kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(e.message(), "a/m: the stream broke; recovering by restart did not succeed: b/m: 503");
  EXPECT_EQ(e.details().http_status, 200);
  EXPECT_EQ(e.details().available_at, t0 + seconds(9));
  EXPECT_EQ(e.details().attempts.size(), 2u);
  ASSERT_NE(e.details().partial, nullptr);
  EXPECT_EQ(e.details().partial->text(), "Once upon");
  EXPECT_EQ(core->stats().recoveries(/*restart*/ 0, /*failed*/ 1), 1u);
  EXPECT_EQ(calls("stream_interrupted"), 1u);
}

TEST_F(CallEndingTest, ACancelledRecoveryStaysCancelled) {
  CallEnding ending = make();
  recovery->begin("a/m: the stream broke", shown("Once"), writer);
  ending.failed(t0, ErrorKind::Cancelled, "the call was cancelled", {});
  EXPECT_EQ(ending.take().error().kind(), ErrorKind::Cancelled);
  EXPECT_EQ(calls("cancelled"), 1u);
}

TEST_F(CallEndingTest, ABreakThatEndsTheCallCarriesWhatWasShown) {
  CallEnding ending = make();
  trace->add(attempt("a", 200));
  ending.broke(t0 + milliseconds(500), "a/m: the connection was lost", shown("Hel"));
  Result<ChatResponse> r = ending.take();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().message(), "a/m: the connection was lost");
  EXPECT_EQ(r.error().details().http_status, 200);
  EXPECT_EQ(r.error().details().attempts.size(), 1u);
  ASSERT_NE(r.error().details().partial, nullptr);
  EXPECT_EQ(r.error().details().partial->text(), "Hel");
  EXPECT_FALSE(recovery->active());
}

TEST_F(CallEndingTest, NoRouteServedSaysWhenOneComesBack) {
  CallEnding ending = make();
  candidates->route(0).cool_down_until(t0 + seconds(30));
  candidates->route(1).cool_down_until(t0 + seconds(20));
  detail::AttemptLease lease(&t0);
  ASSERT_EQ(candidates->pick(t0, lease), std::nullopt);
  ending.exhausted(t0, writer, /*sent=*/false, false, false);
  Result<ChatResponse> r = ending.take();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(r.error().details().available_at, t0 + seconds(20));
  EXPECT_NE(r.error().message().find("a/m: "), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("b/m: "), std::string::npos) << r.error().message();
  EXPECT_EQ(calls("all_routes_unavailable"), 1u);
}

TEST_F(CallEndingTest, NoRouteWhoseApiTakesTheRequestIsAnInvalidRequest) {
  options.endpoints[0].dialect = Dialect::Anthropic;
  options.endpoints[1].dialect = Dialect::Anthropic;
  request.seed = 3;  // Anthropic has no equivalent
  CallEnding ending = make();
  ending.exhausted(t0, writer, false, false, false);
  Result<ChatResponse> r = ending.take();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_NE(r.error().message().find("seed"), std::string::npos) << r.error().message();
}

TEST_F(CallEndingTest, WhatTheHandlerWasShownIsOnlyAStreamCallsAndARecoverysUntilCommitted) {
  CallEnding plain = make();
  detail::Flight f = candidates->start(0, t0, 1, false);
  EXPECT_EQ(plain.partial(f.wire.get(), 0u), nullptr);  // no handler
  CallEnding streamed = make(false, [](const ChatChunk&) { return true; });
  detail::Flight g = candidates->start(0, t0, 1, false);
  EXPECT_EQ(streamed.partial(g.wire.get(), std::nullopt), nullptr);  // no attempt yet
  std::shared_ptr<const ChatResponse> p = streamed.partial(g.wire.get(), 0u);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->served_by.endpoint, "a");
  recovery->begin("a/m: cut", shown("Once"), writer);
  EXPECT_EQ(streamed.partial(g.wire.get(), 0u), recovery->shown());  // still on the screen
}

}  // namespace
}  // namespace failover
