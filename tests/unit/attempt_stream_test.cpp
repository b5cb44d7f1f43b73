// One attempt's stream session, on its own: events read into chunks and the answer, errors,
// malformed events, the seam of a continuation, what is held and delivered, and the watchdog's
// times on a manual clock, to exact values.

#include "core/attempt_stream.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

namespace failover {
namespace {

using detail::AttemptStream;
using Event = AttemptStream::Event;
using std::chrono::milliseconds;
using std::chrono::seconds;

const wire::DialectApi& openai() { return wire::api_of(Dialect::OpenAI); }

// An event whose text lives as long as the test (SseEvent views its parser's buffer).
wire::SseEvent data(std::string d, std::string event = "message") {
  static std::deque<std::string> texts;
  texts.push_back(std::move(event));
  const std::string& name = texts.back();
  texts.push_back(std::move(d));
  return wire::SseEvent{name, texts.back()};
}

std::string content(const std::string& text, const char* finish = nullptr) {
  std::string f = finish ? std::string("\"") + finish + "\"" : "null";
  return R"({"id":"c","model":"m","choices":[{"index":0,"delta":{"content":")" + text +
         R"("},"finish_reason":)" + f + "}]}";
}

struct AttemptStreamTest : ::testing::Test {
  TimePoint t0 = TimePoint{} + seconds(100);
};

TEST_F(AttemptStreamTest, ChunksAreJoinedAndTheAnswerEndsAtDone) {
  AttemptStream s(openai(), t0, /*whole=*/true);
  EXPECT_FALSE(s.heard());
  AttemptStream::Read r = s.read(t0 + milliseconds(10), data(content("Hel")), 1);
  EXPECT_EQ(r.event, Event::Chunk);
  EXPECT_EQ(r.chunk.choices.at(0).content, "Hel");
  EXPECT_TRUE(s.heard());
  EXPECT_TRUE(s.progressed);
  EXPECT_TRUE(s.chunk_accepted);
  EXPECT_EQ(s.last_chunk, t0 + milliseconds(10));
  EXPECT_EQ(s.read(t0 + milliseconds(20), data(content("lo", "stop")), 1).event, Event::Chunk);
  EXPECT_TRUE(s.answer_finished);
  EXPECT_TRUE(s.finished());
  EXPECT_FALSE(s.done_seen);
  EXPECT_EQ(s.read(t0 + milliseconds(30), data("[DONE]"), 1).event, Event::Done);
  EXPECT_EQ(s.done_at, t0 + milliseconds(30));
  // Nothing after the end counts.
  EXPECT_EQ(s.read(t0 + milliseconds(40), data(content("more")), 1).event, Event::Nothing);
  EXPECT_EQ(s.accumulated.build().text(), "Hello");
  EXPECT_EQ(s.received_chars, 5u);
}

TEST_F(AttemptStreamTest, SeveralChoicesFinishOnlyWhenEachHas) {
  AttemptStream s(openai(), t0, true);
  s.read(t0, data(content("a", "stop")), 2);
  EXPECT_FALSE(s.answer_finished);
  s.read(t0, data(R"({"choices":[{"index":1,"delta":{"content":"b"},"finish_reason":"stop"}]})"),
         2);
  EXPECT_TRUE(s.answer_finished);
}

TEST_F(AttemptStreamTest, AnErrorEventCarriesItsBodyAndEndsTheReading) {
  AttemptStream s(openai(), t0, true);
  AttemptStream::Read r =
      s.read(t0, data(R"({"error":{"message":"overloaded","type":"server_error"}})", "error"), 1);
  EXPECT_EQ(r.event, Event::Error);
  EXPECT_EQ(r.error_body.message, "overloaded");
  // An in-band error inside a chunk is one too.
  AttemptStream t(openai(), t0, true);
  EXPECT_EQ(t.read(t0, data(R"({"error":{"message":"quota"}})"), 1).event, Event::Error);
  // Once the machine records an error, later events are not read.
  s.error = AttemptOutcome{};
  EXPECT_EQ(s.read(t0, data(content("x")), 1).event, Event::Nothing);
}

TEST_F(AttemptStreamTest, MalformedEventsAreSkippedAndCounted) {
  AttemptStream s(openai(), t0, true);
  AttemptStream::Read r = s.read(t0, data("{not json"), 1);
  EXPECT_EQ(r.event, Event::Malformed);
  EXPECT_FALSE(r.why.empty());
  EXPECT_EQ(s.read(t0, data("[1,2]"), 1).event, Event::Malformed);
  EXPECT_EQ(s.skipped_events, 2);
  EXPECT_FALSE(s.chunk_accepted);
  EXPECT_EQ(s.read(t0, data(content("ok")), 1).event, Event::Chunk);
}

TEST_F(AttemptStreamTest, ANativeKeepAliveIsNothingButFramesTheBody) {
  AttemptStream s(wire::api_of(Dialect::Anthropic), t0, true);
  EXPECT_EQ(s.read(t0, data(R"({"type":"ping"})", "ping"), 1).event, Event::Nothing);
  EXPECT_TRUE(s.framed);
  EXPECT_FALSE(s.progressed);
  EXPECT_FALSE(s.chunk_accepted);
}

