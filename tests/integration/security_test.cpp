// What the SDK promises in SECURITY.md, checked against servers on 127.0.0.1: keys stay secret,
// redirects are never followed, TLS is verified, headers cannot be smuggled, and no answer can
// make the SDK use unbounded memory or stack.

#include "core/client_core.hpp"
#include "loopback.hpp"
#include "test_helpers.hpp"

#include <failover/failover.hpp>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::LoopbackServer;
using testing::outcomes;
using testing::ping;
using testing::Strings;

const std::string kSecret = "sk-live-0123456789abcdef";

ClientOptions single(const std::string& url, const std::string& key = kSecret) {
  ClientOptions o;
  o.endpoints = {{"target", url, key}};
  o.priority = {Tier{{{"target", "m"}}}};
  RetryOptions once;
  once.max_attempts = 1;
  o.retry = std::make_shared<DefaultRetryPolicy>(once);
  return o;
}

// Everything a caller or an operator could see of a failed call.
std::string visible(const Error& e, const std::string& log) {
  std::string all = log + e.message() + e.provider_code() + e.provider_type() + e.param();
  for (const Attempt& a : e.attempts()) all += a.message;
  return all;
}

TEST(Security, AKeyEchoedByTheServerIsRedactedEverywhere) {
  LoopbackServer server;
  server.on_chat([](const httplib::Request& req, httplib::Response& res) {
    // Some relays answer a bad key by quoting it back in full.
    const std::string auth = req.get_header_value("Authorization");
    res.status = 401;
    res.set_content(R"({"error":{"message":"Incorrect API key provided: )" + auth.substr(7) +
                        R"(","type":")" + auth.substr(7) + R"(","param":")" + auth.substr(7) +
                        R"(","code":")" + auth.substr(7) + R"("}})",
                    "application/json");
  });
  server.start();
  std::ostringstream log;
  auto logger = std::make_shared<spdlog::logger>(
      "security", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_level(spdlog::level::trace);
  ClientOptions o = single(server.base_url());
  o.logger = logger;
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  logger->flush();
  EXPECT_EQ(r.error().kind(), ErrorKind::AllRoutesUnavailable);
  const std::string all = visible(r.error(), log.str());
  EXPECT_EQ(all.find(kSecret), std::string::npos) << all;
  EXPECT_NE(r.error().message().find("Incorrect API key provided: [redacted]"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(server.header_values("Authorization"), (Strings{"Bearer " + kSecret}));
}

TEST(Security, SecretsEchoedToAProbeOrACallAreRedactedEverywhere) {
  const std::string google = "goog-0123456789secret";
  const std::string query = "azure/query+secret=42";
  LoopbackServer server;
  // A relay that quotes everything it was sent: the key, a key header, the query string.
  auto echo = [](const httplib::Request& req, httplib::Response& res) {
    res.status = 401;
    res.set_content(R"({"error":{"message":"Incorrect API key provided: )" +
                        req.get_header_value("Authorization").substr(7) + " " +
                        req.get_header_value("x-goog-api-key") + " " + req.get_param_value("key") +
                        " " + req.target + R"("}})",
                    "application/json");
  };
  server.on_chat(echo);
  server.http().Get("/v1/models", echo);
  server.start();
  ClientOptions o = single(server.base_url());
  o.endpoints[0].headers = {{"x-goog-api-key", google}, {"OpenAI-Organization", "org-public"}};
  o.endpoints[0].query = {{"key", query}, {"api-version", "2024-10-21"}};
  o.health_probe.interval = milliseconds(20);
  const std::string written = options_to_json(o);
  Client client(o);
  auto secrets_in = [&](const std::string& text) {
    std::string found;
    for (const std::string& secret : {kSecret, google, query, std::string("azure%2Fquery")}) {
      if (text.find(secret) != std::string::npos) found += secret + " ";
    }
    return found;
  };
  // Client::probe().
  for (const RouteProbe& p : client.probe(seconds(5))) {
    EXPECT_EQ(p.error, ErrorKind::Authentication);
    EXPECT_EQ(secrets_in(p.message), "") << p.message;
    EXPECT_NE(p.message.find("[redacted]"), std::string::npos) << p.message;
  }
  // The active probes' last result in health().
  auto until = std::chrono::steady_clock::now() + seconds(10);
  while (!client.health().routes[0].last_probe_at && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  HealthSnapshot h = client.health();
  ASSERT_TRUE(h.routes[0].last_probe_at.has_value());
  EXPECT_EQ(secrets_in(h.routes[0].last_probe_message), "") << h.routes[0].last_probe_message;
  // A call's error.
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(secrets_in(visible(r.error(), "")), "") << r.error().message();
  // Options written without keys: no key, no secret header or query value; the rest as set.
  EXPECT_EQ(secrets_in(written), "") << written;
  EXPECT_NE(written.find("org-public"), std::string::npos);
  EXPECT_NE(written.find("2024-10-21"), std::string::npos);
  EXPECT_NE(options_to_json(o, /*include_keys=*/true).find(google), std::string::npos);
}

