// Real providers' answers, replayed on loopback through the real curl transport, each with a
// healthy second tier behind it: the SDK must conclude what a correct client concludes. The
// fixtures are written here after each provider's documented formats; when the recorded
// answers of ../shared/reference/provider-responses.jsonl are at hand (a development checkout),
// ProviderReference replays every one of them as well.

#include "loopback.hpp"
#include "test_helpers.hpp"

#include <failover/failover.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

namespace failover {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::LoopbackServer;
using testing::ping;

using Recorded = testing::RecordedAnswer;
using testing::HealthyServer;
using testing::ReplayServer;

Recorded answer(int status, std::string body) { return testing::recorded(status, std::move(body)); }
Recorded sse(std::vector<std::string> events) { return testing::recorded_sse(std::move(events)); }
std::string data(const std::string& payload) { return testing::sse_data(payload); }

// What a call against a replayed answer ended as.
struct Outcome {
  bool ok = false;
  std::string served_by;  // endpoint, when ok
  std::string first;      // the first attempt's outcome
  std::string kind;       // the error kind, when not ok
  std::size_t attempts = 0;
  std::string text, reasoning;  // when ok
  std::size_t tool_calls = 0;
  int skipped_events = 0;  // on the first attempt
  std::string first_message;
};

Outcome replay(const Recorded& recorded, ContentFilterPolicy filter = ContentFilterPolicy::Fail,
               Duration first_byte = std::chrono::seconds(30), Dialect dialect = Dialect::OpenAI) {
  ReplayServer first(recorded);
  HealthyServer second;
  ClientOptions o;
  o.endpoints = {{"first", first.base_url(), "sk-first"}, {"second", second.base_url(), "sk-s"}};
  o.endpoints[0].dialect = dialect;
  o.priority = {Tier{{{"first", "m"}}}, Tier{{{"second", "m"}}}};
  o.content_filter = filter;
  o.timeouts.first_byte = first_byte;
  o.timeouts.total = std::chrono::seconds(20);
  Client client(o);
  Result<ChatResponse> r = recorded.stream
                               ? client.chat_stream(ping(), [](const ChatChunk&) { return true; })
                               : client.chat(ping());
  Outcome out;
  const std::vector<Attempt>& attempts = r ? r->attempts : r.error().attempts();
  out.attempts = attempts.size();
  if (!attempts.empty()) {
    out.first = attempts.front().outcome();
    out.skipped_events = attempts.front().skipped_events;
    out.first_message = attempts.front().message;
  }
  out.ok = static_cast<bool>(r);
  if (r) {
    out.served_by = r->served_by.endpoint;
    out.text = r->text();
    out.reasoning = r->reasoning();
    out.tool_calls = r->tool_calls().size();
  } else {
    out.kind = std::string(to_string(r.error().kind()));
  }
  return out;
}

// A failure of the first route that the second tier serves: at once, or for a failure that
// came back fast after one retry of the first (before a downgrade).
void expect_failed_over(const Outcome& o, const std::string& first_outcome) {
  EXPECT_TRUE(o.ok) << o.kind;
  EXPECT_EQ(o.served_by, "second");
  EXPECT_EQ(o.first, first_outcome) << o.first_message;
  EXPECT_GE(o.attempts, 2u);
  EXPECT_LE(o.attempts, 3u);
}

// Native dialects over the real transport, on answers written from their API references.
TEST(ProviderReplay, NativeAnswersAndTheirFailuresThroughTheRealTransport) {
  // One SSE event per payload, each written on one line.
  auto events = [](const std::vector<std::string>& payloads) {
    std::vector<std::string> out;
    for (const std::string& p : payloads) out.push_back(data(json::parse(p).dump()));
    return sse(std::move(out));
  };
  Outcome o = replay(
      events(
          {R"({"type":"message_start","message":{"id":"msg_1","type":"message",
                          "role":"assistant","content":[],"model":"claude-x","usage":{"input_tokens":4}}})",
           R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})",
           R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}})",
           R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})",
           R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Xin chào"}})",
           R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}})",
           R"({"type":"message_stop"})"}),
      ContentFilterPolicy::Fail, std::chrono::seconds(30), Dialect::Anthropic);
  ASSERT_TRUE(o.ok) << o.kind << ": " << o.first_message;
  EXPECT_EQ(o.served_by, "first");
  EXPECT_EQ(o.text, "Xin chào");
  EXPECT_EQ(o.reasoning, "hmm");

  // An overloaded error event after content: the partial answer is no success.
  o = replay(
      events(
          {R"({"type":"message_start","message":{"id":"m","type":"message","role":"assistant",
                  "content":[],"model":"claude-x"}})",
           R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})",
           R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"}),
      ContentFilterPolicy::Fail, std::chrono::seconds(30), Dialect::Anthropic);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.kind, "stream_interrupted");

  // Gemini: a safety stop is an answer (content_filter), a blocked prompt a rejection that the
  // content-filter policy decides, a 503 UNAVAILABLE a failover.
  o = replay(answer(200, R"({"candidates":[{"content":{"role":"model","parts":[{"text":"Chào"}]},
                         "finishReason":"STOP"}],"modelVersion":"gemini-y"})"),
             ContentFilterPolicy::Fail, std::chrono::seconds(30), Dialect::Gemini);
  ASSERT_TRUE(o.ok) << o.kind << ": " << o.first_message;
  EXPECT_EQ(o.text, "Chào");
  const Recorded blocked = answer(200, R"({"promptFeedback":{"blockReason":"SAFETY"}})");
  o = replay(blocked, ContentFilterPolicy::Fail, std::chrono::seconds(30), Dialect::Gemini);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.kind, "content_filtered");
  EXPECT_EQ(o.attempts, 1u);
  o = replay(blocked, ContentFilterPolicy::FailOver, std::chrono::seconds(30), Dialect::Gemini);
  EXPECT_TRUE(o.ok) << o.kind;
  EXPECT_EQ(o.served_by, "second");
  expect_failed_over(
      replay(answer(503, R"({"error":{"code":503,"message":"The model is overloaded.",
                         "status":"UNAVAILABLE"}})"),
             ContentFilterPolicy::Fail, std::chrono::seconds(30), Dialect::Gemini),
      "overloaded");
}

