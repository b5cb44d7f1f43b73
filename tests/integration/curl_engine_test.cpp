// The real curl engine against servers on 127.0.0.1 started by the tests.

#include "loopback.hpp"
#include "test_helpers.hpp"

#include <failover/failover.hpp>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace failover {
namespace {

using testing::outcomes;
using testing::ping;
using testing::Strings;

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::LoopbackServer;
using testing::SilentServer;

void answer(httplib::Response& res, const std::string& text) {
  res.set_content(testing::completion_json(text), "application/json");
}

void answer_error(httplib::Response& res, int status, const std::string& code = "") {
  res.status = status;
  res.set_content(R"({"error":{"message":"loopback )" + std::to_string(status) +
                      R"(","type":"test","code":)" +
                      (code.empty() ? std::string("null") : "\"" + code + "\"") + "}}",
                  "application/json");
}

ClientOptions two(const std::string& first_url, const std::string& second_url) {
  ClientOptions o;
  o.endpoints = {{"first", first_url, "sk-first-secret"},
                 {"second", second_url, "sk-second-secret"}};
  o.priority = {Tier{{{"first", "gpt-4.1"}, {"second", "gpt-4.1"}}}};
  return o;
}

ClientOptions one(const std::string& name, const std::string& url) {
  ClientOptions o;
  o.endpoints = {{name, url, "sk-" + name}};
  o.priority = {Tier{{{name, "m"}}}};
  return o;
}

struct Healthy {
  LoopbackServer server;
  explicit Healthy(const std::string& text = "pong") {
    server.on_chat([text](const httplib::Request&, httplib::Response& res) { answer(res, text); });
    server.start();
  }
};

TEST(CurlEngine, HealthyRouteAnswers) {
  Healthy healthy;
  ClientOptions o;
  o.endpoints = {{"only", healthy.server.base_url(), "sk-only"}};
  o.priority = {Tier{{{"only", "gpt-4.1"}}}};
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "pong");
  EXPECT_EQ(r->served_by.endpoint, "only");
  EXPECT_EQ(outcomes(r->attempts), (Strings{"only:success"}));
  EXPECT_GT(r->attempts[0].latency, Duration::zero());
  EXPECT_EQ(healthy.server.header_values("Authorization"), (Strings{"Bearer sk-only"}));
  EXPECT_EQ(healthy.server.header_values("Content-Type"), (Strings{"application/json"}));
  EXPECT_EQ(healthy.server.header_values("X-Failover-Attempt"), (Strings{"1"}));
}

// A session keeps the URLs it has parsed (up to 64) and hands the rest to curl as text on
// every exchange: 80 distinct URLs, each used twice, all reach the server whole. The caller
// reuses one request object, rewritten right after each start: every exchange still carries
// its own URL, header and body (the transport copied them).
TEST(CurlEngine, KeptAndUnkeptUrlsAllArriveWhole) {
  LoopbackServer server;
  std::mutex m;
  std::multiset<std::string> seen;
  server.on_chat([&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard<std::mutex> lock(m);
      seen.insert(req.get_param_value("i") + " " + req.get_header_value("X-Index") + " " +
                  req.body);
    }
    answer(res, "ok");
  });
  server.start();
  std::unique_ptr<TransportSession> session = make_curl_transport()->open_session();
  const int urls = 80;
  std::multiset<std::string> expected;
  std::uint64_t id = 0;
  HttpRequest r;
  r.connect_timeout = seconds(5);
  r.first_byte_timeout = seconds(10);
  r.total_timeout = seconds(10);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < urls; ++i) {
      const std::string n = std::to_string(i);
      r.url = server.base_url() + "/chat/completions?i=" + n;
      r.headers = {{"Content-Type", "application/json"}, {"X-Index", n}};
      r.body = "{\"i\":" + n + "}";
      session->start(++id, r);
      expected.insert(n + " " + n + " {\"i\":" + n + "}");
    }
  }
  r = HttpRequest{};  // nothing of the last request is read after its start
  std::vector<int> statuses;
  TransportEvents events;
  const TimePoint deadline = std::chrono::steady_clock::now() + seconds(20);
  while (statuses.size() < id && std::chrono::steady_clock::now() < deadline) {
    session->wait(deadline, events);
    for (const HttpResult& res : events.completed) {
      EXPECT_FALSE(res.transport_error.has_value()) << res.error_message;
      statuses.push_back(res.status);
    }
    events.clear();
  }
  EXPECT_EQ(statuses, std::vector<int>(id, 200));
  std::lock_guard<std::mutex> lock(m);
  EXPECT_EQ(seen, expected);
}

