// Wire format: request encoding, response decoding, error bodies, Retry-After family.

#include "util/utf8.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

namespace failover {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The "Default" request and response examples of POST /chat/completions in openai-openapi.yaml.
constexpr const char* kDefaultRequest = R"({
  "model": "VAR_chat_model_id",
  "messages": [
    {"role": "developer", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello!"}
  ]
})";

constexpr const char* kDefaultResponse = R"({
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-5.4",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
      "reasoning_tokens": 0, "audio_tokens": 0,
      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default"
})";

// The "Functions" example.
constexpr const char* kFunctionsRequest = R"({
  "model": "gpt-5.4",
  "messages": [{"role": "user", "content": "What is the weather like in Boston today?"}],
  "tools": [{
    "type": "function",
    "function": {
      "name": "get_current_weather",
      "description": "Get the current weather in a given location",
      "parameters": {
        "type": "object",
        "properties": {
          "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["location"]
      }
    }
  }],
  "tool_choice": "auto"
})";

constexpr const char* kFunctionsResponse = R"({
  "id": "chatcmpl-abc123",
  "object": "chat.completion",
  "created": 1699896916,
  "model": "gpt-4o-mini",
  "choices": [{
    "index": 0,
    "message": {
      "role": "assistant",
      "content": null,
      "tool_calls": [{
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "get_current_weather", "arguments": "{\n\"location\": \"Boston, MA\"\n}"}
      }]
    },
    "logprobs": null,
    "finish_reason": "tool_calls"
  }],
  "usage": {
    "prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
    "completion_tokens_details": {"reasoning_tokens": 0, "accepted_prediction_tokens": 0,
                                  "rejected_prediction_tokens": 0}
  }
})";

json encode(const ChatRequest& r, const std::string& model) {
  json out;
  auto problem = wire::encode_request(r, false, out);
  EXPECT_FALSE(problem.has_value()) << *problem;
  out["model"] = model;
  return out;
}

TEST(Codec, DefaultExampleRequestEncodesExactly) {
  ChatRequest r;
  r.messages = {Message::developer("You are a helpful assistant."), Message::user("Hello!")};
  EXPECT_EQ(encode(r, "VAR_chat_model_id"), json::parse(kDefaultRequest));
}

TEST(Codec, FunctionsExampleRequestEncodesExactly) {
  ChatRequest r;
  r.messages = {Message::user("What is the weather like in Boston today?")};
  Tool t;
  t.name = "get_current_weather";
  t.description = "Get the current weather in a given location";
  t.parameters_json = json::parse(kFunctionsRequest)["tools"][0]["function"]["parameters"].dump();
  r.tools = {t};
  r.tool_choice = ToolChoice::automatic();
  EXPECT_EQ(encode(r, "gpt-5.4"), json::parse(kFunctionsRequest));
}

