// Streaming through the real curl engine against loopback SSE servers.

#include "fake_transport.hpp"
#include "loopback.hpp"
#include "test_helpers.hpp"

#include <failover/failover.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace failover {
namespace {

using testing::outcomes;
using testing::ping;
using testing::Strings;

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::LoopbackServer;
using testing::StreamEnd;

ClientOptions routes(const std::vector<const LoopbackServer*>& servers) {
  ClientOptions o;
  Tier tier;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    std::string name = std::string(1, static_cast<char>('a' + i));
    o.endpoints.push_back({name, servers[i]->base_url(), "sk-" + name});
    tier.routes.push_back({name, "m"});
  }
  o.priority = {tier};
  return o;
}

struct Collector {
  std::mutex mutex;
  Strings pieces;
  StreamHandler handler() {
    return [this](const ChatChunk& c) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!c.content().empty()) pieces.push_back(c.content());
      return true;
    };
  }
};

struct SseServer : LoopbackServer {
  SseServer(Strings pieces, StreamEnd end, milliseconds gap = milliseconds(5),
            milliseconds stall = milliseconds(3000)) {
    on_chat([=](const httplib::Request&, httplib::Response& res) {
      testing::stream_sse(res, pieces, gap, end, stall);
    });
    start();
  }
};

TEST(CurlStream, NormalStreamArrivesInPieces) {
  SseServer server({"Hel", "lo", ", world"}, StreamEnd::Done);
  Client client(routes({&server}));
  Collector c;
  auto r = client.chat_stream(ping(), c.handler());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(c.pieces, (Strings{"Hel", "lo", ", world"}));
  EXPECT_EQ(r->text(), "Hello, world");
  EXPECT_EQ(r->finish_reason(), "stop");
  EXPECT_EQ(server.header_values("Accept"), (Strings{"application/json"}));
}

// A whole answer (finish_reason, no usage), then the connection breaks or lingers: served once,
// never restarted, and charged an estimate although no usage came.
struct FinishedThenServer : LoopbackServer {
  explicit FinishedThenServer(bool cut) {
    on_chat([cut](const httplib::Request&, httplib::Response& res) {
      res.set_chunked_content_provider(
          "text/event-stream", [cut](std::size_t, httplib::DataSink& sink) {
            const std::string events =
                testing::sse_role() + testing::sse_content("Hel") + testing::sse_content("lo") +
                R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
                "\n\n";
            sink.write(events.data(), events.size());
            if (cut) return false;  // dropped without [DONE] or a last chunk
            for (int i = 0; i < 300 && sink.is_writable(); ++i) {  // lingers up to 3 s
              std::this_thread::sleep_for(milliseconds(10));
            }
            return false;
          });
    });
    start();
  }
};

TEST(CurlStream, AFinishedAnswerWhoseConnectionBreaksOrLingersIsServedAndCharged) {
  for (bool cut : {true, false}) {
    FinishedThenServer server(cut);
    ClientOptions o = routes({&server});
    o.stream_recovery = StreamRecovery::Restart;
    o.timeouts.idle = seconds(30);
    o.prices["m"] = ModelPrice{1000.0, std::nullopt, 1000.0};
    Client client(o);
    Collector c;
    auto r = client.chat_stream(ping(), c.handler());
    ASSERT_TRUE(r) << (cut ? "cut: " : "lingering: ") << r.error().message();
    EXPECT_EQ(r->text(), "Hello");
    EXPECT_EQ(c.pieces, (Strings{"Hel", "lo"}));
    EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
    EXPECT_EQ(server.requests(), 1);
    // ping: 1 prompt token; "Hello": 2 completion tokens; $1000 per million each.
    EXPECT_NEAR(client.usage_report().cost_usd, 3 * 1000.0 / 1e6, 1e-12);
  }
}

TEST(CurlStream, SequentialStreamsReuseOneConnection) {
  SseServer server({"x"}, StreamEnd::Done, milliseconds(0));
  Client client(routes({&server}));
  for (int i = 0; i < 10; ++i) {
    Collector c;
    ASSERT_TRUE(client.chat_stream(ping(), c.handler()));
  }
  EXPECT_EQ(server.requests(), 10);
  EXPECT_EQ(server.connections(), 1u);
}

