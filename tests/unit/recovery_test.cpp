// Stream recovery on its own: when a broken answer can be continued, what each recovering
// attempt does, what the call says when no recovery serves, and how recoveries are counted.

#include "core/recovery.hpp"
#include "observe/route_stats.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace failover {
namespace {

using detail::Recovery;
using detail::RequestWriter;

ChatRequest request() {
  ChatRequest r;
  r.messages = {Message::user("Tell me a story")};
  return r;
}

std::shared_ptr<const ChatResponse> shown(Message m) {
  auto r = std::make_shared<ChatResponse>();
  Choice c;
  c.message = std::move(m);
  r->choices.push_back(std::move(c));
  return r;
}

struct RecoveryTest : ::testing::Test {
  RequestWriter writer;
  detail::ClientStats stats;
  std::string seam;
  void SetUp() override { ASSERT_FALSE(writer.encode(request(), false)); }
};

TEST_F(RecoveryTest, RestartingNeverContinues) {
  Recovery r(StreamRecovery::Restart, request(), /*keep=*/true);
  EXPECT_FALSE(r.active());
  r.begin("a: the stream broke", shown(Message::assistant("Once upon")), writer);
  ASSERT_TRUE(r.active());
  EXPECT_EQ(r.shown()->text(), "Once upon");
  EXPECT_FALSE(r.start_attempt(/*can_continue=*/true, -1, writer, seam));
  EXPECT_EQ(r.message("b: 503"),
            "a: the stream broke; recovering by restart did not succeed: b: 503");
}

TEST_F(RecoveryTest, APlainAnswerContinuesWhereTheRouteCan) {
  Recovery r(StreamRecovery::Continue, request(), /*keep=*/true);
  r.begin("a: cut", shown(Message::assistant("Once upon")), writer);
  EXPECT_FALSE(r.start_attempt(/*can_continue=*/false, -1, writer, seam));  // not this route
  EXPECT_TRUE(r.start_attempt(/*can_continue=*/true, -1, writer, seam));
  EXPECT_EQ(r.message("b: 503"), "a: cut; recovering by continue did not succeed: b: 503");
  // A route whose dialect translates gets the prefix in its API, trimmed as it requires.
  ChatRequest plain = request();
  const int body = writer.translate(plain, wire::api_of(Dialect::Anthropic), nullptr, true);
  r.begin("a: cut", shown(Message::assistant("Once upon ")), writer);
  EXPECT_TRUE(r.start_attempt(true, body, writer, seam));
  EXPECT_EQ(seam, " ");
}

TEST_F(RecoveryTest, WhatCannotBeAPrefixRestarts) {
  Message with_call = Message::assistant("Let me look");
  ToolCall call;
  call.id = "call_1";
  call.name = "weather";
  call.arguments = "{}";
  with_call.tool_calls.push_back(call);
  Recovery r(StreamRecovery::Continue, request(), true);
  r.begin("a: cut", shown(with_call), writer);
  EXPECT_FALSE(r.start_attempt(true, -1, writer, seam));
  r.begin("a: cut", shown(Message::assistant("")), writer);
  EXPECT_FALSE(r.start_attempt(true, -1, writer, seam));
  // Without the request kept (no endpoint continues), nothing continues.
  Recovery unkept(StreamRecovery::Continue, request(), /*keep=*/false);
  unkept.begin("a: cut", shown(Message::assistant("Once upon")), writer);
  EXPECT_FALSE(unkept.start_attempt(true, -1, writer, seam));
}

TEST_F(RecoveryTest, ARecoveringAttemptsStreamRestartsAfterANoticeOrGoesOnFromWhatWasShown) {
  Recovery r(StreamRecovery::Continue, request(), true);
  r.begin("a: cut", shown(Message::assistant("Once upon")), writer);
  detail::Flight streamed;
  streamed.wire =
      std::make_unique<detail::AttemptStream>(wire::api_of(Dialect::OpenAI), TimePoint{}, false);
  r.start(streamed, /*can_continue=*/true, -1, writer);
  EXPECT_TRUE(streamed.recovery);
  EXPECT_TRUE(streamed.continuation);
  EXPECT_FALSE(streamed.wire->notice_due);
  EXPECT_EQ(streamed.wire->accumulated.build().text(), "Once upon");
  detail::Flight restarted;
  restarted.wire =
      std::make_unique<detail::AttemptStream>(wire::api_of(Dialect::OpenAI), TimePoint{}, false);
  r.start(restarted, /*can_continue=*/false, -1, writer);
  EXPECT_FALSE(restarted.continuation);
  EXPECT_TRUE(restarted.wire->notice_due);
  detail::Flight whole;  // sent whole: never continued
  r.start(whole, true, -1, writer);
  EXPECT_TRUE(whole.recovery);
  EXPECT_FALSE(whole.continuation);
}

TEST_F(RecoveryTest, BeforeAnyRecoveringAttemptTheCallReportsTheBreakAlone) {
  Recovery r(StreamRecovery::Restart, request(), false);
  r.begin("a: cut", shown(Message::assistant("x")), writer);
  EXPECT_EQ(r.message("every route is unavailable"), "a: cut");
}

TEST_F(RecoveryTest, RecoveriesAreCountedByModeAndOutcome) {
  Recovery r(StreamRecovery::Continue, request(), true);
  r.served(stats, true);  // nothing to count before a break
  r.failed(stats, false);
  EXPECT_EQ(stats.recoveries(1, 0) + stats.recoveries(1, 1), 0u);
  r.begin("a: cut", shown(Message::assistant("Once")), writer);
  r.start_attempt(true, -1, writer, seam);
  r.served(stats, /*continued=*/true);
  EXPECT_EQ(stats.recoveries(1, 0), 1u);
  r.failed(stats, /*forget=*/true);
  EXPECT_EQ(stats.recoveries(1, 1), 1u);
  EXPECT_FALSE(r.active());
}

}  // namespace
}  // namespace failover
