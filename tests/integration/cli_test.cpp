// The failover command-line tool end to end, against `failover mock` processes on 127.0.0.1.

#include "loopback.hpp"
#include "process.hpp"
#include "redis_server.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

namespace failover {
namespace {

using nlohmann::json;
using testing::Background;
using testing::run;

const std::string kCli = FAILOVER_CLI_PATH;

// Unique per process and call: ctest runs the tests of this file in parallel processes.
std::string temp_file(const std::string& name, const std::string& content) {
  static int counter = 0;
  std::string path = ::testing::TempDir() + "failover_cli_" + std::to_string(::getpid()) + "_" +
                     std::to_string(++counter) + "_" + name;
  std::ofstream(path) << content;
  return path;
}

// A `failover mock` process with a scenario; knows its base URL.
class Mock {
 public:
  Mock(const std::string& name, const std::string& scenario)
      : process_({kCli, "mock", "--port", "0", "--seconds", "120", "--scenario",
                  temp_file("scenario_" + name + ".json", scenario)}) {
    std::string line = process_.first_line();
    std::size_t at = line.find("http://127.0.0.1:");
    if (at == std::string::npos) throw std::runtime_error("mock did not start: " + line);
    base_url_ = line.substr(at);
    port_ = std::stoi(base_url_.substr(17));
  }
  const std::string& base_url() const { return base_url_; }
  int port() const { return port_; }

