// Liveness on every call: requests streamed on the wire and whole answers assembled from the
// stream, the default bound on a silent route, time left for failover, and the one rule that
// tells fast failures from slow ones. On a fake transport and a manual clock.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace failover {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::outcomes;
using testing::ping;
using testing::Reply;
using testing::Strings;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";

std::string chunk(const std::string& choices, const std::string& extra = "") {
  return R"(data: {"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":)" +
         choices + extra + "}\n\n";
}

// A route that accepts and never answers: no headers, no byte.
Reply silent() { return testing::failure(ErrorKind::Timeout, std::chrono::hours(1)); }

struct LivenessTest : testing::FakeClientTest {
  ClientOptions two_tiers() {
    return fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}},
                        {Tier{{{"a", "m"}}}, Tier{{{"b", "m"}}}});
  }
  Result<ChatResponse> call(Client& client, bool stream, const CallOptions& options = {}) {
    if (!stream) return client.chat(ping(), options);
    return client.chat_stream(
        ping(), [](const ChatChunk&) { return true; }, options);
  }
  Duration now() const { return clock->now().time_since_epoch(); }
};

TEST_F(LivenessTest, AWholeAnswerIsAssembledFromAStreamThatReportsItsUsage) {
  Reply r;
  r.parts = {
      {milliseconds(5), chunk(R"([{"index":0,"delta":{"role":"assistant","content":""}}])")},
      {milliseconds(5), chunk(R"([{"index":0,"delta":{"content":"Hel"}}])")},
      {milliseconds(5), chunk(R"([{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}])")},
      {milliseconds(5),
       chunk("[]",
             R"(,"usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500})") +
           "data: [DONE]\n\n"}};
  fake->sequence(testing::chat_url(kA), {r});
  ClientOptions o = two_tiers();
  o.prices["m"] = ModelPrice{2.0, std::nullopt, 8.0};
  Client client(o);
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->text(), "Hello");
  EXPECT_EQ(got->choices[0].finish_reason, "stop");
  ASSERT_TRUE(got->usage);
  EXPECT_EQ(got->usage->total_tokens, 1500);
  ASSERT_TRUE(got->cost_usd);
  EXPECT_DOUBLE_EQ(*got->cost_usd, 0.006);  // 1000 x $2 + 500 x $8 per million
  EXPECT_EQ(json::parse(got->raw_json)["object"], "chat.completion");
  const HttpRequest sent = fake->seen()[0].request;
  EXPECT_TRUE(sent.stream);
  const json body = json::parse(sent.body);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"], json::parse(R"({"include_usage":true})"));
  EXPECT_EQ(sent.first_byte_timeout, Duration(seconds(20)));  // the headers limit
}

TEST_F(LivenessTest, ChoicesToolCallsAndLogprobsAreAssembledWhole) {
  Reply r;
  const std::string call_start =
      R"({"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}})";
  const std::string second_choice =
      R"({"index":1,"delta":{"role":"assistant","content":"Two"},"logprobs":{"content":[{"token":"Two","logprob":-0.5,"bytes":[84,119,111],"top_logprobs":[]}],"refusal":null}})";
  const std::string call_end =
      R"({"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Hanoi\"}"}}]},"finish_reason":"tool_calls"})";
  r.parts = {{milliseconds(5), chunk("[" + call_start + "," + second_choice + "]")},
             {milliseconds(5),
              chunk("[" + call_end + R"(,{"index":1,"delta":{},"finish_reason":"stop"}])") +
                  "data: [DONE]\n\n"}};
  fake->sequence(testing::chat_url(kA), {r});
  Client client(two_tiers());
  ChatRequest request = ping();
  request.n = 2;
  auto got = client.chat(request);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(got->choices.size(), 2u);
  ASSERT_EQ(got->tool_calls().size(), 1u);
  EXPECT_EQ(got->tool_calls()[0].id, "call_1");
  EXPECT_EQ(got->tool_calls()[0].name, "get_weather");
  EXPECT_EQ(got->tool_calls()[0].arguments, R"({"city":"Hanoi"})");
  EXPECT_EQ(got->choices[0].finish_reason, "tool_calls");
  EXPECT_EQ(got->choices[1].message.content.value_or(""), "Two");
  EXPECT_EQ(json::parse(got->choices[1].logprobs_json)["content"][0]["token"], "Two");
  EXPECT_FALSE(got->usage);  // none reported
}