TEST(Security, AKeyCutShortByAnExcerptIsRedactedToo) {
  detail::ResolvedEndpoint e;
  e.secrets = {kSecret};
  EXPECT_EQ(e.redact("bad key " + kSecret + " here"), "bad key [redacted] here");
  EXPECT_EQ(e.redact("bad key " + kSecret.substr(0, 12) + "..."), "bad key [redacted]...");
  EXPECT_EQ(e.redact("bad key " + kSecret.substr(0, 9)), "bad key [redacted]");
  EXPECT_EQ(e.redact("ends in sk-li"), "ends in sk-li");  // too short to tell
}

TEST(Security, AStreamErrorEventEchoingTheKeyIsRedacted) {
  LoopbackServer server;
  server.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.set_content("event: error\ndata: {\"error\":{\"message\":\"bad key " + kSecret +
                        "\",\"type\":\"auth\"}}\n\n",
                    "text/event-stream");
  });
  server.start();
  Client client(single(server.base_url()));
  auto r = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
  ASSERT_FALSE(r);
  EXPECT_EQ(visible(r.error(), "").find(kSecret), std::string::npos) << r.error().message();
}

TEST(Security, A302ToAnotherPortNeverCarriesTheKeyThere) {
  LoopbackServer elsewhere;
  elsewhere.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.set_content(testing::completion_json("stolen"), "application/json");
  });
  elsewhere.start();
  int redirects = 0;
  for (int status : {301, 302, 303, 307, 308}) {
    LoopbackServer redirecting;
    const std::string location = elsewhere.base_url() + "/chat/completions";
    redirecting.on_chat([&, location, status](const httplib::Request&, httplib::Response& res) {
      ++redirects;
      res.status = status;
      res.set_header("Location", location);
    });
    redirecting.start();
    Client client(single(redirecting.base_url()));
    auto r = client.chat(ping());
    ASSERT_FALSE(r) << status;
    EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"target:protocol"})) << status;
  }
  EXPECT_EQ(redirects, 5);
  EXPECT_EQ(elsewhere.requests(), 0);
  EXPECT_TRUE(elsewhere.header_values("Authorization").empty());
}

TEST(Security, EachKeyGoesOnlyToItsOwnEndpointAcrossFailover) {
  LoopbackServer a;
  LoopbackServer b;
  a.on_chat([](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  b.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.set_content(testing::completion_json("ok"), "application/json");
  });
  a.start();
  b.start();
  ClientOptions o;
  o.endpoints = {{"a", a.base_url(), "sk-key-of-a"}, {"b", b.base_url(), "sk-key-of-b"}};
  o.endpoints[1].auth = AuthStyle::ApiKey;  // Azure style on the second
  o.priority = {Tier{{{"a", "m"}, {"b", "m"}}}};
  Client client(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.chat(ping()));
  for (const std::string& v : a.header_values("Authorization")) EXPECT_EQ(v, "Bearer sk-key-of-a");
  for (const std::string& v : a.header_values("api-key")) EXPECT_EQ(v, "<none>");
  for (const std::string& v : b.header_values("api-key")) EXPECT_EQ(v, "sk-key-of-b");
  for (const std::string& v : b.header_values("Authorization")) EXPECT_EQ(v, "<none>");
  EXPECT_GE(a.requests(), 1);
  EXPECT_EQ(b.requests(), 3);
}

// A self-signed certificate for 127.0.0.1, made with the openssl tool for this test only.
struct SelfSigned {
  std::string dir;
  std::string cert;
  std::string key;
  bool ok = false;
  SelfSigned() {
    dir = ::testing::TempDir() + "failover_tls_" + std::to_string(::getpid());
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    const std::string cmd = "mkdir -p '" + dir +
                            "' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                            "'/CN=127.0.0.1' -addext 'subjectAltName=IP:127.0.0.1' -keyout '" +
                            key + "' -out '" + cert + "' > /dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  ~SelfSigned() { (void)std::system(("rm -rf '" + dir + "'").c_str()); }
};

TEST(Security, TlsIsVerifiedUnlessTheCaIsConfigured) {
  SelfSigned pki;
  ASSERT_TRUE(pki.ok) << "the openssl tool could not make a certificate";
  httplib::SSLServer server(pki.cert.c_str(), pki.key.c_str());
  ASSERT_TRUE(server.is_valid());
  int requests = 0;
  server.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    ++requests;
    res.set_content(testing::completion_json("over tls"), "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/v1";

  {
    Client client(single(url));  // the system store does not know this certificate
    auto r = client.chat(ping());
    ASSERT_FALSE(r);
    EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"target:tls"}));
    EXPECT_EQ(requests, 0);
  }
  {
    ClientOptions o = single(url);
    o.ca_bundle = pki.cert;
    Client client(o);
    auto r = client.chat(ping());
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->text(), "over tls");
    EXPECT_EQ(requests, 1);
  }
  server.stop();
  thread.join();
}

