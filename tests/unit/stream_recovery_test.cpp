// Stream recovery after the first content (StreamRecovery): restart, continue and fail, for a
// cut, a stall and an error event, on a fake transport and a manual clock.

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::outcomes;
using testing::ping;
using testing::Reply;
using testing::Strings;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";
const Strings kWhole = {"one ", "two ", "three ", "four ", "five"};

std::string joined(const Strings& pieces, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n && i < pieces.size(); ++i) out += pieces[i];
  return out;
}

struct RecoveryTest : testing::FakeClientTest {
  Strings seen;  // what the handler received: content pieces, and "<restart>" for a notice

  ClientOptions options(StreamRecovery mode, Continuation b_continues = Continuation::None) {
    Endpoint b{"b", kB, "sk-b"};
    b.continuation = b_continues;
    ClientOptions o =
        fake_options({{"a", kA, "sk-a"}, std::move(b)}, {Tier{{{"a", "m"}, {"b", "m"}}}});
    o.timeouts.first_byte = seconds(2);
    o.timeouts.idle = seconds(3);
    o.stream_recovery = mode;
    return o;
  }
  // At most two attempts in all: the retry policy's own limit holds across a recovery.
  ClientOptions two_attempts(StreamRecovery mode) {
    ClientOptions o = options(mode);
    RetryOptions r;
    r.max_attempts = 2;
    o.retry = std::make_shared<DefaultRetryPolicy>(r);
    return o;
  }
  StreamHandler collect() {
    return [this](const ChatChunk& c) {
      if (c.restart) {
        EXPECT_TRUE(c.choices.empty());
        seen.push_back("<restart>");
      } else if (!c.content().empty()) {
        seen.push_back(c.content());
      }
      return true;
    };
  }
  // The first `n` pieces of the whole answer, then the connection is cut.
  static Reply cut_after(std::size_t n) {
    return testing::sse(Strings(kWhole.begin(), kWhole.begin() + static_cast<long>(n)),
                        milliseconds(10), /*done=*/false);
  }
  // Every request b received carried the partial answer as an assistant prefix.
  bool prefixed(const HttpRequest& r, const std::string& prefix) const {
    return r.body.find(R"({"role":"assistant","content":")" + prefix + "\"}") != std::string::npos;
  }
  std::string metric(const Client& client, const std::string& mode, const std::string& outcome) {
    const std::string text = client.metrics_text();
    const std::string key =
        "failover_stream_recoveries_total{mode=\"" + mode + "\",outcome=\"" + outcome + "\"} ";
    auto at = text.find(key);
    if (at == std::string::npos) return "missing";
    return text.substr(at + key.size(), text.find('\n', at) - at - key.size());
  }
};

// A cut after each chunk boundary: the handler sees the partial, one notice, then b's whole
// answer; the response is b's answer alone.
TEST_F(RecoveryTest, RestartAfterACutAtEveryChunkBoundary) {
  for (std::size_t n = 1; n < kWhole.size(); ++n) {
    SCOPED_TRACE("cut after " + std::to_string(n) + " pieces");
    seen.clear();
    fake = std::make_shared<testing::FakeTransport>(clock);
    fake->sequence(testing::chat_url(kA), {cut_after(n)});
    fake->sequence(testing::chat_url(kB), {testing::sse(kWhole)});
    Client client(options(StreamRecovery::Restart));
    auto r = client.chat_stream(ping(), collect());
    ASSERT_TRUE(r) << r.error().message();
    Strings expected(kWhole.begin(), kWhole.begin() + static_cast<long>(n));
    expected.push_back("<restart>");
    expected.insert(expected.end(), kWhole.begin(), kWhole.end());
    EXPECT_EQ(seen, expected);
    EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
    EXPECT_EQ(r->served_by.endpoint, "b");
    EXPECT_EQ(outcomes(r->attempts), (Strings{"a:stream_interrupted", "b:success"}));
    const Attempt& broken = r->attempts[0];
    EXPECT_EQ(broken.message, "connection_lost: connection cut by the script");
    EXPECT_EQ(broken.delivered_chunks, static_cast<int>(n) + 1);  // the role chunk and n pieces
    EXPECT_EQ(broken.delivered_chars, joined(kWhole, n).size());
    EXPECT_EQ(broken.recovery, "");
    EXPECT_EQ(r->attempts[1].recovery, "restart");
    EXPECT_FALSE(prefixed(fake->seen()[1].request, joined(kWhole, n)));
    EXPECT_EQ(metric(client, "restart", "served"), "1");
    EXPECT_EQ(metric(client, "restart", "failed"), "0");
  }
}