TEST_F(LivenessTest, AnEndpointThatCannotStreamIsSentWholeAndKeepsItsBodyAsSent) {
  const std::string body = testing::completion_body("whole");
  fake->sequence(testing::chat_url(kA), {testing::ok("whole")});
  ClientOptions o = two_tiers();
  o.endpoints[0].streaming = false;
  Client client(o);
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->raw_json, body);
  const HttpRequest sent = fake->seen()[0].request;
  EXPECT_FALSE(sent.stream);
  EXPECT_EQ(sent.first_byte_timeout, Duration::zero());  // no sign of life before its end
  EXPECT_FALSE(json::parse(sent.body).contains("stream"));
  EXPECT_FALSE(json::parse(sent.body).contains("stream_options"));
  // A stream call gets the whole answer as one chunk.
  std::vector<std::string> shown;
  auto streamed = client.chat_stream(ping(), [&](const ChatChunk& c) {
    shown.push_back(c.content());
    return true;
  });
  ASSERT_TRUE(streamed) << streamed.error().message();
  EXPECT_EQ(shown, (Strings{"whole"}));
  EXPECT_FALSE(fake->seen()[1].request.stream);
}

TEST_F(LivenessTest, ARouteThatRefusesAStreamIsSentWholeAtOnceAndFromThenOn) {
  Reply refused = testing::status(400);
  refused.body =
      R"({"error":{"message":"Unsupported value: 'stream' does not support true with this model. Supported values are: false.","type":"invalid_request_error","param":"stream","code":"unsupported_value"}})";
  fake->on(testing::chat_url(kA), [&](const HttpRequest& request) {
    return request.stream ? refused : testing::ok("whole");
  });
  Client client(two_tiers());
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->text(), "whole");
  EXPECT_EQ(outcomes(got->attempts), (Strings{"a:invalid_request", "a:success"}));
  EXPECT_NE(got->attempts[0].message.find("sent whole from now on"), std::string::npos);
  EXPECT_EQ(got->attempts[1].delay, Duration::zero());
  const HealthSnapshot h = client.health();
  EXPECT_EQ(h.routes[0].failures, 0u);  // it says nothing of the route's health
  EXPECT_EQ(h.routes[0].state, BreakerState::Closed);
  ASSERT_TRUE(client.chat(ping()));
  ASSERT_EQ(fake->seen().size(), 3u);
  EXPECT_FALSE(fake->seen()[2].request.stream);  // remembered
}

TEST_F(LivenessTest, AnErrorThatMerelyMentionsUpstreamIsNotAStreamRefusal) {
  Reply bad = testing::status(400);
  bad.body =
      R"({"error":{"message":"upstream rejected the messages","type":"invalid_request_error"}})";
  fake->sequence(testing::chat_url(kA), {bad});
  Client client(two_tiers());
  auto got = client.chat(ping());
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);
}

TEST_F(LivenessTest, ARouteThatAnswersAStreamWholeIsSentWholeNextTime) {
  fake->sequence(testing::chat_url(kA), {testing::ok("whole")});
  Client client(two_tiers());
  auto first = client.chat(ping());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->raw_json, testing::completion_body("whole"));  // read as it came
  EXPECT_TRUE(fake->seen()[0].request.stream);
  ASSERT_TRUE(client.chat(ping()));
  EXPECT_FALSE(fake->seen()[1].request.stream);
}