// The curl session keeps each slot's handle, configured with the CA bundle of its time: a
// request with another bundle must get a handle that verifies against that one.
TEST(Security, ASessionVerifiesEachExchangeAgainstItsOwnCaBundle) {
  SelfSigned pki;
  ASSERT_TRUE(pki.ok) << "the openssl tool could not make a certificate";
  httplib::SSLServer server(pki.cert.c_str(), pki.key.c_str());
  ASSERT_TRUE(server.is_valid());
  server.Post("/v1/chat/completions", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(testing::completion_json("over tls"), "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  std::unique_ptr<TransportSession> session = make_curl_transport()->open_session();
  HttpRequest r;
  r.url = "https://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions";
  r.body = "{}";
  r.total_timeout = std::chrono::seconds(10);
  std::vector<std::string> outcomes;
  std::uint64_t id = 0;
  for (const std::string& ca : {std::string(), pki.cert, pki.cert, std::string()}) {
    r.ca_bundle = ca;
    session->start(++id, r);
    TransportEvents events;
    const TimePoint deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (events.completed.empty() && std::chrono::steady_clock::now() < deadline) {
      session->wait(deadline, events);
    }
    ASSERT_EQ(events.completed.size(), 1u);
    const HttpResult& res = events.completed[0];
    outcomes.push_back(res.transport_error ? std::string(to_string(*res.transport_error))
                                           : std::to_string(res.status));
  }
  EXPECT_EQ(outcomes, (Strings{"tls", "200", "200", "tls"}));
  session.reset();  // closes the kept connection, which the server would wait out
  server.stop();
  thread.join();
}

TEST(Security, LineBreaksCannotSmuggleHeaders) {
  auto rejects = [](ClientOptions o) {
    try {
      Client client(std::move(o));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("<accepted>");
  };
  ClientOptions o = single("http://127.0.0.1:9/v1", "sk-a\r\nX-Injected: 1");
  EXPECT_NE(rejects(o).find("api_key"), std::string::npos) << rejects(o);
  o = single("http://127.0.0.1:9/v1");
  o.endpoints[0].headers["X-Team"] = "blue\nX-Injected: 1";
  EXPECT_NE(rejects(o).find("headers"), std::string::npos) << rejects(o);
  o = single("http://127.0.0.1:9/v1");
  o.endpoints[0].headers["X-Bad\r\nName"] = "v";
  EXPECT_NE(rejects(o).find("headers"), std::string::npos) << rejects(o);

  LoopbackServer server;
  server.on_chat([](const httplib::Request&, httplib::Response& res) {
    res.set_content(testing::completion_json("ok"), "application/json");
  });
  server.start();
  Client client(single(server.base_url()));
  CallOptions call;
  call.headers["X-Trace"] = "1\r\nAuthorization: Bearer stolen";
  auto r = client.chat(ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::InvalidRequest);
  EXPECT_EQ(server.requests(), 0);  // refused before any traffic
}

TEST(Security, AnEndlessBodyStopsAtTheCap) {
  LoopbackServer server;
  server.http().Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    // 64 MiB of streamed comments that never become an answer.
    res.set_chunked_content_provider(
        "text/event-stream", [sent = std::size_t{0}](std::size_t, httplib::DataSink& sink) mutable {
          static const std::string block(64 * 1024, ':');
          if (sent >= (64u << 20)) {
            sink.done();
            return true;
          }
          sent += block.size();
          return sink.write(block.data(), block.size());
        });
  });
  server.start();
  for (bool stream : {false, true}) {
    ClientOptions o = single(server.base_url());
    o.max_response_bytes = 1 << 20;
    Client client(o);
    auto r = stream ? client.chat_stream(ping(), [](const ChatChunk&) { return true; })
                    : client.chat(ping());
    ASSERT_FALSE(r);
    EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"target:response_too_large"})) << stream;
  }
}

TEST(Security, DeeplyNestedOrHugeJsonIsACleanError) {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  const std::string wide = R"({"choices":[{"message":{"content":")" + std::string(8 << 20, 'x') +
                           R"("}}],"pad":[)" + std::string(1, '0') + "]}";
  LoopbackServer server;
  int call = 0;
  server.on_chat([&](const httplib::Request&, httplib::Response& res) {
    res.set_content(call++ == 0 ? deep : wide, "application/json");
  });
  server.start();
  ClientOptions o = single(server.base_url());
  Client client(o);
  auto r = client.chat(ping());  // two million brackets: no stack overflow, a typed error
  ASSERT_FALSE(r);
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"target:protocol"}));
  auto big = client.chat(ping());  // 8 MiB of content within the 64 MiB cap: decoded whole
  ASSERT_TRUE(big) << big.error().message();
  EXPECT_EQ(big->text().size(), 8u << 20);
}

}  // namespace
}  // namespace failover
