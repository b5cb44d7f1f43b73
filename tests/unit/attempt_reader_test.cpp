// Reading what came back of one attempt, on its own: whole answers and HTTP errors, a stream's
// bytes and end, transport failures (silence, a reused connection that died), a route that
// refuses streams, a watchdog that fired, and a stream call's handler.

#include "core/attempt_reader.hpp"
#include "core/call_env.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace failover {
namespace {

using detail::AttemptEnd;
using detail::AttemptReader;
using detail::AttemptStream;
using detail::Flight;
using detail::HandlerFeed;
using Kind = AttemptEnd::Kind;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct AttemptReaderTest : testing::FakeClientTest {
  std::shared_ptr<detail::ClientCore> core;
  std::vector<std::string> shown;
  HandlerFeed none{nullptr};
  HandlerFeed handler{[this](const ChatChunk& c) {
    shown.push_back(c.choices.empty() ? "" : c.choices[0].content);
    return true;
  }};
  TimePoint t0{};

  void SetUp() override {
    core = std::make_shared<detail::ClientCore>(
        fake_options({{"a", "http://a.test/v1", "k"}}, {Tier::of("m", {"a"})}));
    t0 = clock->now();
  }
  void TearDown() override { core->shutdown(); }

  Flight flight(bool streamed, bool whole_answer = true) {
    Flight f;
    f.id = 1;
    f.route = core->routes()[0].get();
    f.start = t0;
    f.limits = detail::attempt_limits(Timeouts{}, seconds(900), Duration::zero(), streamed);
    if (streamed) {
      f.wire = std::make_unique<AttemptStream>(wire::api_of(Dialect::OpenAI), t0, whole_answer);
    }
    return f;
  }
  AttemptReader reader(HandlerFeed& feed) { return AttemptReader(core->call_env(), feed, 1); }
  static HttpResult answer(int status, std::string body) {
    HttpResult r;
    r.id = 1;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  static StreamData bytes(std::string b) {
    StreamData d;
    d.id = 1;
    d.status = 200;
    d.bytes = std::move(b);
    return d;
  }
};

TEST_F(AttemptReaderTest, AWholeAnswerIsServedAndAnHttpErrorFails) {
  AttemptReader r = reader(none);
  Flight f = flight(false);
  HttpResult ok = answer(200, testing::completion_body("hi"));
  AttemptEnd served = r.result(t0, f, ok);
  ASSERT_EQ(served.kind, Kind::Served);
  EXPECT_EQ(served.response.text(), "hi");
  HttpResult busy = answer(503, R"({"error":{"message":"busy","type":"server_error"}})");
  AttemptEnd failed = r.result(t0, f, busy);
  ASSERT_EQ(failed.kind, Kind::Failed);
  EXPECT_EQ(failed.failure.outcome.http_status, 503);
  EXPECT_EQ(failed.failure.provider_type, "server_error");
  EXPECT_FALSE(failed.failure.silent);
  EXPECT_FALSE(failed.abandon);
}

TEST_F(AttemptReaderTest, AStreamIsReadAsItComesAndServedAtItsEnd) {
  AttemptReader r = reader(none);
  Flight f = flight(true);
  EXPECT_EQ(r.data(t0, f,
                   bytes(testing::sse_content("Hel") + testing::sse_content("lo") +
                         testing::sse_finish_and_done()))
                .kind,
            Kind::Open);
  HttpResult end = answer(200, "");
  AttemptEnd e = r.result(t0 + milliseconds(5), f, end);
  ASSERT_EQ(e.kind, Kind::Served);
  EXPECT_EQ(e.response.text(), "Hello");
}

TEST_F(AttemptReaderTest, AnErrorEventFailsTheAttemptAndAbandonsItsExchange) {
  AttemptReader r = reader(none);
  Flight f = flight(true);
  AttemptEnd e =
      r.data(t0, f, bytes("event: error\ndata: {\"error\":{\"message\":\"overloaded\"}}\n\n"));
  ASSERT_EQ(e.kind, Kind::Failed);
  EXPECT_TRUE(e.abandon);
  EXPECT_EQ(e.failure.outcome.http_status, 200);
  EXPECT_NE(e.failure.message.find("error event in the stream"), std::string::npos);
}

TEST_F(AttemptReaderTest, AStreamThatSaidNothingIsSilentAndOneThatSpokeIsNot) {
  AttemptReader r = reader(none);
  Flight quiet = flight(true);
  HttpResult cut;
  cut.id = 1;
  cut.transport_error = ErrorKind::ConnectionLost;
  cut.error_message = "closed";
  AttemptEnd e = r.result(t0 + seconds(3), quiet, cut);
  ASSERT_EQ(e.kind, Kind::Failed);
  EXPECT_TRUE(e.failure.silent);
  Flight spoke = flight(true);
  r.data(t0, spoke, bytes(": keep-alive\n\n"));
  EXPECT_FALSE(r.result(t0 + seconds(3), spoke, cut).failure.silent);
  Flight whole = flight(false);  // an answer sent whole shows nothing before its end
  EXPECT_FALSE(r.result(t0 + seconds(3), whole, cut).failure.silent);
}

TEST_F(AttemptReaderTest, AReusedConnectionThatDiedIsStaleWhenFastAndATimeoutAfterASilence) {
  AttemptReader r = reader(none);
  Flight f = flight(true);
  HttpResult died;
  died.id = 1;
  died.transport_error = ErrorKind::ConnectionLost;
  died.reused_connection_died = true;
  AttemptEnd fast = r.result(t0 + milliseconds(100), f, died);
  EXPECT_TRUE(fast.failure.outcome.stale_connection);
  EXPECT_EQ(fast.failure.outcome.kind, ErrorKind::ConnectionLost);
  AttemptEnd slow = r.result(t0 + seconds(3), f, died);
  EXPECT_FALSE(slow.failure.outcome.stale_connection);
  EXPECT_EQ(slow.failure.outcome.kind, ErrorKind::Timeout);
  EXPECT_EQ(slow.failure.message,
            "the reused connection closed after 3000 ms without a response; the request was not "
            "sent again");
}

TEST_F(AttemptReaderTest, ARouteThatRefusesAStreamIsToldApartFromOtherBadRequests) {
  AttemptReader r = reader(none);
  Flight f = flight(true);
  HttpResult refused = answer(
      400, R"({"error":{"message":"Streaming is not supported","param":"stream","type":"x"}})");
  EXPECT_TRUE(r.result(t0, f, refused).failure.stream_refused);
  HttpResult other =
      answer(400, R"({"error":{"message":"bad temperature","param":"temperature"}})");
  EXPECT_FALSE(r.result(t0, f, other).failure.stream_refused);
}

TEST_F(AttemptReaderTest, AWatchdogSaysWhatTheAttemptWaitedFor) {
  AttemptReader r = reader(none);
  Flight f = flight(true);
  AttemptEnd e = r.expired(t0 + seconds(20), f, t0 + seconds(900));
  ASSERT_EQ(e.kind, Kind::Failed);
  EXPECT_TRUE(e.abandon);
  EXPECT_TRUE(e.failure.silent);
  EXPECT_EQ(e.failure.message, "no content within the first-token timeout of 600000 ms");
  r.data(t0, f, bytes(testing::sse_content("a")));
  EXPECT_EQ(r.expired(t0 + seconds(61), f, t0 + seconds(900)).failure.message,
            "no stream chunk within the idle timeout of 60000 ms");
  Flight whole = flight(false);
  EXPECT_EQ(r.expired(t0 + seconds(601), whole, t0 + seconds(900)).failure.message,
            "the exchange did not end within its time limit");
}

TEST_F(AttemptReaderTest, AfterContentReachedTheHandlerABreakIsAnInterruption) {
  AttemptReader r = reader(handler);
  Flight f = flight(true, /*whole_answer=*/false);
  r.data(t0, f, bytes(testing::sse_role() + testing::sse_content("Once")));
  EXPECT_EQ(shown, (std::vector<std::string>{"", "Once"}));
  HttpResult cut;
  cut.id = 1;
  cut.transport_error = ErrorKind::ConnectionLost;
  cut.error_message = "reset";
  AttemptEnd e = r.result(t0 + seconds(1), f, cut);
  ASSERT_EQ(e.kind, Kind::Interrupted);
  EXPECT_EQ(e.cause, ErrorKind::ConnectionLost);
  EXPECT_EQ(e.failure.message, "reset");
}

TEST_F(AttemptReaderTest, AStreamCallOnARouteThatAnswersWholeGetsTheAnswerAsOneChunk) {
  AttemptReader r = reader(handler);
  Flight f = flight(false);
  HttpResult ok = answer(200, testing::completion_body("whole"));
  AttemptEnd e = r.result(t0, f, ok);
  ASSERT_EQ(e.kind, Kind::Served);
  ASSERT_TRUE(f.wire);  // made for the handler's sake
  EXPECT_EQ(shown, (std::vector<std::string>{"whole"}));
}

}  // namespace
}  // namespace failover