TEST(CurlStream, ServiceUnavailableBeforeTheFirstByteFailsOver) {
  LoopbackServer down;
  down.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_content(R"({"error":{"message":"down"}})", "application/json");
  });
  down.start();
  SseServer up({"from b"}, StreamEnd::Done);
  Client client(routes({&down, &up}));
  Collector c;
  auto r = client.chat_stream(ping(), c.handler());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(c.pieces, (Strings{"from b"}));
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:overloaded", "b:success"}));
}

TEST(CurlStream, FirstTokenTimeoutFailsOver) {
  SseServer silent({}, StreamEnd::Stall, milliseconds(0), milliseconds(3000));  // role only
  SseServer up({"b"}, StreamEnd::Done);
  ClientOptions o = routes({&silent, &up});
  o.timeouts.first_byte = milliseconds(1000);  // ample for the healthy one even under TSan
  Client client(o);
  Collector c;
  auto r = client.chat_stream(ping(), c.handler());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
  EXPECT_EQ(c.pieces, (Strings{"b"}));
}

TEST(CurlStream, CutAfterThreeChunksKeepsExactlyThoseChunks) {
  SseServer cut({"one ", "two ", "three"}, StreamEnd::Cut);
  SseServer other({"never"}, StreamEnd::Done);
  Client client(routes({&cut, &other}));
  Collector c;
  auto r = client.chat_stream(ping(), c.handler());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  ASSERT_NE(r.error().partial(), nullptr);
  EXPECT_EQ(r.error().partial()->text(), "one two three");
  EXPECT_EQ(c.pieces, (Strings{"one ", "two ", "three"}));
  EXPECT_EQ(other.requests(), 0);
}

TEST(CurlStream, ACutOrAStallAfterContentRestartsOnTheNextRoute) {
  SseServer cut({"one ", "two "}, StreamEnd::Cut);
  SseServer stall({"one "}, StreamEnd::Stall, milliseconds(5), milliseconds(3000));
  SseServer whole({"one ", "two ", "three"}, StreamEnd::Done);
  for (const LoopbackServer* broken :
       {static_cast<const LoopbackServer*>(&cut), static_cast<const LoopbackServer*>(&stall)}) {
    ClientOptions o = routes({broken, &whole});
    o.timeouts.idle = milliseconds(400);
    o.stream_recovery = StreamRecovery::Restart;
    Client client(o);
    Collector c;
    int notices = 0;
    auto r = client.chat_stream(ping(), [&](const ChatChunk& chunk) {
      if (chunk.restart) ++notices;
      return c.handler()(chunk);
    });
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(notices, 1);
    EXPECT_EQ(r->text(), "one two three");
    EXPECT_EQ(r->served_by.endpoint, "b");
    EXPECT_EQ(outcomes(r->attempts), (Strings{"a:stream_interrupted", "b:success"}));
  }
  EXPECT_EQ(whole.requests(), 2);
}

TEST(CurlStream, TwoChunksAndACloseWithoutDoneIsInterrupted) {
  SseServer closing({"Hel", "lo"}, StreamEnd::Close);
  Client client(routes({&closing}));
  Collector c;
  auto r = client.chat_stream(ping(), c.handler());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().partial()->text(), "Hello");
}

TEST(CurlStream, StallAfterTheFirstChunkTripsTheIdleWatchdog) {
  SseServer stall({"first"}, StreamEnd::Stall, milliseconds(5), milliseconds(3000));
  ClientOptions o = routes({&stall});
  o.timeouts.idle = milliseconds(400);
  Client client(o);
  Collector c;
  auto start = std::chrono::steady_clock::now();
  auto r = client.chat_stream(ping(), c.handler());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::StreamInterrupted);
  EXPECT_EQ(r.error().partial()->text(), "first");
  EXPECT_NE(r.error().message().find("idle timeout of 400 ms"), std::string::npos);
  // A hang guard (the stall lasts 3 s); the exact watchdog time is pinned by the unit tests.
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2500));
}