 private:
  Background process_;
  std::string base_url_;
  int port_ = 0;
};

std::string config(const std::vector<std::pair<std::string, std::string>>& tiers) {
  json endpoints = json::array(), priority = json::array();
  for (const auto& [name, url] : tiers) {
    endpoints.push_back({{"name", name}, {"base_url", url}, {"api_key", "sk-" + name}});
    priority.push_back({{"model", "gpt-4.1"}, {"routes", {name}}});
  }
  return temp_file("config.json", json{{"endpoints", endpoints}, {"priority", priority}}.dump());
}

TEST(Cli, ABaseUrlWithoutItsVersionPathNamesTheURLRequested) {
  Mock up("up", R"({"reply": "pong"})");
  const std::string root = up.base_url().substr(0, up.base_url().size() - 3);  // no /v1
  const std::string cfg = config({{"up", root}});
  auto chat = run({kCli, "chat", "--config", cfg, "ping"});
  EXPECT_EQ(chat.exit_code, 1);
  EXPECT_NE(chat.err.find("HTTP 404 from " + root +
                          "/chat/completions, with no error message: is the endpoint's "
                          "base_url the API's base path (such as https://host/v1)?"),
            std::string::npos)
      << chat.err;
  auto health = run({kCli, "health", "--config", cfg});
  EXPECT_NE(health.out.find("HTTP 404 from " + root + "/models"), std::string::npos)
      << health.out << health.err;
}

TEST(Cli, FailsOverAndPrintsTheResponseWithTheTrace) {
  Mock down("down", R"({"then": 503})");
  Mock up("up", R"({"reply": "pong"})");
  auto r = run({kCli, "chat", "--config",
                config({{"down", down.base_url()}, {"up", up.base_url()}}), "--json", "ping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "pong");
  EXPECT_EQ(doc["object"], "chat.completion");
  EXPECT_EQ(doc["failover"]["served_by"], json({{"endpoint", "up"}, {"model", "gpt-4.1"}}));
  // The 503 came back fast: one retry of the asked-for model, then the next tier.
  ASSERT_EQ(doc["failover"]["attempts"].size(), 3u);
  EXPECT_EQ(doc["failover"]["attempts"][0]["endpoint"], "down");
  EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "overloaded");
  EXPECT_EQ(doc["failover"]["attempts"][0]["status"], 503);
  EXPECT_GT(doc["failover"]["attempts"][0]["delay_ms"].get<double>(), 0.0);
  EXPECT_EQ(doc["failover"]["attempts"][1]["endpoint"], "down");
  EXPECT_EQ(doc["failover"]["attempts"][2]["outcome"], "success");
  for (const char* key : {"endpoint", "model", "outcome", "status", "latency_ms", "delay_ms"}) {
    EXPECT_TRUE(doc["failover"]["attempts"][2].contains(key)) << key;
  }
  EXPECT_TRUE(doc["failover"].contains("cost_usd"));
  // The server's members come first, as sent; ours is appended last.
  EXPECT_GT(r.out.find("\"failover\""), r.out.find("\"choices\""));
}

TEST(Cli, CostAndTheUsageReport) {
  Mock up("priced", R"({"reply": "pong"})");
  json cfg = json::parse(R"({"endpoints": [{"name": "up", "api_key": "k"}],
                             "priority": [{"model": "gpt-4.1", "routes": ["up"]}],
                             "prices": {"gpt-4.1": {"input_per_mtok": 8.0, "output_per_mtok": 8.0}}})");
  cfg["endpoints"][0]["base_url"] = up.base_url();
  auto r = run({kCli, "chat", "--config", temp_file("priced.json", cfg.dump()), "--json", "--usage",
                "ping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  // The mock reports prompt = body bytes / 4 and completion = reply bytes / 4 + 1 tokens.
  const json& usage = doc["usage"];
  double expected =
      (usage["prompt_tokens"].get<double>() + usage["completion_tokens"].get<double>()) * 8.0 / 1e6;
  EXPECT_DOUBLE_EQ(doc["failover"]["cost_usd"].get<double>(), expected);
  const json& report = doc["failover"]["usage"];
  EXPECT_EQ(report["calls"], 1);
  EXPECT_EQ(report["routes"][0]["endpoint"], "up");
  EXPECT_EQ(report["routes"][0]["prompt_tokens"], usage["prompt_tokens"]);
  EXPECT_DOUBLE_EQ(report["routes"][0]["cost_usd"].get<double>(), expected);
  auto table =
      run({kCli, "chat", "--config", temp_file("priced2.json", cfg.dump()), "--usage", "ping"});
  EXPECT_EQ(table.out, "pong\n");
  EXPECT_NE(table.err.find("tokens in"), std::string::npos) << table.err;
}

TEST(Cli, AShortRateLimitIsWaitedForBeforeTheNextTier) {
  // The only route of tier 1 answers 429 with Retry-After: 1 once, then 200.
  Mock limited("limited_once", R"({"statuses": [429], "retry_after": "1", "reply": "tier 1"})");
  Mock backup("backup", R"({"reply": "tier 2"})");
  auto r = run({kCli, "chat", "--config",
                config({{"limited", limited.base_url()}, {"backup", backup.base_url()}}), "--json",
                "ping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "tier 1");
  ASSERT_EQ(doc["failover"]["attempts"].size(), 2u);
  EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "rate_limited");
  EXPECT_EQ(doc["failover"]["attempts"][0]["delay_ms"], 1000.0);  // Retry-After, honoured
  EXPECT_EQ(doc["failover"]["attempts"][1]["endpoint"], "limited");
  // A long wait moves to tier 2 at once.
  Mock long_limit("limited_long", R"({"then": 429, "retry_after": "30"})");
  auto l = run({kCli, "chat", "--config",
                config({{"limited", long_limit.base_url()}, {"backup", backup.base_url()}}),
                "--json", "ping"});
  ASSERT_EQ(l.exit_code, 0) << l.err;
  json ldoc = json::parse(l.out);
  EXPECT_EQ(ldoc["choices"][0]["message"]["content"], "tier 2");
  ASSERT_EQ(ldoc["failover"]["attempts"].size(), 2u);
  EXPECT_EQ(ldoc["failover"]["attempts"][0]["delay_ms"], 0.0);
}

TEST(Cli, PlainChatPrintsTheAnswer) {
  Mock up("plain", R"({"reply": "hello from the mock"})");
  auto r = run(
      {kCli, "chat", "--config", config({{"up", up.base_url()}}), "--system", "Be brief.", "ping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from the mock\n");
}

TEST(Cli, ConfigComesFromTheEnvironmentByDefault) {
  Mock up("env", R"({"reply": "via env"})");
  auto r = run({kCli, "chat", "ping"}, std::chrono::milliseconds(30000),
               {"FAILOVER_CONFIG=" + config({{"up", up.base_url()}})});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "via env\n");
}

TEST(Cli, EveryRouteUnauthorizedExitsOneWithTheErrorJson) {
  Mock a("auth_a", R"({"then": 401, "error_code": "invalid_api_key"})");
  Mock b("auth_b", R"({"then": 401, "error_code": "invalid_api_key"})");
  auto r = run({kCli, "chat", "--config", config({{"a", a.base_url()}, {"b", b.base_url()}}),
                "--json", "ping"});
  EXPECT_EQ(r.exit_code, 1);
  json doc = json::parse(r.out);
  ASSERT_TRUE(doc.contains("error"));
  EXPECT_EQ(doc["error"]["kind"], "all_routes_unavailable");
  EXPECT_NE(doc["error"]["message"].get<std::string>().find("authentication (HTTP 401)"),
            std::string::npos);
  EXPECT_EQ(doc["error"]["status"], 401);
  ASSERT_EQ(doc["error"]["attempts"].size(), 2u);
  EXPECT_EQ(doc["error"]["attempts"][0]["outcome"], "authentication");
  EXPECT_EQ(r.out.find("sk-a"), std::string::npos);
}

TEST(Cli, UnknownConfigKeyExitsTwoNamingIt) {
  std::string path = temp_file("bad.json", R"({"endpoints": [], "priority": [], "retyr": {}})");
  auto r = run({kCli, "chat", "--config", path, "ping"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("retyr is not a known key (did you mean retry?)"), std::string::npos)
      << r.err;
}

TEST(Cli, UsageErrorsExitTwoWithTheUsage) {
  auto r = run({kCli, "chat", "--no-such-flag", "x"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("Usage: chat"), std::string::npos) << r.err;
  EXPECT_EQ(run({kCli}).exit_code, 2);
}

// ---- The first hour: what a new user meets (issue 29, section 8) ----

int requests_of(const Mock& m);  // below

TEST(CliFirstHour, WithoutAConfigFileTheErrorSaysWhereTheDefaultComesFrom) {
  auto r = run({kCli, "chat", "ping"}, std::chrono::milliseconds(30000), {"FAILOVER_CONFIG="});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "failover: bad configuration: config file \"failover.json\" cannot be opened: No such "
            "file or directory; pass --config FILE or set $FAILOVER_CONFIG (without either, "
            "./failover.json is read)\n");
  auto named = run({kCli, "health"}, std::chrono::milliseconds(30000),
                   {"FAILOVER_CONFIG=/nonexistent/fleet.json"});
  EXPECT_EQ(named.exit_code, 2);
  EXPECT_EQ(named.err,
            "failover: bad configuration: config file \"/nonexistent/fleet.json\" cannot be "
            "opened: No such file or directory (named by $FAILOVER_CONFIG; pass --config FILE for "
            "another)\n");
  for (const char* command : {"chat", "health", "state"}) {
    auto help = run({kCli, command, "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find("default: $FAILOVER_CONFIG, then ./failover.json"), std::string::npos)
        << command << ": " << help.out;
  }
}

TEST(CliFirstHour, InvalidJsonNamesTheFileAndThePlaceWithoutTheLibrarysPrefix) {
  const std::string path = temp_file("broken.json", R"({"endpoints": [], "priority": [],})");
  auto r = run({kCli, "chat", "--config", path, "ping"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "failover: bad configuration: config file \"" + path +
                       "\" is not valid JSON: line 1, column 34: syntax error while parsing "
                       "object key - unexpected '}'; expected string literal\n");
}

TEST(CliFirstHour, AModelNoRouteServesIsAUsageErrorListingTheModelsThatAre) {
  Mock up("models", R"({"reply": "pong"})");
  auto r =
      run({kCli, "chat", "--config", config({{"up", up.base_url()}}), "--model", "gpt-5", "ping"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "failover: --model gpt-5: no route serves it; the configured routes serve gpt-4.1\n");
  EXPECT_EQ(requests_of(up), 0);
}

TEST(CliFirstHour, StateWithoutAStorePointsToTheDocsAndAnUnreachableOnePrintsJson) {
  Mock up("nostate", R"({"reply": "pong"})");
  auto none = run({kCli, "state", "--config", config({{"up", up.base_url()}})});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err,
            "failover: the configuration has no shared state store: add \"state\": {\"redis\": "
            "\"redis://127.0.0.1:6379/0\"} to share breakers, budgets, rate limits and the canary "
            "across processes (see docs/scale-out.md)\n");
  // A loopback port nothing listens on.
  json cfg = json::parse(std::ifstream(config({{"up", up.base_url()}})));
  cfg["state"] = {{"redis", "redis://127.0.0.1:1/0"}};
  auto down = run({kCli, "state", "--config", temp_file("down.json", cfg.dump()), "--json"});
  EXPECT_EQ(down.exit_code, 1);
  const json doc = json::parse(down.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << down.out;
  EXPECT_EQ(doc["store"], "redis://127.0.0.1:1/0");
  EXPECT_EQ(doc["error"]["kind"], "state_store_unreachable");
  EXPECT_NE(doc["error"]["message"].get<std::string>().find("redis://127.0.0.1:1/0"),
            std::string::npos)
      << doc.dump();
}

TEST(CliFirstHour, HealthSaysWhetherCallsStillServeAndFitsLongModelNames) {
  Mock up("healthy", R"({"reply": "pong"})");
  Mock down("broken", R"({"then": 401})");
  const std::string model = "accounts/fireworks/models/llama-v3p1-405b-instruct";
  json cfg = {
      {"endpoints",
       {{{"name", "up"}, {"base_url", up.base_url()}, {"api_key", "sk-u"}},
        {{"name", "a-rather-long-endpoint"}, {"base_url", down.base_url()}, {"api_key", "sk-d"}}}},
      {"priority", {{{"model", model}, {"routes", {"up", "a-rather-long-endpoint"}}}}},
      {"health", {{"probe", "chat"}}}};
  auto r = run({kCli, "health", "--config", temp_file("long.json", cfg.dump())});
  EXPECT_EQ(r.exit_code, 1) << r.err;  // a route failed its probe...
  std::istringstream lines(r.out);
  std::string header, first, second, summary;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, summary);
  // ...the columns stay aligned past a long name...
  const std::size_t status = header.find("STATUS");
  ASSERT_NE(status, std::string::npos) << r.out;
  EXPECT_EQ(first.substr(status, 3), "200") << r.out;
  EXPECT_EQ(second.substr(status, 3), "401") << r.out;
  EXPECT_EQ(header.find("MODEL"), first.find(model)) << r.out;
  // ...and the last line says what exit code 1 means here.
  EXPECT_EQ(summary, "1 of 2 routes failed their probe; calls fail over to the others") << r.out;
}

TEST(CliFirstHour, WatchIntoAPipeWritesNoScreenCodes) {
  Mock up("watch", R"({"reply": "pong"})");
  auto r = run({kCli, "health", "--config", config({{"up", up.base_url()}}), "--watch", "0.2"},
               std::chrono::milliseconds(1500));
  EXPECT_EQ(r.out.find('\033'), std::string::npos) << r.out;
  std::size_t tables = 0;
  for (std::size_t at = r.out.find("ENDPOINT"); at != std::string::npos;
       at = r.out.find("ENDPOINT", at + 1)) {
    ++tables;
  }
  EXPECT_GE(tables, 2u) << r.out;
  EXPECT_NE(r.out.find("\n\nENDPOINT"), std::string::npos) << r.out;  // a blank line between
}

TEST(CliFirstHour, VerboseAndLogLevelOnEveryCommandAndALogFileFromTheConfig) {
  for (const char* command : {"chat", "health", "shadow", "state", "mock"}) {
    auto help = run({kCli, command, "--help"});
    EXPECT_NE(help.out.find("-v,--verbose"), std::string::npos) << command << help.out;
    EXPECT_NE(help.out.find("--log-level"), std::string::npos) << command << help.out;
  }
  Mock up("verbose", R"({"reply": "pong"})");
  const std::string cfg = config({{"up", up.base_url()}});
  auto quiet = run({kCli, "chat", "--config", cfg, "ping"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");
  auto verbose = run({kCli, "chat", "--config", cfg, "-v", "ping"});
  ASSERT_EQ(verbose.exit_code, 0) << verbose.err;
  EXPECT_EQ(verbose.out, "pong\n");
  EXPECT_NE(verbose.err.find("failover: attempt 1 route=up/gpt-4.1 outcome=success status=200"),
            std::string::npos)
      << verbose.err;
  auto level = run({kCli, "chat", "--config", cfg, "-v", "--log-level", "error", "ping"});
  EXPECT_EQ(level.err, "");  // --log-level wins over -v
  auto bad = run({kCli, "chat", "--config", cfg, "--log-level", "loud", "ping"});
  EXPECT_EQ(bad.exit_code, 2);
  // A config user turns on debug logs to a file, without C++.
  const std::string log =
      ::testing::TempDir() + "failover_cli_" + std::to_string(::getpid()) + "_debug.log";
  std::remove(log.c_str());
  json with_log = json::parse(std::ifstream(cfg));
  with_log["log"] = {{"level", "debug"}, {"file", log}};
  auto logged = run({kCli, "chat", "--config", temp_file("log.json", with_log.dump()), "ping"});
  ASSERT_EQ(logged.exit_code, 0) << logged.err;
  EXPECT_EQ(logged.err, "");
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  EXPECT_NE(text.str().find("[debug] attempt 1 route=up/gpt-4.1 outcome=success"),
            std::string::npos)
      << text.str();
  std::remove(log.c_str());
}

TEST(CliFirstHour, MockHelpListsEveryScenarioKey) {
  auto help = run({kCli, "mock", "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  // The keys the scenario parser knows, as its own error message lists them.
  auto bad = run({kCli, "mock", "--scenario", temp_file("bad_scenario.json", R"({"nope": 1})")});
  EXPECT_EQ(bad.exit_code, 2);
  const std::size_t known = bad.err.find("(known: ");
  ASSERT_NE(known, std::string::npos) << bad.err;
  std::string list = bad.err.substr(known + 8, bad.err.find(')', known) - known - 8);
  std::istringstream keys(list);
  int seen = 0;
  for (std::string key; std::getline(keys, key, ',');) {
    key.erase(0, key.find_first_not_of(' '));
    EXPECT_NE(help.out.find("\n  " + key + " "), std::string::npos) << key << "\n" << help.out;
    ++seen;
  }
  EXPECT_EQ(seen, 18);
  for (const char* stream_key : {"chunks", "interval_ms", "cut_after", "stall_after", "stall_ms"}) {
    EXPECT_NE(help.out.find(std::string("\"") + stream_key + "\""), std::string::npos)
        << stream_key;
  }
}

TEST(CliFirstHour, TheUsageTableSaysServedAndFailed) {
  Mock down("usage_down", R"({"then": 401})");
  Mock up("usage_up", R"({"reply": "pong"})");
  auto r = run({kCli, "chat", "--config",
                config({{"down", down.base_url()}, {"up", up.base_url()}}), "--usage", "ping"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("route                        served failed  tokens in tokens out"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("down/gpt-4.1                      0      1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("up/gpt-4.1                        1      0"), std::string::npos) << r.err;
}

TEST(Cli, StreamPrintsTokensAsTheyArrive) {
  Mock up("stream", R"({"reply": "Hello there friend", "stream": {"interval_ms": 5}})");
  auto r = run({kCli, "chat", "--config", config({{"up", up.base_url()}}), "--stream", "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello there friend\n");
}

TEST(Cli, InterruptedStreamReportsThePartialAnswer) {
  Mock up("cut", R"({"reply": "a b c d", "stream": {"cut_after": 2}})");
  auto r =
      run({kCli, "chat", "--config", config({{"up", up.base_url()}}), "--stream", "--json", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["error"]["kind"], "stream_interrupted");
  EXPECT_EQ(doc["error"]["partial"]["text"], "a b ");
  EXPECT_TRUE(doc["error"]["partial"]["finish_reason"].is_null());
}

// ---- Real providers' answers replayed on loopback, a healthy second tier behind each ----

using testing::HealthyServer;
using testing::recorded;
using testing::recorded_sse;
using testing::ReplayServer;
using testing::sse_data;

// `first` replaying, `second` healthy, one tier each; `extra` merged into the config.
std::string replay_config(const ReplayServer& first, const HealthyServer& second,
                          const json& extra = json::object()) {
  json cfg = {{"endpoints",
               {{{"name", "first"}, {"base_url", first.base_url()}, {"api_key", "sk-first-secret"}},
                {{"name", "second"}, {"base_url", second.base_url()}, {"api_key", "sk-second"}}}},
              {"priority",
               {{{"model", "gpt-4.1"}, {"routes", {"first"}}},
                {{"model", "gpt-4.1"}, {"routes", {"second"}}}}}};
  cfg.update(extra);
  return temp_file("replay.json", cfg.dump());
}

json chat_json(const std::string& cfg, bool stream = false) {
  std::vector<std::string> argv = {kCli, "chat", "--config", cfg, "--json", "hi"};
  if (stream) argv.insert(argv.begin() + 2, "--stream");
  auto r = run(argv);
  json doc = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << r.out << r.err;
  EXPECT_EQ(r.exit_code, doc.contains("error") ? 1 : 0) << r.err;
  return doc;
}

// ---- Stream recovery: a primary that breaks after content, a fallback in the same tier ----

// 60 words, one streamed piece each.
std::string sixty_words() {
  std::string text;
  for (int i = 1; i <= 60; ++i) text += "w" + std::to_string(i) + (i < 60 ? " " : "");
  return text;
}

std::string recovery_config(const Mock& primary, const Mock& fallback, const std::string& mode,
                            bool fallback_continues = false, const json& extra = json::object()) {
  json second = {{"name", "fallback"}, {"base_url", fallback.base_url()}, {"api_key", "sk-f"}};
  if (fallback_continues) second["continuation"] = "prefill";
  json cfg = {
      {"endpoints",
       {{{"name", "primary"}, {"base_url", primary.base_url()}, {"api_key", "sk-p"}}, second}},
      {"priority", {{{"model", "gpt-4.1"}, {"routes", {"primary", "fallback"}}}}},
      {"stream_recovery", mode}};
  cfg.update(extra);
  return temp_file("recovery.json", cfg.dump());
}

int requests_of(const Mock& m) {
  httplib::Client c("127.0.0.1", m.port());
  auto r = c.Get("/_mock/stats");
  return r ? json::parse(r->body)["requests"].get<int>() : -1;
}

const std::string kSixty = sixty_words();

std::string scenario(const json& s) {
  json out = {{"reply", kSixty}};
  out.update(s);
  return out.dump();
}

TEST(CliRecovery, ACutAfter40Of60ChunksRestartsWithTheWholeAnswer) {
  Mock primary("cut40", scenario({{"stream", {{"cut_after", 40}, {"interval_ms", 1}}}}));
  Mock fallback("whole", scenario({{"stream", {{"interval_ms", 1}}}}));
  const std::string cfg = recovery_config(primary, fallback, "restart");
  auto r = run({kCli, "chat", "--config", cfg, "--stream", "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The partial line, then the whole answer on a line of its own.
  std::string partial;
  for (int i = 1; i <= 40; ++i) partial += "w" + std::to_string(i) + " ";
  EXPECT_EQ(r.out, partial + "\n" + kSixty + "\n");
  const std::string notice = "failover: the stream broke; the answer restarts from the beginning";
  EXPECT_NE(r.err.find(notice), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(notice), r.err.rfind(notice));  // exactly one restart

  json doc = chat_json(cfg, /*stream=*/true);
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], kSixty);
  const json& attempts = doc["failover"]["attempts"];
  ASSERT_EQ(attempts.size(), 2u) << doc.dump();
  EXPECT_EQ(attempts[0]["outcome"], "stream_interrupted");
  EXPECT_EQ(attempts[0]["delivered_chunks"], 41);  // the role chunk and 40 words
  EXPECT_EQ(attempts[1]["outcome"], "success");
  EXPECT_EQ(attempts[1]["recovery"], "restart");
  EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "fallback");
}

TEST(CliRecovery, AStallPastTheIdleLimitRestartsOnTheFallback) {
  Mock primary(
      "stall20",
      scenario({{"stream", {{"stall_after", 20}, {"stall_ms", 30000}, {"interval_ms", 1}}}}));
  Mock fallback("whole", scenario({{"stream", {{"interval_ms", 1}}}}));
  const std::string cfg =
      recovery_config(primary, fallback, "restart", false, {{"timeouts", {{"idle_ms", 2000}}}});
  const auto start = std::chrono::steady_clock::now();
  json doc = chat_json(cfg, /*stream=*/true);
  const double seconds_taken =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], kSixty);
  const json& attempts = doc["failover"]["attempts"];
  ASSERT_EQ(attempts.size(), 2u) << doc.dump();
  EXPECT_EQ(attempts[0]["outcome"], "stream_interrupted");
  EXPECT_EQ(attempts[0]["message"], "timeout: no stream chunk within the idle timeout of 2000 ms");
  EXPECT_GE(attempts[0]["latency_ms"].get<double>(), 2000.0);
  // The answer came from the fallback long before the primary's 30 s stall would have ended.
  EXPECT_LT(seconds_taken, 25.0);
  std::printf("stall recovered in %.2f s\n", seconds_taken);
}

TEST(CliRecovery, ContinueFinishesThePartialAnswerWithNothingRepeatedAtTheSeam) {
  Mock primary("cut40", scenario({{"stream", {{"cut_after", 40}, {"interval_ms", 1}}}}));
  Mock fallback("continues", scenario({{"stream", {{"interval_ms", 1}}}, {"prefill", "continue"}}));
  const std::string cfg = recovery_config(primary, fallback, "continue", true);
  auto r = run({kCli, "chat", "--config", cfg, "--stream", "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kSixty + "\n");  // partial + continuation, printed once
  EXPECT_EQ(r.err.find("restarts"), std::string::npos) << r.err;

  json doc = chat_json(cfg, /*stream=*/true);
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], kSixty);
  EXPECT_EQ(doc["failover"]["attempts"][1]["recovery"], "continue");
}

TEST(CliRecovery, AFallbackRefusingThePrefixRestartsAndTheTraceNamesTheCut) {
  Mock primary("cut40", scenario({{"stream", {{"cut_after", 40}, {"interval_ms", 1}}}}));
  Mock fallback("refuses", scenario({{"stream", {{"interval_ms", 1}}}, {"prefill", "reject"}}));
  json doc = chat_json(recovery_config(primary, fallback, "continue", true), /*stream=*/true);
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], kSixty);
  const json& attempts = doc["failover"]["attempts"];
  ASSERT_EQ(attempts.size(), 3u) << doc.dump();
  EXPECT_EQ(attempts[0]["outcome"], "stream_interrupted");
  EXPECT_EQ(attempts[0]["message"].get<std::string>().rfind("connection_lost: ", 0), 0u)
      << attempts[0]["message"];
  EXPECT_EQ(attempts[1]["outcome"], "invalid_request");
  EXPECT_EQ(attempts[1]["status"], 400);
  EXPECT_EQ(attempts[2]["outcome"], "success");
  EXPECT_EQ(attempts[2]["recovery"], "restart");
}

TEST(CliRecovery, FailEndsWithThePartialAndNeverAsksTheFallback) {
  Mock primary("cut40", scenario({{"stream", {{"cut_after", 40}, {"interval_ms", 1}}}}));
  Mock fallback("whole", scenario({{"stream", {{"interval_ms", 1}}}}));
  json doc = chat_json(recovery_config(primary, fallback, "fail"), /*stream=*/true);
  ASSERT_TRUE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["error"]["kind"], "stream_interrupted");
  std::string partial;
  for (int i = 1; i <= 40; ++i) partial += "w" + std::to_string(i) + " ";
  EXPECT_EQ(doc["error"]["partial"]["text"], partial);
  EXPECT_EQ(doc["error"]["attempts"].size(), 1u);
  EXPECT_EQ(requests_of(fallback), 0);
}

// ---- Shared state on Redis: separate `failover` processes, one redis-server ----

std::string shared_config(const Mock& primary, const Mock& secondary, const std::string& redis) {
  json cfg = {{"endpoints",
               {{{"name", "primary"}, {"base_url", primary.base_url()}, {"api_key", "sk-p"}},
                {{"name", "secondary"}, {"base_url", secondary.base_url()}, {"api_key", "sk-s"}}}},
              {"priority", {{{"model", "gpt-4.1"}, {"routes", {"primary", "secondary"}}}}},
              {"circuit_breaker",
               {{"consecutive_failures", 1}, {"open_ms", 30000}, {"max_open_ms", 60000}}},
              {"state", {{"redis", redis}, {"sync_ms", 50}}}};
  return temp_file("shared.json", cfg.dump());
}

// Ten one-call processes in a row against a primary that answers 503, with the default breaker
// (5 failures in a row): no process reaches 5 alone (each fails twice), but their failures add up
// on the fleet's window of the route's calls, and the route opens for all.
TEST(CliSharedState, FailuresOfOneCallProcessesAddUpAndOpenTheRouteForTheFleet) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock primary("down", R"({"then": 503})");
  Mock secondary("up", R"({"reply": "served"})");
  json cfg = json::parse(std::ifstream(shared_config(primary, secondary, redis.url())));
  // The default thresholds, with an open period that outlasts a slow (sanitized) run.
  cfg["circuit_breaker"] = {{"open_ms", 60000}, {"max_open_ms", 120000}};
  // Tiers of their own: the primary, last of its tier, gets its one retry of a 503.
  cfg["priority"] = {{{"model", "gpt-4.1"}, {"routes", {"primary"}}},
                     {{"model", "gpt-4.1"}, {"routes", {"secondary"}}}};
  const std::string file = temp_file("fleet_window.json", cfg.dump());
  std::vector<int> sent;  // the primary's requests after each process
  for (int i = 0; i < 10; ++i) {
    json doc = chat_json(file);
    ASSERT_FALSE(doc.contains("error")) << doc.dump();
    EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "secondary") << doc.dump();
    sent.push_back(requests_of(primary));
  }
  EXPECT_EQ(sent[0], 2);  // one process alone never reaches the threshold
  // The fifth failure, in the third process, trips it for the fleet (that process skips its
  // retry when the trip comes during its backoff): from the fourth on, none tries the primary.
  EXPECT_GE(sent[2], 5) << ::testing::PrintToString(sent);
  EXPECT_LE(sent[2], 6) << ::testing::PrintToString(sent);
  EXPECT_EQ(sent[9], sent[2]) << ::testing::PrintToString(sent);

  auto shown = run({kCli, "state", "--config", file, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const json state = json::parse(shown.out);
  EXPECT_EQ(state["routes"][0]["endpoint"], "primary");
  EXPECT_EQ(state["routes"][0]["breaker"], "open") << state.dump();
  EXPECT_EQ(state["routes"][1]["breaker"], "closed");
}

TEST(CliSharedState, TheNextRunShowsTheCoolingDownRouteAsSkippedWithItsReason) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock primary("cooling", R"({"then": 429, "retry_after": "30"})");
  Mock secondary("up", R"({"reply": "served"})");
  const std::string cfg = shared_config(primary, secondary, redis.url());
  json first = chat_json(cfg);
  ASSERT_FALSE(first.contains("error")) << first.dump();
  EXPECT_EQ(first["failover"]["attempts"][0]["outcome"], "rate_limited");
  EXPECT_TRUE(first["failover"]["skipped"].empty()) << first.dump();
  json second = chat_json(cfg);  // the cooldown is the fleet's: this run passes primary over
  ASSERT_FALSE(second.contains("error")) << second.dump();
  ASSERT_EQ(second["failover"]["attempts"].size(), 1u) << second.dump();
  EXPECT_EQ(second["failover"]["attempts"][0]["endpoint"], "secondary");
  const json& skipped = second["failover"]["skipped"];
  ASSERT_EQ(skipped.size(), 1u) << second.dump();
  EXPECT_EQ(skipped[0]["endpoint"], "primary");
  EXPECT_EQ(skipped[0]["reason"], "cooling_down");
  EXPECT_GT(skipped[0]["for_ms"].get<double>(), 20000.0) << second.dump();
  EXPECT_LE(skipped[0]["for_ms"].get<double>(), 30000.0) << second.dump();
  EXPECT_EQ(
      skipped[0]["message"].get<std::string>().rfind("cooling down after a rate limit for ", 0), 0u)
      << second.dump();
  EXPECT_EQ(requests_of(primary), 1);
}

TEST(CliSharedState, ABreakerOpenedByOneRunHoldsTheNextRunAndStateShowsIt) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock primary("down", R"({"then": 503})");
  Mock secondary("up", R"({"reply": "served"})");
  const std::string cfg = shared_config(primary, secondary, redis.url());

  json first = chat_json(cfg);
  ASSERT_FALSE(first.contains("error")) << first.dump();
  ASSERT_EQ(first["failover"]["attempts"].size(), 2u) << first.dump();
  EXPECT_EQ(first["failover"]["attempts"][0]["outcome"], "overloaded");

  json second = chat_json(cfg);  // another process: it starts from the fleet's state
  ASSERT_FALSE(second.contains("error")) << second.dump();
  ASSERT_EQ(second["failover"]["attempts"].size(), 1u) << second.dump();
  EXPECT_EQ(second["failover"]["attempts"][0]["endpoint"], "secondary");
  EXPECT_EQ(requests_of(primary), 1);

  auto shown = run({kCli, "state", "--config", cfg, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  json state = json::parse(shown.out);
  EXPECT_EQ(state["store"], "redis://127.0.0.1:" + std::to_string(redis.port()) + "/0");
  ASSERT_EQ(state["routes"].size(), 2u);
  EXPECT_EQ(state["routes"][0]["endpoint"], "primary");
  EXPECT_EQ(state["routes"][0]["breaker"], "open");
  EXPECT_GT(state["routes"][0]["open"]["for_ms"].get<long long>(), 20000);
  EXPECT_EQ(state["routes"][1]["breaker"], "closed");

  auto reset =
      run({kCli, "state", "--config", cfg, "--reset-breaker", "primary/gpt-4.1", "--json"});
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(json::parse(reset.out)["routes"][0]["breaker"], "closed");
  auto unknown = run({kCli, "state", "--config", cfg, "--reset-breaker", "nope/x"});
  EXPECT_EQ(unknown.exit_code, 2);
}

// With budget.fail_closed and the store down, a priced call is refused before any traffic and
// says which store; without it, the call is served on what the process knows.
TEST(CliSharedState, AFailClosedBudgetRefusesPricedCallsWhileTheStoreIsDown) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  const std::string url = redis.url();
  redis.stop();
  Mock upstream("up", R"({"reply": "served"})");
  auto config = [&](bool fail_closed, const char* name) {
    json cfg = {
        {"endpoints", {{{"name", "up"}, {"base_url", upstream.base_url()}, {"api_key", "sk-u"}}}},
        {"priority", {{{"model", "gpt-4.1"}, {"routes", {"up"}}}}},
        {"prices", {{"gpt-4.1", {{"input_per_mtok", 1.0}, {"output_per_mtok", 1.0}}}}},
        {"budget", {{"usd_per_day", 10.0}, {"fail_closed", fail_closed}}},
        {"state", {{"redis", url}, {"sync_ms", 50}}}};
    return temp_file(name, cfg.dump());
  };
  auto refused = run({kCli, "chat", "--config", config(true, "closed.json"), "--json", "hi"});
  ASSERT_EQ(refused.exit_code, 1) << refused.out << refused.err;
  const json doc = json::parse(refused.out);
  EXPECT_EQ(doc["error"]["kind"], "budget_exceeded") << refused.out;
  const std::string message = doc["error"]["message"];
  EXPECT_NE(message.find(url), std::string::npos) << message;
  EXPECT_NE(message.find("cannot be reached"), std::string::npos) << message;
  EXPECT_EQ(requests_of(upstream), 0);  // sent nothing

  auto served = run({kCli, "chat", "--config", config(false, "open.json"), "--json", "hi"});
  ASSERT_EQ(served.exit_code, 0) << served.out << served.err;
  EXPECT_EQ(json::parse(served.out)["choices"][0]["message"]["content"], "served");
  EXPECT_EQ(requests_of(upstream), 1);
}

TEST(CliSharedState, ABudgetSpentByEarlierRunsRefusesTheNextBeforeAnyTraffic) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock upstream("up", R"({"reply": "served"})");
  // The mock charges a token per four bytes of the request: at a tenth of a cent a token a
  // call costs a few cents, so a dime lasts a few runs.
  json cfg_json = {
      {"endpoints", {{{"name", "up"}, {"base_url", upstream.base_url()}, {"api_key", "sk-u"}}}},
      {"priority", {{{"model", "gpt-4.1"}, {"routes", {"up"}}}}},
      {"prices", {{"gpt-4.1", {{"input_per_mtok", 1000.0}, {"output_per_mtok", 1000.0}}}}},
      {"budget", {{"usd_per_day", 0.1}}},
      {"state", {{"redis", redis.url()}, {"sync_ms", 50}}}};
  const std::string cfg = temp_file("budget.json", cfg_json.dump());
  int served = 0;
  testing::RunResult last;
  for (int i = 0; i < 20; ++i) {  // one process per run
    last = run({kCli, "chat", "--config", cfg, "--json", "hi"});
    if (last.exit_code != 0) break;
    ++served;
  }
  ASSERT_GE(served, 1);
  ASSERT_EQ(last.exit_code, 1) << last.err;
  json refused = json::parse(last.out);
  EXPECT_EQ(refused["error"]["kind"], "budget_exceeded") << last.out;
  EXPECT_TRUE(refused["error"]["attempts"].empty()) << last.out;
  EXPECT_EQ(requests_of(upstream), served);  // the refused run sent nothing

  auto shown = run({kCli, "state", "--config", cfg, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  json spend = json::parse(shown.out)["spend"];
  EXPECT_GE(spend["day"]["usd"].get<double>(), 0.1 - 0.001)
      << spend.dump();  // less than an estimate
  EXPECT_EQ(spend["day"]["limit_usd"], 0.1);
  EXPECT_EQ(spend["day"]["usd"], spend["month"]["usd"]);
  EXPECT_EQ(spend["held_usd"], 0.0);

  // Another refused run still sends nothing; after an operator's reset, the next run serves.
  EXPECT_EQ(run({kCli, "chat", "--config", cfg, "hi"}).exit_code, 1);
  EXPECT_EQ(requests_of(upstream), served);
  auto reset = run({kCli, "state", "--config", cfg, "--reset-spend", "--json"});
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(json::parse(reset.out)["spend"]["day"]["usd"], 0.0);
  auto again = run({kCli, "chat", "--config", cfg, "hi"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "served\n");
}

// ---- Per-route request shaping ----

json last_request_of(const Mock& m) {
  httplib::Client c("127.0.0.1", m.port());
  auto r = c.Get("/_mock/stats");
  return r ? json::parse(r->body)["last_request"] : json();
}

TEST(CliShaping, ARouteThatDropsMaxTokensNeverGetsItAndTheNextRouteDoes) {
  Mock relay("relay", R"({"then": 503})");
  Mock direct("direct", R"({"reply": "served"})");
  json cfg = {{"endpoints",
               {{{"name", "relay"}, {"base_url", relay.base_url()}, {"api_key", "sk-r"}},
                {{"name", "direct"}, {"base_url", direct.base_url()}, {"api_key", "sk-d"}}}},
              {"priority",
               {{{"routes",
                  {{{"endpoint", "relay"},
                    {"model", "gpt-4.1"},
                    {"drop_params", {"max_tokens"}},
                    {"params", {{"reasoning_effort", "low"}}}}}}},
                {{"model", "gpt-4.1"}, {"routes", {"direct"}}}}}};
  const std::string file = temp_file("shaping.json", cfg.dump());
  auto r = run({kCli, "chat", "--config", file, "--max-tokens", "64", "--json", "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "overloaded") << r.out;
  const json to_relay = last_request_of(relay);
  const json to_direct = last_request_of(direct);
  ASSERT_TRUE(to_relay.is_object() && to_direct.is_object());
  EXPECT_FALSE(to_relay.contains("max_tokens")) << to_relay.dump();
  EXPECT_EQ(to_relay["reasoning_effort"], "low");
  EXPECT_EQ(to_direct["max_tokens"], 64) << to_direct.dump();
  EXPECT_FALSE(to_direct.contains("reasoning_effort"));
}

// ---- Native dialects: a relay (Chat Completions), then Anthropic, then Gemini ----

std::string dialect_config(const Mock& relay, const Mock& claude, const Mock& gemini) {
  json cfg = {{"endpoints",
               {{{"name", "relay"}, {"base_url", relay.base_url()}, {"api_key", "sk-relay"}},
                {{"name", "anthropic"},
                 {"base_url", claude.base_url()},
                 {"api_key", "sk-ant"},
                 {"dialect", "anthropic"}},
                {{"name", "google"},
                 {"base_url", gemini.base_url()},
                 {"api_key", "g-key"},
                 {"dialect", "gemini"}}}},
              {"priority",
               {{{"model", "gpt-4.1"}, {"routes", {"relay"}}},
                {{"model", "claude-sonnet-4-5"}, {"routes", {"anthropic"}}},
                {{"model", "gemini-2.5-flash"}, {"routes", {"google"}}}}}};
  return temp_file("dialects.json", cfg.dump());
}

TEST(CliDialects, TheRelayFailsAnthropicServesAndGeminiServesWhenAnthropicIsOverloaded) {
  Mock relay("relay", R"({"then": 503})");
  Mock claude("claude", R"({"dialect": "anthropic", "reply": "from claude"})");
  Mock gemini("gemini", R"({"dialect": "gemini", "reply": "from gemini"})");
  const std::string cfg = dialect_config(relay, claude, gemini);
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "--stream" : "whole");
    json doc = chat_json(cfg, stream);
    EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "anthropic") << doc.dump();
    EXPECT_EQ(doc["choices"][0]["message"]["content"], "from claude");
    EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "overloaded");
    const json sent = last_request_of(claude);
    EXPECT_EQ(sent["model"], "claude-sonnet-4-5") << sent.dump();
    EXPECT_EQ(sent["max_tokens"], 4096);
    EXPECT_EQ(sent["messages"][0]["content"][0]["text"], "hi");
    EXPECT_EQ(sent.value("stream", false), true);  // whole answers are assembled from a stream
  }
  EXPECT_EQ(requests_of(gemini), 0);

  Mock overloaded("overloaded", R"({"dialect": "anthropic", "then": 529})");
  const std::string cfg2 = dialect_config(relay, overloaded, gemini);
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "--stream" : "whole");
    json doc = chat_json(cfg2, stream);
    EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "google") << doc.dump();
    EXPECT_EQ(doc["failover"]["served_by"]["model"], "gemini-2.5-flash");
    EXPECT_EQ(doc["choices"][0]["message"]["content"], "from gemini");
    bool saw_529 = false;
    for (const json& a : doc["failover"]["attempts"]) {
      saw_529 = saw_529 || (a["endpoint"] == "anthropic" && a["status"] == 529 &&
                            a["outcome"] == "overloaded");
    }
    EXPECT_TRUE(saw_529) << doc["failover"]["attempts"].dump();
    const json sent = last_request_of(gemini);
    EXPECT_EQ(sent["contents"][0]["parts"][0]["text"], "hi") << sent.dump();
  }
  EXPECT_EQ(requests_of(gemini), 2);
}

TEST(CliDialects, AnAnthropicFallbackContinuesABrokenStreamByItsNativePrefill) {
  Mock primary("cut40", scenario({{"stream", {{"cut_after", 40}, {"interval_ms", 1}}}}));
  Mock fallback("claude_continues", scenario({{"dialect", "anthropic"},
                                              {"stream", {{"interval_ms", 1}}},
                                              {"prefill", "continue"}}));
  json cfg = {{"endpoints",
               {{{"name", "primary"}, {"base_url", primary.base_url()}, {"api_key", "sk-p"}},
                {{"name", "claude"},
                 {"base_url", fallback.base_url()},
                 {"api_key", "sk-ant"},
                 {"dialect", "anthropic"},
                 {"continuation", "prefill"}}}},
              {"priority",  // one tier: the break goes to the other route, not a retry
               {{{"routes",
                  {{{"endpoint", "primary"}, {"model", "gpt-4.1"}},
                   {{"endpoint", "claude"}, {"model", "claude-sonnet-4-5"}}}}}}},
              {"stream_recovery", "continue"}};
  const std::string file = temp_file("claude_continue.json", cfg.dump());
  auto r = run({kCli, "chat", "--config", file, "--stream", "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kSixty + "\n");  // the partial answer, then what followed it: once each
  const json sent = last_request_of(fallback);
  ASSERT_TRUE(sent.is_object());
  const json& last = sent["messages"].back();
  EXPECT_EQ(last["role"], "assistant") << sent.dump();
  const std::string prefix = last["content"][0]["text"];
  EXPECT_EQ(kSixty.compare(0, prefix.size(), prefix), 0) << prefix;
  EXPECT_GT(prefix.size(), 100u);  // about 40 words were shown before the cut
  // Anthropic refuses a prefill ending in whitespace (the mock too): the shown "... w40 " went
  // as "... w40", and the space opening the continuation was not printed twice (above).
  EXPECT_NE(prefix.back(), ' ');
  json doc = chat_json(file, /*stream=*/true);
  EXPECT_EQ(doc["choices"][0]["message"]["content"], kSixty);
  EXPECT_EQ(doc["failover"]["attempts"][1]["endpoint"], "claude") << doc.dump();
  EXPECT_EQ(doc["failover"]["attempts"][1]["recovery"], "continue");
}

TEST(CliDialects, TheMocksFaultsInTheNativeDialects) {
  // Gemini's 429 carries a RetryInfo of 30 s: too long to wait, so the next tier serves.
  Mock limited("gemini_429", R"({"dialect": "gemini", "then": 429, "retry_after": "30"})");
  Mock claude("claude_ok", R"({"dialect": "anthropic", "reply": "from claude"})");
  json cfg = {{"endpoints",
               {{{"name", "google"},
                 {"base_url", limited.base_url()},
                 {"api_key", "g-key"},
                 {"dialect", "gemini"}},
                {{"name", "anthropic"},
                 {"base_url", claude.base_url()},
                 {"api_key", "sk-ant"},
                 {"dialect", "anthropic"}}}},
              {"priority",
               {{{"model", "gemini-2.5-flash"}, {"routes", {"google"}}},
                {{"model", "claude-sonnet-4-5"}, {"routes", {"anthropic"}}}}},
              {"stream_recovery", "restart"}};
  json doc = chat_json(temp_file("gemini429.json", cfg.dump()), /*stream=*/false);
  EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "anthropic") << doc.dump();
  EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "rate_limited");
  EXPECT_EQ(doc["failover"]["attempts"][0]["status"], 429);
  EXPECT_EQ(requests_of(limited), 1);  // not retried within its 30 s

  // An Anthropic stream cut after its first words restarts on Gemini.
  Mock cut("claude_cut", R"({"dialect": "anthropic", "reply": "one two three four",
                              "stream": {"cut_after": 2, "interval_ms": 1}})");
  Mock gemini("gemini_ok", R"({"dialect": "gemini", "reply": "from gemini"})");
  cfg["endpoints"] = {{{"name", "anthropic"},
                       {"base_url", cut.base_url()},
                       {"api_key", "sk-ant"},
                       {"dialect", "anthropic"}},
                      {{"name", "google"},
                       {"base_url", gemini.base_url()},
                       {"api_key", "g"},
                       {"dialect", "gemini"}}};
  cfg["priority"] = {{{"routes",
                       {{{"endpoint", "anthropic"}, {"model", "claude-sonnet-4-5"}},
                        {{"endpoint", "google"}, {"model", "gemini-2.5-flash"}}}}}};
  doc = chat_json(temp_file("claudecut.json", cfg.dump()), /*stream=*/true);
  EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "google") << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "from gemini");
  EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "stream_interrupted");
  EXPECT_EQ(doc["failover"]["attempts"][1]["recovery"], "restart");
}

TEST(CliDialects, AToolCallThroughEachDialectComesBackAsToolCallsWithItsArguments) {
  const json arguments = {{"city", "Hà Nội"}, {"days", {1, 2}}, {"note", "say \"hi\"\n"}};
  for (const std::string dialect : {"openai", "anthropic", "gemini"}) {
    Mock mock("tool_" + dialect,
              json{{"dialect", dialect},
                   {"tool_call", {{"name", "get_weather"}, {"arguments", arguments}}}}
                  .dump());
    json endpoint = {{"name", "only"}, {"base_url", mock.base_url()}, {"api_key", "k-1234"}};
    if (dialect != "openai") endpoint["dialect"] = dialect;
    const std::string cfg = temp_file(
        "tool.json",
        json{{"endpoints", {endpoint}}, {"priority", {{{"model", "m-1"}, {"routes", {"only"}}}}}}
            .dump());
    for (bool stream : {false, true}) {
      SCOPED_TRACE(dialect + (stream ? " --stream" : " whole"));
      json doc = chat_json(cfg, stream);
      const json& message = doc["choices"][0]["message"];
      ASSERT_TRUE(message.contains("tool_calls")) << doc.dump();
      ASSERT_EQ(message["tool_calls"].size(), 1u);
      const json& call = message["tool_calls"][0];
      EXPECT_EQ(call["type"], "function");
      EXPECT_EQ(call["function"]["name"], "get_weather");
      EXPECT_FALSE(call["id"].get<std::string>().empty());
      EXPECT_EQ(json::parse(call["function"]["arguments"].get<std::string>()), arguments);
      EXPECT_EQ(doc["choices"][0]["finish_reason"], "tool_calls");
    }
  }
}

// ---- A fleet: several fleet_worker processes (a client each, many threads) on one Redis ----

const std::string kWorker = FLEET_WORKER_PATH;

// Runs the workers at once and returns each one's report (null when it printed none in time).
std::vector<json> run_fleet(const std::vector<std::vector<std::string>>& workers) {
  std::vector<std::unique_ptr<Background>> running;
  for (const auto& argv : workers) running.push_back(std::make_unique<Background>(argv));
  std::vector<json> reports;
  for (auto& w : running) {
    const std::string line = w->first_line(std::chrono::milliseconds(60000));
    reports.push_back(line.empty() ? json(nullptr) : json::parse(line, nullptr, false));
  }
  return reports;
}

// One endpoint on `upstream`, shared state on `redis`. A call waits up to a second on Redis
// here: on a loaded test machine the 10 ms default would let a call fall back to local state,
// which is right in production and not what these tests measure.
json fleet_config(const Mock& upstream, const std::string& redis) {
  return {{"endpoints", {{{"name", "up"}, {"base_url", upstream.base_url()}, {"api_key", "sk-u"}}}},
          {"priority", {{{"model", "gpt-4.1"}, {"routes", {"up"}}}}},
          {"state", {{"redis", redis}, {"sync_ms", 50}, {"call_timeout_ms", 1000}}}};
}

int sum_of(const std::vector<json>& reports, const char* field) {
  int total = 0;
  for (const json& r : reports) total += r.is_object() ? r.value(field, 0) : 0;
  return total;
}

TEST(CliFleet, FourProcessesShareOneRequestsPerMinuteLimit) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock upstream("up", R"({"reply": "served"})");
  json cfg = fleet_config(upstream, redis.url());
  cfg["endpoints"][0]["limits"] = {{"rpm", 60}};  // 60 at once, then one a second
  const std::string file = temp_file("fleet_rpm.json", cfg.dump());
  const auto start = std::chrono::steady_clock::now();
  std::vector<json> reports =
      run_fleet(std::vector<std::vector<std::string>>(4, {kWorker, file, "2", "3", "100000"}));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const json& r : reports) ASSERT_TRUE(r.is_object()) << "a worker printed no report";
  // What the limit allows over the run: the full bucket, and a refill of one a second.
  const double allowed = 60.0 + elapsed;
  const int seen = requests_of(upstream);
  EXPECT_EQ(seen, sum_of(reports, "ok"));
  EXPECT_LE(seen, allowed * 1.05) << "elapsed " << elapsed << " s";
  EXPECT_GE(seen, 60 * 0.95);
  // Each process alone would have sent about as many; together they were held to one limit.
  for (const json& r : reports) EXPECT_GT(r["errors"].value("rate_limited", 0), 0) << r.dump();
}

TEST(CliFleet, ABreakerTrippedInOneProcessHoldsTheOtherAndItsProbeClosesItForBoth) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  // The primary fails its 20th request only, when both processes are sending.
  json flaky = {{"reply", "primary"}, {"statuses", std::vector<int>(19, 200)}, {"then", 200}};
  flaky["statuses"].push_back(503);
  Mock primary("flaky", flaky.dump());
  Mock secondary("up", R"({"reply": "secondary"})");
  json cfg = fleet_config(primary, redis.url());
  cfg["endpoints"][0]["name"] = "primary";
  cfg["endpoints"].push_back(
      {{"name", "secondary"}, {"base_url", secondary.base_url()}, {"api_key", "sk-s"}});
  cfg["priority"] = {{{"model", "gpt-4.1"}, {"routes", {"primary"}}},
                     {{"model", "gpt-4.1"}, {"routes", {"secondary"}}}};
  cfg["circuit_breaker"] = {{"consecutive_failures", 1}, {"open_ms", 1000}, {"max_open_ms", 1000}};
  const std::string file = temp_file("fleet_breaker.json", cfg.dump());
  std::vector<json> reports = run_fleet(
      std::vector<std::vector<std::string>>(2, {kWorker, file, "1", "3", "100000", "0", "20"}));
  ASSERT_TRUE(reports[0].is_object() && reports[1].is_object()) << "a worker printed no report";
  EXPECT_EQ(reports[0]["failed_attempts"].get<int>() + reports[1]["failed_attempts"].get<int>(), 1);
  for (const json& r : reports) {
    EXPECT_EQ(r["ok"], r["calls"]) << r.dump();
    // The process whose calls never failed sent to the secondary too: it held the route the
    // other tripped, within the second the breaker stayed open...
    EXPECT_GT(r["served_by"].value("secondary", 0), 0) << r.dump();
    // ...and went back to the primary when the other's probe passed, long before its own
    // 10 s wait for a verdict would have ended.
    EXPECT_EQ(r["last"], "primary") << r.dump();
  }
}

TEST(CliFleet, FourProcessesOfSixteenThreadsStayWithinOneBudgetAndAFifthIsRefused) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock upstream("up", R"({"reply": "served"})");
  json cfg = fleet_config(upstream, redis.url());
  // The answer "served" is 2 completion tokens and a call asks for at most 2: each call is
  // estimated and charged exactly $0.001, and input is free. $0.05 is 50 calls.
  cfg["prices"] = {{"gpt-4.1", {{"input_per_mtok", 0.0}, {"output_per_mtok", 500.0}}}};
  cfg["budget"] = {{"usd_per_day", 0.05}};
  const std::string file = temp_file("fleet_budget.json", cfg.dump());
  std::vector<json> reports =
      run_fleet(std::vector<std::vector<std::string>>(4, {kWorker, file, "16", "20", "100", "2"}));
  for (const json& r : reports) ASSERT_TRUE(r.is_object()) << "a worker printed no report";
  const int served = sum_of(reports, "ok");
  EXPECT_EQ(served, 50);
  EXPECT_EQ(requests_of(upstream), served);
  for (const json& r : reports) EXPECT_GT(r["errors"].value("budget_exceeded", 0), 0) << r.dump();

