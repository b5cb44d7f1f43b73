// The native dialects: Anthropic Messages and Gemini requests, answers, streams and errors, on
// fixtures written here from the providers' API references; then routes of each dialect in a
// client on the scripted transport.

#include "wire/native.hpp"
#include "fake_client_test.hpp"
#include "policy/classify.hpp"
#include "test_helpers.hpp"
#include "wire/sse.hpp"
#include "wire/stream.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace failover {
namespace {

using json = nlohmann::json;
using testing::outcomes;
using testing::Strings;

// A conversation with every kind of turn: system, user with an image, an assistant tool call,
// its result, and a follow-up.
ChatRequest conversation() {
  ChatRequest r;
  r.messages.push_back(Message::system("Be brief."));
  r.messages.push_back(
      Message::user({ContentPart::text_part("What is in this picture, and the weather in Hanoi?"),
                     ContentPart::image("data:image/png;base64,iVBORw0KGgo=")}));
  ToolCall call;
  call.id = "call_1";
  call.name = "get_weather";
  call.arguments = R"({"city":"Hanoi","unit":"c"})";
  r.messages.push_back(Message::assistant(std::vector<ToolCall>{call}));
  r.messages.push_back(Message::tool("call_1", R"({"temp":31})"));
  r.messages.push_back(Message::user("Thanks. And tomorrow?"));
  Tool tool;
  tool.name = "get_weather";
  tool.description = "Current weather of a city";
  tool.parameters_json = R"({"type":"object","properties":{"city":{"type":"string"}}})";
  r.tools.push_back(tool);
  r.tool_choice = ToolChoice::automatic();
  r.temperature = 0.5;
  r.top_p = 0.9;
  r.stop = {"END"};
  return r;
}

json encoded(Dialect d, const ChatRequest& r, bool stream = false,
             const wire::RequestShaping* shaping = nullptr) {
  std::string body;
  auto problem = wire::encode_native(d, r, stream, shaping, body);
  EXPECT_FALSE(problem) << *problem;
  return json::parse(body);
}

std::string refused(Dialect d, const ChatRequest& r,
                    const wire::RequestShaping* shaping = nullptr) {
  std::string body = "unchanged";
  auto problem = wire::encode_native(d, r, false, shaping, body);
  EXPECT_EQ(body, "unchanged");
  return problem.value_or("(translated)");
}

// ---- Anthropic ----

TEST(Anthropic, RequestPutsTheSystemApartAndTurnsToolsIntoBlocks) {
  const json b = encoded(Dialect::Anthropic, conversation(), /*stream=*/true);
  EXPECT_FALSE(b.contains("model"));  // put in front per route
  EXPECT_EQ(b["system"], json::parse(R"([{"type":"text","text":"Be brief."}])"));
  EXPECT_EQ(b["max_tokens"], wire::kAnthropicDefaultMaxTokens);
  EXPECT_EQ(b["stream"], true);
  EXPECT_EQ(b["temperature"], 0.5);
  EXPECT_EQ(b["top_p"], 0.9);
  EXPECT_EQ(b["stop_sequences"], json::array({"END"}));
  EXPECT_EQ(b["tool_choice"], json::parse(R"({"type":"auto"})"));
  EXPECT_EQ(b["tools"], json::parse(R"([{"name":"get_weather",
      "description":"Current weather of a city",
      "input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}])"));
  const json expected = json::parse(R"([
    {"role":"user","content":[
      {"type":"text","text":"What is in this picture, and the weather in Hanoi?"},
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
    {"role":"assistant","content":[
      {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Hanoi","unit":"c"}}]},
    {"role":"user","content":[
      {"type":"tool_result","tool_use_id":"call_1","content":"{\"temp\":31}"},
      {"type":"text","text":"Thanks. And tomorrow?"}]}])");
  EXPECT_EQ(b["messages"], expected) << b["messages"].dump(1);
}

TEST(Anthropic, RequestMapsCapsChoicesAndThinking) {
  ChatRequest r = testing::ping();
  r.max_tokens = 300;
  r.user = "user-7";
  r.tools = conversation().tools;
  r.tool_choice = ToolChoice::required();
  r.parallel_tool_calls = false;
  json b = encoded(Dialect::Anthropic, r);
  EXPECT_EQ(b["max_tokens"], 300);
  EXPECT_EQ(b["metadata"], json::parse(R"({"user_id":"user-7"})"));
  EXPECT_EQ(b["tool_choice"], json::parse(R"({"type":"any","disable_parallel_tool_use":true})"));
  EXPECT_FALSE(b.contains("stream"));
  r.tool_choice = ToolChoice::named("get_weather");
  r.parallel_tool_calls.reset();
  r.max_completion_tokens = 9000;
  r.reasoning_effort = "medium";
  b = encoded(Dialect::Anthropic, r);
  EXPECT_EQ(b["tool_choice"], json::parse(R"({"type":"tool","name":"get_weather"})"));
  EXPECT_EQ(b["max_tokens"], 9000);  // max_completion_tokens wins
  EXPECT_EQ(b["thinking"], json::parse(R"({"type":"enabled","budget_tokens":4096})"));
  r.max_completion_tokens.reset();
  r.max_tokens.reset();
  EXPECT_EQ(encoded(Dialect::Anthropic, r)["max_tokens"], wire::kAnthropicDefaultMaxTokens + 4096);
  r.max_tokens = 2000;
  EXPECT_EQ(refused(Dialect::Anthropic, r),
            "max_tokens 2000 is not above the thinking budget 4096 of reasoning_effort \"medium\"");
  // A route that drops max_completion_tokens gets max_tokens, in both dialects.
  r.reasoning_effort.clear();
  r.max_completion_tokens = 9000;
  auto drop = wire::make_shaping("m", "", {"max_completion_tokens"}, false, "r");
  EXPECT_EQ(encoded(Dialect::Anthropic, r, false, drop.get())["max_tokens"], 2000);
  EXPECT_EQ(encoded(Dialect::Gemini, r, false, drop.get())["generationConfig"]["maxOutputTokens"],
            2000);
}

TEST(Anthropic, WhatItCannotTakeIsNamedAndADroppedFieldPasses) {
  ChatRequest r = testing::ping();
  r.temperature = 1.5;
  EXPECT_EQ(refused(Dialect::Anthropic, r), "temperature 1.5 is above anthropic's maximum of 1");
  r.temperature.reset();
  r.presence_penalty = 0.5;
  EXPECT_EQ(refused(Dialect::Anthropic, r),
            "presence_penalty is set (anthropic has no equivalent)");
  auto shaping = wire::make_shaping("claude", "", {"presence_penalty"}, false, "r");
  EXPECT_EQ(
      encoded(Dialect::Anthropic, r, false, shaping.get())["messages"][0]["content"][0]["text"],
      "ping");
  r.presence_penalty.reset();
  r.response_format = ResponseFormat{};
  r.response_format->type = "json_object";
  EXPECT_EQ(refused(Dialect::Anthropic, r),
            "response_format json_object is set (anthropic has no equivalent)");
  r.response_format.reset();
  r.extra_json = R"({"logprobs": true})";
  EXPECT_EQ(refused(Dialect::Anthropic, r),
            "extra_json.logprobs is a Chat Completions field; a native route takes its own "
            "fields through the route's params");
  r.extra_json.clear();
  r.messages = {Message::user({ContentPart::audio("AAAA", "wav")})};
  EXPECT_EQ(refused(Dialect::Anthropic, r),
            "messages[0].content[0] is input_audio (anthropic takes no audio)");
  ChatRequest bad_args = conversation();
  bad_args.messages[2].tool_calls[0].arguments = "[1]";
  EXPECT_EQ(refused(Dialect::Anthropic, bad_args),
            "messages[2].tool_calls[0].function.arguments is not a JSON object");
}

TEST(Anthropic, ARoutesParamsGoIntoTheNativeBody) {
  auto shaping = wire::make_shaping(
      "claude", R"({"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 2048}})", {},
      false, "r");
  json b = encoded(Dialect::Anthropic, testing::ping(), false, shaping.get());
  EXPECT_EQ(b["top_k"], 5);
  EXPECT_EQ(b["thinking"]["budget_tokens"], 2048);
}

// A message with thinking, text and a tool call, and usage with cache reads and writes.
constexpr const char* kAnthropicMessage = R"({
  "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
  "content": [
    {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig"},
    {"type": "text", "text": "Let me check."},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
     "input": {"city": "Hanoi", "days": [1, 2]}}],
  "stop_reason": "tool_use", "stop_sequence": null,
  "usage": {"input_tokens": 100, "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 300, "output_tokens": 50}})";

TEST(Anthropic, AMessageBecomesAChatCompletion) {
  std::string body = kAnthropicMessage;
  ChatResponse r;
  ASSERT_FALSE(wire::decode_native_response(Dialect::Anthropic, body, r));
  EXPECT_EQ(r.id, "msg_01");
  EXPECT_EQ(r.model, "claude-sonnet-4-5");
  EXPECT_EQ(r.text(), "Let me check.");
  EXPECT_EQ(r.reasoning(), "The user wants weather.");
  EXPECT_EQ(r.finish_reason(), "tool_calls");
  ASSERT_EQ(r.tool_calls().size(), 1u);
  EXPECT_EQ(r.tool_calls()[0].id, "toolu_01");
  EXPECT_EQ(r.tool_calls()[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls()[0].arguments, R"({"city":"Hanoi","days":[1,2]})");
  ASSERT_TRUE(r.usage);
  EXPECT_EQ(r.usage->prompt_tokens, 420);  // input + cache reads + cache writes
  EXPECT_EQ(r.usage->cached_tokens, 300);
  EXPECT_EQ(r.usage->cache_write_tokens, 20);
  EXPECT_EQ(r.usage->completion_tokens, 50);
  EXPECT_EQ(r.usage->total_tokens, 470);
  EXPECT_EQ(r.native_json, kAnthropicMessage);
  const json doc = json::parse(r.raw_json);
  EXPECT_EQ(doc["object"], "chat.completion");
  EXPECT_EQ(doc["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            R"({"city":"Hanoi","days":[1,2]})");
  EXPECT_EQ(doc["usage"]["prompt_tokens_details"]["cache_write_tokens"], 20);
}

TEST(Anthropic, ThinkingTokensAreTheAnswersReasoningTokens) {
  std::string body = R"({"id":"m","type":"message","role":"assistant","model":"c",
      "content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"x"}],
      "stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":300,
      "output_tokens_details":{"thinking_tokens":250}}})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_native_response(Dialect::Anthropic, body, r));
  ASSERT_TRUE(r.usage);
  EXPECT_EQ(r.usage->completion_tokens, 300);
  EXPECT_EQ(r.usage->reasoning_tokens, 250);
  EXPECT_EQ(json::parse(r.raw_json)["usage"]["completion_tokens_details"]["reasoning_tokens"], 250);
}

TEST(Anthropic, StopReasonsMapToFinishReasons) {
  for (const auto& [stop, finish] :
       std::vector<std::pair<std::string, std::string>>{{"end_turn", "stop"},
                                                        {"stop_sequence", "stop"},
                                                        {"max_tokens", "length"},
                                                        {"tool_use", "tool_calls"},
                                                        {"refusal", "content_filter"}}) {
    std::string body = R"({"id":"m","type":"message","role":"assistant","model":"c",
        "content":[{"type":"text","text":"x"}],"stop_reason":")" +
                       stop + R"("})";
    ChatResponse r;
    ASSERT_FALSE(wire::decode_native_response(Dialect::Anthropic, body, r));
    EXPECT_EQ(r.finish_reason(), finish) << stop;
  }
  ChatResponse r;
  std::string refusal = R"({"id":"m","type":"message","role":"assistant","model":"c",
      "content":[],"stop_reason":"refusal"})";
  ASSERT_FALSE(wire::decode_native_response(Dialect::Anthropic, refusal, r));
  EXPECT_TRUE(r.content_filtered());
}