TEST(Codec, ImageExampleAndSamplingFieldsEncode) {
  ChatRequest r;
  r.messages = {Message::user({ContentPart::text_part("What is in this image?"),
                               ContentPart::image("https://example.invalid/a.jpg", "low")})};
  r.max_tokens = 300;
  r.temperature = 0.2;
  r.top_p = 0.9;
  r.stop = {"\n\n"};
  r.seed = 42;
  r.user = "u-1";
  r.max_completion_tokens = 500;
  r.response_format = ResponseFormat{"json_schema", "answer", "", R"({"type":"object"})", true};
  r.extra_json = R"({"reasoning_effort":"low","logprobs":true})";
  json j = encode(r, "m");
  EXPECT_EQ(
      j["messages"][0]["content"][1],
      json::parse(
          R"({"type":"image_url","image_url":{"url":"https://example.invalid/a.jpg","detail":"low"}})"));
  EXPECT_EQ(j["max_tokens"], 300);
  EXPECT_EQ(j["max_completion_tokens"], 500);
  EXPECT_DOUBLE_EQ(j["temperature"].get<double>(), 0.2);
  EXPECT_EQ(j["stop"], json::array({"\n\n"}));
  EXPECT_EQ(j["seed"], 42);
  EXPECT_EQ(j["user"], "u-1");
  EXPECT_EQ(
      j["response_format"],
      json::parse(
          R"({"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}})"));
  EXPECT_EQ(j["reasoning_effort"], "low");
  EXPECT_EQ(j["logprobs"], true);
  EXPECT_FALSE(j.contains("stream"));
}

TEST(Codec, ToolTurnsEncode) {
  ChatRequest r;
  r.messages = {Message::user("weather?"),
                Message::assistant(std::vector<ToolCall>{{"call_1", "function", "get", "{}"}}),
                Message::tool("call_1", "sunny")};
  json j = encode(r, "m");
  EXPECT_TRUE(j["messages"][1]["content"].is_null());
  EXPECT_EQ(j["messages"][1]["tool_calls"][0]["function"]["name"], "get");
  EXPECT_EQ(j["messages"][2]["tool_call_id"], "call_1");
  EXPECT_EQ(j["messages"][2]["role"], "tool");
}

TEST(Codec, InvalidRequestsNameTheField) {
  auto problem = [](ChatRequest r) {
    json out;
    auto p = wire::encode_request(r, false, out);
    return p.value_or("<accepted>");
  };
  ChatRequest empty;
  EXPECT_EQ(problem(empty), "messages is empty");
  ChatRequest bad_role;
  bad_role.messages = {Message::user("a"), Message::user("b")};
  bad_role.messages[1].role = "robot";
  EXPECT_EQ(problem(bad_role),
            "messages[1].role must be one of system, developer, user, assistant, tool");
  ChatRequest bad_tool;
  bad_tool.messages = {Message::user("a")};
  bad_tool.tools = {Tool{"ok_name", "", "{not json", {}}};
  EXPECT_EQ(problem(bad_tool), "tools[0].parameters_json is not valid JSON");
  ChatRequest bad_temp;
  bad_temp.messages = {Message::user("a")};
  bad_temp.temperature = 3.5;
  EXPECT_EQ(problem(bad_temp), "temperature must be between 0.0 and 2.0");
  ChatRequest bad_extra;
  bad_extra.messages = {Message::user("a")};
  bad_extra.extra_json = R"({"model":"x"})";
  EXPECT_EQ(problem(bad_extra), "extra_json may not set \"model\" (routes do)");
  ChatRequest tool_without_id;
  tool_without_id.messages = {Message::tool("", "x")};
  EXPECT_EQ(problem(tool_without_id), "messages[0].tool_call_id is empty");
  ChatRequest bad_utf8;
  bad_utf8.messages = {Message::user("ok"), Message::user(std::string("\xff\xfe"))};
  EXPECT_EQ(problem(bad_utf8), "messages[1].content is not valid UTF-8");
  bad_utf8.messages = {Message::user("ok")};
  bad_utf8.stop = {"a", "\xc0\xaf"};  // an overlong form
  EXPECT_EQ(problem(bad_utf8), "stop[1] is not valid UTF-8");
  bad_utf8.stop.clear();
  bad_utf8.extra_json = "{\"metadata\":{\"k\":\"\xed\xa0\x80\"}}";  // a surrogate
  EXPECT_EQ(problem(bad_utf8), "extra_json is not valid JSON");
}

// Members of extra_json replace the modelled ones of the same name: each is written once.
TEST(Codec, ExtraJsonOverridesModelledFieldsOnce) {
  ChatRequest r;
  r.messages = {Message::user("hi")};
  r.temperature = 0.5;
  r.stop = {"x"};
  r.user = "u";
  r.extra_json = R"({"temperature":1.5,"stop":null,"logprobs":true,"user":"v"})";
  std::string text;
  ASSERT_FALSE(wire::encode_request(r, /*stream=*/true, text).has_value());
  auto count = [&](const std::string& key) {
    std::size_t n = 0;
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("\"temperature\":"), 1u) << text;
  EXPECT_EQ(count("\"stop\":"), 1u) << text;
  EXPECT_EQ(count("\"user\":"), 1u) << text;
  EXPECT_EQ(json::parse(text),
            json::parse(R"({"messages":[{"role":"user","content":"hi"}],"stream":true,
                            "temperature":1.5,"stop":null,"logprobs":true,"user":"v"})"));
}

// Every modelled field at once: the text is compact JSON that parses to what each field says.
TEST(Codec, EveryFieldWritesCompactJson) {
  ChatRequest r;
  Message assistant = Message::assistant(std::vector<ToolCall>{{"c1", "", "f", "{\"a\":1}"}});
  assistant.name = "bot";
  assistant.refusal = "no";
  r.messages = {Message::system("s\n\"q\""),
                Message::user({ContentPart::text_part("t"), ContentPart::image("u", "high"),
                               ContentPart::audio("ZGF0YQ==", "wav")}),
                assistant, Message::tool("c1", "done")};
  ContentPart raw;
  raw.type = ContentPart::Type::Raw;
  raw.raw_json = R"({"type":"file","file":{"file_id":"f-1"}})";
  r.messages[1].parts.push_back(raw);
  r.tools = {Tool{"f", "does f", R"({"type":"object"})", false}};
  r.tool_choice = ToolChoice::named("f");
  r.parallel_tool_calls = false;
  r.response_format = ResponseFormat{"json_schema", "n", "d", R"({"type":"object"})", true};
  r.temperature = 1;
  r.top_p = 0.25;
  r.presence_penalty = -2;
  r.frequency_penalty = 0.1;
  r.max_tokens = 7;
  r.max_completion_tokens = 9;
  r.stop = {"a", "b"};
  r.seed = -3;
  r.n = 2;
  r.user = "é";
  r.include_usage = true;
  std::string text;
  ASSERT_FALSE(wire::encode_request(r, /*stream=*/true, text).has_value());
  const json expected = json::parse(R"({
    "messages": [
      {"role": "system", "content": "s\n\"q\""},
      {"role": "user", "content": [
        {"type": "text", "text": "t"},
        {"type": "image_url", "image_url": {"url": "u", "detail": "high"}},
        {"type": "input_audio", "input_audio": {"data": "ZGF0YQ==", "format": "wav"}},
        {"type": "file", "file": {"file_id": "f-1"}}]},
      {"role": "assistant", "content": null, "name": "bot", "refusal": "no",
       "tool_calls": [{"id": "c1", "type": "function",
                       "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
      {"role": "tool", "content": "done", "tool_call_id": "c1"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "does f",
                                                "parameters": {"type": "object"},
                                                "strict": false}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "parallel_tool_calls": false,
    "response_format": {"type": "json_schema", "json_schema": {"name": "n", "description": "d",
                        "schema": {"type": "object"}, "strict": true}},
    "temperature": 1.0, "top_p": 0.25, "presence_penalty": -2.0, "frequency_penalty": 0.1,
    "max_tokens": 7, "max_completion_tokens": 9, "stop": ["a", "b"], "seed": -3, "n": 2,
    "user": "é", "stream": true, "stream_options": {"include_usage": true}})");
  EXPECT_EQ(json::parse(text), expected);
  // Compact: re-serialising the parsed text changes nothing but the key order.
  EXPECT_EQ(text.size(), expected.dump().size()) << text;
}

TEST(Codec, NewerRequestFieldsEncode) {
  ChatRequest r;
  r.messages = {Message::user("hi")};
  r.reasoning_effort = "high";
  r.verbosity = "low";
  r.logprobs = true;
  r.top_logprobs = 3;
  r.logit_bias = {{"50256", -100}, {"13", 5}};
  r.service_tier = "flex";
  r.store = false;
  r.metadata = {{"team", "voice"}};
  r.prediction = "old text";
  r.modalities = {"text", "audio"};
  r.audio = AudioOutput{"alloy", "wav"};
  r.web_search_options_json = R"({"search_context_size":"low"})";
  r.prompt_cache_key = "k1";
  r.safety_identifier = "user-hash";
  std::string text;
  ASSERT_FALSE(wire::encode_request(r, /*stream=*/false, text).has_value());
  EXPECT_EQ(json::parse(text), json::parse(R"({
    "messages": [{"role": "user", "content": "hi"}],
    "reasoning_effort": "high", "verbosity": "low", "logprobs": true, "top_logprobs": 3,
    "logit_bias": {"13": 5, "50256": -100}, "service_tier": "flex", "store": false,
    "metadata": {"team": "voice"}, "prediction": {"type": "content", "content": "old text"},
    "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"},
    "web_search_options": {"search_context_size": "low"}, "prompt_cache_key": "k1",
    "safety_identifier": "user-hash"})"));
  // extra_json still overrides a modelled member.
  r.extra_json = R"({"reasoning_effort":"provider-specific"})";
  ASSERT_FALSE(wire::encode_request(r, false, text).has_value());
  EXPECT_EQ(json::parse(text)["reasoning_effort"], "provider-specific");
}

TEST(Codec, NewerRequestFieldsAreValidated) {
  auto problem = [](auto change) {
    ChatRequest r;
    r.messages = {Message::user("hi")};
    change(r);
    std::string text;
    return wire::encode_request(r, false, text).value_or("<accepted>");
  };
  EXPECT_EQ(problem([](ChatRequest& r) { r.reasoning_effort = "extreme"; }),
            "reasoning_effort must be one of none, minimal, low, medium, high, xhigh, max");
  EXPECT_EQ(problem([](ChatRequest& r) { r.verbosity = "loud"; }),
            "verbosity must be one of low, medium, high");
  EXPECT_EQ(problem([](ChatRequest& r) { r.top_logprobs = 2; }),
            "top_logprobs needs logprobs set to true");
  EXPECT_EQ(problem([](ChatRequest& r) {
              r.logprobs = true;
              r.top_logprobs = 21;
            }),
            "top_logprobs must be between 0 and 20");
  EXPECT_EQ(problem([](ChatRequest& r) {
              r.logit_bias = {{"abc", 1}};
            }),
            "logit_bias keys must be token ids (decimal digits)");
  EXPECT_EQ(problem([](ChatRequest& r) {
              r.logit_bias = {{"7", 101}};
            }),
            "logit_bias[7] must be between -100 and 100");
  EXPECT_EQ(problem([](ChatRequest& r) { r.service_tier = "gold"; }),
            "service_tier must be one of auto, default, flex, scale, priority, fast");
  EXPECT_EQ(problem([](ChatRequest& r) {
              for (int i = 0; i < 17; ++i) r.metadata[std::to_string(i)] = "v";
            }),
            "metadata holds at most 16 pairs");
  EXPECT_EQ(problem([](ChatRequest& r) { r.metadata[std::string(65, 'k')] = "v"; }),
            "metadata keys must be 1 to 64 characters");
  EXPECT_EQ(problem([](ChatRequest& r) { r.modalities = {"video"}; }),
            "modalities[] must be one of text, audio");
  EXPECT_EQ(problem([](ChatRequest& r) {
              r.audio = AudioOutput{"alloy", "ogg"};
            }),
            "audio.format must be one of wav, aac, mp3, flac, opus, pcm16");
  EXPECT_EQ(problem([](ChatRequest& r) { r.web_search_options_json = "[1]"; }),
            "web_search_options_json must be a JSON object");
  EXPECT_EQ(problem([](ChatRequest& r) { r.prompt_cache_key = "\xff"; }),
            "prompt_cache_key is not valid UTF-8");
  EXPECT_EQ(problem([](ChatRequest& r) { r.safety_identifier = "\xff"; }),
            "safety_identifier is not valid UTF-8");
}

TEST(Codec, ReasoningCitationsAndLogprobsDecode) {
  std::string body = R"({"id":"r","object":"chat.completion","created":1,"model":"m",
    "service_tier":"flex",
    "choices":[{"index":0,"finish_reason":"stop",
      "logprobs":{"content":[{"token":"Grok","logprob":-0.1,"bytes":[71],"top_logprobs":[]}],"refusal":null},
      "message":{"role":"assistant","content":"Grok","reasoning_content":"First, the user said...",
        "annotations":[{"type":"url_citation","url_citation":{"url":"https://example.org/a",
          "title":"A","start_index":0,"end_index":4}}]}}]})";
  ChatResponse r;
  auto failure = wire::decode_response(body, r);
  ASSERT_FALSE(failure.has_value()) << failure->message;
  EXPECT_EQ(r.text(), "Grok");
  EXPECT_EQ(r.reasoning(), "First, the user said...");
  EXPECT_EQ(r.service_tier, "flex");
  ASSERT_EQ(r.choices[0].message.annotations.size(), 1u);
  const Annotation& a = r.choices[0].message.annotations[0];
  EXPECT_EQ(a.type, "url_citation");
  EXPECT_EQ(a.url, "https://example.org/a");
  EXPECT_EQ(a.title, "A");
  EXPECT_EQ(a.end_index, 4);
  EXPECT_EQ(json::parse(r.choices[0].logprobs_json)["content"][0]["token"], "Grok");
  // OpenRouter's name for it.
  std::string openrouter =
      R"({"choices":[{"message":{"content":"x","reasoning":"because"},"finish_reason":"stop"}]})";
  ChatResponse o;
  ASSERT_FALSE(wire::decode_response(openrouter, o).has_value());
  EXPECT_EQ(o.reasoning(), "because");
  EXPECT_FALSE(o.content_filtered());
}

TEST(Codec, AbsurdUsageNumbersAreClamped) {
  std::string body =
      R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":-5,"completion_tokens":1e300,"total_tokens":123456789012345678}})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_response(body, r).has_value());
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->prompt_tokens, 0);
  EXPECT_EQ(r.usage->completion_tokens, wire::kMaxTokens);
  EXPECT_EQ(r.usage->total_tokens, wire::kMaxTokens);
  ChatChunk chunk;
  ASSERT_FALSE(wire::decode_chunk(R"({"choices":[],"usage":{"prompt_tokens":-1e30}})", chunk));
  EXPECT_EQ(chunk.usage->prompt_tokens, 0);
}