  auto shown = run({kCli, "state", "--config", file, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const json spend = json::parse(shown.out)["spend"];
  EXPECT_LE(spend["day"]["usd"].get<double>(), 0.05 + 0.001 + 1e-12) << spend.dump();
  EXPECT_GE(spend["day"]["usd"].get<double>(), 0.05 - 1e-12) << spend.dump();
  EXPECT_EQ(spend["held_usd"], 0.0);

  auto fifth = run({kCli, "chat", "--config", file, "--json", "hi"});
  EXPECT_EQ(fifth.exit_code, 1) << fifth.err;
  EXPECT_EQ(json::parse(fifth.out)["error"]["kind"], "budget_exceeded") << fifth.out;
  EXPECT_EQ(requests_of(upstream), served);
}

TEST(CliFleet, ACanaryRolledBackInOneProcessStopsTheCandidateInAll) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock stable("stable", R"({"reply": "stable"})");
  // The candidate serves 40 requests, then fails.
  json failing = {{"reply", "candidate"}, {"statuses", std::vector<int>(40, 200)}, {"then", 503}};
  Mock candidate("candidate", failing.dump());
  auto config_with = [&](double error_rate, double min_success_rate, const std::string& name) {
    json cfg = fleet_config(stable, redis.url());
    cfg["endpoints"].push_back(
        {{"name", "cand"}, {"base_url", candidate.base_url()}, {"api_key", "sk-c"}});
    cfg["canary"] = {
        {"candidate", {{"endpoint", "cand"}, {"model", "gpt-4.1"}}},
        {"steps", {100}},
        {"rollback",
         {{"error_rate", error_rate}, {"min_success_rate", min_success_rate}, {"min_calls", 1}}}};
    return temp_file(name, cfg.dump());
  };
  // The first process rolls back on the candidate's first error; the other three never would
  // on their own.
  const std::string strict = config_with(0.01, 0.0, "canary_strict.json");
  const std::string lenient = config_with(1.0, 0.0, "canary_lenient.json");
  std::vector<json> reports = run_fleet({{kWorker, strict, "1", "3", "100000", "0", "20"},
                                         {kWorker, lenient, "1", "3", "100000", "0", "20"},
                                         {kWorker, lenient, "1", "3", "100000", "0", "20"},
                                         {kWorker, lenient, "1", "3", "100000", "0", "20"}});
  for (const json& r : reports) {
    ASSERT_TRUE(r.is_object()) << "a worker printed no report";
    EXPECT_EQ(r["canary"]["state"], "rolled_back") << r.dump();
    EXPECT_NE(r["canary"]["reason"].get<std::string>().find("above the 1 % limit"),
              std::string::npos)
        << r.dump();
    EXPECT_EQ(r["ok"], r["calls"]) << r.dump();  // every failed candidate call fell back
  }
  // After the rollback the lenient processes sent the candidate at most what they sent
  // before hearing of it (a sync period of 50 ms at a call every 20 ms): a few each.
  const int failed_on_candidate = requests_of(candidate) - 40;
  EXPECT_GE(failed_on_candidate, 1);
  EXPECT_LE(failed_on_candidate, 1 + 3 * 10);
  auto shown = run({kCli, "state", "--config", lenient, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const json canary = json::parse(shown.out)["canary"];
  EXPECT_EQ(canary["candidate"], "cand/gpt-4.1");
  EXPECT_EQ(canary["state"], "rolled_back");
  EXPECT_EQ(canary["percent"], 0.0);
}

TEST(CliFleet, RedisKilledAndRestartedMidRunFailsNoCallAndTheStoreFillsAgain) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  Mock upstream("up", R"({"reply": "served"})");
  json cfg = fleet_config(upstream, redis.url());
  cfg["endpoints"][0]["limits"] = {{"rpm", 1000000}};
  cfg["prices"] = {{"gpt-4.1", {{"input_per_mtok", 1.0}, {"output_per_mtok", 1.0}}}};
  cfg["budget"] = {{"usd_per_day", 1000.0}};
  cfg["state"]["call_timeout_ms"] = 50;
  const std::string file = temp_file("fleet_outage.json", cfg.dump());
  std::vector<std::unique_ptr<Background>> workers;
  for (int i = 0; i < 2; ++i) {
    workers.push_back(std::make_unique<Background>(
        std::vector<std::string>{kWorker, file, "2", "3", "100000", "0", "5"}));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  redis.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  redis.start();
  for (auto& w : workers) {
    const std::string line = w->first_line(std::chrono::milliseconds(60000));
    ASSERT_FALSE(line.empty()) << "a worker printed no report";
    const json r = json::parse(line);
    EXPECT_GT(r["calls"].get<int>(), 0);
    EXPECT_EQ(r["ok"], r["calls"]) << r.dump();
    EXPECT_TRUE(r["errors"].empty()) << r.dump();
  }
  // The restarted server (without persistence) starts empty; what the fleet spent after the
  // restart reached it.
  auto shown = run({kCli, "state", "--config", file, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_GT(json::parse(shown.out)["spend"]["day"]["usd"].get<double>(), 0.0) << shown.out;
}

TEST(CliSharedState, WithRedisDownChatStillServesAndSaysSoOnce) {
  if (!testing::redis_available()) GTEST_SKIP() << "redis-server is not installed";
  testing::RedisServer redis;
  const std::string url = redis.url();
  redis.stop();
  Mock primary("down", R"({"then": 503})");
  Mock secondary("up", R"({"reply": "served"})");
  const std::string cfg = shared_config(primary, secondary, url);
  auto r = run({kCli, "chat", "--config", cfg, "hi"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "served\n");
  const std::string said = "is unreachable";
  ASSERT_NE(r.err.find(said), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(said), r.err.rfind(said)) << r.err;
  auto state = run({kCli, "state", "--config", cfg});
  EXPECT_EQ(state.exit_code, 1);
  EXPECT_NE(state.err.find("unreachable"), std::string::npos);
}

TEST(CliProviders, AccountKeyModelAndContextErrorsAreServedByTheSecondTier) {
  const std::vector<std::pair<testing::RecordedAnswer, std::string>> cases = {
      {recorded(402, R"({"error":{"message":"Insufficient Balance","type":"unknown_error"}})"),
       "quota_exhausted"},
      {recorded(
           400,
           R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}})"),
       "quota_exhausted"},
      {recorded(
           400,
           R"({"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}})"),
       "authentication"},
      {recorded(
           400,
           R"({"code":"Client specified an invalid argument","error":"Incorrect API key provided: sk-fi***et."})"),
       "authentication"},
      {recorded(
           400,
           R"({"error":{"message":"Unable to access model gpt-4.1.","type":"invalid_request_error","code":"model_not_available"}})"),
       "not_found"},
      {recorded(
           400,
           R"({"object":"error","message":"max_tokens must be at least 1, got -563072.","type":"BadRequestError","code":400})"),
       "context_length_exceeded"},
      {recorded(
           500,
           R"({"error":{"code":500,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}})"),
       "context_length_exceeded"},
      {recorded(403, R"({"error":{"code":403,"message":"This account has no credits"}})"),
       "quota_exhausted"},
  };
  for (const auto& [answer, kind] : cases) {
    ReplayServer first(answer);
    HealthyServer second;
    json doc = chat_json(replay_config(first, second));
    SCOPED_TRACE(answer.parts[0].second);
    ASSERT_FALSE(doc.contains("error")) << doc.dump();
    EXPECT_EQ(doc["choices"][0]["message"]["content"], "fallback");
    EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "second");
    ASSERT_EQ(doc["failover"]["attempts"].size(), 2u);
    EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], kind);
  }
}