TEST_F(AttemptStreamTest, BytesAreKeptUntilTheFirstEventAndWithinTheLimit) {
  AttemptStream s(openai(), t0, true);
  std::vector<std::string> events;
  auto on_event = [&](const wire::SseEvent& e) {
    events.emplace_back(e.data);
    s.frame();
  };
  s.feed(R"({"error":)", 100, on_event);
  EXPECT_EQ(s.unframed, R"({"error":)");
  EXPECT_TRUE(s.unframed_body());
  s.feed(std::string(200, 'x'), 100, on_event);  // past the limit: not kept
  EXPECT_EQ(s.unframed, R"({"error":)");
  AttemptStream t(openai(), t0, true);
  t.feed("data: " + content("a") + "\n\n", 1000, [&](const wire::SseEvent& e) {
    events.emplace_back(e.data);
    t.frame();
  });
  EXPECT_EQ(events.size(), 1u);
  EXPECT_TRUE(t.framed);
  EXPECT_TRUE(t.unframed.empty());
  EXPECT_FALSE(t.unframed_body());
}

TEST_F(AttemptStreamTest, TheSeamOfAContinuationIsNotShownTwice) {
  AttemptStream s(openai(), t0, false);
  s.seam = " \n";
  AttemptStream::Read r = s.read(t0, data(content(" ")), 1);
  EXPECT_EQ(r.chunk.choices.at(0).content, "");
  EXPECT_EQ(s.seam, "\n");  // the rest may open the next chunk
  r = s.read(t0, data(content("\\nNext")), 1);
  EXPECT_EQ(r.chunk.choices.at(0).content, "Next");
  EXPECT_TRUE(s.seam.empty());
}

TEST_F(AttemptStreamTest, TheWatchdogWaitsForContentThenBetweenChunksThenForTheEnd) {
  const Duration first_byte = seconds(20), idle = seconds(60);
  const TimePoint hard = t0 + seconds(600), deadline = t0 + seconds(300);
  AttemptStream s(openai(), t0, true);
  EXPECT_EQ(s.watchdog(t0, first_byte, idle, hard, deadline), t0 + seconds(20));
  // A chunk with no progress (a role) leaves the first-token limit.
  s.read(t0 + seconds(5), data(R"({"choices":[{"index":0,"delta":{"role":"assistant"}}]})"), 1);
  EXPECT_EQ(s.watchdog(t0, first_byte, idle, hard, deadline), t0 + seconds(20));
  s.read(t0 + seconds(15), data(content("a")), 1);
  EXPECT_EQ(s.watchdog(t0, first_byte, idle, hard, deadline), t0 + seconds(75));
  s.read(t0 + seconds(280), data(content("b")), 1);
  EXPECT_EQ(s.watchdog(t0, first_byte, idle, hard, deadline), deadline);
  s.read(t0 + seconds(281), data(content("", "stop")), 1);
  EXPECT_EQ(s.watchdog(t0, first_byte, idle, hard, deadline),
            t0 + seconds(281) + AttemptStream::kDoneGrace);
  s.read(t0 + seconds(282), data("[DONE]"), 1);
  EXPECT_EQ(s.watchdog(t0, first_byte, idle, hard, deadline),
            t0 + seconds(282) + AttemptStream::kDoneGrace);
  EXPECT_EQ(s.watchdog(t0, first_byte, idle, t0 + seconds(1), deadline), t0 + seconds(1));
}

TEST_F(AttemptStreamTest, UsageIsWhatTheStreamReportedElseAnEstimate) {
  AttemptStream s(openai(), t0, true);
  s.read(t0, data(content("abcdefghi")), 1);  // 9 characters: 3 tokens at four a token
  Usage guess = s.usage(10);
  EXPECT_EQ(guess.prompt_tokens, 10);
  EXPECT_EQ(guess.completion_tokens, 3);
  EXPECT_EQ(guess.total_tokens, 13);
  s.read(
      t0,
      data(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}})"),
      1);
  EXPECT_EQ(s.usage(10).prompt_tokens, 7);
  EXPECT_EQ(s.usage(10).completion_tokens, 2);
}

TEST_F(AttemptStreamTest, AContinuationStartsFromWhatWasShown) {
  ChatResponse shown;
  Choice c;
  c.message = Message::assistant("The quick ");
  shown.choices.push_back(c);
  AttemptStream s(openai(), t0, false);
  s.seed(shown);
  s.read(t0, data(content("brown fox", "stop")), 1);
  EXPECT_EQ(s.accumulated.build().text(), "The quick brown fox");
  EXPECT_EQ(s.received_chars, 9u);  // only what this attempt received
}

TEST_F(AttemptStreamTest, HeldAndDeliveredAreThisAttemptsOwn) {
  AttemptStream fresh(openai(), t0, false);
  EXPECT_FALSE(fresh.notice_due);
  AttemptStream restart(openai(), t0, false, /*restarts=*/true);
  EXPECT_TRUE(restart.notice_due);
  ChatChunk role;
  role.choices.emplace_back();
  restart.hold(role);
  EXPECT_EQ(restart.held.size(), 1u);
  ChatChunk notice;
  notice.restart = true;
  restart.count_delivered(notice);
  EXPECT_EQ(restart.delivered_chunks, 0);  // a notice is not the answer
  ChatChunk text;
  text.choices.emplace_back();
  text.choices[0].content = "abc";
  text.choices[0].reasoning = "de";
  restart.count_delivered(text);
  EXPECT_EQ(restart.delivered_chunks, 1);
  EXPECT_EQ(restart.delivered_chars, 5u);
}

}  // namespace
}  // namespace failover