TEST_F(RecoveryTest, RestartAfterAStallPastTheIdleLimit) {
  Reply stall = testing::sse({"one ", "two "});
  stall.parts.resize(3);  // role, two pieces, then silence with the connection open
  stall.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {stall});
  fake->sequence(testing::chat_url(kB), {testing::sse(kWhole)});
  Client client(options(StreamRecovery::Restart));
  const TimePoint start = clock->now();
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:stream_interrupted", "b:success"}));
  EXPECT_EQ(r->attempts[0].message, "timeout: no stream chunk within the idle timeout of 3000 ms");
  // The last piece came 30 ms in; the idle limit fired 3 s later; b streamed 7 parts, 10 ms
  // apart.
  EXPECT_EQ(r->attempts[0].latency, Duration(milliseconds(30) + seconds(3)));
  EXPECT_EQ(clock->now() - start, Duration(milliseconds(30) + seconds(3) + milliseconds(70)));
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "<restart>"), 1);
}

TEST_F(RecoveryTest, RestartAfterAnErrorEventMidStream) {
  Reply r = testing::sse({"one "});
  r.parts.resize(2);
  r.parts.emplace_back(milliseconds(5),
                       "data: {\"error\":{\"message\":\"upstream died\",\"type\":\"server_error\"}}"
                       "\n\n");
  r.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {r});
  fake->sequence(testing::chat_url(kB), {testing::sse(kWhole)});
  Client client(options(StreamRecovery::Restart));
  auto result = client.chat_stream(ping(), collect());
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_EQ(result->text(), joined(kWhole, kWhole.size()));
  EXPECT_EQ(outcomes(result->attempts), (Strings{"a:stream_interrupted", "b:success"}));
  EXPECT_EQ(result->attempts[0].message, "server_error: error event in the stream: upstream died");
}

TEST_F(RecoveryTest, ContinueSendsThePartialAsAPrefixAtEveryChunkBoundary) {
  for (std::size_t n = 1; n < kWhole.size(); ++n) {
    SCOPED_TRACE("cut after " + std::to_string(n) + " pieces");
    seen.clear();
    fake = std::make_shared<testing::FakeTransport>(clock);
    fake->sequence(testing::chat_url(kA), {cut_after(n)});
    // b continues the prefix: only what follows it.
    fake->sequence(testing::chat_url(kB),
                   {testing::sse(Strings(kWhole.begin() + static_cast<long>(n), kWhole.end()))});
    Client client(options(StreamRecovery::Continue, Continuation::Prefill));
    auto r = client.chat_stream(ping(), collect());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(seen, kWhole);  // no notice, nothing twice, nothing lost at the seam
    EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
    EXPECT_EQ(r->finish_reason(), "stop");
    EXPECT_EQ(outcomes(r->attempts), (Strings{"a:stream_interrupted", "b:success"}));
    EXPECT_EQ(r->attempts[1].recovery, "continue");
    ASSERT_EQ(fake->seen().size(), 2u);
    EXPECT_TRUE(prefixed(fake->seen()[1].request, joined(kWhole, n)));
    EXPECT_NE(r->raw_json.find(joined(kWhole, kWhole.size())), std::string::npos);
    EXPECT_EQ(metric(client, "continue", "served"), "1");
  }
}

TEST_F(RecoveryTest, ContinueRestartsWhereThePrefixIsRefused) {
  fake->sequence(testing::chat_url(kA), {cut_after(2)});
  fake->on(testing::chat_url(kB), [&](const HttpRequest& request) {
    if (prefixed(request, "one two ")) {
      Reply refused = testing::status(400);
      refused.body =
          R"({"error":{"message":"final assistant content cannot end with trailing whitespace","type":"invalid_request_error"}})";
      return refused;
    }
    return testing::sse(kWhole);
  });
  Client client(options(StreamRecovery::Continue, Continuation::Prefill));
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
  Strings expected = {"one ", "two ", "<restart>"};
  expected.insert(expected.end(), kWhole.begin(), kWhole.end());
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(outcomes(r->attempts),
            (Strings{"a:stream_interrupted", "b:invalid_request", "b:success"}));
  EXPECT_EQ(r->attempts[0].message, "connection_lost: connection cut by the script");
  EXPECT_EQ(r->attempts[1].recovery, "continue");
  EXPECT_NE(r->attempts[1].message.find("refused as a prefix: restarting"), std::string::npos);
  EXPECT_EQ(r->attempts[2].recovery, "restart");
  EXPECT_FALSE(prefixed(fake->seen()[2].request, "one two "));
  EXPECT_EQ(metric(client, "restart", "served"), "1");
}