TEST(CliProviders, AnErrorChunkInA200StreamFailsOver) {
  ReplayServer first(recorded_sse(
      {": OPENROUTER PROCESSING\n\n",
       sse_data(
           R"({"id":"gen","object":"chat.completion.chunk","created":1,"model":"m","error":{"code":502,"message":"Provider disconnected"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})")}));
  HealthyServer second;
  json doc = chat_json(replay_config(first, second), /*stream=*/true);
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "fallback");
  EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "server_error");
  EXPECT_EQ(doc["failover"]["attempts"][0]["message"],
            "error event in the stream: Provider disconnected");
}

TEST(CliProviders, AnUnsupportedParameterFailsWithNoSecondAttempt) {
  ReplayServer first(recorded(
      400,
      R"({"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}})"));
  HealthyServer second;
  json doc = chat_json(replay_config(first, second));
  ASSERT_TRUE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["error"]["kind"], "invalid_request");
  EXPECT_EQ(doc["error"]["code"], "unsupported_parameter");
  EXPECT_EQ(doc["error"]["attempts"].size(), 1u);
  EXPECT_EQ(second.requests(), 0);
}

TEST(CliProviders, AContentFilterFailsTheCallUnlessConfiguredToFailOver) {
  ReplayServer first(recorded(
      400,
      R"({"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}})"));
  HealthyServer second;
  json doc = chat_json(replay_config(first, second));
  ASSERT_TRUE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["error"]["kind"], "content_filtered");
  EXPECT_NE(doc["error"]["message"].get<std::string>().find("content management policy"),
            std::string::npos);
  EXPECT_EQ(doc["error"]["attempts"].size(), 1u);
  json over = chat_json(replay_config(first, second, {{"content_filter", "fail_over"}}));
  ASSERT_FALSE(over.contains("error")) << over.dump();
  EXPECT_EQ(over["failover"]["attempts"][0]["outcome"], "content_filtered");
  EXPECT_EQ(over["failover"]["served_by"]["endpoint"], "second");
}