TEST(ProviderReplay, DeadAccountsAreServedByTheNextTier) {
  expect_failed_over(
      replay(answer(
          402,
          R"({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}})")),
      "quota_exhausted");
  expect_failed_over(
      replay(answer(
          400,
          R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}})")),
      "quota_exhausted");
  expect_failed_over(
      replay(answer(
          403,
          R"({"error":{"code":403,"message":"Insufficient credits. Add more using the dashboard"}})")),
      "quota_exhausted");
}

TEST(ProviderReplay, BadKeysSentAs400AreServedByTheNextTier) {
  expect_failed_over(
      replay(answer(
          400,
          R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}})")),
      "authentication");
  expect_failed_over(
      replay(answer(
          400,
          R"({"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***ab. You can obtain an API key from the console."})")),
      "authentication");
}

TEST(ProviderReplay, MissingModelsAndContextOverflowsAreServedByTheNextTier) {
  expect_failed_over(
      replay(answer(
          400,
          R"({"error":{"message":"Unable to access model m.","type":"invalid_request_error","param":null,"code":"model_not_available"}})")),
      "not_found");
  expect_failed_over(
      replay(answer(
          404,
          R"({"error":{"message":"model \"m\" not found, try pulling it first","type":"api_error","param":null,"code":null}})")),
      "not_found");
  expect_failed_over(
      replay(answer(
          400,
          R"({"object":"error","message":"max_tokens must be at least 1, got -563072.","type":"BadRequestError","param":null,"code":400})")),
      "context_length_exceeded");
  expect_failed_over(
      replay(answer(
          500,
          R"({"error":{"code":500,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}})")),
      "context_length_exceeded");
}

TEST(ProviderReplay, OverloadRateLimitsAndEdgePagesFailOver) {
  expect_failed_over(
      replay(answer(
          529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})")),
      "overloaded");
  expect_failed_over(
      replay(answer(
          429,
          R"({"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.4s"}]}})")),
      "rate_limited");
  Recorded page = answer(502,
                         "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                         "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>"
                         "\r\n</body>\r\n</html>\r\n");
  page.headers = {{"content-type", "text/html"}};
  Outcome o = replay(page);
  expect_failed_over(o, "server_error");
  EXPECT_EQ(o.first_message, "502 Bad Gateway");
}