TEST_F(LivenessTest, AWholeAnswerCutMidwayIsServedByTheNextRouteUnseen) {
  Reply cut = testing::sse({"The quick", " brown"}, milliseconds(10), /*done=*/false);
  fake->sequence(testing::chat_url(kA), {cut});
  fake->sequence(testing::chat_url(kB), {testing::sse({"Hello"})});
  ClientOptions o = fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}},
                                 {Tier{{{"a", "m"}, {"b", "m"}}}});  // equivalent routes
  o.prices["m"] = ModelPrice{1.0, std::nullopt, 1.0};
  Client client(o);
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->text(), "Hello");  // nothing of the broken answer
  EXPECT_EQ(outcomes(got->attempts), (Strings{"a:connection_lost", "b:success"}));
  // What the broken attempt received was spent: charged an estimate (no usage came).
  const UsageReport usage = client.usage_report();
  EXPECT_GT(usage.routes[0].cost_usd, 0.0);
  EXPECT_GT(usage.routes[0].completion_tokens, 0);
}

// A stream that sent only keep-alives and then closed broke before any content: it is a lost
// connection (fails over like one), not a malformed answer.
TEST_F(LivenessTest, AStreamOfOnlyKeepAlivesThatClosesIsALostConnection) {
  Reply pings;
  pings.parts = {{milliseconds(10), ": keep-alive\n\n"}, {milliseconds(10), ": ping\r\n\r\n"}};
  fake->sequence(testing::chat_url(kA), {pings});
  fake->sequence(testing::chat_url(kB), {testing::sse({"backup"})});
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "chat");
    Client client(two_tiers());
    auto got = call(client, stream);
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_GE(got->attempts.size(), 2u);
    EXPECT_EQ(got->attempts[0].outcome(), "connection_lost") << got->attempts[0].message;
    EXPECT_EQ(got->served_by.endpoint, "b");
  }
}

// ---- The default bound on a silent route ---------------------------------------------------

TEST_F(LivenessTest, WithDefaultsASilentRouteIsLeftAtTheHeadersLimitAndItsBreakerOpens) {
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "chat");
    fake = std::make_shared<testing::FakeTransport>(clock);
    fake->sequence(testing::chat_url(kA), {silent()});
    fake->sequence(testing::chat_url(kB), {testing::sse({"backup"})});
    Client client(two_tiers());
    for (int i = 1; i <= 5; ++i) {
      const Duration start = now();
      auto got = call(client, stream);
      ASSERT_TRUE(got) << got.error().message();
      EXPECT_EQ(got->text(), "backup");
      EXPECT_EQ(outcomes(got->attempts), (Strings{"a:timeout", "b:success"}));
      EXPECT_EQ(got->attempts[0].latency, Duration(seconds(20)));
      EXPECT_LE(now() - start, Duration(seconds(21)));
      EXPECT_EQ(fake->count(testing::chat_url(kA)), i);  // one request a call
    }
    EXPECT_EQ(client.health().routes[0].state, BreakerState::Open);
    const Duration start = now();
    auto sixth = call(client, stream);
    ASSERT_TRUE(sixth);
    EXPECT_EQ(outcomes(sixth->attempts), (Strings{"b:success"}));
    EXPECT_EQ(fake->count(testing::chat_url(kA)), 5);
    EXPECT_LT(now() - start, Duration(seconds(1)));
  }
}

TEST_F(LivenessTest, OnlyATotalSetLeavesTheBackupTimeToServe) {
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "chat");
    fake = std::make_shared<testing::FakeTransport>(clock);
    fake->sequence(testing::chat_url(kA), {silent()});
    fake->sequence(testing::chat_url(kB), {testing::sse({"backup"})});
    ClientOptions o = two_tiers();
    o.timeouts.total = seconds(8);
    Client client(o);
    for (int i = 0; i < 8; ++i) {
      auto got = call(client, stream);
      ASSERT_TRUE(got) << i << ": " << got.error().message();
      EXPECT_EQ(got->served_by.endpoint, "b");
    }
    // The silent attempts counted against their route: it opened after five.
    EXPECT_EQ(fake->count(testing::chat_url(kA)), 5);
    EXPECT_EQ(client.health().routes[0].state, BreakerState::Open);
  }
}