TEST(Codec, AFilteredAnswerIsAnAnswerAndIsFlagged) {
  std::string body =
      R"({"choices":[{"message":{"content":"I can"},"finish_reason":"content_filter"}]})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_response(body, r).has_value());
  EXPECT_TRUE(r.content_filtered());
  EXPECT_EQ(r.text(), "I can");
}

TEST(Codec, ErrorsInsideA2xxAreFailures) {
  auto failure = [](std::string body) {
    ChatResponse r;
    return wire::decode_response(body, r);
  };
  // An error beside choices (OpenRouter), a choice that finished with "error", an answer that
  // is only an error in another shape: each is an in-band error, never a success.
  auto beside = failure(
      R"({"choices":[{"message":{"content":""},"finish_reason":"error"}],"error":{"code":502,"message":"upstream died"}})");
  ASSERT_TRUE(beside && beside->in_band_error);
  EXPECT_EQ(beside->in_band_error->message, "upstream died");
  EXPECT_EQ(beside->in_band_error->code, "502");
  auto finished = failure(R"({"choices":[{"message":{"content":"par"},"finish_reason":"error"}]})");
  ASSERT_TRUE(finished && finished->in_band_error);
  EXPECT_EQ(finished->in_band_error->message,
            "the provider ended the answer with finish_reason \"error\"");
  auto detail = failure(R"({"detail":"Model is loading"})");
  ASSERT_TRUE(detail && detail->in_band_error);
  EXPECT_EQ(detail->message, "error inside a successful response: Model is loading");
  // A body with neither choices nor an error is malformed, not an error report.
  auto empty = failure(R"({"id":"x"})");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->in_band_error);
}