// One exchange at a time, so each reuses the last one's slot and header lines: a list kept
// because it is the same must be exactly the same, and any change must reach the server.
TEST(CurlEngine, EachExchangeSendsItsOwnHeaders) {
  LoopbackServer server;
  std::mutex m;
  Strings seen;
  server.on_chat([&](const httplib::Request& req, httplib::Response& res) {
    std::string line = req.get_header_value("X-Index") + "|" +
                       (req.has_header("X-Extra") ? "extra" : "-") + "|" +
                       req.get_header_value("Accept");
    {
      std::lock_guard<std::mutex> lock(m);
      seen.push_back(line);
    }
    answer(res, "ok");
  });
  server.start();
  std::unique_ptr<TransportSession> session = make_curl_transport()->open_session();
  const std::vector<HttpHeaders> lists = {
      {{"X-Index", "1"}},
      {{"X-Index", "1"}},                                    // the same: kept
      {{"X-Index", "12"}},                                   // a longer value
      {{"X-Index", "13"}},                                   // as long, different
      {{"X-Index", "2"}, {"X-Extra", "x"}, {"Accept", ""}},  // more, and one removed
      {{"X-Index", "2"}, {"X-Extra", "x"}, {"Accept", ""}},  // kept again
      {{"X-Index", "2"}, {"X-Extra", "x"}},                  // fewer
      {},                                                    // none
      {{"X-Index", "3"}, {"Accept", "application/json"}},
      {{"X-Index", "3"}, {"Accept", "application/jso"}},  // one byte shorter
  };
  HttpRequest r;
  r.url = server.base_url() + "/chat/completions";
  r.body = "{}";
  r.total_timeout = seconds(10);
  std::uint64_t id = 0;
  for (const HttpHeaders& headers : lists) {
    r.headers = headers;
    session->start(++id, r);
    TransportEvents events;
    const TimePoint deadline = std::chrono::steady_clock::now() + seconds(10);
    while (events.completed.empty() && std::chrono::steady_clock::now() < deadline) {
      session->wait(deadline, events);
    }
    ASSERT_EQ(events.completed.size(), 1u);
    EXPECT_EQ(events.completed[0].status, 200) << events.completed[0].error_message;
  }
  std::lock_guard<std::mutex> lock(m);
  EXPECT_EQ(seen,
            (Strings{"1|-|*/*", "1|-|*/*", "12|-|*/*", "13|-|*/*", "2|extra|", "2|extra|",
                     "2|extra|*/*", "|-|*/*", "3|-|application/json", "3|-|application/jso"}));
}