TEST_F(RecoveryTest, ARefusedPrefixRestartsOnlyWithinMaxAttempts) {
  fake->sequence(testing::chat_url(kA), {cut_after(2)});
  fake->on(testing::chat_url(kB), [&](const HttpRequest& request) {
    if (prefixed(request, "one two ")) return testing::status(400);
    return testing::sse(kWhole);
  });
  ClientOptions o = two_attempts(StreamRecovery::Continue);
  o.endpoints[1].continuation = Continuation::Prefill;
  Client client(o);
  auto r = client.chat_stream(ping(), collect());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(fake->seen().size(), 2u);  // interrupted, refused: the two attempts are spent
}

TEST_F(RecoveryTest, ContinueRestartsOnARouteThatCannotContinue) {
  fake->sequence(testing::chat_url(kA), {cut_after(2)});
  fake->sequence(testing::chat_url(kB), {testing::sse(kWhole)});
  Client client(options(StreamRecovery::Continue, Continuation::None));
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "<restart>"), 1);
  EXPECT_EQ(r->attempts[1].recovery, "restart");
  EXPECT_FALSE(prefixed(fake->seen()[1].request, "one two "));
}

TEST_F(RecoveryTest, ContinueRestartsAPartialWithToolCalls) {
  Reply tool;
  tool.parts = {
      {milliseconds(10), testing::sse_role()},
      {milliseconds(10), R"(data: {"choices":[{"index":0,"delta":{"content":"Let me look."}}]})"
                         "\n\n"},
      {milliseconds(10),
       R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"search","arguments":"{\"q\""}}]}}]})"
       "\n\n"}};
  tool.end = Reply::End::Cut;
  fake->sequence(testing::chat_url(kA), {tool});
  fake->sequence(testing::chat_url(kB), {testing::sse(kWhole)});
  Client client(options(StreamRecovery::Continue, Continuation::Prefill));
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->attempts[1].recovery, "restart");  // half a tool call cannot be continued
  EXPECT_FALSE(prefixed(fake->seen()[1].request, "Let me look."));
  EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
}

TEST_F(RecoveryTest, AContinuationThatBreaksAgainContinuesFromTheLongerPrefix) {
  const Endpoint c{"c", "http://c.test/v1", "sk-c"};
  fake->sequence(testing::chat_url(kA), {cut_after(1)});
  fake->sequence(testing::chat_url(kB), {testing::sse({"two ", "three "}, milliseconds(10),
                                                      /*done=*/false)});
  fake->sequence(testing::chat_url(c.base_url), {testing::sse({"four ", "five"})});
  ClientOptions o = options(StreamRecovery::Continue, Continuation::Prefill);
  o.endpoints.push_back(c);
  o.endpoints.back().continuation = Continuation::Prefill;
  o.priority[0].routes.push_back({"c", "m"});
  Client client(o);
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(seen, kWhole);
  EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
  EXPECT_EQ(outcomes(r->attempts),
            (Strings{"a:stream_interrupted", "b:stream_interrupted", "c:success"}));
  EXPECT_EQ(r->attempts[1].recovery, "continue");
  EXPECT_EQ(r->attempts[1].delivered_chars, std::string("two three ").size());
  EXPECT_TRUE(prefixed(fake->seen()[2].request, "one two three "));
}

TEST_F(RecoveryTest, WhenNoRecoveryServesTheCallReportsTheOriginalBreak) {
  fake->sequence(testing::chat_url(kA), {cut_after(2)});
  fake->sequence(testing::chat_url(kB), {testing::status(503)});
  Client client(two_attempts(StreamRecovery::Restart));
  auto r = client.chat_stream(ping(), collect());
  ASSERT_FALSE(r);
  const Error& e = r.error();
  EXPECT_EQ(e.kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(e.http_status(), 200);
  EXPECT_EQ(e.message().rfind("a/m: the stream broke after content was delivered "
                              "(connection_lost: connection cut by the script); recovering by "
                              "restart did not succeed: all routes failed",
                              0),
            0u)
      << e.message();
  ASSERT_NE(e.partial(), nullptr);
  EXPECT_EQ(e.partial()->text(), "one two ");  // what the handler still shows
  EXPECT_EQ(e.partial()->served_by.endpoint, "a");
  EXPECT_EQ(seen, (Strings{"one ", "two "}));  // no notice: nothing replaced it
  EXPECT_EQ(outcomes(e.attempts()), (Strings{"a:stream_interrupted", "b:overloaded"}));
  EXPECT_EQ(metric(client, "restart", "failed"), "1");
}

TEST_F(RecoveryTest, ARestartThatBreaksTooReportsWhatTheHandlerShowsLast) {
  fake->sequence(testing::chat_url(kA), {cut_after(2)});
  fake->sequence(testing::chat_url(kB), {cut_after(1)});
  Client client(two_attempts(StreamRecovery::Restart));
  auto r = client.chat_stream(ping(), collect());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().partial()->text(), "one ");
  EXPECT_EQ(r.error().partial()->served_by.endpoint, "b");
  EXPECT_EQ(seen, (Strings{"one ", "two ", "<restart>", "one "}));
  EXPECT_EQ(outcomes(r.error().attempts()),
            (Strings{"a:stream_interrupted", "b:stream_interrupted"}));
  EXPECT_NE(r.error().message().find("b/m: the stream broke"), std::string::npos);
}