TEST(Anthropic, AnErrorBodyOrAForeignShapeIsNoMessage) {
  std::string error =
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
  ChatResponse r;
  auto failure = wire::decode_native_response(Dialect::Anthropic, error, r);
  ASSERT_TRUE(failure && failure->in_band_error);
  EXPECT_EQ(failure->in_band_error->type, "overloaded_error");
  std::string foreign = R"({"choices": []})";
  failure = wire::decode_native_response(Dialect::Anthropic, foreign, r);
  ASSERT_TRUE(failure);
  EXPECT_FALSE(failure->in_band_error);
  std::string broken = R"({"type":"message",)";
  EXPECT_TRUE(wire::decode_native_response(Dialect::Anthropic, broken, r));
  EXPECT_EQ(broken, R"({"type":"message",)");  // left as it was
}

// A whole stream, as the Messages API documents its events: thinking, text, a tool call whose
// input arrives in fragments, a call without input, pings, and the usage at the end.
constexpr const char* kAnthropicStream =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,"
    "\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"Need the tool.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
    "\"signature\":\"abc\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Checking \"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"now.\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_9\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"city\\\": \\\"Ha\"}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"noi\\\"}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_10\",\"name\":\"now\",\"input\":{}}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

// Feeds `bytes` cut at `cut` through the parser and a NativeStream; the joined answer.
struct Translated {
  ChatResponse response;
  bool done = false;
  int chunks = 0;
  std::vector<std::string> failures;
};
Translated translate(Dialect d, const std::string& bytes, std::size_t cut) {
  Translated t;
  wire::SseParser parser;
  wire::NativeStream native(d);
  wire::StreamAccumulator joined;
  auto on_event = [&](const wire::SseEvent& e) {
    ChatChunk chunk;
    wire::NativeStream::Outcome outcome;
    if (auto failure = native.translate(e, chunk, outcome)) {
      t.failures.push_back(failure->message);
      return;
    }
    if (outcome == wire::NativeStream::Outcome::Done) t.done = true;
    if (outcome != wire::NativeStream::Outcome::Chunk) return;
    ++t.chunks;
    joined.add(chunk);
  };
  parser.feed(std::string_view(bytes).substr(0, cut), on_event);
  parser.feed(std::string_view(bytes).substr(cut), on_event);
  t.response = joined.build();
  return t;
}

