// Streaming calls through Client on a fake transport and a manual clock: commit, watchdogs,
// failover before the first content, StreamInterrupted after it.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace failover {
namespace {

using testing::outcomes;
using testing::ping;
using testing::Strings;

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Reply;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";

struct StreamTest : testing::FakeClientTest {
  Strings pieces;  // content deltas handed to the handler
  int chunks = 0;  // chunks handed to the handler

  ClientOptions options() {
    ClientOptions o =
        fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{{"a", "m"}, {"b", "m"}}}});
    o.timeouts.first_byte = seconds(2);
    o.timeouts.idle = seconds(3);
    return o;
  }
  StreamHandler collect() {
    return [this](const ChatChunk& c) {
      ++chunks;
      if (!c.content().empty()) pieces.push_back(c.content());
      return true;
    };
  }
};

TEST_F(StreamTest, NormalStreamAssemblesTheResponse) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"Hel", "lo"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(pieces, (Strings{"Hel", "lo"}));
  EXPECT_EQ(chunks, 4);  // role, Hel, lo, finish
  EXPECT_EQ(r->text(), "Hello");
  EXPECT_EQ(r->finish_reason(), "stop");
  EXPECT_EQ(r->served_by.endpoint, "a");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  EXPECT_EQ(r->attempts[0].latency, Duration(milliseconds(40)));
  auto seen = fake->seen();
  EXPECT_TRUE(seen[0].request.stream);
  EXPECT_NE(seen[0].request.body.find("\"stream\":true"), std::string::npos);
}

TEST_F(StreamTest, IncludeUsageIsRequested) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"x"})});
  Client client(options());
  ChatRequest r = ping();
  r.include_usage = true;
  ASSERT_TRUE(client.chat_stream(r, collect()));
  EXPECT_NE(fake->seen()[0].request.body.find("\"stream_options\":{\"include_usage\":true}"),
            std::string::npos);
}

TEST_F(StreamTest, ServerErrorBeforeTheFirstByteFailsOver) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::sse({"from ", "b"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->text(), "from b");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
}

TEST_F(StreamTest, FirstTokenTimeoutFailsOverAndTheHandlerSeesOneStream) {
  // a sends its role chunk at once, then nothing: no content within 2 s.
  Reply stalled = testing::sse({"never"});
  stalled.parts.resize(1);
  stalled.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {stalled});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  Client client(options());
  TimePoint start = clock->now();
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
  EXPECT_EQ(r->attempts[0].latency, Duration(seconds(2)));
  EXPECT_EQ(r->attempts[0].message, "no content within the first-token timeout of 2000 ms");
  EXPECT_EQ(clock->now() - start, Duration(seconds(2) + milliseconds(30)));
  EXPECT_EQ(chunks, 3);  // b's role, "b", finish: a's role chunk was never handed over
  EXPECT_EQ(pieces, (Strings{"b"}));
}

TEST_F(StreamTest, CutAfterThreeChunksIsStreamInterruptedWithThoseChunks) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"one ", "two ", "three"}, milliseconds(10),
                                                      /*done=*/false)});
  fake->sequence(testing::chat_url(kB), {testing::sse({"never"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_FALSE(r);
  const Error& e = r.error();
  EXPECT_EQ(e.kind(), ErrorKind::StreamInterrupted);
  ASSERT_NE(e.partial(), nullptr);
  EXPECT_EQ(e.partial()->text(), "one two three");
  EXPECT_EQ(e.partial()->served_by.endpoint, "a");
  EXPECT_EQ(e.partial()->finish_reason(), "");
  EXPECT_EQ(pieces, (Strings{"one ", "two ", "three"}));
  EXPECT_EQ(outcomes(e.attempts()), (Strings{"a:stream_interrupted"}));
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);  // committed: never restarted elsewhere
}

TEST_F(StreamTest, EndWithoutDoneOrFinishReasonIsNeverSuccess) {
  Reply two = testing::sse({"Hel", "lo"}, milliseconds(10), false);
  two.end = Reply::End::Complete;  // a clean close, but no [DONE] and no finish_reason
  fake->sequence(testing::chat_url(kA), {two});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().partial()->text(), "Hello");
  EXPECT_NE(r.error().message().find("without [DONE] or a finish_reason"), std::string::npos);
}

TEST_F(StreamTest, FinishReasonWithoutDoneIsSuccess) {
  Reply r = testing::sse({"ok"});
  r.parts.back().second = R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
                          "\n\n";
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->text(), "ok");
}

// A whole answer (every choice finished) whose connection then breaks or lingers: the answer
// is served, never reported broken, never restarted, charged once.
Reply finished_then(Reply::End end) {
  Reply r = testing::sse({"Hel", "lo"});
  r.parts.back().second =
      R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":)"
      R"({"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})"
      "\n\n";
  r.end = end;
  return r;
}