// A slot's handle keeps what it was told for the last exchange; each option that changes
// must change on the handle too: method, body (same pointer, other bytes or length), URL and
// the total timeout, restored to none after an exchange that had one.
TEST(CurlEngine, EachExchangeGetsItsOwnMethodBodyAndLimit) {
  LoopbackServer server;
  std::mutex m;
  Strings seen;
  auto record = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(m);
    seen.push_back(line);
  };
  server.on_chat([&](const httplib::Request& req, httplib::Response& res) {
    record("POST " + req.body);
    if (req.body == "{\"slow\":1}") std::this_thread::sleep_for(milliseconds(600));
    answer(res, "ok");
  });
  server.http().Get("/v1/models", [&](const httplib::Request& req, httplib::Response& res) {
    record("GET " + req.body);
    res.set_content("{\"object\":\"list\",\"data\":[]}", "application/json");
  });
  server.start();
  std::unique_ptr<TransportSession> session = make_curl_transport()->open_session();
  struct Step {
    std::string method;
    std::string path;
    std::string body;
    Duration total_timeout;
    bool times_out;
  };
  const std::vector<Step> steps = {
      {"POST", "/chat/completions", "{\"a\":1}", seconds(10), false},
      {"POST", "/chat/completions", "{\"b\":2}", seconds(10), false},  // same length
      {"GET", "/models", "", seconds(10), false},
      {"POST", "/chat/completions", "{\"c\":3}", seconds(10), false},  // after a GET
      {"POST", "/chat/completions", "{\"longer\":12345}", seconds(10), false},
      {"POST", "/chat/completions", "{}", seconds(10), false},  // shorter
      {"POST", "/chat/completions", "{\"slow\":1}", milliseconds(200), true},
      {"POST", "/chat/completions", "{\"slow\":1}", Duration::zero(), false},  // no limit
      {"GET", "/models", "", seconds(10), false},
  };
  HttpRequest r;
  r.connect_timeout = seconds(5);
  std::uint64_t id = 0;
  for (const Step& step : steps) {
    r.method = step.method;
    r.url = server.base_url() + step.path;
    r.body = step.body;
    r.total_timeout = step.total_timeout;
    session->start(++id, r);
    TransportEvents events;
    const TimePoint deadline = std::chrono::steady_clock::now() + seconds(10);
    while (events.completed.empty() && std::chrono::steady_clock::now() < deadline) {
      session->wait(deadline, events);
    }
    ASSERT_EQ(events.completed.size(), 1u) << step.body;
    const HttpResult& res = events.completed[0];
    if (step.times_out) {
      EXPECT_EQ(res.transport_error, ErrorKind::Timeout) << step.body;
    } else {
      EXPECT_FALSE(res.transport_error.has_value()) << step.body << ": " << res.error_message;
      EXPECT_EQ(res.status, 200) << step.body;
    }
  }
  std::lock_guard<std::mutex> lock(m);
  EXPECT_EQ(seen, (Strings{"POST {\"a\":1}", "POST {\"b\":2}", "GET ", "POST {\"c\":3}",
                           "POST {\"longer\":12345}", "POST {}", "POST {\"slow\":1}",
                           "POST {\"slow\":1}", "GET "}));
}

TEST(CurlEngine, ServerErrorsFailOverToTheHealthyRoute) {
  for (int status : {500, 503}) {
    LoopbackServer failing;
    failing.on_chat(
        [status](const httplib::Request&, httplib::Response& res) { answer_error(res, status); });
    failing.start();
    Healthy healthy("from second");
    Client client(two(failing.base_url(), healthy.server.base_url()));
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->text(), "from second");
    ASSERT_EQ(r->attempts.size(), 2u);
    EXPECT_EQ(r->attempts[0].status, status);
    EXPECT_EQ(r->attempts[0].message, "loopback " + std::to_string(status));
    EXPECT_EQ(r->served_by.endpoint, "second");
  }
}

TEST(CurlEngine, RateLimitWithRetryAfterCoolsTheRouteDown) {
  LoopbackServer limited;
  limited.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.set_header("Retry-After", "30");
    answer_error(res, 429, "rate_limit_exceeded");
  });
  limited.start();
  Healthy healthy;
  Client client(two(limited.base_url(), healthy.server.base_url()));
  auto first = client.chat(ping());
  ASSERT_TRUE(first);
  EXPECT_EQ(outcomes(first->attempts), (Strings{"first:rate_limited", "second:success"}));
  for (int i = 0; i < 5; ++i) {
    auto next = client.chat(ping());
    ASSERT_TRUE(next);
    EXPECT_EQ(outcomes(next->attempts), (Strings{"second:success"}));
  }
  EXPECT_EQ(limited.requests(), 1);
}

// With a rate limiter on the endpoint, the provider's x-ratelimit headers on a 200 reach it
// (the request asks for a successful answer's headers): the endpoint waits for the reset.
TEST(CurlEngine, ProviderRateLimitHeadersOnA200CoolTheEndpoint) {
  LoopbackServer limited;
  limited.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.set_header("x-ratelimit-remaining-requests", "0");
    res.set_header("x-ratelimit-reset-requests", "30s");
    answer(res, "last one");
  });
  limited.start();
  Healthy healthy;
  ClientOptions o = two(limited.base_url(), healthy.server.base_url());
  o.endpoints[0].limits.rpm = 1000;
  Client client(o);
  auto first = client.chat(ping());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->text(), "last one");
  auto second = client.chat(ping());
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(outcomes(second->attempts), (Strings{"second:success"}));
  EXPECT_EQ(limited.requests(), 1);
}