TEST(Anthropic, AStreamSplitAtEveryByteGivesTheSameAnswer) {
  const std::string bytes = kAnthropicStream;
  const Translated whole = translate(Dialect::Anthropic, bytes, bytes.size());
  EXPECT_TRUE(whole.failures.empty());
  EXPECT_TRUE(whole.done);
  const ChatResponse& r = whole.response;
  EXPECT_EQ(r.id, "msg_02");
  EXPECT_EQ(r.model, "claude-sonnet-4-5");
  EXPECT_EQ(r.text(), "Checking now.");
  EXPECT_EQ(r.reasoning(), "Need the tool.");
  EXPECT_EQ(r.finish_reason(), "tool_calls");
  ASSERT_EQ(r.tool_calls().size(), 2u);
  EXPECT_EQ(r.tool_calls()[0].id, "toolu_9");
  EXPECT_EQ(r.tool_calls()[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls()[0].arguments, R"({"city": "Hanoi"})");  // exactly as streamed
  EXPECT_EQ(r.tool_calls()[1].name, "now");
  EXPECT_EQ(r.tool_calls()[1].arguments, "{}");
  ASSERT_TRUE(r.usage);
  EXPECT_EQ(r.usage->prompt_tokens, 35);
  EXPECT_EQ(r.usage->cached_tokens, 10);
  EXPECT_EQ(r.usage->completion_tokens, 42);
  EXPECT_EQ(r.usage->total_tokens, 77);
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    const Translated split = translate(Dialect::Anthropic, bytes, cut);
    ASSERT_EQ(split.response.raw_json, r.raw_json) << "cut at " << cut;
    ASSERT_EQ(split.chunks, whole.chunks) << "cut at " << cut;
    ASSERT_TRUE(split.done) << "cut at " << cut;
  }
}

TEST(Anthropic, AnErrorEventIsAnInBandErrorOfItsType) {
  wire::NativeStream native(Dialect::Anthropic);
  ChatChunk chunk;
  wire::NativeStream::Outcome outcome;
  const std::string data =
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
  auto failure = native.translate(wire::SseEvent{"error", data}, chunk, outcome);
  ASSERT_TRUE(failure && failure->in_band_error);
  policy::Classified c = policy::classify_error(200, {}, *failure->in_band_error, WallTime{});
  EXPECT_EQ(c.kind, ErrorKind::Overloaded);
  failure = native.translate(wire::SseEvent{"message", "not json"}, chunk, outcome);
  ASSERT_TRUE(failure);
  EXPECT_FALSE(failure->in_band_error);
  failure = native.translate(wire::SseEvent{"future_event", R"({"type":"future_event"})"}, chunk,
                             outcome);
  EXPECT_FALSE(failure);
  EXPECT_EQ(outcome, wire::NativeStream::Outcome::Nothing);  // unknown events are skipped
}