TEST(CliProviders, AReasoningStreamOutlastingTheFirstByteLimitIsServedWithItsReasoning) {
  auto chunk = [](const std::string& delta, const std::string& finish = "null") {
    return sse_data(
        R"({"id":"r","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":)" +
        delta + R"(,"finish_reason":)" + finish + "}]}");
  };
  testing::RecordedAnswer thinking;
  thinking.stream = true;
  thinking.parts.emplace_back(
      std::chrono::milliseconds(0),
      chunk(R"({"role":"assistant","content":null,"reasoning_content":"r "})"));
  // Then a reasoning delta every 0.5 s for 3 s, with a 1 s first-byte limit (in proportion,
  // longer in sanitized builds).
  for (int i = 0; i < 6; ++i) {
    thinking.parts.emplace_back(
        std::chrono::milliseconds(500 * testing::kTimeScale),
        chunk(R"({"content":null,"reasoning_content":"r)" + std::to_string(i) + R"( "})"));
  }
  thinking.parts.emplace_back(std::chrono::milliseconds(10), chunk(R"({"content":"Three."})"));
  thinking.parts.emplace_back(std::chrono::milliseconds(1),
                              chunk("{}", "\"stop\"") + sse_data("[DONE]"));
  ReplayServer first(thinking);
  HealthyServer second;
  json doc = chat_json(
      replay_config(first, second, {{"timeouts", {{"first_byte_ms", 1000 * testing::kTimeScale}}}}),
      /*stream=*/true);
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "first");
  EXPECT_EQ(doc["failover"]["attempts"].size(), 1u);
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "Three.");
  EXPECT_EQ(doc["choices"][0]["message"]["reasoning_content"], "r r0 r1 r2 r3 r4 r5 ");
  EXPECT_EQ(second.requests(), 0);
}