TEST_F(LivenessTest, AFiveMinuteStreamingGenerationIsNotCutByTheDefaults) {
  Reply slow;
  slow.parts.emplace_back(milliseconds(100), testing::sse_role());
  for (int i = 0; i < 30; ++i) slow.parts.emplace_back(seconds(10), testing::sse_content("w "));
  slow.parts.emplace_back(milliseconds(10), testing::sse_finish_and_done());
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "chat");
    fake = std::make_shared<testing::FakeTransport>(clock);
    fake->sequence(testing::chat_url(kA), {slow});
    Client client(two_tiers());
    auto got = call(client, stream);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(outcomes(got->attempts), (Strings{"a:success"}));
    EXPECT_GE(got->attempts[0].latency, Duration(seconds(300)));
    EXPECT_EQ(got->text().size(), 60u);
  }
}

TEST_F(LivenessTest, KeepAlivesOrReasoningForThreeMinutesBeforeTheContentAreNotCut) {
  Reply keepalives;
  keepalives.parts.emplace_back(milliseconds(100), testing::sse_role());
  for (int i = 0; i < 12; ++i) keepalives.parts.emplace_back(seconds(15), ": keep-alive\n\n");
  keepalives.parts.emplace_back(seconds(1), testing::sse_content("answer"));
  keepalives.parts.emplace_back(milliseconds(10), testing::sse_finish_and_done());
  Reply reasoning;
  reasoning.parts.emplace_back(milliseconds(100), testing::sse_role());
  for (int i = 0; i < 9; ++i) {
    reasoning.parts.emplace_back(seconds(20),
                                 chunk(R"([{"index":0,"delta":{"reasoning_content":"hmm "}}])"));
  }
  reasoning.parts.emplace_back(seconds(1), testing::sse_content("answer"));
  reasoning.parts.emplace_back(milliseconds(10), testing::sse_finish_and_done());
  for (const Reply& reply : {keepalives, reasoning}) {
    for (bool stream : {false, true}) {
      SCOPED_TRACE(stream ? "stream" : "chat");
      fake = std::make_shared<testing::FakeTransport>(clock);
      fake->sequence(testing::chat_url(kA), {reply});
      Client client(two_tiers());
      auto got = call(client, stream);
      ASSERT_TRUE(got) << got.error().message();
      EXPECT_EQ(outcomes(got->attempts), (Strings{"a:success"}));
      EXPECT_GE(got->attempts[0].latency, Duration(seconds(180)));
      EXPECT_EQ(got->text(), "answer");
    }
  }
}

TEST_F(LivenessTest, TheHeadersLimitIsSetPerTierOrRoute) {
  fake->sequence(testing::chat_url(kA), {silent()});
  fake->sequence(testing::chat_url(kB), {testing::sse({"backup"})});
  ClientOptions o = two_tiers();
  o.priority[0].timeouts.headers = seconds(3);
  Client client(o);
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->attempts[0].latency, Duration(seconds(3)));
  EXPECT_EQ(fake->seen()[1].request.first_byte_timeout, Duration(seconds(20)));
}

// ---- Hedged whole answers: one stream each --------------------------------------------------

// The losing stream is charged what it received, whichever attempt won.
TEST_F(LivenessTest, AHedgedWholeAnswerKeepsTheStreamsOfItsAttemptsApartAndChargesBoth) {
  Reply slow;
  slow.parts = {{milliseconds(10), testing::sse_role()},
                {milliseconds(10), testing::sse_content("slow slow slow slow slow slow slow ")},
                {seconds(5), testing::sse_content("primary")},
                {milliseconds(10), testing::sse_finish_and_done()}};
  fake->sequence(testing::chat_url(kA), {slow});
  fake->sequence(testing::chat_url(kB), {testing::sse({"fast ", "hedge"})});
  ClientOptions o =
      fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{{"a", "m"}, {"b", "m"}}}});
  o.hedging.max_extra = 1;
  o.hedging.delay = seconds(1);
  o.prices["m"] = ModelPrice{1.0, std::nullopt, 1.0};
  Client client(o);
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->text(), "fast hedge");
  EXPECT_EQ(got->served_by.endpoint, "b");
  const UsageReport usage = client.usage_report();
  ASSERT_EQ(usage.routes[0].route.endpoint, "a");
  EXPECT_EQ(usage.routes[0].completion_tokens, 9);  // 35 characters received, 4 a token
  EXPECT_GT(usage.routes[0].cost_usd, 0.0);
}

// ---- Fast and slow failures: one rule -------------------------------------------------------