// ---- Gemini ----

TEST(Gemini, RequestUsesContentsPartsAndGenerationConfig) {
  ChatRequest r = conversation();
  r.max_tokens = 200;
  r.seed = 7;
  r.presence_penalty = 0.1;
  r.reasoning_effort = "low";
  const json b = encoded(Dialect::Gemini, r, /*stream=*/true);
  EXPECT_FALSE(b.contains("model"));   // in the URL
  EXPECT_FALSE(b.contains("stream"));  // the method says it
  EXPECT_EQ(b["systemInstruction"], json::parse(R"({"parts":[{"text":"Be brief."}]})"));
  const json expected = json::parse(R"([
    {"role":"user","parts":[
      {"text":"What is in this picture, and the weather in Hanoi?"},
      {"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]},
    {"role":"model","parts":[
      {"functionCall":{"id":"call_1","name":"get_weather","args":{"city":"Hanoi","unit":"c"}}}]},
    {"role":"user","parts":[
      {"functionResponse":{"id":"call_1","name":"get_weather","response":{"temp":31}}},
      {"text":"Thanks. And tomorrow?"}]}])");
  EXPECT_EQ(b["contents"], expected) << b["contents"].dump(1);
  EXPECT_EQ(b["tools"], json::parse(R"([{"functionDeclarations":[{"name":"get_weather",
      "description":"Current weather of a city",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}])"));
  EXPECT_EQ(b["toolConfig"], json::parse(R"({"functionCallingConfig":{"mode":"AUTO"}})"));
  EXPECT_EQ(b["generationConfig"], json::parse(R"({"temperature":0.5,"topP":0.9,
      "maxOutputTokens":200,"stopSequences":["END"],"presencePenalty":0.1,"seed":7,
      "thinkingConfig":{"thinkingBudget":1024,"includeThoughts":true}})"));
}

// A route's params are a JSON Merge Patch (RFC 7386): a nested object adds to the translation's
// instead of replacing it, and a null inside removes that member alone.
TEST(Gemini, ARoutesParamsMergeIntoTheTranslatedGenerationConfig) {
  ChatRequest r = testing::ping();
  r.max_tokens = 100;
  r.temperature = 0.2;
  auto shaping = wire::make_shaping("gemini-2.5-pro",
                                    R"({"generationConfig": {"topK": 40, "temperature": null}})",
                                    {}, false, "r");
  json b = encoded(Dialect::Gemini, r, false, shaping.get());
  EXPECT_EQ(b["generationConfig"]["topK"], 40);
  EXPECT_EQ(b["generationConfig"]["maxOutputTokens"], 100);
  EXPECT_FALSE(b["generationConfig"].contains("temperature"));
  ASSERT_TRUE(b.contains("contents"));
}

TEST(Anthropic, ARoutesNestedParamsMergeIntoTheTranslation) {
  ChatRequest r = testing::ping();
  r.user = "u1";  // metadata.user_id
  auto shaping = wire::make_shaping("claude", R"({"metadata": {"tier": "gold"}})", {}, false, "r");
  json b = encoded(Dialect::Anthropic, r, false, shaping.get());
  EXPECT_EQ(b["metadata"], json::parse(R"({"user_id": "u1", "tier": "gold"})"));
}

// The log probabilities a request asked for (responseLogprobs, logprobs) come back as
// Chat Completions' `logprobs.content`: each chosen token with its alternatives.
TEST(Gemini, LogprobsComeBackAsChatCompletionsLogprobs) {
  std::string answer = R"({"candidates":[{"content":{"role":"model","parts":[{"text":"Hi!"}]},
      "finishReason":"STOP","index":0,"avgLogprobs":-0.2,
      "logprobsResult":{
        "topCandidates":[{"candidates":[{"token":"Hi","tokenId":1,"logProbability":-0.1},
                                        {"token":"Hello","tokenId":2,"logProbability":-2.5}]},
                         {"candidates":[{"token":"!","tokenId":3,"logProbability":-0.3}]}],
        "chosenCandidates":[{"token":"Hi","tokenId":1,"logProbability":-0.1},
                            {"token":"!","tokenId":3,"logProbability":-0.3}]}}]})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_native_response(Dialect::Gemini, answer, r));
  ASSERT_EQ(r.choices.size(), 1u);
  ASSERT_FALSE(r.choices[0].logprobs_json.empty());
  const json lp = json::parse(r.choices[0].logprobs_json);
  ASSERT_EQ(lp["content"].size(), 2u);
  EXPECT_EQ(lp["content"][0]["token"], "Hi");
  EXPECT_DOUBLE_EQ(lp["content"][0]["logprob"].get<double>(), -0.1);
  ASSERT_EQ(lp["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(lp["content"][0]["top_logprobs"][1]["token"], "Hello");
  EXPECT_DOUBLE_EQ(lp["content"][0]["top_logprobs"][1]["logprob"].get<double>(), -2.5);
  EXPECT_EQ(lp["content"][1]["token"], "!");
  EXPECT_EQ(json::parse(r.raw_json)["choices"][0]["logprobs"]["content"].size(), 2u);
}

// With n > 1 each candidate counts its own tool calls: a text-only candidate after one that
// called a tool finishes `stop`, and each candidate's calls are numbered from 0.
TEST(Gemini, EachCandidateCountsItsOwnToolCalls) {
  std::string answer = R"({"candidates":[
      {"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},
       "finishReason":"STOP","index":0},
      {"content":{"role":"model","parts":[{"text":"no tool"}]},"finishReason":"STOP","index":1},
      {"content":{"role":"model","parts":[{"functionCall":{"name":"g","args":{}}}]},
       "finishReason":"STOP","index":2}]})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_native_response(Dialect::Gemini, answer, r));
  ASSERT_EQ(r.choices.size(), 3u);
  EXPECT_EQ(r.choices[0].finish_reason, "tool_calls");
  EXPECT_EQ(r.choices[1].finish_reason, "stop");
  EXPECT_TRUE(r.choices[1].message.tool_calls.empty());
  EXPECT_EQ(r.choices[2].finish_reason, "tool_calls");
  ASSERT_EQ(r.choices[2].message.tool_calls.size(), 1u);
  EXPECT_EQ(r.choices[2].message.tool_calls[0].id, "call_0");
}