TEST(Codec, DefaultExampleResponseDecodes) {
  std::string body = kDefaultResponse;
  ChatResponse r;
  auto failure = wire::decode_response(body, r);
  ASSERT_FALSE(failure.has_value()) << failure->message;
  EXPECT_EQ(r.id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
  EXPECT_EQ(r.object, "chat.completion");
  EXPECT_EQ(r.created, 1741569952);
  EXPECT_EQ(r.model, "gpt-5.4");
  EXPECT_EQ(r.service_tier, "default");
  EXPECT_EQ(r.text(), "Hello! How can I assist you today?");
  EXPECT_EQ(r.finish_reason(), "stop");
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->prompt_tokens, 19);
  EXPECT_EQ(r.usage->completion_tokens, 10);
  EXPECT_EQ(r.usage->total_tokens, 29);
  // Unknown fields (annotations, logprobs) survive in the raw JSON.
  EXPECT_EQ(json::parse(r.raw_json), json::parse(kDefaultResponse));
}

TEST(Codec, FunctionsExampleResponseDecodes) {
  std::string body = kFunctionsResponse;
  ChatResponse r;
  ASSERT_FALSE(wire::decode_response(body, r).has_value());
  EXPECT_FALSE(r.choices[0].message.content.has_value());
  ASSERT_EQ(r.tool_calls().size(), 1u);
  EXPECT_EQ(r.tool_calls()[0].id, "call_abc123");
  EXPECT_EQ(r.tool_calls()[0].name, "get_current_weather");
  EXPECT_EQ(r.tool_calls()[0].arguments, "{\n\"location\": \"Boston, MA\"\n}");
  EXPECT_EQ(r.finish_reason(), "tool_calls");
  EXPECT_EQ(r.usage->total_tokens, 99);
}

TEST(Codec, MalformedResponsesAreRejectedWithReasons) {
  auto reason = [](std::string body) {
    ChatResponse r;
    auto f = wire::decode_response(body, r);
    return f ? f->message : std::string("<accepted>");
  };
  EXPECT_EQ(reason("{\"choices\": [").substr(0, 34), "the response body is not valid JSO");
  EXPECT_EQ(reason("[1,2]"), "the response body is not a JSON object");
  EXPECT_EQ(reason("{\"id\":\"x\"}"), "the response has no \"choices\" array");
  EXPECT_EQ(reason(R"({"choices":[{"message":{"content":5}}]})"),
            "\"content\" is neither a string nor null");
  EXPECT_EQ(reason(R"({"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":"x"}})"),
            "\"prompt_tokens\" is not a number");
  std::string deep(10000, '[');
  EXPECT_EQ(reason(deep).substr(0, 34), "the response body is not valid JSO");
}

TEST(Codec, ErrorInsideSuccessfulBodyIsReportedInBand) {
  std::string body =
      R"({"error":{"message":"upstream failed","type":"server_error","code":"502"}})";
  ChatResponse r;
  auto f = wire::decode_response(body, r);
  ASSERT_TRUE(f.has_value());
  ASSERT_TRUE(f->in_band_error.has_value());
  EXPECT_EQ(f->in_band_error->message, "upstream failed");
  EXPECT_EQ(f->in_band_error->code, "502");
}