TEST(CliProviders, AnUnparseableEventIsSkippedAndTheTraceSaysSo) {
  auto chunk = [](const std::string& content) {
    return sse_data(
        R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":")" +
        content + R"("},"finish_reason":null}]})");
  };
  ReplayServer first(recorded_sse(
      {chunk("Hello"), "data: {\"id\":\"c\",\"choices\":[{\"delta\":\n\n", chunk(", world"),
       sse_data(R"({"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"),
       sse_data("[DONE]")}));
  HealthyServer second;
  json doc = chat_json(replay_config(first, second), /*stream=*/true);
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "Hello, world");
  ASSERT_EQ(doc["failover"]["attempts"].size(), 1u);
  EXPECT_EQ(doc["failover"]["attempts"][0]["skipped_events"], 1);
}

// ---- Time limits ----------------------------------------------------------------------------

// A config whose first tier is a silent route and whose second is `second`, with `timeouts`
// (none when null).
std::string silent_then(const testing::SilentServer& silent, const HealthyServer& second,
                        const json& timeouts, const std::string& name) {
  json cfg = {{"endpoints",
               {{{"name", "silent"}, {"base_url", silent.base_url()}, {"api_key", "k"}},
                {{"name", "second"}, {"base_url", second.base_url()}, {"api_key", "k"}}}},
              {"priority",
               {{{"model", "gpt-4.1"}, {"routes", {"silent"}}},
                {{"model", "gpt-4.1"}, {"routes", {"second"}}}}}};
  if (!timeouts.is_null()) cfg["timeouts"] = timeouts;
  return temp_file(name, cfg.dump());
}