// The transport leaves out a 2xx response's headers only when asked to; an error response's
// headers always arrive.
TEST(CurlEngine, SuccessHeadersArriveOnlyWhenWanted) {
  LoopbackServer server;
  server.on_chat([](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Seen", "yes");
    if (req.get_param_value("fail") == "1") return answer_error(res, 503);
    answer(res, "ok");
  });
  server.start();
  std::unique_ptr<TransportSession> session = make_curl_transport()->open_session();
  struct Case {
    bool fail;
    bool wanted;
    bool expect_headers;
  };
  const std::vector<Case> cases = {
      {false, true, true}, {false, false, false}, {true, false, true}, {true, true, true}};
  HttpRequest r;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = "{}";
  r.total_timeout = seconds(10);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    r.url = server.base_url() + "/chat/completions?fail=" + (cases[i].fail ? "1" : "0");
    r.success_headers = cases[i].wanted;
    session->start(i + 1, r);
  }
  std::map<std::uint64_t, HttpResult> results;
  TransportEvents events;
  const TimePoint deadline = std::chrono::steady_clock::now() + seconds(20);
  while (results.size() < cases.size() && std::chrono::steady_clock::now() < deadline) {
    session->wait(deadline, events);
    for (HttpResult& res : events.completed) results[res.id] = std::move(res);
    events.clear();
  }
  ASSERT_EQ(results.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const HttpResult& res = results[i + 1];
    EXPECT_EQ(res.status, cases[i].fail ? 503 : 200) << i;
    const std::string* seen = nullptr;
    for (const auto& [name, value] : res.headers) {
      if (name == "x-seen") seen = &value;
    }
    EXPECT_EQ(seen != nullptr, cases[i].expect_headers) << i;
    if (cases[i].expect_headers) {
      ASSERT_NE(seen, nullptr);
      EXPECT_EQ(*seen, "yes");
    } else {
      EXPECT_TRUE(res.headers.empty()) << i;
    }
    EXPECT_FALSE(res.body.empty()) << i;
  }
}

TEST(CurlEngine, SlowAnswerIsCutAtTheAttemptTimeout) {
  LoopbackServer slow;
  slow.on_chat([](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(milliseconds(4000));
    answer(res, "too late");
  });
  slow.start();
  Healthy healthy;
  ClientOptions o = two(slow.base_url(), healthy.server.base_url());
  // Generous margins: sanitizer builds on a shared machine are slow.
  o.timeouts.attempt = milliseconds(1000);
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  const Strings seen = outcomes(r->attempts);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front(), "first:timeout");
  EXPECT_EQ(seen.back(), "second:success");
  // A sanitizer build on a loaded machine may miss the second's first answer by the same limit:
  // then it is tried again. Nothing else may happen between.
  for (std::size_t i = 1; i + 1 < seen.size(); ++i) EXPECT_EQ(seen[i], "second:timeout");
  EXPECT_GE(r->attempts[0].latency, Duration(milliseconds(990)));
  EXPECT_LT(r->attempts[0].latency, Duration(milliseconds(3900)));
}

TEST(CurlEngine, ConnectionRefusedFailsOver) {
  Healthy healthy;
  Client client(two("http://127.0.0.1:" + std::to_string(testing::refused_port()) + "/v1",
                    healthy.server.base_url()));
  auto r = client.chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(outcomes(r->attempts), (Strings{"first:connect_failed", "second:success"}));
  EXPECT_EQ(r->attempts[0].status, 0);
}