TEST(ProviderReplay, AnUnsupportedParameterFailsTheCallWithNoSecondAttempt) {
  Outcome o = replay(answer(
      400,
      R"({"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})"));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.kind, "invalid_request");
  EXPECT_EQ(o.attempts, 1u);
}

TEST(ProviderReplay, AContentFilterFailsTheCallUnlessFailoverIsChosen) {
  const Recorded blocked = answer(
      403,
      R"({"error":{"code":403,"message":"Request blocked: prompt injection patterns detected","metadata":{"patterns":["ignore all previous instructions"]}}})");
  Outcome o = replay(blocked);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.kind, "content_filtered");
  EXPECT_EQ(o.attempts, 1u);
  expect_failed_over(replay(blocked, ContentFilterPolicy::FailOver), "content_filtered");
}

TEST(ProviderReplay, ErrorsInside200sFailOver) {
  // A non-streamed 200 that is only a FastAPI error.
  expect_failed_over(replay(answer(200, R"({"detail":"Internal Server Error"})")), "server_error");
  // A stream whose one chunk carries an error and finish_reason "error", then nothing.
  expect_failed_over(
      replay(sse(
          {": OPENROUTER PROCESSING\n\n",
           data(
               R"({"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m","error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})")})),
      "rate_limited");
  // A stream whose only event is an error object, then [DONE].
  expect_failed_over(
      replay(sse(
          {data(
               R"({"error":{"message":"The server had an error processing your request.","type":"server_error","param":null,"code":null}})"),
           data("[DONE]")})),
      "server_error");
  // An error message that is itself a JSON document, with a numeric code.
  expect_failed_over(
      replay(sse({data(
          R"({"error":{"message":"{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted\",\n    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}\n","code":429}})")})),
      "rate_limited");
}

// A chunk with these delta members.
std::string chunk(const std::string& delta, const std::string& finish = "null") {
  return data(
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":)" +
      delta + R"(,"finish_reason":)" + finish + "}]}");
}

TEST(ProviderReplay, AReasoningStreamLongerThanTheFirstByteLimitIsServed) {
  // Reasoning at once and then every 0.5 s for 3 s, then the answer, with first_byte 1 s
  // (longer limits and gaps, in proportion, in sanitized builds).
  std::vector<std::pair<milliseconds, std::string>> parts = {
      {milliseconds(0),
       chunk(R"({"role":"assistant","content":null,"reasoning_content":"Hmm. "})")}};
  for (int i = 0; i < 6; ++i) {
    parts.emplace_back(
        milliseconds(500 * testing::kTimeScale),
        chunk(R"({"content":null,"reasoning_content":"step )" + std::to_string(i) + R"(. "})"));
  }
  parts.emplace_back(milliseconds(10), chunk(R"({"content":"Three."})"));
  parts.emplace_back(milliseconds(1), chunk("{}", "\"stop\"") + data("[DONE]"));
  Recorded thinking;
  thinking.stream = true;
  thinking.parts = parts;
  Outcome o =
      replay(thinking, ContentFilterPolicy::Fail, std::chrono::seconds(1) * testing::kTimeScale);
  ASSERT_TRUE(o.ok) << o.kind;
  EXPECT_EQ(o.served_by, "first");
  EXPECT_EQ(o.attempts, 1u);
  EXPECT_EQ(o.text, "Three.");
  EXPECT_EQ(o.reasoning, "Hmm. step 0. step 1. step 2. step 3. step 4. step 5. ");
}

TEST(ProviderReplay, StreamsInTheWildAreServedWhole) {
  // One unparseable event among good chunks: skipped and counted.
  Outcome bad_line =
      replay(sse({chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"Hello"})"),
                  "data: {\"choices\":[{\n\n", chunk(R"({"content":", world"})"),
                  chunk("{}", "\"stop\"") + data("[DONE]")}));
  ASSERT_TRUE(bad_line.ok) << bad_line.kind;
  EXPECT_EQ(bad_line.served_by, "first");
  EXPECT_EQ(bad_line.text, "Hello, world");
  EXPECT_EQ(bad_line.skipped_events, 1);
  // Keep-alive comments first; Azure's empty first chunk; no finish_reason keys; a float
  // `created`; usage after the finish chunk.
  Outcome wild = replay(sse(
      {": keep-alive\n\n", ": keep-alive\n\n",
       data(
           R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]})"),
       data(
           R"({"id":"c","created":1.5,"choices":[{"index":0,"delta":{"role":"assistant","content":"Capital"}}]})"),
       data(R"({"id":"c","choices":[{"index":0,"delta":{"content":" of Denmark."}}]})"),
       data(R"({"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"),
       data(
           R"({"id":"c","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":4,"total_tokens":9}})"),
       data("[DONE]")}));
  ASSERT_TRUE(wild.ok) << wild.kind;
  EXPECT_EQ(wild.text, "Capital of Denmark.");
  // A tool call without index or type, whole in one chunk with its finish_reason.
  Outcome tool = replay(sse(
      {chunk(R"({"role":"assistant","content":""})"),
       chunk(
           R"({"content":null,"tool_calls":[{"id":"t1","function":{"name":"weather","arguments":"{\"city\": \"Hanoi\"}"}}]})",
           "\"tool_calls\"") +
           data("[DONE]")}));
  ASSERT_TRUE(tool.ok) << tool.kind;
  EXPECT_EQ(tool.tool_calls, 1u);
}

