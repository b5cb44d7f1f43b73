// Per-route request shaping: params, drop_params and the model rules, on the wire of each
// route of one call (fake transport).

#include "wire/shaping.hpp"
#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace failover {
namespace {

using json = nlohmann::json;
using testing::outcomes;
using testing::Strings;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";

TEST(ModelRules, OpenAIReasoningModelsAreKnownByName) {
  for (const char* yes : {"o1", "o3", "o3-mini", "o4-mini", "o1-2024-12-17", "openai/o3", "gpt-5",
                          "gpt-5-mini", "gpt-5.1", "gpt-5-2025-08-07", "openai/gpt-5"}) {
    EXPECT_TRUE(wire::is_openai_reasoning_model(yes)) << yes;
  }
  for (const char* no : {"gpt-4.1", "gpt-4o", "o", "omni", "o1x", "gpt-50", "gpt-5-chat-latest",
                         "claude-sonnet-4", "deepseek-reasoner", ""}) {
    EXPECT_FALSE(wire::is_openai_reasoning_model(no)) << no;
  }
}

TEST(ModelRules, ParamsThatAreNotAnObjectOrTouchWhatTheSdkWritesAreRefused) {
  auto refused = [](const std::string& params, const std::vector<std::string>& drop) {
    try {
      wire::make_shaping("m", params, drop, true, "priority[0].routes[1]");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(refused("[1]", {}), "priority[0].routes[1].params must be a JSON object");
  EXPECT_EQ(refused("{\"model\": \"x\"}", {}),
            "priority[0].routes[1].params may not set \"model\"");
  EXPECT_EQ(refused("", {"stream"}), "priority[0].routes[1].drop_params may not drop \"stream\"");
  EXPECT_EQ(refused("", {""}), "priority[0].routes[1].drop_params holds an empty name");
  EXPECT_EQ(wire::make_shaping("gpt-4.1", "", {}, true, "r"), nullptr);  // nothing to do
}

struct ShapingTest : testing::FakeClientTest {
  // The body each endpoint received last.
  json body_of(const std::string& base) {
    json last;
    for (const testing::Seen& s : fake->seen()) {
      if (s.request.url == testing::chat_url(base)) last = json::parse(s.request.body);
    }
    return last;
  }
  static ChatRequest request() {
    ChatRequest r = testing::ping();
    r.max_tokens = 50;
    r.temperature = 0.2;
    return r;
  }
};

TEST_F(ShapingTest, ARouteDropsAndAddsFieldsTheOtherRouteOfTheCallStillGets) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Route a{"a", "m"};
  a.drop_params = {"max_tokens"};
  a.params = R"({"reasoning_effort": "low", "temperature": null})";
  Client client(fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{a, Route{"b", "m"}}}}));
  auto r = client.chat(request());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
  const json sent_a = body_of(kA);
  EXPECT_FALSE(sent_a.contains("max_tokens")) << sent_a.dump();
  EXPECT_FALSE(sent_a.contains("temperature")) << sent_a.dump();
  EXPECT_EQ(sent_a["reasoning_effort"], "low");
  EXPECT_EQ(sent_a["model"], "m");
  EXPECT_EQ(sent_a["messages"][0]["content"], "ping");
  const json sent_b = body_of(kB);
  EXPECT_EQ(sent_b["max_tokens"], 50);
  EXPECT_EQ(sent_b["temperature"], 0.2);
  EXPECT_FALSE(sent_b.contains("reasoning_effort"));
}

TEST_F(ShapingTest, AReasoningModelGetsMaxCompletionTokensAndNoSamplingFields) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Client client(fake_options({{"a", kA, "sk-a"}}, {Tier{{Route{"a", "o3"}}}}));
  ASSERT_TRUE(client.chat(request()));
  json sent = body_of(kA);
  EXPECT_EQ(sent["max_completion_tokens"], 50);
  EXPECT_FALSE(sent.contains("max_tokens"));
  EXPECT_FALSE(sent.contains("temperature"));
  EXPECT_EQ(sent["model"], "o3");
}

TEST_F(ShapingTest, TheModelRulesCanBeOverriddenOrTurnedOff) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  Route kept{"a", "o3"};
  kept.params = R"({"temperature": 1})";  // sent anyway: params come last
  Client with_param(fake_options({{"a", kA, "sk-a"}}, {Tier{{kept}}}));
  ASSERT_TRUE(with_param.chat(request()));
  json sent = body_of(kA);
  EXPECT_EQ(sent["temperature"], 1);
  EXPECT_EQ(sent["max_completion_tokens"], 50);

  Route off{"a", "o3"};
  off.model_rules = false;
  Client without_rules(fake_options({{"a", kA, "sk-a"}}, {Tier{{off}}}));
  ASSERT_TRUE(without_rules.chat(request()));
  sent = body_of(kA);
  EXPECT_EQ(sent["max_tokens"], 50);
  EXPECT_EQ(sent["temperature"], 0.2);
  EXPECT_FALSE(sent.contains("max_completion_tokens"));
}

TEST_F(ShapingTest, BadParamsFailTheClientNamingTheRoute) {
  Route bad{"a", "m"};
  bad.params = "{not json";
  try {
    Client client(fake_options({{"a", kA, "sk-a"}}, {Tier{{bad}}}));
    ADD_FAILURE() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("priority[0].routes[0].params must be a JSON object"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace failover