TEST(Codec, ErrorBodiesInEveryShape) {
  auto e = wire::decode_error_body(
      R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
  EXPECT_TRUE(e.found);
  EXPECT_EQ(e.message, "You exceeded your current quota");
  EXPECT_EQ(e.type, "insufficient_quota");
  EXPECT_EQ(e.code, "insufficient_quota");
  EXPECT_EQ(e.param, "");
  auto numeric = wire::decode_error_body(R"({"error":{"message":"m","code":429}})");
  EXPECT_EQ(numeric.code, "429");
  auto plain = wire::decode_error_body(R"({"error":"just text"})");
  EXPECT_EQ(plain.message, "just text");
  auto gateway = wire::decode_error_body(R"({"message":"Bad gateway","code":502})");
  EXPECT_EQ(gateway.message, "Bad gateway");
  EXPECT_EQ(gateway.code, "502");
  auto html = wire::decode_error_body("<html>\r\n<body>502 Bad Gateway</body></html>");
  EXPECT_FALSE(html.found);
  EXPECT_EQ(html.message, "502 Bad Gateway");  // markup-free
  auto titled = wire::decode_error_body(
      "<!DOCTYPE html><html><head><title> 524: A timeout occurred </title><script>var x = "
      "'<b>';</script></head><body>long page</body></html>");
  EXPECT_EQ(titled.message, "524: A timeout occurred");
  auto untitled = wire::decode_error_body(
      "<html><head><script>var a = '<p>no</p>';</script><style>p{}</style></head>"
      "<body><h1>Service\n  Unavailable</h1><p>Try later.</p></body></html>");
  EXPECT_EQ(untitled.message, "Service Unavailable Try later.");
  auto text = wire::decode_error_body("upstream request timeout\n");
  EXPECT_EQ(text.message, "upstream request timeout");
  EXPECT_EQ(wire::decode_error_body(std::string(1000, 'x')).message, std::string(200, 'x') + "...");
}

TEST(Codec, ErrorBodiesOfEveryProviderShape) {
  // Google's array form, with status, reasons and RetryInfo.
  auto google = wire::decode_error_body(R"([{"error":{"code":429,"message":"Quota",
    "status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",
    "reason":"RATE_LIMIT_EXCEEDED"},{"@type":"type.googleapis.com/google.rpc.RetryInfo",
    "retryDelay":"1.5s"}]}}])");
  EXPECT_TRUE(google.found);
  EXPECT_EQ(google.message, "Quota");
  EXPECT_EQ(google.code, "429");
  EXPECT_EQ(google.status, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(google.reasons, std::vector<std::string>{"RATE_LIMIT_EXCEEDED"});
  EXPECT_EQ(google.retry_delay, Duration(milliseconds(1500)));
  // FastAPI / vLLM: detail as text, as an object, as a list of validation errors.
  EXPECT_EQ(wire::decode_error_body(R"({"detail":"Not Found"})").message, "Not Found");
  auto object = wire::decode_error_body(R"({"detail":{"message":"busy","type":"overloaded"}})");
  EXPECT_EQ(object.message, "busy");
  EXPECT_EQ(object.type, "overloaded");
  auto list = wire::decode_error_body(
      R"({"detail":[{"loc":["body","messages"],"msg":"field required","type":"missing"},{"msg":"too long"}]})");
  EXPECT_EQ(list.message, "field required; too long");
  EXPECT_EQ(list.type, "missing");
  // Flat bodies, vLLM's object "error", Azure's type_.
  auto vllm = wire::decode_error_body(
      R"({"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400})");
  EXPECT_EQ(vllm.message, "bad");
  EXPECT_EQ(vllm.type, "BadRequestError");
  EXPECT_EQ(vllm.code, "400");
  EXPECT_EQ(wire::decode_error_body(R"({"message":"m","type_":"t"})").type, "t");
  // Anthropic's envelope.
  auto anthropic = wire::decode_error_body(
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"r"})");
  EXPECT_EQ(anthropic.type, "overloaded_error");
  EXPECT_EQ(anthropic.message, "Overloaded");
  // A message that is itself an error document: the inner error wins, the outer code stays
  // when the inner has none.
  auto nested = wire::decode_error_body(
      R"({"error":{"message":"{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"Resource has been exhausted\",\n    \"status\": \"RESOURCE_EXHAUSTED\"\n  }\n}\n","code":429}})");
  EXPECT_EQ(nested.message, "Resource has been exhausted");
  EXPECT_EQ(nested.status, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(nested.code, "429");
  // OpenRouter: metadata.error_type and the provider's raw error.
  auto openrouter = wire::decode_error_body(
      R"({"error":{"code":400,"message":"Provider returned error","metadata":{"error_type":"invalid_request","raw":"{\"error\":{\"message\":\"prompt is too long\",\"type\":\"invalid_request_error\"}}","provider_name":"Anthropic"}}})");
  EXPECT_EQ(openrouter.message, "prompt is too long");
  EXPECT_EQ(openrouter.type, "invalid_request_error");
  EXPECT_EQ(openrouter.code, "400");
  EXPECT_EQ(openrouter.reasons, std::vector<std::string>{"invalid_request"});
  // xAI: a plain error string beside a textual code.
  auto xai = wire::decode_error_body(
      R"({"code":"Client specified an invalid argument","error":"Incorrect API key"})");
  EXPECT_EQ(xai.message, "Incorrect API key");
  EXPECT_EQ(xai.code, "Client specified an invalid argument");
  // Nesting is bounded.
  std::string deep = R"({"error":{"message":"leaf"}})";
  for (int i = 0; i < 6; ++i) deep = json{{"error", {{"message", deep}}}}.dump();
  EXPECT_TRUE(wire::decode_error_body(deep).found);
}

TEST(RetryAfter, Seconds) {
  WallTime now{seconds(1'000'000)};
  EXPECT_EQ(wire::parse_retry_after("2", now), Duration(seconds(2)));
  EXPECT_EQ(wire::parse_retry_after(" 30 ", now), Duration(seconds(30)));
  EXPECT_EQ(wire::parse_retry_after("1.5", now), Duration(milliseconds(1500)));
  EXPECT_EQ(wire::parse_retry_after("0", now), Duration::zero());
}

TEST(RetryAfter, HttpDateInEveryFormat) {
  // 1994-11-06 08:49:37 UTC is 784111777 seconds after the epoch.
  WallTime now{seconds(784111777 - 7)};
  EXPECT_EQ(wire::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Duration(seconds(7)));
  EXPECT_EQ(wire::parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), Duration(seconds(7)));
  EXPECT_EQ(wire::parse_retry_after("Sun Nov  6 08:49:37 1994", now), Duration(seconds(7)));
  WallTime later{seconds(784111777 + 100)};
  EXPECT_EQ(wire::parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later), Duration::zero());
}