TEST_F(RecoveryTest, OneRouteRestartsOnItselfAfterTheRetryDelay) {
  fake->sequence(testing::chat_url(kA), {cut_after(2), testing::sse(kWhole)});
  ClientOptions o = options(StreamRecovery::Restart);
  o.priority = {Tier{{{"a", "m"}}}};
  Client client(o);
  auto r = client.chat_stream(ping(), collect());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:stream_interrupted", "a:success"}));
  EXPECT_GT(r->attempts[0].delay, Duration::zero());  // the retry policy's backoff
  EXPECT_EQ(r->text(), joined(kWhole, kWhole.size()));
}

TEST_F(RecoveryTest, FailModeEndsAsItAlwaysDidAndPerCallOptionsWin) {
  fake->sequence(testing::chat_url(kA), {cut_after(2)});
  fake->sequence(testing::chat_url(kB), {testing::sse(kWhole)});
  Client client(options(StreamRecovery::Restart));
  CallOptions call;
  call.stream_recovery = StreamRecovery::Fail;
  auto r = client.chat_stream(ping(), collect(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().message(),
            "a/m: the stream broke after content was delivered (connection_lost: connection cut "
            "by the script)");
  EXPECT_EQ(r.error().partial()->text(), "one two ");
  EXPECT_EQ(fake->count(testing::chat_url(kB)), 0);
  EXPECT_EQ(r.error().attempts()[0].delivered_chunks, 3);
  EXPECT_EQ(metric(client, "restart", "served"), "0");
  EXPECT_EQ(metric(client, "restart", "failed"), "0");
}

TEST_F(RecoveryTest, ABrokenAttemptsTokensAreCharged) {
  fake->sequence(testing::chat_url(kA), {cut_after(2)});  // 8 characters, no usage reported
  fake->sequence(testing::chat_url(kB), {testing::sse(kWhole)});
  ClientOptions o = options(StreamRecovery::Restart);
  o.prices["m"].input_per_mtok = 1000.0;  // dollars per million tokens
  o.prices["m"].output_per_mtok = 2000.0;
  Client client(o);
  ASSERT_TRUE(client.chat_stream(ping(), collect()));
  const UsageReport report = client.usage_report();
  ASSERT_EQ(report.routes[0].route.endpoint, "a");
  // "ping" is one token by the estimate; "one two " two.
  EXPECT_EQ(report.routes[0].prompt_tokens, 1);
  EXPECT_EQ(report.routes[0].completion_tokens, 2);
  EXPECT_DOUBLE_EQ(report.routes[0].cost_usd, 0.001 + 0.004);
  EXPECT_EQ(report.routes[0].failures, 1u);
}

TEST_F(RecoveryTest, TheDeadlineEndsARecoveryWithTheOriginalBreak) {
  Reply stall = testing::sse({"one "});
  stall.parts.resize(2);
  stall.end = Reply::End::Hang;
  fake->sequence(testing::chat_url(kA), {stall});
  Reply slow = testing::sse(kWhole, seconds(1));  // b would need 7 s
  fake->sequence(testing::chat_url(kB), {slow});
  Client client(options(StreamRecovery::Restart));
  CallOptions call;
  call.timeout = seconds(5);
  auto r = client.chat_stream(ping(), collect(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().partial()->text(), "one ");
  EXPECT_EQ(r.error().partial()->served_by.endpoint, "a");
  EXPECT_NE(r.error().message().find("a/m: the stream broke"), std::string::npos);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "<restart>"), 0);  // b never committed
}

}  // namespace
}  // namespace failover