// Google documents FunctionCall.id and FunctionResponse.id: the client returns the response
// with the id of the call it answers. An answer's id becomes the tool call's, and goes back.
TEST(Gemini, AFunctionCallsIdGoesBackInTheReplayedCallAndItsResponse) {
  std::string answer = R"({"candidates":[{"content":{"role":"model","parts":[
      {"functionCall":{"id":"fc_7","name":"get_weather","args":{"city":"Hanoi"}}}]},
      "finishReason":"STOP","index":0}]})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_native_response(Dialect::Gemini, answer, r));
  ASSERT_EQ(r.tool_calls().size(), 1u);
  EXPECT_EQ(r.tool_calls()[0].id, "fc_7");
  ChatRequest next;
  next.messages = {Message::user("Weather in Hanoi?"), r.choices[0].message,
                   Message::tool("fc_7", R"({"temp":31})")};
  const json b = encoded(Dialect::Gemini, next);
  EXPECT_EQ(b["contents"][1]["parts"][0]["functionCall"]["id"], "fc_7") << b.dump();
  EXPECT_EQ(b["contents"][2]["parts"][0]["functionResponse"]["id"], "fc_7") << b.dump();
}

TEST(Gemini, RequestMapsFormatsChoicesAndToolResultsThatAreNotObjects) {
  ChatRequest r = testing::ping();
  r.response_format = ResponseFormat{};
  r.response_format->type = "json_schema";
  r.response_format->schema_name = "answer";
  r.response_format->schema_json = R"({"type":"object"})";
  r.tools = conversation().tools;
  r.tool_choice = ToolChoice::named("get_weather");
  r.reasoning_effort = "none";
  json b = encoded(Dialect::Gemini, r);
  EXPECT_EQ(b["generationConfig"], json::parse(R"({"responseMimeType":"application/json",
      "responseJsonSchema":{"type":"object"},"thinkingConfig":{"thinkingBudget":0}})"));
  EXPECT_EQ(b["toolConfig"], json::parse(R"({"functionCallingConfig":{"mode":"ANY",
      "allowedFunctionNames":["get_weather"]}})"));
  ChatRequest plain = conversation();
  plain.messages[3].content = "31 degrees";
  b = encoded(Dialect::Gemini, plain);
  EXPECT_EQ(b["contents"][2]["parts"][0]["functionResponse"]["response"],
            json::parse(R"({"content":"31 degrees"})"));
}

TEST(Gemini, WhatItCannotTakeIsNamed) {
  ChatRequest r = testing::ping();
  r.logit_bias = {{"50256", -100}};
  EXPECT_EQ(refused(Dialect::Gemini, r), "logit_bias is set (gemini has no equivalent)");
  ChatRequest orphan = conversation();
  orphan.messages[3].tool_call_id = "call_404";
  EXPECT_EQ(refused(Dialect::Gemini, orphan),
            "messages[3].tool_call_id answers no earlier tool call (gemini needs the function's "
            "name)");
  ChatRequest image = testing::ping();
  image.messages = {Message::user({ContentPart::image("https://example.test/cat")})};
  EXPECT_EQ(refused(Dialect::Gemini, image),
            "messages[0].content[0].image_url.url has no image file extension (gemini needs the "
            "image's type; send it as a data: URI)");
  image.messages = {Message::user({ContentPart::image("https://example.test/cat.JPG?x=1")})};
  EXPECT_EQ(encoded(Dialect::Gemini, image)["contents"][0]["parts"][0],
            json::parse(R"({"fileData":{"mimeType":"image/jpeg",
                "fileUri":"https://example.test/cat.JPG?x=1"}})"));
}

constexpr const char* kGeminiResponse = R"({
  "candidates": [{
    "content": {"role": "model", "parts": [
      {"text": "Thinking about weather.", "thought": true},
      {"text": "Calling the tool."},
      {"functionCall": {"name": "get_weather", "args": {"city": "Hanoi", "days": [1, 2]}}}]},
    "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 120, "cachedContentTokenCount": 100,
                    "candidatesTokenCount": 30, "thoughtsTokenCount": 12, "totalTokenCount": 162},
  "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"})";

TEST(Gemini, AResponseBecomesAChatCompletion) {
  std::string body = kGeminiResponse;
  ChatResponse r;
  ASSERT_FALSE(wire::decode_native_response(Dialect::Gemini, body, r));
  EXPECT_EQ(r.id, "resp-1");
  EXPECT_EQ(r.model, "gemini-2.5-flash");
  EXPECT_EQ(r.text(), "Calling the tool.");
  EXPECT_EQ(r.reasoning(), "Thinking about weather.");
  EXPECT_EQ(r.finish_reason(), "tool_calls");
  ASSERT_EQ(r.tool_calls().size(), 1u);
  EXPECT_EQ(r.tool_calls()[0].id, "call_0");
  EXPECT_EQ(r.tool_calls()[0].name, "get_weather");
  EXPECT_EQ(json::parse(r.tool_calls()[0].arguments),
            json::parse(R"({"city":"Hanoi","days":[1,2]})"));
  ASSERT_TRUE(r.usage);
  EXPECT_EQ(r.usage->prompt_tokens, 120);
  EXPECT_EQ(r.usage->cached_tokens, 100);
  EXPECT_EQ(r.usage->completion_tokens, 42);  // candidates + thoughts
  EXPECT_EQ(r.usage->reasoning_tokens, 12);
  EXPECT_EQ(r.usage->total_tokens, 162);
  EXPECT_EQ(r.native_json, kGeminiResponse);
}

