// The dialect interface: what each API says of URLs, headers, bodies, prefixes and answers, so
// that the core can ask it instead of branching on the dialect.

#include "wire/dialect.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace failover {
namespace {

using json = nlohmann::json;
using wire::api_of;

TEST(Dialect, EachKnowsItsNameAndIsFoundByIt) {
  for (Dialect d : {Dialect::OpenAI, Dialect::Anthropic, Dialect::Gemini}) {
    const wire::DialectApi& api = api_of(d);
    EXPECT_EQ(api.id(), d);
    ASSERT_NE(wire::api_named(api.name()), nullptr) << api.name();
    EXPECT_EQ(wire::api_named(api.name())->id(), d);
  }
  EXPECT_STREQ(api_of(Dialect::Anthropic).name(), "anthropic");
  EXPECT_EQ(wire::api_named("Anthropic"), nullptr);
  EXPECT_EQ(wire::api_named("claude"), nullptr);
  EXPECT_EQ(wire::dialect_names(), R"("openai", "anthropic" or "gemini")");
}

TEST(Dialect, UrlsCarryTheMethodAndForGeminiTheModel) {
  const std::string base = "https://h.test/v1";
  wire::RouteUrls openai = api_of(Dialect::OpenAI).urls(base, "?v=2", "gpt-4.1");
  EXPECT_EQ(openai.whole, "https://h.test/v1/chat/completions?v=2");
  EXPECT_EQ(openai.stream, openai.whole);
  wire::RouteUrls anthropic = api_of(Dialect::Anthropic).urls(base, "", "claude-x");
  EXPECT_EQ(anthropic.whole, "https://h.test/v1/messages");
  EXPECT_EQ(anthropic.stream, anthropic.whole);
  wire::RouteUrls gemini = api_of(Dialect::Gemini).urls(base, "?k=1", "models/gemini 2.5");
  EXPECT_EQ(gemini.whole, "https://h.test/v1/models/gemini%202.5:generateContent?k=1");
  EXPECT_EQ(gemini.stream,
            "https://h.test/v1/models/gemini%202.5:streamGenerateContent?alt=sse&k=1");
  EXPECT_EQ(api_of(Dialect::Gemini).urls(base, "", "g").stream,
            "https://h.test/v1/models/g:streamGenerateContent?alt=sse");
}

TEST(Dialect, KeysGoInEachApisOwnHeaderWithTheHeadersItRequires) {
  auto headers_of = [](Dialect d, std::map<std::string, std::string> own) {
    HttpHeaders h;
    api_of(d).add_key("sk-1", h);
    api_of(d).add_required(own, h);
    return h;
  };
  EXPECT_EQ(headers_of(Dialect::OpenAI, {}), (HttpHeaders{{"Authorization", "Bearer sk-1"}}));
  EXPECT_EQ(headers_of(Dialect::Gemini, {}), (HttpHeaders{{"x-goog-api-key", "sk-1"}}));
  EXPECT_EQ(headers_of(Dialect::Anthropic, {}),
            (HttpHeaders{{"x-api-key", "sk-1"}, {"anthropic-version", wire::kAnthropicVersion}}));
  // The endpoint's own version (any case) wins.
  EXPECT_EQ(headers_of(Dialect::Anthropic, {{"Anthropic-Version", "2099-01-01"}}),
            (HttpHeaders{{"x-api-key", "sk-1"}}));
}

TEST(Dialect, TheModelGoesInFrontOrIsLeftToTheUrl) {
  std::string out;
  api_of(Dialect::OpenAI).put_model(R"("m")", R"({"a":1})", out);
  EXPECT_EQ(out, R"({"model":"m","a":1})");
  api_of(Dialect::Anthropic).put_model(R"("m")", R"({"a":1})", out);
  EXPECT_EQ(out, R"({"model":"m","a":1})");
  api_of(Dialect::Gemini).put_model(R"("m")", R"({"a":1})", out);
  EXPECT_EQ(out, R"({"a":1})");
  EXPECT_FALSE(api_of(Dialect::OpenAI).translates());
  EXPECT_TRUE(api_of(Dialect::Anthropic).translates());
  EXPECT_TRUE(api_of(Dialect::Gemini).translates());
}

TEST(Dialect, OnlyAnthropicTrimsTheWhitespaceEndingAPrefix) {
  std::string prefix = "The answer is \n ";
  EXPECT_EQ(api_of(Dialect::Anthropic).trim_prefix(prefix), " \n ");
  EXPECT_EQ(prefix, "The answer is");
  std::string blank = "  ";
  EXPECT_EQ(api_of(Dialect::Anthropic).trim_prefix(blank), "  ");
  EXPECT_EQ(blank, "");
  for (Dialect d : {Dialect::OpenAI, Dialect::Gemini}) {
    std::string same = "The answer is ";
    EXPECT_EQ(api_of(d).trim_prefix(same), "");
    EXPECT_EQ(same, "The answer is ");
  }
}

TEST(Dialect, AProbeIsOnePingOfOneTokenInEachApi) {
  json openai = json::parse(api_of(Dialect::OpenAI).probe_body("gpt-4.1", R"("gpt-4.1")"));
  EXPECT_EQ(openai["model"], "gpt-4.1");
  EXPECT_EQ(openai["max_tokens"], 1);
  EXPECT_EQ(openai["messages"][0]["content"], "ping");
  json anthropic = json::parse(api_of(Dialect::Anthropic).probe_body("c", R"("c")"));
  EXPECT_EQ(anthropic["model"], "c");
  EXPECT_EQ(anthropic["max_tokens"], 1);
  EXPECT_EQ(anthropic["messages"][0]["role"], "user");
  json gemini = json::parse(api_of(Dialect::Gemini).probe_body("g", R"("g")"));
  EXPECT_FALSE(gemini.contains("model"));
  EXPECT_EQ(gemini["generationConfig"]["maxOutputTokens"], 1);
  EXPECT_EQ(gemini["contents"][0]["parts"][0]["text"], "ping");
}

TEST(Dialect, EachDecodesItsOwnAnswer) {
  std::string openai = R"({"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,)"
                       R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]})";
  std::string anthropic = R"({"id":"msg","type":"message","role":"assistant","model":"c",)"
                          R"("content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn",)"
                          R"("usage":{"input_tokens":3,"output_tokens":1}})";
  std::string gemini = R"({"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},)"
                       R"("finishReason":"STOP","index":0}]})";
  const std::pair<Dialect, std::string*> cases[] = {
      {Dialect::OpenAI, &openai}, {Dialect::Anthropic, &anthropic}, {Dialect::Gemini, &gemini}};
  for (auto [d, body] : cases) {
    SCOPED_TRACE(api_of(d).name());
    ChatResponse out;
    ASSERT_FALSE(api_of(d).decode(*body, out));
    EXPECT_EQ(out.text(), "hi");
  }
  // One dialect's answer is not another's.
  std::string again = R"({"candidates":[]})";
  ChatResponse out;
  EXPECT_TRUE(api_of(Dialect::Anthropic).decode(again, out));
}