TEST(RetryAfter, MillisecondsHeaderWinsOverSeconds) {
  HttpHeaders h = {{"retry-after", "20"}, {"retry-after-ms", "250"}};
  EXPECT_EQ(wire::retry_after_from(h, WallTime{}), Duration(milliseconds(250)));
  HttpHeaders bad_ms = {{"retry-after", "3"}, {"retry-after-ms", "soon"}};
  EXPECT_EQ(wire::retry_after_from(bad_ms, WallTime{}), Duration(seconds(3)));
  EXPECT_EQ(wire::parse_retry_after_ms("12.5"), Duration(std::chrono::microseconds(12500)));
}

TEST(RetryAfter, GarbageGivesNothing) {
  WallTime now{seconds(1'000'000)};
  for (const char* bad : {"", "soon", "-5", "1e3", "5s", "Sun, 06 Nov 1994 25:49:37 GMT",
                          "Sun, 32 Foo 1994 08:49:37 GMT", "NaN", "0x10", "1.2.3"}) {
    EXPECT_FALSE(wire::parse_retry_after(bad, now).has_value()) << bad;
  }
  EXPECT_FALSE(wire::retry_after_from({}, now).has_value());
  // Found by fuzz_headers: a date beyond what a wall time holds overflowed.
  EXPECT_EQ(wire::parse_retry_after("Sun, 06 Nov 6994 08:49:37 GMT", now),
            Duration(std::chrono::hours(24)));
  EXPECT_TRUE(wire::parse_http_date("Mon, 01 Jan 9999 00:00:00 GMT").has_value());
  // Absurd values are clamped to a day, never overflow.
  EXPECT_EQ(wire::parse_retry_after("99999999999999999999", now), Duration(std::chrono::hours(24)));
}

TEST(Headers, ShouldRetryAndValidation) {
  EXPECT_EQ(wire::should_retry_from({{"x-should-retry", "false"}}), false);
  EXPECT_EQ(wire::should_retry_from({{"x-should-retry", "true"}}), true);
  EXPECT_FALSE(wire::should_retry_from({{"x-should-retry", "maybe"}}).has_value());
  EXPECT_TRUE(wire::valid_header_name("X-Custom_1"));
  EXPECT_FALSE(wire::valid_header_name("Bad Header"));
  EXPECT_FALSE(wire::valid_header_name(""));
  EXPECT_TRUE(wire::valid_header_value("value\twith tab"));
  EXPECT_FALSE(wire::valid_header_value("a\r\nInjected: 1"));
  EXPECT_FALSE(wire::valid_header_value(std::string("a\0b", 3)));
}

// Everything decode_response fills, as text, to compare two decodings.
std::string describe(const ChatResponse& r) {
  json doc = {{"id", r.id},       {"object", r.object},         {"created", r.created},
              {"model", r.model}, {"fp", r.system_fingerprint}, {"tier", r.service_tier}};
  for (const Choice& c : r.choices) {
    json calls = json::array();
    for (const ToolCall& t : c.message.tool_calls) {
      calls.push_back({t.id, t.type, t.name, t.arguments});
    }
    doc["choices"].push_back(
        {{"index", c.index},
         {"finish", c.finish_reason},
         {"role", c.message.role},
         {"content", c.message.content ? json(*c.message.content) : json()},
         {"refusal", c.message.refusal ? json(*c.message.refusal) : json()},
         {"reasoning", c.message.reasoning ? json(*c.message.reasoning) : json()},
         {"annotations", c.message.annotations.size()},
         {"logprobs", c.logprobs_json},
         {"calls", calls}});
  }
  if (r.usage) {
    const Usage& u = *r.usage;
    doc["usage"] = {
        u.prompt_tokens,           u.completion_tokens,          u.total_tokens,
        u.cached_tokens,           u.prompt_audio_tokens,        u.reasoning_tokens,
        u.completion_audio_tokens, u.accepted_prediction_tokens, u.rejected_prediction_tokens};
  }
  return doc.dump();
}