TEST(Gemini, SafetyAndABlockedPromptAreContentFilterOutcomes) {
  std::string safety = R"({"candidates":[{"content":{"role":"model","parts":[]},
      "finishReason":"SAFETY","index":0}]})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_native_response(Dialect::Gemini, safety, r));
  EXPECT_EQ(r.finish_reason(), "content_filter");
  EXPECT_TRUE(r.content_filtered());
  // A refused prompt has no candidate: a rejection, classified as OpenAI's 400 content filter.
  std::string blocked = R"({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},
      "usageMetadata":{"promptTokenCount":9,"totalTokenCount":9}})";
  auto failure = wire::decode_native_response(Dialect::Gemini, blocked, r);
  ASSERT_TRUE(failure && failure->in_band_error);
  EXPECT_EQ(failure->in_band_error->message,
            "Gemini blocked the prompt (blockReason PROHIBITED_CONTENT)");
  EXPECT_EQ(policy::classify_error(200, {}, *failure->in_band_error, WallTime{}).kind,
            ErrorKind::ContentFiltered);
  std::string length = R"({"candidates":[{"content":{"role":"model","parts":[{"text":"a"}]},
      "finishReason":"MAX_TOKENS"}]})";
  ASSERT_FALSE(wire::decode_native_response(Dialect::Gemini, length, r));
  EXPECT_EQ(r.finish_reason(), "length");
}

constexpr const char* kGeminiStream =
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Let me \","
    "\"thought\":true}]},\"index\":0}],\"modelVersion\":\"gemini-2.5-pro\",\"responseId\":\"r9\"}"
    "\r\n\r\n"
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"The \"}]},"
    "\"index\":0}],\"modelVersion\":\"gemini-2.5-pro\",\"responseId\":\"r9\"}\r\n\r\n"
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"answer.\"},"
    "{\"functionCall\":{\"name\":\"lookup\",\"args\":{\"q\":\"x y\"}}}]},\"index\":0}],"
    "\"responseId\":\"r9\"}\r\n\r\n"
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},"
    "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,"
    "\"candidatesTokenCount\":5,\"totalTokenCount\":13},\"responseId\":\"r9\"}\r\n\r\n";

TEST(Gemini, AStreamSplitAtEveryByteGivesTheSameAnswer) {
  const std::string bytes = kGeminiStream;
  const Translated whole = translate(Dialect::Gemini, bytes, bytes.size());
  EXPECT_TRUE(whole.failures.empty());
  EXPECT_EQ(whole.chunks, 4);
  const ChatResponse& r = whole.response;
  EXPECT_EQ(r.id, "r9");
  EXPECT_EQ(r.model, "gemini-2.5-pro");
  EXPECT_EQ(r.text(), "The answer.");
  EXPECT_EQ(r.reasoning(), "Let me ");
  EXPECT_EQ(r.finish_reason(), "tool_calls");  // STOP after a call
  ASSERT_EQ(r.tool_calls().size(), 1u);
  EXPECT_EQ(r.tool_calls()[0].arguments, R"({"q":"x y"})");
  ASSERT_TRUE(r.usage);
  EXPECT_EQ(r.usage->total_tokens, 13);
  for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
    const Translated split = translate(Dialect::Gemini, bytes, cut);
    ASSERT_EQ(split.response.raw_json, r.raw_json) << "cut at " << cut;
  }
}

TEST(Gemini, ErrorBodiesAreClassifiedWithTheirRetryDelay) {
  const std::string exhausted = R"({"error":{"code":429,"message":"Quota exceeded",
      "status":"RESOURCE_EXHAUSTED","details":[
        {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34s"}]}})";
  policy::Classified c = policy::classify_http(429, {}, exhausted, WallTime{});
  EXPECT_EQ(c.kind, ErrorKind::RateLimited);
  ASSERT_TRUE(c.retry_after);
  EXPECT_EQ(*c.retry_after, std::chrono::seconds(34));
  const std::string unavailable =
      R"({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}})";
  EXPECT_EQ(policy::classify_http(503, {}, unavailable, WallTime{}).kind, ErrorKind::Overloaded);
  const std::string anthropic =
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
  EXPECT_EQ(policy::classify_http(529, {}, anthropic, WallTime{}).kind, ErrorKind::Overloaded);
  const std::string limited =
      R"({"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}})";
  EXPECT_EQ(policy::classify_http(429, {}, limited, WallTime{}).kind, ErrorKind::RateLimited);
  // Inside a stream, an error object instead of a response.
  wire::NativeStream native(Dialect::Gemini);
  ChatChunk chunk;
  wire::NativeStream::Outcome outcome;
  auto failure = native.translate(wire::SseEvent{"message", unavailable}, chunk, outcome);
  ASSERT_TRUE(failure && failure->in_band_error);
  EXPECT_EQ(failure->in_band_error->status, "UNAVAILABLE");
}

// ---- Routes of each dialect in a client ----

const std::string kRelay = "http://relay.test/v1";
const std::string kClaude = "http://claude.test/v1";
const std::string kGemini = "http://gemini.test/v1beta";