// ---- The recorded answers of the reference file, when present ----------------------------

std::string reference_path() {
  if (const char* env = std::getenv("FAILOVER_PROVIDER_REFERENCE"); env && *env) return env;
  return FAILOVER_PROVIDER_REFERENCE;
}

TEST(ProviderReference, EveryRecordedAnswerEndsAsExpected) {
  std::ifstream in(reference_path());
  if (!in) GTEST_SKIP() << "no reference file at " << reference_path();
  // What each `expect` allows as the first attempt's outcome.
  const std::map<std::string, std::set<std::string>> first_outcomes = {
      {"transient", {"server_error", "overloaded", "timeout", "connection_lost", "conflict"}},
      {"rate_limited", {"rate_limited"}},
      {"quota_exhausted", {"quota_exhausted"}},
      {"auth", {"authentication"}},
      {"not_found", {"not_found"}},
      {"context_length", {"context_length_exceeded"}},
  };
  std::string line;
  int records = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json rec = json::parse(line);
    ++records;
    const std::string id = rec["id"], expect = rec["expect"];
    SCOPED_TRACE(id + " (expect " + expect + ")");
    Recorded r = answer(rec["status"].get<int>(), rec["body"].get<std::string>());
    r.stream = rec["stream"].get<bool>();
    for (const auto& [name, value] : rec["headers"].items()) {
      r.headers.emplace_back(name, value.get<std::string>());
    }
    // A native API's record is replayed through that dialect's decoder.
    const std::string provider = rec["provider"];
    const Dialect dialect = provider.find("Messages API") != std::string::npos ? Dialect::Anthropic
                            : provider.find("native generateContent") != std::string::npos
                                ? Dialect::Gemini
                                : Dialect::OpenAI;
    Outcome o = replay(r, ContentFilterPolicy::Fail, std::chrono::seconds(30), dialect);
    if (expect == "success") {
      ASSERT_TRUE(o.ok) << o.kind << ": " << o.first_message;
      EXPECT_EQ(o.served_by, "first");
      EXPECT_EQ(o.attempts, 1u);
      EXPECT_EQ(o.text, rec.value("expect_text", ""));
    } else if (expect == "content_filtered" || expect == "invalid_request") {
      EXPECT_FALSE(o.ok);
      EXPECT_EQ(o.kind, expect);
      EXPECT_EQ(o.attempts, 1u);
    } else if (expect == "stream_error") {
      // Never a success of the first route: a failover before commit, or an interruption.
      if (o.ok) {
        EXPECT_EQ(o.served_by, "second");
        EXPECT_NE(o.first, "success");
      } else {
        EXPECT_EQ(o.kind, "stream_interrupted");
      }
    } else {
      ASSERT_TRUE(first_outcomes.count(expect)) << "unknown expect";
      EXPECT_TRUE(o.ok) << o.kind;
      EXPECT_EQ(o.served_by, "second");
      EXPECT_TRUE(first_outcomes.at(expect).count(o.first)) << o.first << ": " << o.first_message;
    }
  }
  EXPECT_GT(records, 0);
}

}  // namespace
}  // namespace failover