TEST(CurlStream, HandlerReturningFalseCancelsAndClosesTheConnection) {
  SseServer server({"a", "b", "c", "d"}, StreamEnd::Done, milliseconds(20));
  Client client(routes({&server}));
  auto r = client.chat_stream(ping(), [](const ChatChunk& c) { return c.content() != "b"; });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  EXPECT_EQ(r.error().partial()->text(), "ab");
  // The abandoned connection is not reused: the next call opens a new one.
  Collector c;
  ASSERT_TRUE(client.chat_stream(ping(), c.handler()));
  EXPECT_EQ(server.connections(), 2u);
}

TEST(CurlStream, TwoHundredConcurrentStreamsOnOneClient) {
  SseServer server({"a", "b", "c"}, StreamEnd::Done, milliseconds(10));
  Client client(routes({&server}));
  std::atomic<int> pieces{0};
  std::vector<std::future<Result<ChatResponse>>> futures;
  for (int i = 0; i < 200; ++i) {
    futures.push_back(client.chat_stream_async(ping(), [&](const ChatChunk& c) {
      if (!c.content().empty()) ++pieces;
      return true;
    }));
  }
  int ok = 0;
  for (auto& f : futures) {
    auto r = f.get();
    ok += r && r->text() == "abc" ? 1 : 0;
  }
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(pieces.load(), 600);
}

// ---- Liveness on every call: a chat() call is streamed on the wire -------------------------

TEST(CurlLiveness, ARouteThatAcceptsAndNeverAnswersIsLeftAtTheHeadersLimit) {
  testing::SilentServer silent(testing::SilentServer::Mode::AcceptAndHold);
  SseServer up({"served"}, StreamEnd::Done);
  ClientOptions o;
  o.endpoints = {{"a", silent.base_url(), "sk-a"}, {"b", up.base_url(), "sk-b"}};
  o.priority = {Tier{{{"a", "m"}, {"b", "m"}}}};
  o.timeouts.headers = milliseconds(500 * testing::kTimeScale);
  Client client(o);
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "stream" : "chat");
    Collector c;
    auto r = stream ? client.chat_stream(ping(), c.handler()) : client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->text(), "served");
    EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
    EXPECT_EQ(r->attempts[0].message.find("no response headers within "), 0u)
        << r->attempts[0].message;
  }
  EXPECT_EQ(silent.accepted(), 2);  // one request a call
}

TEST(CurlLiveness, HeadersThenSilenceIsCutAtTheFirstTokenLimitForAWholeAnswerToo) {
  // The role chunk leaves with the headers at once; the limit leaves room for a busy machine to
  // deliver them, since the message tells which limit cut the attempt.
  SseServer stalled({}, StreamEnd::Stall, milliseconds(0), milliseconds(8000));  // role only
  SseServer up({"b"}, StreamEnd::Done);
  ClientOptions o = routes({&stalled, &up});
  o.timeouts.first_byte = milliseconds(2500);
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "b");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:timeout", "b:success"}));
  EXPECT_EQ(r->attempts[0].message, "no content within the first-token timeout of 2500 ms");
}

TEST(CurlLiveness, KeepAlivesBeforeTheContentKeepAWholeAnswerAlive) {
  std::vector<std::string> events;
  for (int i = 0; i < 6; ++i) events.push_back(": keep-alive\n\n");
  events.push_back(testing::sse_data(
      R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"late"},"finish_reason":"stop"}]})"));
  events.push_back(testing::sse_data("[DONE]"));
  testing::ReplayServer slow(testing::recorded_sse(events, milliseconds(250)));
  ClientOptions o = routes({&slow});
  o.timeouts.headers = milliseconds(500 * testing::kTimeScale);  // its headers came at once
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "late");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"a:success"}));
  EXPECT_GE(r->attempts[0].latency, Duration(milliseconds(1500)));
}

TEST(CurlLiveness, AWholeAnswerThatBreaksMidwayIsRecoveredByTheNextRoute) {
  SseServer breaking({"The", " quick"}, StreamEnd::Cut);
  SseServer up({"Hello"}, StreamEnd::Done);
  Client client(routes({&breaking, &up}));
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "Hello");
  ASSERT_EQ(r->attempts.size(), 2u);
  EXPECT_EQ(r->attempts[0].route.endpoint, "a");
  EXPECT_EQ(r->served_by.endpoint, "b");
}

}  // namespace
}  // namespace failover