// The SAX fast path and the DOM decoder agree on every body: the fast path either declines
// or gives exactly the DOM's answer, and it takes the usual shapes itself.
TEST(Wire, NumbersBeyondInt64AreClamped) {
  EXPECT_EQ(wire::to_int64(1e300), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(wire::to_int64(-1e300), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(wire::to_int64(std::nan("")), 0);
  EXPECT_EQ(wire::to_int64(-2.9), -2);
  std::string body = R"({"choices":[],"created":1e300})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_response(body, r).has_value());
  EXPECT_EQ(r.created, std::numeric_limits<std::int64_t>::max());
}

// append_json writes the request body in place of nlohmann's dump(): byte for byte the same,
// and it refuses exactly the strings dump() throws on.
TEST(Wire, AppendJsonWritesWhatDumpWrites) {
  std::string controls;
  for (char c = 0; c < 0x20; ++c) controls += c;
  const nlohmann::json value = {
      {"controls", controls},
      {"quotes \" and \\", "a\"b\\c/d\x7f"},
      {"utf8", "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF"},
      {"floats", {1.5, 0.1, 1e300, -0.0, 2.0, -3.25e-7}},
      {"ints",
       {0, -1, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
        std::numeric_limits<std::uint64_t>::max()}},
      {"nested", {{"a", nlohmann::json::array()}, {"b", nlohmann::json::object()}, {"c", nullptr}}},
      {"flags", {true, false}},
      {"", ""},
  };
  std::string out;
  ASSERT_TRUE(wire::append_json(value, out));
  EXPECT_EQ(out, value.dump());

  for (const std::string bad : {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80",
                                "\xF0\x80\x80\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\x80",
                                "\xBF", "\xE2\x82", "\xF0\x9F\x98", "\xFF", "a\xC3"}) {
    SCOPED_TRACE(::testing::PrintToString(bad));
    const nlohmann::json doc = {{"k", bad}};
    std::string partial;
    EXPECT_FALSE(wire::append_json(doc, partial));
    EXPECT_THROW((void)doc.dump(), nlohmann::json::type_error);
  }

  // Random byte strings, valid UTF-8 or not: both agree on every one, as keys and as values.
  std::mt19937 rng(20261125);
  const std::string alphabet = std::string("ab\"\\\n\x01\x1f\x7f") +
                               "\x80\xBF\xC2\xC3\xDF\xE0\xE2" +
                               "\xED\xEF\xF0\xF4\xF5\x82\x9F\xA0\x8F\x90";
  int valid = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string s;
    const std::size_t length = rng() % 8;
    for (std::size_t j = 0; j < length; ++j) s += alphabet[rng() % alphabet.size()];
    const nlohmann::json doc = {{s, {s, 1}}};
    std::string text;
    const bool took = wire::append_json(doc, text);
    std::string dumped;
    bool dump_ok = true;
    try {
      dumped = doc.dump();
    } catch (const nlohmann::json::type_error&) {
      dump_ok = false;
    }
    ASSERT_EQ(took, dump_ok) << ::testing::PrintToString(s);
    if (took) {
      ASSERT_EQ(text, dumped);
      ++valid;
    }
  }
  EXPECT_GT(valid, 500);  // the alphabet gives both outcomes often (990 valid with this seed)
  EXPECT_LT(valid, 4500);
}

TEST(Wire, FastResponseDecoderAgreesWithTheDomDecoder) {
  const std::string tool =
      R"({"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"get","arguments":"{\"a\":1}"}},{"id":"t2","function":{"name":"put","arguments":null}}]},"finish_reason":"tool_calls"}]})";
  const std::string usage =
      R"({"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":1},"completion_tokens_details":{"reasoning_tokens":4,"audio_tokens":0,"accepted_prediction_tokens":1,"rejected_prediction_tokens":2},"extra":{"deep":[1,{"x":[]}]}}})";
  const std::vector<std::pair<std::string, bool>> cases = {
      // body, whether the fast path must take it
      {kDefaultResponse, true},
      {tool, true},
      {usage, true},
      {R"({"choices":[{"message":{"content":"a","role":null},"finish_reason":null,"index":1.9}],"created":1.5e3,"model":null,"usage":null})",
       true},
      {R"({"choices":[],"x":{"y":[[[]]]},"id":"dup","id":"last"})", true},
      // Found by fuzz_response: a double beyond int64 was cast (undefined behaviour).
      {R"({"choices":[{"index":-1e300,"message":{}}],"created":1e300,"usage":{"total_tokens":-5e20}})",
       true},
      {R"({"choices":[{"message":{"content":"a","content":"b","refusal":5}}]})", true},
      // Reasoning under either name; reasoning_content wins, whatever the order.
      {R"({"choices":[{"message":{"content":"a","reasoning_content":"think"}}]})", true},
      {R"({"choices":[{"message":{"content":"a","reasoning":"or","reasoning_content":"rc"}}]})",
       true},
      {R"({"choices":[{"message":{"reasoning_content":"rc","reasoning":"or","content":"a"}}]})",
       true},
      {R"({"choices":[{"message":{"reasoning_content":null,"reasoning":"or","content":"a"}}]})",
       true},
      {R"({"choices":[{"message":{"reasoning_content":"x","reasoning_content":null}}]})", true},
      {R"({"choices":[{"message":{"reasoning":{"effort":"high"}}}]})", false},
      {R"({"choices":[{"message":{"reasoning_content":7}}]})", false},
      // Citations and log probabilities are the DOM decoder's.
      {R"({"choices":[{"message":{"content":"a","annotations":[]},"logprobs":null}]})", true},
      {R"({"choices":[{"message":{"annotations":[{"type":"url_citation","url_citation":{"url":"u"}}]}}]})",
       false},
      {R"({"choices":[{"message":{"annotations":"none"}}]})", true},
      {R"({"choices":[{"message":{"content":"a"},"logprobs":{"content":[]}}]})", false},
      {R"({"choices":[{"message":{"content":"a"},"logprobs":3}]})", false},
      // Errors inside a 2xx.
      {R"({"choices":[{"message":{"content":""},"finish_reason":"error"}]})", false},
      {R"({"choices":[{"message":{"content":"a"}}],"error":{"message":"late"}})", false},
      {R"({"choices":[{"message":{"content":"a"}}],"error":null})", false},
      {R"({"choices":[{"message":{"content":"a"},"message":{"content":"b"}}]})", false},
      // Messages are counted per choice: one without, the next with two, is not two messages.
      {R"({"choices":[{"index":0},{"index":1,"message":{"content":"a"},"message":{"refusal":"b"}}]})",
       false},
      {R"({"choices":[{"index":0,"finish_reason":"stop"},{"index":1,"message":{"content":"a"}}]})",
       false},
      {R"({"choices":[{"message":{"content":[{"type":"text","text":"parts"}]}}]})", false},
      {R"({"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]}}]})",
       false},
      {R"({"choices":[{"message":{"tool_calls":[{"function":{"name":"f"},"function":{"arguments":"x"}}]}}]})",
       false},
      {R"({"usage":{"prompt_tokens_details":{"cached_tokens":1},"prompt_tokens_details":{}},"choices":[]})",
       false},
      {R"({"error":{"message":"in band","code":"x"}})", false},
      // simdjson rejects what nlohmann accepts here: a byte order mark, an integer beyond 64
      // bits (nlohmann reads it as a double). The DOM decoder decides these.
      {std::string("\xEF\xBB\xBF") + kDefaultResponse, false},
      {R"({"choices":[],"created":123456789012345678901234567890})", false},
      {R"({"choices":{"0":{}}})", false},
      {R"({"choices":[{"message":"text"}]})", false},
      {R"({"choices":[{"finish_reason":"stop"}]})", false},
      {R"({"choices":[1]})", false},
      {R"({"choices":[],"created":"yesterday"})", false},
      {R"({"choices":[{"message":{"content":true}}]})", false},
      {R"([{"choices":[]}])", false},
      {R"("just a string")", false},
      {R"({"choices":[]} trailing)", false},
      {R"({"choices":[{"message":{"content":"unterminated)", false},
      {std::string(200, '[') + std::string(200, ']'), false},
      {R"({"choices":[],"deep":)" + std::string(150, '[') + std::string(150, ']') + "}", false},
  };
  for (const auto& [body, fast_must_take] : cases) {
    SCOPED_TRACE(body.substr(0, 120));
    ChatResponse dom;
    std::string copy = body;
    auto failure = wire::decode_response_dom(copy, dom);
    ChatResponse fast;
    fast.id = "untouched";
    const bool took = wire::decode_response_fast(body, fast);
    EXPECT_EQ(took, fast_must_take);
    if (took) {
      ASSERT_FALSE(failure) << failure->message;
      EXPECT_EQ(describe(fast), describe(dom));
    } else {
      EXPECT_EQ(fast.id, "untouched");
    }
    ChatResponse both;  // decode_response itself gives the DOM's answer either way
    copy = body;
    auto public_failure = wire::decode_response(copy, both);
    EXPECT_EQ(public_failure.has_value(), failure.has_value());
    if (!failure) {
      EXPECT_EQ(describe(both), describe(dom));
    } else if (public_failure) {
      EXPECT_EQ(public_failure->message, failure->message);
    }
  }
}