struct DialectClientTest : testing::FakeClientTest {
  ClientOptions options() const {
    Endpoint relay{"relay", kRelay, "sk-relay"};
    Endpoint claude{"claude", kClaude, "sk-ant"};
    claude.dialect = Dialect::Anthropic;
    Endpoint gemini{"gemini", kGemini, "g-key"};
    gemini.dialect = Dialect::Gemini;
    return fake_options({relay, claude, gemini},
                        {Tier{{Route{"relay", "gpt-4.1"}}}, Tier{{Route{"claude", "claude-x"}}},
                         Tier{{Route{"gemini", "gemini-y"}}}});
  }
  testing::Reply anthropic_ok(const std::string& text) const {
    testing::Reply r;
    r.body = json{{"id", "msg"},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", "claude-x"},
                  {"content", {{{"type", "text"}, {"text", text}}}},
                  {"stop_reason", "end_turn"},
                  {"usage", {{"input_tokens", 5}, {"output_tokens", 2}}}}
                 .dump();
    return r;
  }
  const HttpRequest* seen(const std::string& url) const {
    for (const testing::Seen& s : seen_) {
      if (s.request.url == url) return &s.request;
    }
    return nullptr;
  }
  std::vector<testing::Seen> seen_;
};

TEST_F(DialectClientTest, TheRelayFailsAndTheAnthropicRouteServesWithItsOwnHeadersAndBody) {
  fake->sequence(testing::chat_url(kRelay), {testing::status(503)});
  fake->sequence(kClaude + "/messages", {anthropic_ok("from claude")});
  Client client(options());
  auto r = client.chat(testing::ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "from claude");
  EXPECT_EQ(r->served_by.endpoint, "claude");
  // The default policy retries an overloaded route once before it goes down a tier.
  EXPECT_EQ(outcomes(r->attempts),
            (Strings{"relay:overloaded", "relay:overloaded", "claude:success"}));
  seen_ = fake->seen();
  const HttpRequest* sent = seen(kClaude + "/messages");
  ASSERT_TRUE(sent);
  // Streamed on the wire (its liveness), assembled for chat().
  EXPECT_EQ(json::parse(sent->body), json::parse(R"({"model":"claude-x","max_tokens":4096,
                "messages":[{"role":"user","content":[{"type":"text","text":"ping"}]}],
                "stream":true})"));
  auto header = [&](const std::string& name) -> std::string {
    for (const auto& [k, v] : sent->headers) {
      if (k == name) return v;
    }
    return "(none)";
  };
  EXPECT_EQ(header("x-api-key"), "sk-ant");
  EXPECT_EQ(header("anthropic-version"), wire::kAnthropicVersion);
  EXPECT_EQ(header("Authorization"), "(none)");
}

TEST_F(DialectClientTest, AnOverloadedAnthropicRouteFailsOverToGeminiWithTheModelInTheUrl) {
  fake->sequence(testing::chat_url(kRelay), {testing::status(503)});
  testing::Reply overloaded;
  overloaded.status = 529;
  overloaded.body =
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";
  fake->sequence(kClaude + "/messages", {overloaded});
  testing::Reply gemini;
  gemini.body = R"({"candidates":[{"content":{"role":"model","parts":[{"text":"from gemini"}]},
      "finishReason":"STOP","index":0}],"modelVersion":"gemini-y"})";
  const std::string url = kGemini + "/models/gemini-y:streamGenerateContent?alt=sse";
  fake->sequence(url, {gemini});
  Client client(options());
  auto r = client.chat(testing::ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "from gemini");
  EXPECT_EQ(outcomes(r->attempts),
            (Strings{"relay:overloaded", "relay:overloaded", "claude:overloaded",
                     "claude:overloaded", "gemini:success"}));
  EXPECT_EQ(r->attempts[2].status, 529);
  seen_ = fake->seen();
  const HttpRequest* sent = seen(url);
  ASSERT_TRUE(sent);
  EXPECT_EQ(json::parse(sent->body),
            json::parse(R"({"contents":[{"role":"user","parts":[{"text":"ping"}]}]})"));
  bool keyed = false;
  for (const auto& [k, v] : sent->headers) keyed = keyed || (k == "x-goog-api-key" && v == "g-key");
  EXPECT_TRUE(keyed);
}

TEST_F(DialectClientTest, ARequestARouteCannotTakeSkipsItBeforeAnyTraffic) {
  fake->sequence(testing::chat_url(kRelay), {testing::status(503)});
  fake->sequence(kClaude + "/messages", {anthropic_ok("never")});
  testing::Reply gemini;
  gemini.body = R"({"candidates":[{"content":{"role":"model","parts":[{"text":"g"}]},
      "finishReason":"STOP"}]})";
  fake->sequence(kGemini + "/models/gemini-y:streamGenerateContent?alt=sse", {gemini});
  ChatRequest request = testing::ping();
  request.presence_penalty = 0.5;  // Anthropic has none; Gemini has
  Client client(options());
  auto r = client.chat(request);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "g");
  EXPECT_EQ(fake->count(kClaude + "/messages"), 0);
  ASSERT_EQ(r->attempts.size(), 4u);  // claude passed over, the relay twice, gemini
  EXPECT_EQ(r->attempts[0].route.endpoint, "claude");  // passed over when the call was planned
  EXPECT_EQ(r->attempts[0].outcome(), "invalid_request");
  EXPECT_EQ(r->attempts[0].message,
            "not sent: the request cannot be translated for this anthropic route: "
            "presence_penalty is set (anthropic has no equivalent)");

  // When no route can take it, the call is an invalid request naming each route's reason.
  Endpoint claude{"claude", kClaude, "sk-ant"};
  claude.dialect = Dialect::Anthropic;
  Client only_claude(fake_options({claude}, {Tier{{Route{"claude", "claude-x"}}}}));
  auto refused = only_claude.chat(request);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_EQ(refused.error().message(),
            "no route can take this request: claude/claude-x: not sent: the request cannot be "
            "translated for this anthropic route: presence_penalty is set (anthropic has no "
            "equivalent)");
}

