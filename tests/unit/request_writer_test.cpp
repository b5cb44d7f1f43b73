// Request writing for one call, on its own: the body encoded once and given each route's model,
// streamed or whole, shaped per route; bodies translated once per dialect; the bodies of a
// continuation; and the HTTP request of one attempt.

#include "core/request_writer.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>

namespace failover {
namespace {

using detail::RequestWriter;
using json = nlohmann::json;
using std::chrono::seconds;

struct RequestWriterTest : testing::FakeClientTest {
  std::shared_ptr<detail::ClientCore> core;
  std::map<std::string, std::string> call_headers{{"X-Call", "1"}};
  std::string ca;

  void SetUp() override {
    Endpoint anthropic{"claude", "http://c.test/v1", "sk-c"};
    anthropic.dialect = Dialect::Anthropic;
    core = std::make_shared<detail::ClientCore>(fake_options(
        {{"a", "http://a.test/v1", "sk-a"}, anthropic},
        {Tier{{Route{"a", "gpt-4.1", 1, {}, R"({"temperature":0})"}, Route{"claude", "c-1"}}}}));
  }
  void TearDown() override { core->shutdown(); }

  static ChatRequest request() {
    ChatRequest r;
    r.messages = {Message::user("hi")};
    r.max_tokens = 5;
    return r;
  }
  RequestWriter::Attempt attempt(std::size_t plan_entry, bool streamed) {
    const detail::PlanEntry& entry = core->plan()[plan_entry];
    const detail::RouteState& route = *core->routes()[entry.route];
    RequestWriter::Attempt a;
    a.route = &route;
    a.endpoint = &core->endpoints()[route.endpoint];
    a.shaping = entry.shaping.get();
    a.call_headers = &call_headers;
    a.streamed = streamed;
    a.number = 3;
    a.total = seconds(30);
    a.connect = seconds(5);
    a.headers = seconds(20);
    a.max_response_bytes = 1000;
    a.ca_bundle = &ca;
    return a;
  }
  static std::string header(const HttpRequest& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "(none)";
  }
};

TEST_F(RequestWriterTest, EachAttemptGetsItsRoutesModelShapingAndLimits) {
  RequestWriter w;
  ASSERT_FALSE(w.encode(request(), /*usage=*/true));
  const HttpRequest& streamed = w.write(attempt(0, true));
  EXPECT_EQ(streamed.url, "http://a.test/v1/chat/completions");
  json body = json::parse(streamed.body);
  EXPECT_EQ(body["model"], "gpt-4.1");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["temperature"], 0);  // the route's params
  EXPECT_EQ(header(streamed, "Authorization"), "Bearer sk-a");
  EXPECT_EQ(header(streamed, "X-Call"), "1");
  EXPECT_EQ(header(streamed, "X-Failover-Attempt"), "3");
  EXPECT_TRUE(streamed.stream);
  EXPECT_EQ(streamed.first_byte_timeout, seconds(20));
  EXPECT_EQ(streamed.total_timeout, seconds(30));
  EXPECT_EQ(streamed.connect_timeout, seconds(5));
  EXPECT_EQ(streamed.max_response_bytes, 1000u);

  const HttpRequest& whole = w.write(attempt(0, false));
  body = json::parse(whole.body);
  EXPECT_FALSE(body.contains("stream"));
  EXPECT_FALSE(body.contains("stream_options"));
  EXPECT_EQ(body["max_tokens"], 5);
  EXPECT_FALSE(whole.stream);
  EXPECT_EQ(whole.first_byte_timeout, Duration::zero());  // a whole answer shows no life
}

TEST_F(RequestWriterTest, AnInvalidRequestIsRefusedNamingTheField) {
  RequestWriter w;
  ChatRequest r = request();
  r.messages[0].role = "robot";
  std::optional<std::string> problem = w.encode(r, false);
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("messages[0].role"), std::string::npos) << *problem;
}

TEST_F(RequestWriterTest, ATranslatedBodyIsMadeOncePerDialectShapingAndStream) {
  RequestWriter w;
  ASSERT_FALSE(w.encode(request(), false));
  const wire::DialectApi& anthropic = wire::api_of(Dialect::Anthropic);
  const int streamed = w.translate(request(), anthropic, nullptr, true);
  EXPECT_EQ(w.translate(request(), anthropic, nullptr, true), streamed);
  const int whole = w.translate(request(), anthropic, nullptr, false);
  EXPECT_NE(whole, streamed);
  EXPECT_FALSE(w.problem(streamed));
  RequestWriter::Attempt a = attempt(1, true);
  a.body = streamed;
  const HttpRequest& r = w.write(a);
  EXPECT_EQ(r.url, "http://c.test/v1/messages");
  EXPECT_EQ(header(r, "x-api-key"), "sk-c");
  json body = json::parse(r.body);
  EXPECT_EQ(body["model"], "c-1");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["max_tokens"], 5);
  // One call's request: a writer of another call says what cannot be translated.
  RequestWriter other;
  ChatRequest seeded = request();
  seeded.seed = 7;  // Anthropic has no equivalent
  const int refused = other.translate(seeded, anthropic, nullptr, true);
  ASSERT_TRUE(other.problem(refused));
  EXPECT_NE(other.problem(refused)->find("seed"), std::string::npos);
}

TEST_F(RequestWriterTest, AContinuationSendsThePrefixAsTheLastAssistantTurn) {
  RequestWriter w;
  ASSERT_FALSE(w.encode(request(), false));
  ChatRequest with_prefix = request();
  with_prefix.messages.push_back(Message::assistant("The quick "));
  ASSERT_TRUE(w.continue_with(with_prefix));
  RequestWriter::Attempt a = attempt(0, true);
  a.continuation = true;
  json body = json::parse(w.write(a).body);
  EXPECT_EQ(body["messages"].back()["role"], "assistant");
  EXPECT_EQ(body["messages"].back()["content"], "The quick ");

  // Anthropic's prefix goes without its trailing whitespace, which the seam keeps.
  ChatRequest plain = request();
  const int body_index = w.translate(plain, wire::api_of(Dialect::Anthropic), nullptr, true);
  std::optional<std::string> seam = w.continue_translated(body_index, plain, "The quick ");
  ASSERT_TRUE(seam);
  EXPECT_EQ(*seam, " ");
  EXPECT_EQ(plain.messages.size(), 1u);  // the request is given back as it was
  RequestWriter::Attempt b = attempt(1, true);
  b.body = body_index;
  b.continuation = true;
  json native = json::parse(w.write(b).body);
  EXPECT_EQ(native["messages"].back()["role"], "assistant");
  EXPECT_EQ(native["messages"].back()["content"][0]["text"], "The quick");
  // A prefix of only whitespace cannot be sent.
  EXPECT_FALSE(w.continue_translated(body_index, plain, "  \n"));
}

}  // namespace
}  // namespace failover