TEST(CurlEngine, SilentServersHitTheAttemptTimeout) {
  // A non-streamed answer is bounded by the attempt limit alone (its headers come only when
  // the generation ends); the call's total is far away, so the timeout fails over.
  for (auto mode : {SilentServer::Mode::AcceptAndHold, SilentServer::Mode::NeverAccept}) {
    SilentServer silent(mode);
    Healthy healthy;
    ClientOptions o = two(silent.base_url(), healthy.server.base_url());
    o.timeouts.attempt = milliseconds(800);
    o.timeouts.connect = milliseconds(800);
    o.timeouts.total = seconds(20);
    Client client(o);
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(outcomes(r->attempts), (Strings{"first:timeout", "second:success"}));
  }
}

TEST(CurlEngine, SilentServersHitTheFirstByteTimeoutOfAStream) {
  for (auto mode : {SilentServer::Mode::AcceptAndHold, SilentServer::Mode::NeverAccept}) {
    SilentServer silent(mode);
    testing::HealthyServer healthy;  // streams when asked
    ClientOptions o = two(silent.base_url(), healthy.base_url());
    o.timeouts.first_byte = milliseconds(800);
    o.timeouts.total = seconds(20);  // the attempt is cut to fit it: the timeout still fails over
    Client client(o);
    auto r = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(outcomes(r->attempts), (Strings{"first:timeout", "second:success"}));
    EXPECT_NE(r->attempts[0].message.find("800 ms"), std::string::npos) << r->attempts[0].message;
  }
}

TEST(CurlEngine, AClientReleasedInsideItsOwnCallbackEndsCleanly) {
  Healthy healthy;
  ClientOptions o = two(healthy.server.base_url(), healthy.server.base_url());
  std::shared_ptr<Transport> transport = make_curl_transport();
  o.transport = transport;
  auto client = std::make_shared<Client>(std::move(o));
  Client& c = *client;
  std::promise<std::string> answered;
  c.chat_async(ping(), {}, [&answered, holder = std::move(client)](Result<ChatResponse> r) mutable {
    holder.reset();  // the last owner, on the engine thread
    answered.set_value(r ? r->text() : r.error().message());
  });
  EXPECT_EQ(answered.get_future().get(), "pong");
  auto until = std::chrono::steady_clock::now() + seconds(10);
  while (transport.use_count() > 1 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(transport.use_count(), 1);  // the client's core is gone
}

TEST(CurlEngine, ParallelCallsNeverSpendPastTheBudget) {
  // Each answer costs 100 tokens at $5 per million: $0.0005; the day's budget is $0.01.
  LoopbackServer server;
  server.on_chat([](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(milliseconds(20));  // calls overlap
    res.set_content(
        R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":60,"completion_tokens":40,"total_tokens":100}})",
        "application/json");
  });
  server.start();
  testing::widen_backlog(server.port());
  ClientOptions o = one("priced", server.base_url());
  ModelPrice price;
  price.input_per_mtok = 5.0;
  price.output_per_mtok = 5.0;
  o.prices["m"] = price;
  o.budget.usd_per_day = 0.01;
  o.token_estimator = [](const ChatRequest&) { return std::int64_t{100}; };
  Client client(o);
  const testing::BudgetRace race = testing::race_for_the_budget(client, ping(), 64, 4);
  const double spent = client.usage_report().cost_usd;
  EXPECT_LE(spent, 0.01 + 0.0005 + 1e-12);
  EXPECT_EQ(race.served, 20);  // exactly what the budget holds, the estimate being exact
  EXPECT_EQ(race.served + race.refused, 256);
}

TEST(CurlEngine, AStaleKeptAliveConnectionIsRetriedAtOnceByThePolicyNotByLibcurl) {
  testing::DroppingServer server;  // drops the second request on the kept-alive connection
  Client client(one("relay", server.base_url()));
  auto first = client.chat(ping());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(outcomes(first->attempts), (Strings{"relay:success"}));
  auto second = client.chat(ping());
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(server.requests(), 3);  // the provider saw the second call twice
  EXPECT_EQ(outcomes(second->attempts), (Strings{"relay:connection_lost", "relay:success"}));
  // libcurl did not send it again: the retry policy did, at once (the stale keep-alive race).
  EXPECT_EQ(second->attempts[0].message,
            "the reused connection closed before any response; the request was not sent again");
  EXPECT_EQ(second->attempts[0].delay, Duration::zero());
  EXPECT_EQ(client.health().routes[0].failures, 0u);  // a stale connection says nothing of it
}

// A reused connection held silent, then closed: the route had the request. It is sent neither
// again by libcurl nor to that route by the policy; the call moves on at once.
TEST(CurlEngine, AReusedConnectionClosedAfterASilenceIsNotSentAgain) {
  testing::DroppingServer server(milliseconds(3000));
  Healthy backup;
  Client client(two(server.base_url(), backup.server.base_url()));
  ASSERT_TRUE(client.chat(ping()));
  auto second = client.chat(ping());
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(server.requests(), 2);  // one for each call
  EXPECT_EQ(outcomes(second->attempts), (Strings{"first:timeout", "second:success"}));
  EXPECT_NE(second->attempts[0].message.find("without a response; the request was not sent again"),
            std::string::npos)
      << second->attempts[0].message;
}

// A large body (over 64 KiB, sent after the headers) is not sent again by libcurl either.
TEST(CurlEngine, ALargeRequestOnAStaleConnectionIsRetriedByThePolicyToo) {
  testing::DroppingServer server;
  Client client(one("relay", server.base_url()));
  ChatRequest large = ping();
  large.messages[0] = Message::user(std::string(200 * 1024, 'x'));
  auto first = client.chat(large);
  ASSERT_TRUE(first) << first.error().message();
  auto second = client.chat(large);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(outcomes(second->attempts), (Strings{"relay:connection_lost", "relay:success"}));
}

// An obs-folded header (its value on the next line, after whitespace) is one header.
TEST(CurlEngine, AFoldedHeaderIsReadWhole) {
  const std::string body = R"({"error":{"message":"slow down","type":"rate_limit"}})";
  testing::RawServer server(
      "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
      "Retry-After:\r\n 7\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  ClientOptions o = one("relay", server.base_url());
  RetryOptions once;
  once.max_attempts = 1;
  o.retry = std::make_shared<DefaultRetryPolicy>(once);
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  // The route rests for the folded Retry-After: its cooldown ends 7 s on.
  const HealthSnapshot h = client.health();
  ASSERT_TRUE(h.routes[0].cooldown_until.has_value()) << r.error().message();
  const Duration rest = *h.routes[0].cooldown_until - std::chrono::steady_clock::now();
  EXPECT_GT(rest, std::chrono::seconds(5));
  EXPECT_LE(rest, std::chrono::seconds(7));
}

TEST(CurlEngine, MalformedJsonInA200FailsOver) {
  LoopbackServer broken;
  broken.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"choices\": [{\"message\": ", "application/json");
  });
  broken.start();
  Healthy healthy;
  Client client(two(broken.base_url(), healthy.server.base_url()));
  auto r = client.chat(ping());
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"first:protocol", "second:success"}));
  EXPECT_EQ(r->attempts[0].status, 200);
}