TEST_F(StreamTest, AFinishedAnswerWhoseConnectionBreaksIsServed) {
  fake->sequence(testing::chat_url(kA), {finished_then(Reply::End::Cut)});
  ClientOptions o = options();
  o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};
  o.stream_recovery = StreamRecovery::Restart;
  Client client(o);
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "Hello");
  EXPECT_EQ(pieces, (Strings{"Hel", "lo"}));  // shown once, no restart notice
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
  EXPECT_NEAR(client.usage_report().cost_usd, 7 * 1000.0 / 1e6, 1e-12);  // charged once
}

TEST_F(StreamTest, AFinishedAnswerWhoseServerLingersIsServedWithoutWaitingForTheIdleLimit) {
  fake->sequence(testing::chat_url(kA), {finished_then(Reply::End::Hang)});
  Client client(options());
  TimePoint start = clock->now();
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "Hello");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  // The finish came 40 ms in; half a second of grace for a usage chunk or [DONE].
  EXPECT_EQ(clock->now() - start, Duration(milliseconds(540)));
}

TEST_F(StreamTest, WithSeveralChoicesACloseBeforeEveryChoiceFinishedIsABreak) {
  Reply r = testing::sse({"a"});
  r.parts.back().second =
      R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
      "\n\n";
  r.parts.emplace_back(milliseconds(10),
                       R"(data: {"choices":[{"index":1,"delta":{"content":"b"}}]})"
                       "\n\n");
  r.end = Reply::End::Complete;  // choice 1 never finished
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  ChatRequest two = ping();
  two.n = 2;
  auto result = client.chat_stream(two, collect());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), ErrorKind::StreamInterrupted);
}

// A stream that the call's deadline cut counts nowhere: not for the breaker, the statistics or
// the canary.
TEST_F(StreamTest, AStreamCutByTheCallsDeadlineCountsAgainstNothing) {
  Reply stall = testing::sse({"first", "never"});
  stall.parts.resize(2);
  stall.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {stall});
  ClientOptions o = options();
  o.timeouts.idle = seconds(60);
  o.timeouts.attempt = seconds(60);
  o.canary.candidate = RouteRef{"a", "m"};
  o.canary.steps = {100};
  Client client(o);
  CallOptions call;
  call.timeout = seconds(5);
  auto r = client.chat_stream(ping(), collect(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"a:deadline_exceeded"}));
  HealthSnapshot h = client.health();
  EXPECT_EQ(h.routes[0].failures, 0u);
  EXPECT_EQ(client.canary()->window.calls, 0u);
  EXPECT_EQ(client.canary()->window.errors, 0u);
}

// ---- issue 35: what streams lost ----------------------------------------------------------

// A stream request answered with a plain JSON body: read as a response would be.
Reply plain(const std::string& body) {
  Reply r;
  r.headers = {{"content-type", "application/json"}};
  r.parts = {{milliseconds(10), body}};
  return r;
}

TEST_F(StreamTest, AStreamRequestAnsweredWithAJsonErrorKeepsTheError) {
  fake->sequence(testing::chat_url(kA),
                 {plain(R"({"error":{"message":"You exceeded your current quota","type":)"
                        R"("insufficient_quota","code":"insufficient_quota"}})")});
  fake->sequence(testing::chat_url(kB), {testing::sse({"from b"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "from b");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:quota_exhausted", "b:success"}));
  EXPECT_EQ(r->attempts[0].status, 200);
  EXPECT_NE(r->attempts[0].message.find("You exceeded your current quota"), std::string::npos)
      << r->attempts[0].message;
}

TEST_F(StreamTest, AStreamRequestAnsweredWithAWholeCompletionIsServed) {
  fake->sequence(testing::chat_url(kA), {plain(testing::completion_body("all at once"))});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "all at once");
  EXPECT_EQ(pieces, (Strings{"all at once"}));  // the handler saw it, as one chunk
  ASSERT_TRUE(r->usage);
  EXPECT_EQ(r->usage->total_tokens, 7);
}

TEST_F(StreamTest, StreamedContentInPartsAndObjectArgumentsAreRead) {
  Reply r = testing::sse({});
  r.parts.resize(1);
  r.parts.emplace_back(milliseconds(10),
                       R"(data: {"choices":[{"index":0,"delta":{"content":[{"type":"text","text":"Hello "}]}}]})"
                       "\n\n");
  r.parts.emplace_back(milliseconds(10),
                       R"(data: {"choices":[{"index":0,"delta":{"content":"world","tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":{"a":1}}}]},"finish_reason":"stop"}]})"
                       "\n\ndata: [DONE]\n\n");
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->text(), "Hello world");
  EXPECT_EQ(result->finish_reason(), "stop");
  ASSERT_EQ(result->choices[0].message.tool_calls.size(), 1u);
  EXPECT_EQ(result->choices[0].message.tool_calls[0].arguments, R"({"a":1})");
  EXPECT_EQ(result->attempts[0].skipped_events, 0);
}

TEST_F(StreamTest, AByteOrderMarkOpeningTheStreamIsNotPartOfIt) {
  Reply r;  // the first event carries the whole answer
  r.headers = {{"content-type", "text/event-stream"}};
  r.parts = {{milliseconds(10),
              "\xEF\xBB\xBF"
              R"(data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"kept"},"finish_reason":"stop"}]})"
              "\n\n"},
             {milliseconds(10), "data: [DONE]\n\n"}};
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->text(), "kept");
}