TEST(Dialect, OnlyAChatCompletionsServerRefusingAStreamMeansItAnswersWhole) {
  EXPECT_TRUE(api_of(Dialect::OpenAI).stream_refusal_means_whole());
  EXPECT_FALSE(api_of(Dialect::Anthropic).stream_refusal_means_whole());
  EXPECT_FALSE(api_of(Dialect::Gemini).stream_refusal_means_whole());
}

TEST(Dialect, ModelListingsOfEachShape) {
  EXPECT_EQ(wire::lists_model(R"({"data":[{"id":"a"},{"id":"b"}]})", "b"), true);
  EXPECT_EQ(wire::lists_model(R"({"data":[{"id":"a"}]})", "b"), false);
  EXPECT_EQ(wire::lists_model(R"({"models":[{"name":"models/g"}]})", "g"), true);
  EXPECT_EQ(wire::lists_model(R"({"models":[{"name":"g"}]})", "models/g"), true);
  EXPECT_EQ(wire::lists_model(R"({"models":[{"name":"models/h"}]})", "g"), false);
  EXPECT_EQ(wire::lists_model(R"({"object":"list"})", "g"), std::nullopt);
  EXPECT_EQ(wire::lists_model("not json", "g"), std::nullopt);
}

TEST(Dialect, PercentEncodingKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(wire::percent_encode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(wire::percent_encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
}

}  // namespace
}  // namespace failover