TEST(CurlEngine, BodyOverTheCapIsResponseTooLarge) {
  LoopbackServer huge;
  huge.on_chat([](const httplib::Request&, httplib::Response& res) {
    answer(res, std::string(100000, 'x'));
  });
  huge.start();
  ClientOptions o = one("huge", huge.base_url());
  o.max_response_bytes = 4096;
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"huge:response_too_large"}));
  EXPECT_EQ(r.error().attempts()[0].message, "the response body exceeds the cap of 4096 bytes");
}

TEST(CurlEngine, SequentialCallsReuseOneConnection) {
  Healthy healthy;
  ClientOptions o = one("only", healthy.server.base_url());
  Client client(o);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(client.chat(ping()));
  EXPECT_EQ(healthy.server.requests(), 50);
  EXPECT_EQ(healthy.server.connections(), 1u);
}

TEST(CurlEngine, ThirtyTwoThreadsShareOneClient) {
  Healthy healthy;
  LoopbackServer failing;
  failing.on_chat([](const httplib::Request&, httplib::Response& res) { answer_error(res, 503); });
  failing.start();
  Client client(two(failing.base_url(), healthy.server.base_url()));
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto r = client.chat(ping());
        if (r && r->text() == "pong") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 32 * 50);
  EXPECT_EQ(healthy.server.requests(), 32 * 50);
  // The failing route's breaker opened after a handful of failures.
  EXPECT_LT(failing.requests(), 100);
}