TEST_F(StreamTest, AStreamOfNothingButDoneIsNoSuccess) {
  Reply r;
  r.headers = {{"content-type", "text/event-stream"}};
  r.parts = {{milliseconds(10), "data: [DONE]\n\n"}};
  fake->sequence(testing::chat_url(kA), {r});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(outcomes(result->attempts), (Strings{"a:protocol", "b:success"}));
  EXPECT_EQ(result->attempts[0].status, 200);
}

TEST_F(StreamTest, StallAfterTheFirstChunkTripsTheIdleWatchdog) {
  Reply stall = testing::sse({"first", "never"});
  stall.parts.resize(2);  // role + "first", then silence
  stall.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {stall});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().partial()->text(), "first");
  // "first" arrived 20 ms in; the idle watchdog fires exactly 3 s later.
  EXPECT_EQ(r.error().attempts()[0].latency, Duration(milliseconds(20) + seconds(3)));
  EXPECT_EQ(r.error().attempts()[0].message,
            "timeout: no stream chunk within the idle timeout of 3000 ms");
}

TEST_F(StreamTest, CommentsDoNotResetTheIdleWatchdog) {
  Reply r = testing::sse({"first"});
  r.parts.resize(2);
  for (int i = 0; i < 10; ++i) r.parts.emplace_back(milliseconds(500), ": keep-alive\n\n");
  r.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(result.error().attempts()[0].latency, Duration(milliseconds(20) + seconds(3)));
}

TEST_F(StreamTest, HandlerReturningFalseCancelsAndAbandonsTheExchange) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"a", "b", "c"})});
  Client client(options());
  int calls = 0;
  auto r = client.chat_stream(ping(), [&](const ChatChunk& c) {
    ++calls;
    return c.content() != "a";
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  EXPECT_EQ(calls, 2);  // role, "a"
  EXPECT_EQ(r.error().partial()->text(), "a");
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"a:cancelled"}));
}

TEST_F(StreamTest, ErrorEventBeforeContentFailsOver) {
  Reply err;
  err.parts = {{milliseconds(5),
                "event: error\ndata: {\"error\":{\"message\":\"overloaded\","
                "\"type\":\"server_error\",\"code\":\"503\"}}\n\n"}};
  err.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {err});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
}

TEST_F(StreamTest, ErrorEventAfterContentInterrupts) {
  Reply r = testing::sse({"partial"});
  r.parts.resize(2);
  r.parts.emplace_back(milliseconds(5), "data: {\"error\":{\"message\":\"boom\"}}\n\n");
  r.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(result.error().partial()->text(), "partial");
}

// A reasoning delta, as DeepSeek sends it (content null beside it).
std::string sse_reasoning(const std::string& piece) {
  return R"(data: {"id":"r","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":null,"reasoning_content":")" +
         piece + "\"},\"finish_reason\":null}]}\n\n";
}