TEST_F(LivenessTest, OnlyAFailureThatCameBackFastIsRetriedBeforeAWeakerModel) {
  fake->sequence(testing::chat_url(kA), {testing::status(503, "", {}, seconds(3))});
  fake->sequence(testing::chat_url(kB), {testing::sse({"weaker"})});
  Client client(two_tiers());
  auto slow = client.chat(ping());
  ASSERT_TRUE(slow) << slow.error().message();
  EXPECT_EQ(outcomes(slow->attempts), (Strings{"a:overloaded", "b:success"}));

  fake->sequence(testing::chat_url(kA),
                 {testing::status(503, "", {}, milliseconds(200)), testing::sse({"same"})});
  auto fast = client.chat(ping());
  ASSERT_TRUE(fast) << fast.error().message();
  EXPECT_EQ(outcomes(fast->attempts), (Strings{"a:overloaded", "a:success"}));
}

TEST(AttemptOutcomeRule, CameBackFastIsAnyFailureButATimeoutWithinASecond) {
  AttemptOutcome o;
  o.kind = ErrorKind::ServerError;
  o.elapsed = milliseconds(999);
  EXPECT_TRUE(o.came_back_fast());
  o.elapsed = seconds(1);
  EXPECT_FALSE(o.came_back_fast());
  o.elapsed = milliseconds(1);
  o.kind = ErrorKind::Timeout;
  EXPECT_FALSE(o.came_back_fast());
  o.kind = ErrorKind::DeadlineExceeded;
  EXPECT_FALSE(o.came_back_fast());
}

// ---- Found by a review: each failed before its fix ---------------------------------------------

// Native dialects always stream, and their bodies are made once per call: a 400 of theirs that
// names the stream is the request's own error, never taken for a refusal to stream (which would
// resend a body that still says "stream": true).
TEST_F(LivenessTest, ANativeRoutesErrorNamingTheStreamIsNotARefusalToStream) {
  const std::string kClaude = "http://claude.test/v1";
  Reply refused = testing::status(400);
  refused.body =
      R"({"type":"error","error":{"type":"invalid_request_error","message":"stream: streaming is not supported for this model"}})";
  Reply whole;
  whole.body = json{{"id", "msg"},
                    {"type", "message"},
                    {"role", "assistant"},
                    {"model", "claude-x"},
                    {"content", {{{"type", "text"}, {"text", "whole"}}}},
                    {"stop_reason", "end_turn"},
                    {"usage", {{"input_tokens", 5}, {"output_tokens", 2}}}}
                   .dump();
  fake->on(kClaude + "/messages", [&](const HttpRequest& request) {
    // What the server sees is the body: a body that asks for a stream is refused.
    return json::parse(request.body).value("stream", false) ? refused : whole;
  });
  Endpoint claude{"claude", kClaude, "sk-ant"};
  claude.dialect = Dialect::Anthropic;
  Client client(fake_options({claude}, {Tier{{Route{"claude", "claude-x"}}}}));
  auto got = client.chat(ping());
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind(), ErrorKind::InvalidRequest);
  ASSERT_EQ(fake->seen().size(), 1u);
  EXPECT_TRUE(json::parse(fake->seen()[0].request.body).value("stream", false));
  ASSERT_TRUE(client.chat(ping()).error().kind() == ErrorKind::InvalidRequest);
  EXPECT_TRUE(fake->seen()[1].request.stream);  // not remembered as a route sent whole
}

// A hedge whose route refuses the stream when the call's attempts are used up: the refusal says
// nothing of the request, so the primary in flight still serves.
TEST_F(LivenessTest, AStreamRefusalOfAHedgeWithNoAttemptsLeftDoesNotEndTheCall) {
  Reply slow;
  slow.parts = {{milliseconds(10), testing::sse_role()},
                {seconds(3), testing::sse_content("primary")},
                {milliseconds(10), testing::sse_finish_and_done()}};
  fake->sequence(testing::chat_url(kA), {slow});
  Reply refused = testing::status(400);
  refused.body =
      R"({"error":{"message":"Unsupported value: 'stream' does not support true with this model.","type":"invalid_request_error","param":"stream","code":"unsupported_value"}})";
  fake->sequence(testing::chat_url(kB), {refused});
  ClientOptions o =
      fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{{"a", "m"}, {"b", "m"}}}});
  o.hedging.max_extra = 1;
  o.hedging.delay = seconds(1);
  RetryOptions two;
  two.max_attempts = 2;
  o.retry = std::make_shared<DefaultRetryPolicy>(two);
  Client client(o);
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << to_string(got.error().kind()) << ": " << got.error().message();
  EXPECT_EQ(got->text(), "primary");
}