TEST(CliTimeouts, ASilentFirstRouteOfAStreamFailsOverAtItsFirstByteLimit) {
  testing::SilentServer silent(testing::SilentServer::Mode::AcceptAndHold);
  HealthyServer second;
  json doc = chat_json(
      silent_then(silent, second, {{"total_ms", 20000}, {"first_byte_ms", 1000}}, "silent.json"),
      /*stream=*/true);
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "fallback");
  ASSERT_EQ(doc["failover"]["attempts"].size(), 2u);
  EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "timeout");
  EXPECT_NE(doc["failover"]["attempts"][0]["message"].get<std::string>().find("1000 ms"),
            std::string::npos);
  EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "second");
}

TEST(CliTimeouts, ALongAnswerSentWholeIsServedWhateverTheFirstByteLimit) {
  testing::LoopbackServer slow;
  slow.on_chat([](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // headers only when generation ends
    res.set_content(testing::completion_json("took a while"), "application/json");
  });
  slow.start();
  HealthyServer second;
  json cfg = {{"endpoints",
               {{{"name", "slow"},
                 {"base_url", slow.base_url()},
                 {"api_key", "k"},
                 {"streaming", false}},  // its answer shows no life before its end
                {{"name", "second"}, {"base_url", second.base_url()}, {"api_key", "k"}}}},
              {"priority",
               {{{"model", "gpt-4.1"}, {"routes", {"slow"}}},
                {{"model", "gpt-4.1"}, {"routes", {"second"}}}}},
              {"timeouts", {{"first_byte_ms", 2000}, {"attempt_ms", 10000}, {"total_ms", 20000}}}};
  json doc = chat_json(temp_file("slow.json", cfg.dump()));
  ASSERT_FALSE(doc.contains("error")) << doc.dump();
  EXPECT_EQ(doc["choices"][0]["message"]["content"], "took a while");
  EXPECT_EQ(doc["failover"]["attempts"].size(), 1u);
  EXPECT_EQ(second.requests(), 0);
}

// A route that accepts and never answers, a healthy one behind it, and no timeouts set: both
// kinds of call are served by the second route within 35 s, and the silent route got one
// request each. (The two run side by side: each waits out the 20 s headers limit.)
TEST(CliTimeouts, WithNoTimeoutsASilentRouteIsLeftWithinThirtyFiveSeconds) {
  testing::SilentServer silent(testing::SilentServer::Mode::AcceptAndHold);
  HealthyServer second;
  const std::string path = silent_then(silent, second, nullptr, "no_timeouts.json");
  const auto start = std::chrono::steady_clock::now();
  auto whole = std::async(std::launch::async, [&] { return chat_json(path); });
  auto streamed = std::async(std::launch::async, [&] { return chat_json(path, true); });
  for (json doc : {whole.get(), streamed.get()}) {
    ASSERT_FALSE(doc.contains("error")) << doc.dump();
    EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "second");
    ASSERT_EQ(doc["failover"]["attempts"].size(), 2u) << doc.dump();
    EXPECT_EQ(doc["failover"]["attempts"][0]["outcome"], "timeout");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(35));
  EXPECT_EQ(silent.accepted(), 2);
}

TEST(CliTimeouts, WithOnlyATotalTheBackupServes) {
  testing::SilentServer silent(testing::SilentServer::Mode::AcceptAndHold);
  HealthyServer second;
  const std::string path = silent_then(silent, second, {{"total_ms", 8000}}, "only_total.json");
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "--stream" : "whole");
    json doc = chat_json(path, stream);
    ASSERT_FALSE(doc.contains("error")) << doc.dump();
    EXPECT_EQ(doc["failover"]["served_by"]["endpoint"], "second");
    EXPECT_EQ(doc["choices"][0]["message"]["content"], "fallback");
  }
  EXPECT_EQ(silent.accepted(), 2);
}

// What a provider sends never aborts the CLI: error text that is not valid UTF-8, or a
// character cut by an excerpt, comes out as valid JSON.
TEST(Cli, ErrorTextThatIsNotUtf8GivesValidJson) {
  std::string accents;
  for (int i = 0; i < 600; ++i) accents += "\xC3\xA9";  // é
  const std::vector<std::pair<int, std::pair<std::string, std::string>>> answers = {
      {400, {R"({"error":{"message":"a)" + accents + R"("}})", "application/json"}},
      {500, {"Erreur interne du serveur: d\xE9j\xE0 vu", "text/plain; charset=iso-8859-1"}},
      {200, {"{" + std::string(118, 'x') + "\xC3\xA9\xFF\xFE garbage", "application/json"}},
  };
  for (const auto& [status, body] : answers) {
    testing::LoopbackServer bad;
    bad.on_chat([status = status, body = body](const httplib::Request&, httplib::Response& res) {
      res.status = status;
      res.set_content(body.first, body.second);
    });
    bad.start();
    json cfg = {{"endpoints", {{{"name", "bad"}, {"base_url", bad.base_url()}, {"api_key", "k"}}}},
                {"priority", {{{"model", "gpt-4.1"}, {"routes", {"bad"}}}}},
                {"retry", {{"max_attempts", 1}}}};
    auto r = run({kCli, "chat", "--config", temp_file("utf8.json", cfg.dump()), "--json", "hi"});
    EXPECT_EQ(r.exit_code, 1) << status << ": " << r.err;
    json doc = json::parse(r.out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << status << ": " << r.out;
    ASSERT_TRUE(doc.contains("error")) << r.out;
    // The message is text, and it survives being written again.
    EXPECT_NO_THROW((void)doc["error"].dump()) << status;
  }
}

TEST(Cli, HealthNeverPrintsAKeyARelayEchoes) {
  testing::LoopbackServer relay;
  relay.http().Get("/v1/models", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 401;
    res.set_content(R"({"error":{"message":"Incorrect API key provided: )" +
                        req.get_header_value("Authorization").substr(7) + R"("}})",
                    "application/json");
  });
  relay.start();
  json cfg = {
      {"endpoints",
       {{{"name", "relay"}, {"base_url", relay.base_url()}, {"api_key", "sk-echoed-123456"}}}},
      {"priority", {{{"model", "gpt-4.1"}, {"routes", {"relay"}}}}}};
  std::string path = temp_file("echo.json", cfg.dump());
  auto r = run({kCli, "health", "--config", path, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ((r.out + r.err).find("sk-echoed-123456"), std::string::npos) << r.out;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["routes"][0]["error"], "authentication");
  EXPECT_NE(doc["routes"][0]["message"].get<std::string>().find("[redacted]"), std::string::npos);
  auto table = run({kCli, "health", "--config", path});
  EXPECT_EQ((table.out + table.err).find("sk-echoed-123456"), std::string::npos) << table.out;
}