TEST_F(StreamTest, ReasoningDeltasAreProgressForTheFirstTokenWatchdog) {
  // Thinking for 4 s, a delta every second, with a 2 s first-token and 3 s idle limit.
  Reply thinking;
  thinking.parts.emplace_back(milliseconds(10), testing::sse_role());
  for (const char* piece : {"Let ", "me ", "think", "."}) {
    thinking.parts.emplace_back(seconds(1), sse_reasoning(piece));
  }
  thinking.parts.emplace_back(seconds(1), testing::sse_content("Three"));
  thinking.parts.emplace_back(milliseconds(10), testing::sse_finish_and_done());
  fake->sequence(testing::chat_url(kA), {thinking});
  Client client(options());
  Strings reasoning;
  auto r = client.chat_stream(ping(), [&](const ChatChunk& c) {
    if (!c.reasoning().empty()) reasoning.push_back(c.reasoning());
    if (!c.content().empty()) pieces.push_back(c.content());
    return true;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  EXPECT_EQ(r->text(), "Three");
  EXPECT_EQ(r->reasoning(), "Let me think.");
  EXPECT_EQ(reasoning, (Strings{"Let ", "me ", "think", "."}));  // handed over at commit
  EXPECT_EQ(pieces, (Strings{"Three"}));
  // The assembled response carries the reasoning in its JSON too.
  EXPECT_NE(r->raw_json.find(R"("reasoning_content":"Let me think.")"), std::string::npos);
}

TEST_F(StreamTest, ReasoningThatStallsTripsTheIdleWatchdogAndFailsOver) {
  Reply stalled;
  stalled.parts.emplace_back(milliseconds(10), testing::sse_role());
  stalled.parts.emplace_back(seconds(1), sse_reasoning("hmm"));
  stalled.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {stalled});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
  EXPECT_EQ(r->attempts[0].message, "no stream chunk within the idle timeout of 3000 ms");
  EXPECT_EQ(r->attempts[0].latency, Duration(milliseconds(4010)));
  EXPECT_EQ(r->reasoning(), "");  // a's thinking was never handed over
  EXPECT_EQ(pieces, (Strings{"b"}));
}

TEST_F(StreamTest, AMalformedEventIsSkippedCountedAndTheStreamGoesOn) {
  Reply r = testing::sse({"Hel", "lo"});
  r.parts.insert(r.parts.begin() + 2, {milliseconds(5), "data: {\"choices\": [{\"delta\"\n\n"});
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->text(), "Hello");
  EXPECT_EQ(pieces, (Strings{"Hel", "lo"}));
  ASSERT_EQ(result->attempts.size(), 1u);
  EXPECT_EQ(result->attempts[0].skipped_events, 1);
  EXPECT_NE(client.metrics_text().find(
                "failover_stream_events_skipped_total{endpoint=\"a\",model=\"m\"} 1"),
            std::string::npos);
}

TEST_F(StreamTest, AStreamOfNothingButMalformedEventsFailsOver) {
  Reply garbage;
  garbage.parts = {{milliseconds(5), "data: <html>\n\n"},
                   {milliseconds(5), "data: oops\n\n"},
                   {milliseconds(5), "data: [DONE]\n\n"}};
  fake->sequence(testing::chat_url(kA), {garbage});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:protocol", "b:success"}));
  EXPECT_EQ(r->attempts[0].message, "every event of the stream was malformed (2 skipped)");
  EXPECT_EQ(r->attempts[0].skipped_events, 2);
}

TEST_F(StreamTest, AnErrorChunkWithChoicesFailsOverBeforeContent) {
  // OpenRouter: a comment, then one chunk with both an error and finish_reason "error".
  Reply err;
  err.parts = {
      {milliseconds(5), ": OPENROUTER PROCESSING\n\n"},
      {milliseconds(5),
       R"(data: {"id":"g","object":"chat.completion.chunk","created":1,"model":"m","error":{"code":429,"message":"Rate limit exceeded"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})"
       "\n\n"}};
  fake->sequence(testing::chat_url(kA), {err});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  Client client(options());
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:rate_limited", "b:success"}));
  EXPECT_EQ(r->attempts[0].message, "error event in the stream: Rate limit exceeded");
  EXPECT_EQ(pieces, (Strings{"b"}));
}

TEST_F(StreamTest, FinishReasonErrorAfterContentIsNeverASuccess) {
  Reply r = testing::sse({"partial"});
  r.parts.resize(2);
  r.parts.emplace_back(
      milliseconds(5),
      R"(data: {"id":"s","choices":[{"index":0,"delta":{},"finish_reason":"error"}]})"
      "\n\ndata: [DONE]\n\n");
  fake->sequence(testing::chat_url(kA), {r});
  fake->sequence(testing::chat_url(kB), {testing::sse({"b"})});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(result.error().partial()->text(), "partial");
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
}

TEST_F(StreamTest, StreamThatNeverClosesAfterDoneStillSucceeds) {
  Reply r = testing::sse({"x"});
  r.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {r});
  Client client(options());
  auto result = client.chat_stream(ping(), collect());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->text(), "x");
}

TEST_F(StreamTest, AsyncStreamRunsTheHandlerOnTheEngineThread) {
  fake->sequence(testing::chat_url(kA), {testing::status(500)});
  fake->sequence(testing::chat_url(kB), {testing::sse({"as", "ync"})});
  Client client(options());
  std::thread::id handler_thread;
  auto future = client.chat_stream_async(ping(), [&](const ChatChunk& c) {
    handler_thread = std::this_thread::get_id();
    if (!c.content().empty()) pieces.push_back(c.content());
    return true;
  });
  auto r = future.get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "async");
  EXPECT_EQ(pieces, (Strings{"as", "ync"}));
  EXPECT_NE(handler_thread, std::this_thread::get_id());
}

}  // namespace
}  // namespace failover