// A stream interrupted after seconds reaches the retry policy with its elapsed time: it did not
// come back fast, so the call moves to the next tier (AttemptOutcome::came_back_fast).
TEST_F(LivenessTest, AStreamThatBrokeAfterSecondsIsNotAFastFailure) {
  Reply broken;
  broken.parts = {{milliseconds(10), testing::sse_role()},
                  {milliseconds(10), testing::sse_content("part")},
                  {seconds(5), testing::sse_content(" more")}};
  broken.end = Reply::End::Cut;
  fake->sequence(testing::chat_url(kA), {broken, testing::sse({"again"})});
  fake->sequence(testing::chat_url(kB), {testing::sse({"backup"})});
  ClientOptions o = two_tiers();
  o.stream_recovery = StreamRecovery::Restart;
  struct Spy : RetryPolicy {
    std::vector<Duration>* seen;
    DefaultRetryPolicy inner{RetryOptions{}};
    explicit Spy(std::vector<Duration>* s) : seen(s) {}
    std::unique_ptr<RetryPolicy> clone() const override { return std::make_unique<Spy>(seen); }
    std::optional<int> max_attempts() const override { return inner.max_attempts(); }
    Decision decide(const AttemptOutcome& outcome, const CallState& state) override {
      seen->push_back(outcome.elapsed);
      return inner.decide(outcome, state);
    }
  };
  std::vector<Duration> elapsed;
  o.retry = std::make_shared<Spy>(&elapsed);
  Client client(o);
  auto got = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(elapsed.size(), 1u);
  EXPECT_GE(elapsed[0], Duration(seconds(5)));
  EXPECT_EQ(outcomes(got->attempts), (Strings{"a:stream_interrupted", "b:success"}));
}

// A chat() answer assembled from the stream keeps the message's URL citations
// (delta.annotations), as the same answer sent whole does.
TEST_F(LivenessTest, AnnotationsOfAWholeAnswerSurviveTheStream) {
  Reply r;
  r.parts = {
      {milliseconds(5),
       chunk(
           R"([{"index":0,"delta":{"role":"assistant","content":"See x","annotations":[{"type":"url_citation","url_citation":{"url":"https://x.test/","title":"X","start_index":4,"end_index":5}}]}}])")},
      {milliseconds(5),
       chunk(R"([{"index":0,"delta":{},"finish_reason":"stop"}])") + "data: [DONE]\n\n"}};
  fake->sequence(testing::chat_url(kA), {r});
  Client client(two_tiers());
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->text(), "See x");
  ASSERT_EQ(got->choices[0].message.annotations.size(), 1u);
  EXPECT_EQ(got->choices[0].message.annotations[0].url, "https://x.test/");
}

// A chat() answer's raw_json keeps the chunks' members the SDK does not model, such as
// Perplexity's citations.
TEST_F(LivenessTest, UnknownFieldsOfAWholeAnswerSurviveInRawJson) {
  Reply r;
  r.parts = {{milliseconds(5), chunk(R"([{"index":0,"delta":{"role":"assistant","content":"hi"}}])",
                                     R"(,"citations":["https://x.test/"])")},
             {milliseconds(5), chunk(R"([{"index":0,"delta":{},"finish_reason":"stop"}])",
                                     R"(,"citations":["https://x.test/"])") +
                                   "data: [DONE]\n\n"}};
  fake->sequence(testing::chat_url(kA), {r});
  Client client(two_tiers());
  auto got = client.chat(ping());
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_TRUE(json::parse(got->raw_json).contains("citations")) << got->raw_json;
}

}  // namespace
}  // namespace failover