TEST(Cli, HealthProbesEveryRoute) {
  Mock up("health_up", R"({"models": ["gpt-4.1"]})");
  Mock down("health_down", R"({"then": 503})");
  std::string cfg = config({{"up", up.base_url()}, {"down", down.base_url()}});
  auto r = run({kCli, "health", "--config", cfg, "--json"});
  EXPECT_EQ(r.exit_code, 1);
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["ok"], false);
  ASSERT_EQ(doc["routes"].size(), 2u);
  EXPECT_EQ(doc["routes"][0]["endpoint"], "up");
  EXPECT_EQ(doc["routes"][0]["ok"], true);
  EXPECT_EQ(doc["routes"][0]["model_listed"], true);
  EXPECT_EQ(doc["routes"][1]["ok"], false);
  EXPECT_EQ(doc["routes"][1]["status"], 503);
  EXPECT_EQ(doc["routes"][1]["error"], "overloaded");
  auto table = run({kCli, "health", "--config", cfg});
  EXPECT_NE(table.out.find("ENDPOINT"), std::string::npos);
  EXPECT_NE(table.out.find("overloaded"), std::string::npos);
}

// ---- the mock's scenarios ---------------------------------------------------------------------

httplib::Result post(int port, const std::string& body = R"({"model":"gpt-4.1","messages":[]})") {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  return c.Post("/v1/chat/completions", body, "application/json");
}

TEST(Mock, SequenceThenSteadyStateWithHeaders) {
  Mock m("sequence", R"({"statuses": [503, 429, 200], "then": 500, "retry_after": "2",
                         "retry_after_ms": 1500, "headers": {"x-ratelimit-remaining-requests": "7"}})");
  std::vector<int> statuses;
  for (int i = 0; i < 5; ++i) {
    auto r = post(m.port());
    ASSERT_TRUE(r);
    statuses.push_back(r->status);
    EXPECT_EQ(r->get_header_value("x-ratelimit-remaining-requests"), "7");
    if (r->status == 429 || r->status == 503) {
      EXPECT_EQ(r->get_header_value("Retry-After"), "2");
      EXPECT_EQ(r->get_header_value("retry-after-ms"), "1500");
    }
  }
  EXPECT_EQ(statuses, (std::vector<int>{503, 429, 200, 500, 500}));
}

TEST(Mock, RandomErrorsAreDeterministicForASeed) {
  auto statuses = [](const std::string& name) {
    Mock m(name, R"({"seed": 7, "error_rate": 0.5, "error_status": 502})");
    std::vector<int> out;
    for (int i = 0; i < 24; ++i) out.push_back(post(m.port())->status);
    return out;
  };
  auto first = statuses("seed_a");
  EXPECT_EQ(statuses("seed_b"), first);
  int errors = static_cast<int>(std::count(first.begin(), first.end(), 502));
  EXPECT_GT(errors, 3);
  EXPECT_LT(errors, 21);
}

TEST(Mock, MalformedBodyAndHang) {
  Mock bad("malformed", R"({"malformed": true})");
  auto r = post(bad.port());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(json::parse(r->body, nullptr, false).is_discarded());

  Mock hang("hang", R"({"hang": true})");
  httplib::Client c("127.0.0.1", hang.port());
  c.set_read_timeout(0, 300000);  // 300 ms
  auto start = std::chrono::steady_clock::now();
  auto h = c.Post("/v1/chat/completions", "{}", "application/json");
  EXPECT_FALSE(h);  // no answer: the client gave up
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(290));
}

TEST(Mock, BadScenarioExitsTwo) {
  auto r = run({kCli, "mock", "--scenario", temp_file("bad_scenario.json", R"({"statuss": [1]})")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("scenario.statuss is not a known key"), std::string::npos) << r.err;
}

// Two mocks as primary and candidate, and a config that names both (thresholds from "shadow").
struct ShadowFixture {
  Mock primary{"primary", R"({"reply": "The capital of France is Paris.", "latency_ms": 20})"};
  Mock candidate{"candidate", R"({"reply": "the capital of  France is PARIS.", "latency_ms": 20,
                                  "statuses": [200, 200, 500]})"};
  std::string config_path() const {
    json doc = {
        {"endpoints",
         {{{"name", "old"}, {"base_url", primary.base_url()}, {"api_key", "sk-old"}},
          {{"name", "new"}, {"base_url", candidate.base_url()}, {"api_key", "sk-new"}}}},
        {"priority", {{{"model", "gpt-4.1"}, {"routes", {"old"}}}}},
        {"shadow",
         {{"candidate", {{"endpoint", "new"}, {"model", "gpt-5"}}},
          {"sample", 0},
          {"thresholds", {{"min_pairs", 5}, {"min_success_rate", 0.7}, {"max_p95_ratio", 3}}}}}};
    return temp_file("shadow_config.json", doc.dump());
  }
};

std::string requests_file(int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    text += R"({"model": "ignored", "messages": [{"role": "user", "content": "capital )" +
            std::to_string(i) + R"(?"}], "temperature": 0})" + "\n";
  }
  return temp_file("requests.jsonl", text);
}

TEST(CliShadow, ReplaysRequestsAndReportsAsJson) {
  ShadowFixture f;
  auto r = run({kCli, "shadow", "--config", f.config_path(), "--requests", requests_file(6),
                "--primary", "old/gpt-4.1", "--candidate", "new/gpt-5", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["pairs"], 6);
  EXPECT_EQ(doc["both_ok"], 5);
  EXPECT_DOUBLE_EQ(doc["candidate_success_rate"].get<double>(), 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(doc["mean_similarity"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(doc["exact_match_rate"].get<double>(), 1.0);
  EXPECT_EQ(doc["recommendation"], "READY") << doc["reasons"].dump();
  EXPECT_EQ(doc["candidate"], json({{"endpoint", "new"}, {"model", "gpt-5"}}));
  EXPECT_GE(doc["latency_ms"]["primary"]["p50"].get<double>(), 20.0);
  ASSERT_EQ(doc["worst"].size(), 6u);
  EXPECT_EQ(doc["worst"][5]["candidate_error"], "server_error");
  EXPECT_NE(r.err.find("6/6 pairs"), std::string::npos) << r.err;  // the progress line
}

TEST(CliShadow, WritesASelfContainedHtmlReport) {
  ShadowFixture f;
  std::string html = temp_file("report.html", "");
  auto r = run({kCli, "shadow", "--config", f.config_path(), "--requests", requests_file(4),
                "--primary", "old/gpt-4.1", "--candidate", "new/gpt-5", "--report", html});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("recommendation:     NEEDS_TUNING"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("only 4 pairs compared; at least 5 are needed"), std::string::npos) << r.out;
  std::ifstream in(html);
  std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_NE(page.find("<polyline"), std::string::npos);
  EXPECT_NE(page.find("NEEDS_TUNING"), std::string::npos);
  EXPECT_NE(page.find("failed: server_error"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);  // nothing loaded from anywhere
  EXPECT_EQ(page.find(" src="), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("sk-"), std::string::npos);
}

// Every request reaches the candidate: its failures open no breaker that would hide the
// requests after them, and a request that never left the client is no failure of its.
TEST(CliShadow, ACandidateThatFailsFiveTimesIsJudgedOnEveryRequest) {
  ShadowFixture f;
  Mock flaky{"flaky", R"({"reply": "The capital of France is Paris.", "latency_ms": 5,
                          "statuses": [503, 503, 503, 503, 503], "then": 200})"};
  json doc = json::parse(std::ifstream(f.config_path()));
  doc["endpoints"][1]["base_url"] = flaky.base_url();
  const std::string cfg = temp_file("shadow_flaky.json", doc.dump());
  auto r = run({kCli, "shadow", "--config", cfg, "--requests", requests_file(40), "--primary",
                "old/gpt-4.1", "--candidate", "new/gpt-5", "--json", "--concurrency", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json out = json::parse(r.out);
  EXPECT_EQ(out["pairs"], 40);
  EXPECT_DOUBLE_EQ(out["candidate_success_rate"].get<double>(), 35.0 / 40.0);
  EXPECT_EQ(out["errors"]["candidate"], json({{"overloaded", 5}}));
}

TEST(CliShadow, BadInputExitsTwoNamingIt) {
  ShadowFixture f;
  const std::string cfg = f.config_path();
  std::string broken = temp_file("broken.jsonl", R"({"messages": [{"role": "user", "content": "a"}]}
{"messages": [{"role": "user", "content": "b", "audio": {}}]}
)");
  auto r = run({kCli, "shadow", "--config", cfg, "--requests", broken, "--primary", "old/gpt-4.1",
                "--candidate", "new/gpt-5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("broken.jsonl:2: messages[0].audio is not a message field"),
            std::string::npos)
      << r.err;
  r = run({kCli, "shadow", "--config", cfg, "--requests", requests_file(1), "--primary",
           "old/gpt-4.1", "--candidate", "nowhere/gpt-5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--candidate: endpoint \"nowhere\" is not in the configuration"),
            std::string::npos)
      << r.err;
  r = run({kCli, "shadow", "--config", cfg, "--requests", requests_file(1), "--primary", "old",
           "--candidate", "new/gpt-5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("\"old\" is not ENDPOINT/MODEL"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace failover