// Routes passed over before any traffic are not "tried": when the others are ruled out too,
// the error is what ruled them out, each route with its own reason.
TEST_F(DialectClientTest, AnUntranslatableRouteAndAnOverBudgetRouteGiveBudgetExceeded) {
  Endpoint relay{"relay", kRelay, "sk-relay"};
  Endpoint claude{"claude", kClaude, "sk-ant"};
  claude.dialect = Dialect::Anthropic;
  ClientOptions o = fake_options(
      {claude, relay}, {Tier{{Route{"claude", "claude-x"}}}, Tier{{Route{"relay", "gpt-4.1"}}}});
  o.prices["gpt-4.1"] = ModelPrice{1000.0, std::nullopt, 1000.0};
  o.budget.usd_per_day = 0.000001;
  ChatRequest request = testing::ping();
  request.seed = 7;  // Anthropic has no seed
  request.max_tokens = 100;
  Client client(o);
  auto r = client.chat(request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::BudgetExceeded);
  EXPECT_EQ(fake->seen().size(), 0u);
  EXPECT_NE(r.error().message().find("claude/claude-x: not sent"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(r.error().message().find("half-open"), std::string::npos) << r.error().message();
}

TEST_F(DialectClientTest, ARouteRuledOutByItsRateLimitIsNotCalledHalfOpen) {
  Endpoint relay{"relay", kRelay, "sk-relay"};
  relay.limits.rpm = 1;
  ClientOptions o = fake_options({relay, {"spare", "http://spare.test/v1", "sk-s"}},
                                 {Tier{{Route{"relay", "gpt-4.1"}, Route{"spare", "gpt-4.1"}}}});
  fake->sequence(testing::chat_url(kRelay), {testing::ok("relay")});
  fake->sequence(testing::chat_url("http://spare.test/v1"), {testing::status(500)});
  Client client(o);
  const TimePoint start = clock->now();
  ASSERT_TRUE(client.chat(testing::ping()));  // spends the minute's permit
  auto r = client.chat(testing::ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_NE(r.error().message().find("relay/gpt-4.1: at its client-side rate limit"),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(r.error().message().find("half-open"), std::string::npos) << r.error().message();
  EXPECT_EQ(r.error().available_at(), start + std::chrono::seconds(60));
}

// Anthropic bills cache writes at 1.25 x the input price (its default five-minute cache).
TEST_F(DialectClientTest, CacheWritesCostAQuarterMoreThanInputUnlessPriced) {
  testing::Reply r = anthropic_ok("ok");
  r.body = json{
      {"id", "msg"},
      {"type", "message"},
      {"role", "assistant"},
      {"model", "claude-x"},
      {"content", {{{"type", "text"}, {"text", "ok"}}}},
      {"stop_reason", "end_turn"},
      {"usage",
       {{"input_tokens", 100},
        {"cache_read_input_tokens", 200},
        {"cache_creation_input_tokens", 400},
        {"output_tokens",
         10}}}}.dump();
  fake->sequence(kClaude + "/messages", {r});
  Endpoint claude{"claude", kClaude, "sk-ant"};
  claude.dialect = Dialect::Anthropic;
  ClientOptions o = fake_options({claude}, {Tier{{Route{"claude", "claude-x"}}}});
  o.prices["claude-x"] = ModelPrice{8.0, 2.0, 8.0};
  Client client(o);
  auto got = client.chat(testing::ping());
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_TRUE(got->usage);
  EXPECT_EQ(got->usage->cache_write_tokens, 400);
  // 100 x $8 + 200 x $2 + 400 x $10 + 10 x $8, per million.
  EXPECT_NEAR(got->cost_usd.value_or(0), (800.0 + 400.0 + 4000.0 + 80.0) / 1e6, 1e-12);
  o.prices["claude-x"].cache_write_per_mtok = 16.0;  // the one-hour cache: 2 x
  Client hour(o);
  got = hour.chat(testing::ping());
  ASSERT_TRUE(got);
  EXPECT_NEAR(got->cost_usd.value_or(0), (800.0 + 400.0 + 6400.0 + 80.0) / 1e6, 1e-12);
}

TEST_F(DialectClientTest, StreamsOfEachDialectReachTheHandler) {
  fake->sequence(testing::chat_url(kRelay), {testing::status(503)});
  testing::Reply claude;
  claude.parts = {{std::chrono::milliseconds(5), kAnthropicStream}};
  fake->sequence(kClaude + "/messages", {claude});
  Client client(options());
  std::string shown;
  auto r = client.chat_stream(testing::ping(), [&](const ChatChunk& c) {
    shown += c.content();
    return true;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(shown, "Checking now.");
  EXPECT_EQ(r->tool_calls().size(), 2u);
  EXPECT_EQ(r->tool_calls()[0].arguments, R"({"city": "Hanoi"})");
  seen_ = fake->seen();
  const HttpRequest* sent = seen(kClaude + "/messages");
  ASSERT_TRUE(sent);
  EXPECT_EQ(json::parse(sent->body)["stream"], true);

  fake->sequence(kClaude + "/messages", {testing::status(529)});
  testing::Reply gemini;
  gemini.parts = {{std::chrono::milliseconds(5), kGeminiStream}};
  fake->sequence(kGemini + "/models/gemini-y:streamGenerateContent?alt=sse", {gemini});
  shown.clear();
  r = client.chat_stream(testing::ping(), [&](const ChatChunk& c) {
    shown += c.content();
    return true;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(shown, "The answer.");
  EXPECT_EQ(r->served_by.endpoint, "gemini");
  EXPECT_EQ(r->finish_reason(), "tool_calls");
}

}  // namespace
}  // namespace failover