TEST(CurlEngine, AsyncCallsInFlightTogether) {
  Healthy healthy;
  ClientOptions o = one("only", healthy.server.base_url());
  Client client(o);
  std::vector<std::future<Result<ChatResponse>>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(client.chat_async(ping()));
  int ok = 0;
  for (auto& f : futures) ok += f.get() ? 1 : 0;
  EXPECT_EQ(ok, 200);
}

TEST(CurlEngine, AsyncFailoverMatchesTheSynchronousPath) {
  LoopbackServer failing;
  failing.on_chat([](const httplib::Request&, httplib::Response& res) { answer_error(res, 500); });
  failing.start();
  Healthy healthy;
  Client client(two(failing.base_url(), healthy.server.base_url()));
  auto r = client.chat_async(ping()).get();
  ASSERT_TRUE(r);
  EXPECT_EQ(outcomes(r->attempts), (Strings{"first:server_error", "second:success"}));
}

TEST(CurlEngine, CancellingAnAsyncCallEndsItAndClosesTheExchange) {
  SilentServer silent(SilentServer::Mode::AcceptAndHold);
  ClientOptions o = one("silent", silent.base_url());
  Client client(o);
  CancellationSource source;
  CallOptions call;
  call.cancel = source.token();
  auto future = client.chat_async(ping(), call);
  while (silent.accepted() == 0) std::this_thread::sleep_for(milliseconds(5));
  source.cancel();
  ASSERT_EQ(future.wait_for(seconds(10)), std::future_status::ready);
  auto r = future.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"silent:cancelled"}));
}

TEST(CurlEngine, CancellingASynchronousCallFromAnotherThread) {
  SilentServer silent(SilentServer::Mode::AcceptAndHold);
  ClientOptions o = one("silent", silent.base_url());
  Client client(o);
  CancellationSource source;
  std::thread canceller([&] {
    while (silent.accepted() == 0) std::this_thread::sleep_for(milliseconds(5));
    source.cancel();
  });
  CallOptions call;
  call.cancel = source.token();
  auto r = client.chat(ping(), call);
  canceller.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
}

TEST(CurlEngine, DestroyingTheClientCancelsCallsInFlight) {
  SilentServer silent(SilentServer::Mode::AcceptAndHold);
  std::vector<std::future<Result<ChatResponse>>> futures;
  {
    ClientOptions o = one("silent", silent.base_url());
    Client client(o);
    for (int i = 0; i < 10; ++i) futures.push_back(client.chat_async(ping()));
    while (silent.accepted() < 10) std::this_thread::sleep_for(milliseconds(5));
  }
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(seconds(0)), std::future_status::ready);
    auto r = f.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
    EXPECT_EQ(r.error().message(), "the client is shutting down");
  }
}

TEST(CurlEngine, CallDeadlineEndsAHangingCall) {
  SilentServer silent(SilentServer::Mode::AcceptAndHold);
  ClientOptions o = one("silent", silent.base_url());
  Client client(o);
  CallOptions call;
  call.timeout = milliseconds(400);
  auto start = std::chrono::steady_clock::now();
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::DeadlineExceeded);
  // A hang guard, not a speed target: the default first-byte timeout is 30 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

TEST(CurlEngine, RedirectsAreNeverFollowed) {
  LoopbackServer target;
  target.on_chat([](const httplib::Request&, httplib::Response& res) { answer(res, "stolen"); });
  target.start();
  LoopbackServer redirecting;
  std::string location = target.base_url() + "/chat/completions";
  redirecting.on_chat([location](const httplib::Request&, httplib::Response& res) {
    res.status = 307;
    res.set_header("Location", location);
  });
  redirecting.start();
  ClientOptions o;
  o.endpoints = {{"redirecting", redirecting.base_url(), "sk-redirect-secret"}};
  o.priority = {Tier{{{"redirecting", "m"}}}};
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"redirecting:protocol"}));
  EXPECT_EQ(target.requests(), 0);
}