// Every message the library makes is valid UTF-8: cut between characters, bad bytes as U+FFFD.
bool is_valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = detail::utf8_char_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

TEST(Utf8, ExcerptsAreCutBetweenCharactersAndCleaned) {
  std::string accents = "a";
  for (int i = 0; i < 600; ++i) accents += "\xC3\xA9";
  for (std::size_t max : {1u, 2u, 3u, 120u, 999u, 1000u, 1001u}) {
    const std::string e = wire::excerpt(accents, max);
    EXPECT_TRUE(is_valid_utf8(e)) << max;
    EXPECT_LE(e.size(), max + 3) << max;
  }
  EXPECT_EQ(wire::excerpt("d\xE9j\xE0", 10), "d\xEF\xBF\xBDj\xEF\xBF\xBD");  // Latin-1
  EXPECT_EQ(wire::excerpt("\xED\xA0\x80x", 10),
            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx");                    // a surrogate
  EXPECT_EQ(wire::excerpt("\xC0\xAF", 10), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(wire::excerpt("ok \xF0\x9F\x98\x80", 10), "ok \xF0\x9F\x98\x80");
  EXPECT_EQ(wire::excerpt("ok \xF0\x9F\x98\x80", 5), "ok ...");
  // Replacements never make an excerpt longer than asked (U+FFFD takes three bytes).
  EXPECT_EQ(wire::excerpt(std::string(10, '\xFF'), 10), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  const std::string garbage(600, '\xFF');
  EXPECT_LE(wire::decode_error_body(garbage).message.size(), garbage.size());
  const wire::ErrorBody latin = wire::decode_error_body("Erreur: d\xE9j\xE0 vu");
  EXPECT_TRUE(is_valid_utf8(latin.message)) << latin.message;
  EXPECT_NE(latin.message.find("d\xEF\xBF\xBDj"), std::string::npos) << latin.message;
}

// Every response body the project keeps (the fuzzers' seeds) gives the same answer through
// the fast decoder and the DOM decoder, when the fast one takes it.
TEST(DecodeResponse, EveryFixtureAgreesOnBothPaths) {
  std::size_t bodies = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(FAILOVER_SOURCE_DIR) +
                                                               "/tests/fuzz/corpus/response/")) {
    std::ifstream in(entry.path());
    const std::string body{std::istreambuf_iterator<char>(in), {}};
    SCOPED_TRACE(entry.path().string());
    ++bodies;
    ChatResponse dom;
    std::string copy = body;
    auto failure = wire::decode_response_dom(copy, dom);
    ChatResponse fast;
    if (wire::decode_response_fast(body, fast)) {
      ASSERT_FALSE(failure) << failure->message;
      EXPECT_EQ(describe(fast), describe(dom));
    }
  }
  EXPECT_GE(bodies, 8u);
}

TEST(Codec, ACustomVoiceIsAnObjectAndLimitsOfTheSpecAreCheckedBeforeTraffic) {
  ChatRequest r;
  r.messages = {Message::user("hi")};
  r.modalities = {"text", "audio"};
  r.audio = AudioOutput{"voice_1234", "mp3"};
  std::string text;
  ASSERT_FALSE(wire::encode_request(r, false, text).has_value());
  EXPECT_EQ(json::parse(text)["audio"],
            json::parse(R"({"voice": {"id": "voice_1234"}, "format": "mp3"})"));
  r.audio.reset();
  r.stop = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(wire::encode_request(r, false, text),
            std::optional<std::string>("stop has 5 entries; at most 4"));
  r.stop.resize(4);
  EXPECT_FALSE(wire::encode_request(r, false, text).has_value());
  r.n = 129;
  EXPECT_EQ(wire::encode_request(r, false, text),
            std::optional<std::string>("n must be from 1 to 128"));
}

TEST(Codec, ChoicesComeInIndexOrderAsInAStream) {
  std::string body =
      R"({"choices":[{"index":1,"message":{"content":"second"}},{"index":0,"message":{"content":"first"}}]})";
  ChatResponse r;
  ASSERT_FALSE(wire::decode_response(body, r).has_value());
  ASSERT_EQ(r.choices.size(), 2u);
  EXPECT_EQ(r.choices[0].index, 0);
  EXPECT_EQ(r.text(), "first");
}

}  // namespace
}  // namespace failover