TEST(CurlEngine, KeysGoOnlyToTheirEndpointAndNeverIntoLogsOrErrors) {
  LoopbackServer a;
  a.on_chat([](const httplib::Request&, httplib::Response& res) { answer_error(res, 401); });
  a.start();
  LoopbackServer b;
  b.on_chat([](const httplib::Request&, httplib::Response& res) { answer_error(res, 500); });
  b.start();
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "keys", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::trace);
  ClientOptions o = two(a.base_url(), b.base_url());
  o.logger = logger;
  RetryOptions quick;
  quick.base_delay = milliseconds(5);
  quick.max_delay = milliseconds(20);
  o.retry = std::make_shared<DefaultRetryPolicy>(quick);
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  logger->flush();
  EXPECT_EQ(a.header_values("Authorization"), (Strings{"Bearer sk-first-secret"}));
  for (const std::string& v : b.header_values("Authorization")) {
    EXPECT_EQ(v, "Bearer sk-second-secret");
  }
  std::string everything = log.str() + r.error().message();
  for (const Attempt& at : r.error().attempts()) everything += at.message;
  EXPECT_FALSE(log.str().empty());
  EXPECT_EQ(everything.find("sk-first-secret"), std::string::npos) << everything;
  EXPECT_EQ(everything.find("sk-second-secret"), std::string::npos) << everything;
}

}  // namespace
}  // namespace failover

namespace failover {
namespace {

// A route that answers 503 to calls and probes until it is healthy, then well; and a client
// on it whose breaker opens for `open` and whose health probes run every 50 ms.
struct FlakyRoute {
  std::atomic<bool> healthy{false};
  std::atomic<int> probes{0};
  LoopbackServer server;
  std::optional<Client> client;

  explicit FlakyRoute(Duration open) {
    server.on_chat([this](const httplib::Request&, httplib::Response& res) {
      if (healthy) {
        answer(res, "back");
      } else {
        answer_error(res, 503);
      }
    });
    server.http().Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      ++probes;
      if (healthy) {
        res.set_content(R"({"object":"list","data":[{"id":"m","object":"model"}]})",
                        "application/json");
      } else {
        res.status = 503;
      }
    });
    server.start();
    ClientOptions o = one("flaky", server.base_url());
    RetryOptions once;
    once.max_attempts = 1;
    o.retry = std::make_shared<DefaultRetryPolicy>(once);
    CircuitBreakerOptions b;
    b.open_duration = open;
    b.max_open_duration = std::max(open, b.max_open_duration);
    o.circuit_breaker = DefaultCircuitBreaker::factory(b);
    o.health_probe.interval = milliseconds(50);
    o.health_probe.timeout = milliseconds(1000);
    client.emplace(o);
  }
  // Five failures open the breaker.
  void open_breaker() {
    for (int i = 0; i < 5; ++i) ASSERT_FALSE(client->chat(ping()));
    ASSERT_EQ(client->health().routes[0].state, BreakerState::Open);
  }
  // Waits (bounded: 10 s) until the breaker has closed again.
  BreakerState wait_for_close() {
    auto until = std::chrono::steady_clock::now() + seconds(10);
    while (client->health().routes[0].state != BreakerState::Closed &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    return client->health().routes[0].state;
  }
};

TEST(ActiveProbes, AnOpenRouteRecoversThroughAPassingProbeWithNoUserCall) {
  FlakyRoute route(milliseconds(200));
  route.open_breaker();
  const int user_calls = route.server.requests();
  route.healthy = true;
  EXPECT_EQ(route.wait_for_close(), BreakerState::Closed);
  EXPECT_TRUE(route.client->health().routes[0].last_probe_ok);
  EXPECT_EQ(route.server.requests(), user_calls);  // no user call was spent on the recovery
  EXPECT_GT(route.probes.load(), 0);
  auto r = route.client->chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "back");
}

TEST(ActiveProbes, APassingProbeEndsAnOpenPeriodEarly) {
  FlakyRoute route(seconds(60));  // far longer than this test may wait
  route.open_breaker();
  route.healthy = true;
  EXPECT_EQ(route.wait_for_close(), BreakerState::Closed);
  auto r = route.client->chat(ping());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "back");
}

}  // namespace
}  // namespace failover
