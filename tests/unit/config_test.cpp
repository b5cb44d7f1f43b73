// Configuration files: every error class names its JSON path; ${ENV}; round trip.

#include <failover/failover.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <unistd.h>

namespace failover {
namespace {

const std::map<std::string, std::string> kEnv = {
    {"HOLYSHEEP_API_KEY", "sk-hs-123"}, {"OPENAI_API_KEY", "  sk-oa-456\n"}, {"EMPTY", ""}};

EnvLookup env() {
  return [](const std::string& name) -> std::optional<std::string> {
    auto it = kEnv.find(name);
    if (it == kEnv.end()) return std::nullopt;
    return it->second;
  };
}

// The DESIGN.md example.
const char* kDesignExample = R"({
  "endpoints": [
    {"name": "holysheep", "base_url": "https://api.holysheep.ai/v1", "api_key": "${HOLYSHEEP_API_KEY}"},
    {"name": "openai", "base_url": "https://api.openai.com/v1", "api_key": "${OPENAI_API_KEY}",
     "headers": {"OpenAI-Organization": "${OPENAI_ORG:-org-default}"}, "region": "us",
     "limits": {"rpm": 500, "tpm": 200000, "max_concurrency": 64}},
    {"name": "azure", "base_url": "https://my.openai.azure.com/openai/deployments/gpt41",
     "api_key": "${HOLYSHEEP_API_KEY}", "auth": "api-key", "query": {"api-version": "2024-10-21"}}
  ],
  "priority": [
    {"model": "gpt-4.1", "routes": ["holysheep", "openai"], "balance": "weighted"},
    {"model": "claude-sonnet-4.5", "routes": ["holysheep"]},
    {"model": "deepseek-v3.2", "routes": ["holysheep", {"endpoint": "azure", "model": "gpt41", "weight": 3}],
     "balance": "consistent_hash"}
  ],
  "timeouts": {"connect_ms": 5000, "first_byte_ms": 30000, "idle_ms": 30000, "attempt_ms": 120000, "total_ms": 180000},
  "retry": {"max_attempts": 6, "base_delay_ms": 500, "max_delay_ms": 8000, "max_retry_after_ms": 60000},
  "retry_budget": {"ratio": 0.25, "min_concurrent": 4},
  "health": {"interval_ms": 30000, "probe": "models"},
  "hedging": {"delay_ms": 2000, "max_extra": 1},
  "prices": {"gpt-4.1": {"input_per_mtok": 8.0, "output_per_mtok": 8.0, "cache_write_per_mtok": 10.0}},
  "budget": {"usd_per_day": 100.0},
  "circuit_breaker": {"consecutive_failures": 5, "failure_rate": 0.5, "window": 20, "min_calls": 10,
                      "open_ms": 30000, "max_open_ms": 300000, "half_open_probes": 1},
  "shadow": {"candidate": {"endpoint": "openai", "model": "gpt-4.1"}, "sample": 0.05},
  "canary": {"candidate": {"endpoint": "openai", "model": "gpt-4.1"}, "steps": [5, 10, 25, 50, 100],
             "step_ms": 600000, "rollback": {"error_rate": 0.05, "p99_ms": 5000, "min_success_rate": 0.95, "min_calls": 50}}
})";

std::string error_of(const std::string& text) {
  try {
    (void)options_from_json(text, env());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<accepted>";
}

// A minimal valid config with `patch` spliced in as extra top-level members.
std::string with(const std::string& endpoints, const std::string& priority,
                 const std::string& extra = "") {
  return R"({"endpoints": )" + endpoints + R"(, "priority": )" + priority +
         (extra.empty() ? "" : ", " + extra) + "}";
}

const std::string kOneEndpoint =
    R"([{"name": "a", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}])";
const std::string kOneTier = R"([{"model": "m", "routes": ["a"]}])";

TEST(Config, DesignExampleLoads) {
  ClientOptions o = options_from_json(kDesignExample, env());
  ASSERT_EQ(o.endpoints.size(), 3u);
  EXPECT_EQ(o.endpoints[0].api_key, "sk-hs-123");
  EXPECT_EQ(o.endpoints[1].api_key, "  sk-oa-456\n");  // trimmed when the client is built
  EXPECT_EQ(o.endpoints[1].headers.at("OpenAI-Organization"), "org-default");
  EXPECT_EQ(o.endpoints[1].region, "us");
  EXPECT_EQ(o.endpoints[1].limits.rpm, 500.0);
  EXPECT_EQ(o.endpoints[1].limits.tpm, 200000.0);
  EXPECT_EQ(o.endpoints[1].limits.max_concurrency, 64);
  EXPECT_EQ(o.endpoints[2].auth, AuthStyle::ApiKey);
  EXPECT_EQ(o.endpoints[2].query.at("api-version"), "2024-10-21");
  ASSERT_EQ(o.priority.size(), 3u);
  EXPECT_EQ(o.priority[0].routes[1].endpoint, "openai");
  EXPECT_EQ(o.priority[0].routes[1].model, "gpt-4.1");
  EXPECT_EQ(o.priority[2].routes[1].model, "gpt41");
  EXPECT_EQ(o.priority[2].routes[1].weight, 3);
  EXPECT_DOUBLE_EQ(o.retry_budget.ratio, 0.25);
  EXPECT_EQ(o.retry_budget.min_concurrent, 4);
  EXPECT_DOUBLE_EQ(o.retry_budget.throttle_max_tokens, 100);
  EXPECT_EQ(o.health_probe.interval, Duration(std::chrono::seconds(30)));
  EXPECT_EQ(o.health_probe.method, ProbeMethod::Models);
  EXPECT_EQ(o.hedging.delay, Duration(std::chrono::seconds(2)));
  EXPECT_EQ(o.hedging.max_extra, 1);
  EXPECT_EQ(o.prices.at("gpt-4.1").cache_write_per_mtok, 10.0);
  EXPECT_FALSE(o.prices.at("gpt-4.1").cached_input_per_mtok);
  EXPECT_EQ(o.priority[0].balance, BalanceStrategy::Weighted);
  EXPECT_EQ(o.priority[2].balance, BalanceStrategy::ConsistentHash);
  EXPECT_EQ(o.timeouts.attempt, Duration(std::chrono::seconds(120)));
  ASSERT_TRUE(o.shadow.candidate);
  EXPECT_EQ(o.shadow.candidate->endpoint, "openai");
  EXPECT_DOUBLE_EQ(o.shadow.sample, 0.05);
  ASSERT_TRUE(o.canary.candidate);
  EXPECT_EQ(o.canary.candidate->model, "gpt-4.1");
  EXPECT_EQ(o.canary.steps, (std::vector<double>{5, 10, 25, 50, 100}));
  EXPECT_EQ(o.canary.step, Duration(std::chrono::minutes(10)));
  EXPECT_DOUBLE_EQ(o.canary.rollback.error_rate, 0.05);
  EXPECT_EQ(o.canary.rollback.p99, Duration(std::chrono::seconds(5)));
  EXPECT_DOUBLE_EQ(o.canary.rollback.min_success_rate, 0.95);
  EXPECT_EQ(o.canary.rollback.min_calls, 50u);
  auto* retry = dynamic_cast<const DefaultRetryPolicy*>(o.retry.get());
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->options().max_delay, Duration(std::chrono::seconds(8)));
  auto* breaker = o.circuit_breaker.target<DefaultCircuitBreakerFactory>();
  ASSERT_NE(breaker, nullptr);
  EXPECT_EQ(breaker->options.max_open_duration, Duration(std::chrono::seconds(300)));
  Client client(o);  // and it builds a client
}

TEST(Config, EveryErrorClassNamesThePath) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "config is not valid JSON: "},
      {"[]", "config must be a JSON object"},
      {with(kOneEndpoint, kOneTier, R"("retyr": {})"),
       "retyr is not a known key (did you mean retry?); known keys: endpoints, priority, "
       "timeouts, retry, retry_budget, circuit_breaker, health, hedging, prices, budget, "
       "shadow, canary, max_response_bytes, ca_bundle, user_agent, content_filter, "
       "stream_recovery, state, log"},
      {with(kOneEndpoint, kOneTier, R"("state": {"redis": "rediss://127.0.0.1:6380"})"),
       "state.redis TLS (rediss://) needs hiredis 1.0 with SSL support; this build's hiredis "
       "has none (expected redis://[:password@]host[:port][/db])"},
      {with(kOneEndpoint, kOneTier, R"("state": {"redis": "redis://127.0.0.1:99999"})"),
       "state.redis port \"99999\" is not a number from 0 to 65535 (expected "
       "redis://[:password@]host[:port][/db])"},
      {with(kOneEndpoint, kOneTier, R"("state": {"redis": "redis://h", "sync_ms": 0})"),
       "state.sync_ms must be a positive whole number (got 0)"},
      {with(kOneEndpoint, kOneTier, R"("content_filter": "route_around")"),
       "content_filter must be fail or fail_over (got \"route_around\")"},
      {with(kOneEndpoint, kOneTier, R"("stream_recovery": "resume")"),
       "stream_recovery must be fail, restart or continue (got \"resume\")"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "k", "continuation": "yes"}])",
            kOneTier),
       "endpoints[0].continuation must be \"prefill\" or \"none\" (got \"yes\")"},
      {with(kOneEndpoint, kOneTier, R"("retry": {"failover_on_content_filter": true})"),
       "retry.failover_on_content_filter moved to the top-level key content_filter (\"fail\" or "
       "\"fail_over\")"},
      {with(kOneEndpoint, kOneTier, R"("health": {"interval_ms": 1000, "probe": "ping"})"),
       "health.probe must be \"models\" or \"chat\" (got \"ping\")"},
      {with(kOneEndpoint, kOneTier, R"("retry_budget": {"ratio": 2})"),
       "retry_budget.ratio must be a number from 0 to 1.0 (got 2)"},
      {with(R"([{"name": "a", "bsae_url": "http://x/v1", "api_key": "k"}])", kOneTier),
       "endpoints[0].bsae_url is not a known key (did you mean base_url?); known keys: name, "
       "base_url, api_key, headers, auth, query, region, limits, continuation, dialect, streaming"},
      {with(kOneEndpoint, kOneTier, R"("timeouts": {"connect_ms": "5s"})"),
       "timeouts.connect_ms must be a positive whole number (got \"5s\")"},
      {with(kOneEndpoint, kOneTier, R"("timeouts": {"total_ms": 0})"),
       "timeouts.total_ms must be a positive whole number (got 0)"},
      {with(R"({"name": "a"})", kOneTier), "endpoints must be an array, not an object"},
      {with(R"([{"name": "a", "base_url": "ftp://x", "api_key": "k"}])", kOneTier),
       "endpoints[0].base_url must start with http:// or https:// (got \"ftp://x\")"},
      {with(R"([{"name": "a", "base_url": "http://x/v1"}])", kOneTier),
       "endpoints[0].api_key is missing (use \"auth\": \"none\" for a server without keys)"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "  "}])", kOneTier),
       "endpoints[0].api_key is empty (use \"auth\": \"none\" for a server without keys)"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "${MISSING_KEY}"}])", kOneTier),
       "endpoints[0].api_key refers to ${MISSING_KEY}, which is not set in the environment"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "${EMPTY}"}])", kOneTier),
       "endpoints[0].api_key refers to ${EMPTY}, which is not set in the environment"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "sk-\u0007bell"}])", kOneTier),
       "endpoints[0].api_key contains control characters (the key is not shown)"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "k"},
                {"name": "a", "base_url": "http://y/v1", "api_key": "k"}])",
            kOneTier),
       "endpoints[1].name \"a\" is a duplicate"},
      {with(kOneEndpoint, R"([{"model": "m", "routes": ["a", "nope"]}])"),
       "priority[0].routes[1].endpoint \"nope\" is not a defined endpoint"},
      {with(kOneEndpoint, R"([{"model": "m", "routes": []}])"), "priority[0].routes is empty"},
      {with(kOneEndpoint, R"([{"routes": ["a"]}])"),
       "priority[0].routes[0] names only an endpoint, but the tier has no \"model\""},
      {with(kOneEndpoint, R"([{"model": "m", "routes": ["a"], "balance": "fastest"}])"),
       "priority[0].balance must be one of ordered, weighted, round_robin, least_outstanding, "
       "consistent_hash, latency (got \"fastest\")"},
      {with(kOneEndpoint, kOneTier, R"("canary": {"steps": [5]})"), "canary.candidate is missing"},
      {with(kOneEndpoint, kOneTier,
            R"("canary": {"candidate": {"endpoint": "a", "model": "n"}, "steps": [10, 5]})"),
       "canary.steps[1] must be above the step before it (steps increase)"},
      {with(kOneEndpoint, kOneTier,
            R"("canary": {"candidate": {"endpoint": "a", "model": "n"}, "steps": [0, 5]})"),
       "canary.steps[0] must be above 0"},
      {with(kOneEndpoint, kOneTier,
            R"("canary": {"candidate": {"endpoint": "a", "model": "n"}, "rollback": {"p99": 5}})"),
       "canary.rollback.p99 is not a known key; known keys: error_rate, p99_ms, min_success_rate, "
       "min_calls"},
      {with(kOneEndpoint, kOneTier, R"("canary": {"candidate": {"endpoint": "b", "model": "n"}})"),
       "canary.candidate.endpoint \"b\" is not a defined endpoint"},
      {with(kOneEndpoint, kOneTier, R"("shadow": {"candidate": "a", "sample": 0.1})"),
       "shadow.candidate must be an object {\"endpoint\": ..., \"model\": ...}, not a string"},
      {with(kOneEndpoint, kOneTier,
            R"("shadow": {"candidate": {"endpoint": "a", "model": "n"}, "sample": 1.5})"),
       "shadow.sample must be a number from 0 to 1.0 (got 1.5)"},
      {with(
           kOneEndpoint, kOneTier,
           R"("shadow": {"candidate": {"endpoint": "a", "model": "n"}, "sample": 0.1, "thresholds": {"min_similarity": 2}})"),
       "shadow.thresholds.min_similarity must be a number from 0 to 1.0 (got 2)"},
      {with(kOneEndpoint, kOneTier, R"("hedging": {"max_extra": 1})"),
       "hedging needs delay_ms, use_p95 or both (remove the key to turn hedging off)"},
      {with(kOneEndpoint, kOneTier, R"("circuit_breaker": {"failure_rate": 1.5})"),
       "circuit_breaker.failure_rate must be a number in (0, 1] (got 1.5)"},
      {with(kOneEndpoint, kOneTier, R"("retry": {"base_delay_ms": 900, "max_delay_ms": 100})"),
       "retry.max_delay_ms must be at least retry.base_delay_ms"},
      {with(
           R"([{"name": "a", "base_url": "http://x/v1", "api_key": "k", "headers": {"X-A": "a\r\nb"}}])",
           kOneTier),
       "endpoints[0].headers[X-A] contains CR, LF or other control characters"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "k", "auth": "basic"}])",
            kOneTier),
       "endpoints[0].auth must be \"bearer\", \"api-key\" or \"none\" (got \"basic\")"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "k", "limits": {"rpm": 0}}])",
            kOneTier),
       "endpoints[0].limits.rpm must be a positive number (got 0)"},
      {with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "${BROKEN"}])", kOneTier),
       "endpoints[0].api_key has a ${ without its closing }"},
      {with(R"([{"name": "a", "base_url": "http://x/v1/chat/completions", "api_key": "k"}])",
            kOneTier),
       "endpoints[0].base_url ends in /chat/completions, which the client adds itself: use "
       "\"http://x/v1\""},
      {with(R"([{"name": "a", "base_url": "https://api.anthropic.com/v1/messages/", "api_key": "k",
                 "dialect": "anthropic"}])",
            kOneTier),
       "endpoints[0].base_url ends in /messages, which the client adds itself: use "
       "\"https://api.anthropic.com/v1\""},
      {with(
           R"([{"name": "a", "base_url": "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent", "api_key": "k", "dialect": "gemini"}])",
           kOneTier),
       "endpoints[0].base_url ends in /models/gemini-2.5-flash:generateContent, which the client "
       "adds itself: use \"https://generativelanguage.googleapis.com/v1beta\""},
      {with(kOneEndpoint, kOneTier, R"("budget": {"usd_per_day": 1})"),
       "budget can never apply: no routed model has a price (routed: m); add \"prices\" for "
       "them"},
      {with(kOneEndpoint, R"([{"model": "gpt-4.1", "routes": ["a"]}])",
            R"("prices": {"gpt4.1": {"input_per_mtok": 2, "output_per_mtok": 8}},
                "budget": {"usd_per_month": 50})"),
       "prices.gpt4.1 prices a model no route uses (did you mean gpt-4.1?): the budget cannot "
       "count gpt-4.1 without its price"},
  };
  for (const auto& [text, expected] : cases) {
    std::string got = error_of(text);
    if (expected.back() == ' ') {
      EXPECT_EQ(got.substr(0, expected.size()), expected) << text;
    } else {
      EXPECT_EQ(got, expected) << text;
    }
  }
}

TEST(Config, BudgetsOverPricesThatApplyStillLoad) {
  // One route priced and one not, and prices of models no route uses that are not near-misses
  // of a routed one (a price list copied whole): valid, as before.
  const std::string two = R"([{"name": "a", "base_url": "http://x/v1", "api_key": "k"},
                              {"name": "b", "base_url": "http://y/v1", "api_key": "k"}])";
  const std::string tiers = R"([{"model": "gpt-4.1", "routes": ["a"]},
                                {"model": "gpt-4o", "routes": ["b"]}])";
  EXPECT_EQ(error_of(with(two, tiers,
                          R"("prices": {"gpt-4.1": {"input_per_mtok": 2, "output_per_mtok": 8},
                                        "gpt-4.1-mini": {"input_per_mtok": 0.4, "output_per_mtok": 1.6},
                                        "o3": {"input_per_mtok": 2, "output_per_mtok": 8}},
                             "budget": {"usd_per_day": 5})")),
            "<accepted>");
  // Prices without a budget are for cost reports: never refused for a near-miss.
  EXPECT_EQ(error_of(with(two, tiers,
                          R"("prices": {"gpt4.1": {"input_per_mtok": 2, "output_per_mtok": 8}})")),
            "<accepted>");
}

TEST(Config, ErrorsCarryThePathAndNeverTheKey) {
  try {
    (void)options_from_json(
        with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "sk-live-SECRET\n\u0001"}])",
             kOneTier),
        env());
    FAIL() << "accepted a key with control characters";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "endpoints[0].api_key");
    EXPECT_EQ(std::string(e.what()).find("SECRET"), std::string::npos);
  }
}

TEST(Config, LocalServerWithoutKeys) {
  ClientOptions o = options_from_json(
      with(R"([{"name": "ollama", "base_url": "http://127.0.0.1:11434/v1", "auth": "none"}])",
           R"([{"model": "llama3.2", "routes": ["ollama"]}])"),
      env());
  EXPECT_EQ(o.endpoints[0].auth, AuthStyle::None);
  EXPECT_TRUE(o.endpoints[0].api_key.empty());
}

TEST(Config, CommentsAreAllowed) {
  ClientOptions o = options_from_json(
      "// the relay first\n" + with(kOneEndpoint, kOneTier) + "\n/* end */", env());
  EXPECT_EQ(o.endpoints[0].name, "a");
}

// Found by fuzz_config: a number too large for a double made nlohmann throw out_of_range,
// which escaped as something other than ConfigError.
TEST(Config, ANumberBeyondDoubleIsAConfigError) {
  EXPECT_EQ(error_of("-3E3333"), "config is not valid JSON: number overflow parsing '-3E3333'");
  EXPECT_EQ(error_of(with(kOneEndpoint, kOneTier, R"("max_response_bytes": 1e999)"))
                .rfind("config is not valid JSON: number overflow parsing", 0),
            0u);
}

// Found by fuzz_config: milliseconds beyond what nanoseconds can hold overflowed.
TEST(Config, DurationsAreAtMostAYear) {
  EXPECT_EQ(
      error_of(with(kOneEndpoint, kOneTier, R"("timeouts": {"total_ms": 555555555555600000})")),
      "timeouts.total_ms must be at most 31536000000 ms (a year; got 555555555555600000)");
  EXPECT_EQ(error_of(with(kOneEndpoint, kOneTier,
                          R"("retry": {"max_retry_after_ms": 99999999999999999})")),
            "retry.max_retry_after_ms must be at most 31536000000 ms (a year; got "
            "99999999999999999)");
  EXPECT_EQ(error_of(with(kOneEndpoint, kOneTier, R"("timeouts": {"total_ms": 31536000000})")),
            "<accepted>");
}

TEST(Config, RouteShaping) {
  const std::string tier =
      R"([{"routes": [{"endpoint": "a", "model": "o3", "params": {"reasoning_effort": "low"},
                        "drop_params": ["max_tokens", "seed"], "model_rules": false}]}])";
  ClientOptions o = options_from_json(with(kOneEndpoint, tier), env());
  const Route& r = o.priority[0].routes[0];
  EXPECT_EQ(r.params, R"({"reasoning_effort":"low"})");
  EXPECT_EQ(r.drop_params, (std::vector<std::string>{"max_tokens", "seed"}));
  EXPECT_FALSE(r.model_rules);
  ClientOptions again = options_from_json(options_to_json(o, true), env());
  EXPECT_EQ(again.priority[0].routes[0].params, r.params);
  EXPECT_EQ(again.priority[0].routes[0].drop_params, r.drop_params);
  EXPECT_FALSE(again.priority[0].routes[0].model_rules);
  auto route_error = [&](const std::string& route) {
    return error_of(with(kOneEndpoint, "[{\"routes\": [" + route + "]}]"));
  };
  EXPECT_EQ(route_error(R"({"endpoint": "a", "model": "m", "params": [1]})"),
            "priority[0].routes[0].params must be an object, not an array");
  EXPECT_EQ(route_error(R"({"endpoint": "a", "model": "m", "drop_params": "max_tokens"})"),
            "priority[0].routes[0].drop_params must be an array of field names, not a string");
  EXPECT_EQ(route_error(R"({"endpoint": "a", "model": "m", "model_rules": "no"})"),
            "priority[0].routes[0].model_rules must be true or false, not a string");
  EXPECT_EQ(route_error(R"({"endpoint": "a", "model": "m", "params": {"stream": true}})"),
            "priority[0].routes[0].params may not set \"stream\"");
}

TEST(Config, EndpointDialect) {
  const std::string endpoints =
      R"([{"name": "a", "base_url": "http://127.0.0.1:1/v1", "api_key": "k", "dialect": "anthropic"},
          {"name": "b", "base_url": "http://127.0.0.1:2/v1beta", "api_key": "k", "dialect": "gemini"},
          {"name": "c", "base_url": "http://127.0.0.1:3/v1", "api_key": "k"}])";
  const std::string text = R"({"endpoints": )" + endpoints +
                           R"(, "priority": [{"model": "m", "routes": ["a", "b", "c"]}]})";
  ClientOptions o = options_from_json(text, env());
  EXPECT_EQ(o.endpoints[0].dialect, Dialect::Anthropic);
  EXPECT_EQ(o.endpoints[1].dialect, Dialect::Gemini);
  EXPECT_EQ(o.endpoints[2].dialect, Dialect::OpenAI);
  ClientOptions again = options_from_json(options_to_json(o, true), env());
  EXPECT_EQ(again.endpoints[0].dialect, Dialect::Anthropic);
  EXPECT_EQ(again.endpoints[1].dialect, Dialect::Gemini);
  EXPECT_EQ(again.endpoints[2].dialect, Dialect::OpenAI);
  EXPECT_EQ(error_of(R"({"endpoints": [{"name": "a", "base_url": "http://x/v1", "api_key": "k",
                                        "dialect": "cohere"}],
                       "priority": [{"model": "m", "routes": ["a"]}]})"),
            "endpoints[0].dialect must be \"openai\", \"anthropic\" or \"gemini\" (got "
            "\"cohere\")");
}

TEST(Config, RoundTrip) {
  ClientOptions first = options_from_json(kDesignExample, env());
  std::string text = options_to_json(first, /*include_keys=*/true);
  ClientOptions second = options_from_json(text, env());
  EXPECT_EQ(options_to_json(second, true), text);
  EXPECT_EQ(second.endpoints[1].api_key, "  sk-oa-456\n");
  EXPECT_EQ(second.priority[2].routes[1].model, "gpt41");
  // Without include_keys no key is written.
  std::string redacted = options_to_json(first);
  EXPECT_EQ(redacted.find("sk-hs-123"), std::string::npos);
  EXPECT_NE(redacted.find("<redacted>"), std::string::npos);
}

TEST(Config, ALogSectionTurnsOnLoggingToAFile) {
  const std::string path =
      ::testing::TempDir() + "failover_config_log_" + std::to_string(::getpid()) + ".log";
  std::remove(path.c_str());
  ClientOptions o = options_from_json(
      with(kOneEndpoint, kOneTier, R"("log": {"level": "debug", "file": ")" + path + R"("})"),
      env());
  EXPECT_EQ(o.log.level, "debug");
  EXPECT_EQ(o.log.file, path);
  EXPECT_EQ(options_from_json(options_to_json(o), env()).log.file, path);  // round trip
  {
    Client client(o);  // the client makes the logger: the attempt lines go to the file
    ChatRequest hi;
    hi.messages = {Message::user("hi")};
    CallOptions brief;
    brief.timeout = std::chrono::milliseconds(300);
    auto r = client.chat(hi, brief);
    (void)r;  // nothing listens on port 1: the call fails, and says so in the log
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("a/m"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("[debug]"), std::string::npos) << text.str();
  std::remove(path.c_str());
  EXPECT_EQ(error_of(with(kOneEndpoint, kOneTier, R"("log": {"level": "verbose"})")),
            "log.level must be trace, debug, info, warn, error, critical or off (got \"verbose\")");
  EXPECT_EQ(error_of(with(kOneEndpoint, kOneTier, R"("log": {"lvel": "debug"})")),
            "log.lvel is not a known key (did you mean level?); known keys: level, file");
  ClientOptions unopenable = options_from_json(
      with(kOneEndpoint, kOneTier, R"("log": {"level": "info", "file": "/etc/hostname/x.log"})"),
      env());
  try {
    Client client(unopenable);
    ADD_FAILURE() << "a log file that cannot be opened was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("log.file \"/etc/hostname/x.log\" cannot be opened"),
              std::string::npos)
        << e.what();
  }
}

TEST(Config, TiersAndRoutesMayCarryTheirOwnTimeouts) {
  ClientOptions o = options_from_json(R"({
    "endpoints": [{"name": "a", "base_url": "http://x/v1", "api_key": "k"}],
    "priority": [{"model": "m", "timeouts": {"first_byte_ms": 1500, "attempt_ms": 20000},
                  "routes": ["a", {"endpoint": "a", "model": "n",
                                   "timeouts": {"connect_ms": 700, "idle_ms": 9000}}]}]})",
                                      env());
  EXPECT_EQ(o.priority[0].timeouts.first_byte, Duration(std::chrono::milliseconds(1500)));
  EXPECT_EQ(o.priority[0].timeouts.attempt, Duration(std::chrono::seconds(20)));
  EXPECT_FALSE(o.priority[0].timeouts.connect.has_value());
  EXPECT_EQ(o.priority[0].routes[1].timeouts.connect, Duration(std::chrono::milliseconds(700)));
  EXPECT_EQ(o.priority[0].routes[1].timeouts.idle, Duration(std::chrono::seconds(9)));
  EXPECT_FALSE(o.priority[0].routes[0].timeouts.idle.has_value());
  // They survive a round trip.
  ClientOptions again = options_from_json(options_to_json(o, true), env());
  EXPECT_EQ(options_to_json(again, true), options_to_json(o, true));
  EXPECT_EQ(again.priority[0].routes[1].timeouts.idle, Duration(std::chrono::seconds(9)));
  EXPECT_EQ(error_of(with(kOneEndpoint,
                          R"([{"model": "m", "routes": ["a"], "timeouts": {"total_ms": 5}}])")),
            "priority[0].timeouts.total_ms bounds the whole call: set it in the top-level "
            "timeouts");
  EXPECT_EQ(error_of(with(
                kOneEndpoint,
                R"([{"model": "m", "routes": [{"endpoint": "a", "timeouts": {"idel_ms": 5}}]}])")),
            "priority[0].routes[0].timeouts.idel_ms is not a known key (did you mean idle_ms?); "
            "known keys: connect_ms, headers_ms, first_byte_ms, idle_ms, attempt_ms");
}

TEST(Config, ContentFilterPolicy) {
  EXPECT_EQ(options_from_json(with(kOneEndpoint, kOneTier), env()).content_filter,
            ContentFilterPolicy::Fail);
  ClientOptions o =
      options_from_json(with(kOneEndpoint, kOneTier, R"("content_filter": "fail_over")"), env());
  EXPECT_EQ(o.content_filter, ContentFilterPolicy::FailOver);
  EXPECT_NE(options_to_json(o).find(R"("content_filter": "fail_over")"), std::string::npos);
}

TEST(Config, StreamRecoveryAndContinuation) {
  ClientOptions defaults = options_from_json(with(kOneEndpoint, kOneTier), env());
  EXPECT_EQ(defaults.stream_recovery, StreamRecovery::Fail);
  EXPECT_EQ(defaults.endpoints[0].continuation, Continuation::None);
  ClientOptions o = options_from_json(
      with(R"([{"name": "a", "base_url": "http://x/v1", "api_key": "k", "continuation": "prefill"},
               {"name": "b", "base_url": "http://y/v1", "api_key": "k", "continuation": "none"}])",
           R"([{"model": "m", "routes": ["a", "b"]}])", R"("stream_recovery": "continue")"),
      env());
  EXPECT_EQ(o.stream_recovery, StreamRecovery::Continue);
  EXPECT_EQ(o.endpoints[0].continuation, Continuation::Prefill);
  EXPECT_EQ(o.endpoints[1].continuation, Continuation::None);
  const std::string text = options_to_json(o);
  EXPECT_NE(text.find(R"("stream_recovery": "continue")"), std::string::npos);
  EXPECT_NE(text.find(R"("continuation": "prefill")"), std::string::npos);
  // What it writes reads back the same.
  ClientOptions again = options_from_json(options_to_json(o, /*include_keys=*/true), env());
  EXPECT_EQ(again.stream_recovery, StreamRecovery::Continue);
  EXPECT_EQ(again.endpoints[0].continuation, Continuation::Prefill);
  EXPECT_EQ(
      options_from_json(with(kOneEndpoint, kOneTier, R"("stream_recovery": "restart")"), env())
          .stream_recovery,
      StreamRecovery::Restart);
}

TEST(Config, SharedStateOnRedis) {
  ClientOptions o = options_from_json(
      with(kOneEndpoint, kOneTier,
           R"("state": {"redis": "redis://:s3cret-pass@127.0.0.1:6390/2", "prefix": "app:",
                         "timeout_ms": 50, "sync_ms": 100})"),
      env());
  ASSERT_NE(o.state.store, nullptr);
  EXPECT_EQ(o.state.store->describe(), "redis://127.0.0.1:6390/2");  // no password
  EXPECT_EQ(o.state.sync_interval, Duration(std::chrono::milliseconds(100)));
  ASSERT_TRUE(o.state.redis);
  EXPECT_EQ(o.state.redis->prefix, "app:");
  const std::string text = options_to_json(o);
  EXPECT_EQ(text.find("s3cret-pass"), std::string::npos);
  EXPECT_NE(text.find(R"("redis": "redis://:<redacted>@127.0.0.1:6390/2")"), std::string::npos);
  ClientOptions again = options_from_json(options_to_json(o, /*include_keys=*/true), env());
  EXPECT_EQ(again.state.redis->url, "redis://:s3cret-pass@127.0.0.1:6390/2");
  EXPECT_EQ(again.state.redis->timeout, Duration(std::chrono::milliseconds(50)));
}

TEST(Config, FromFileAndMissingFile) {
  const std::string path = ::testing::TempDir() + "failover_config_test.json";
  {
    std::ofstream out(path);
    out << with(kOneEndpoint, kOneTier);
  }
  Client client = Client::from_config_file(path);
  std::remove(path.c_str());
  try {
    (void)options_from_file("/nonexistent/failover.json");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "config file \"/nonexistent/failover.json\" cannot be opened: No such file or directory");
  }
}

TEST(Config, ShippedExampleConfigsLoad) {
  // Every ${VAR} resolves to a placeholder; the files must pass every other check as they are.
  EnvLookup any = [](const std::string& name) -> std::optional<std::string> {
    return "value-of-" + name;
  };
  for (const char* name :
       {"demo.json", "holysheep.json", "providers.json", "local.json", "dialects.json"}) {
    std::string path = std::string(FAILOVER_SOURCE_DIR) + "/examples/configs/" + name;
    try {
      ClientOptions o = options_from_file(path, any);
      EXPECT_FALSE(o.endpoints.empty()) << name;
      Client client(o);
    } catch (const ConfigError& e) {
      ADD_FAILURE() << name << ": " << e.what();
    }
  }
}

// ---- issue 35: what configuration loading read wrong ----------------------------------------

// Every configuration the project ships (examples, the fuzzers' seeds, the design example, one
// with every optional key) loads, is written, and loads again to the same options.
TEST(ConfigProperty, EveryConfigSurvivesARoundTrip) {
  EnvLookup any = [](const std::string& name) -> std::optional<std::string> {
    if (name.find("URL") != std::string::npos) return "http://127.0.0.1:1/v1";
    return "value-of-" + name;
  };
  std::vector<std::pair<std::string, std::string>> texts = {{"design", kDesignExample}};
  for (const char* dir : {"/examples/configs/", "/tests/fuzz/corpus/config/"}) {
    for (const auto& entry :
         std::filesystem::directory_iterator(std::string(FAILOVER_SOURCE_DIR) + dir)) {
      std::ifstream in(entry.path());
      std::string text(std::istreambuf_iterator<char>(in), {});
      if (entry.path().filename().string().rfind("bad_", 0) == 0) {  // seeds that must not load
        EXPECT_THROW((void)options_from_json(text, any), ConfigError) << entry.path();
        continue;
      }
      texts.emplace_back(entry.path().string(), std::move(text));
    }
  }
  texts.emplace_back("p95 hedging",
                     with(kOneEndpoint, kOneTier, R"("hedging": {"use_p95": true})"));
  texts.emplace_back("literal", with(R"([{"name": "a", "base_url": "http://127.0.0.1:1/v1",
                                        "api_key": "k$${NOT_A_VAR}", "headers": {"X-A": "a$${B}c"}}])",
                                     kOneTier));
  ASSERT_GE(texts.size(), 10u);
  for (const auto& [name, text] : texts) {
    try {
      ClientOptions first = options_from_json(text, any);
      const std::string written = options_to_json(first, /*include_keys=*/true);
      ClientOptions second = options_from_json(written, any);
      EXPECT_EQ(options_to_json(second, true), written) << name;
    } catch (const ConfigError& e) {
      ADD_FAILURE() << name << ": " << e.what();
    }
  }
}

TEST(Config, CommentsHideNoNestingAndDeepParamsAreRefused) {
  // A comment full of brackets is not nesting.
  EXPECT_EQ(error_of(with(kOneEndpoint, kOneTier) + "// " + std::string(130, '[') + "\n"),
            "<accepted>");
  EXPECT_EQ(error_of("/* " + std::string(130, '{') + " */" + with(kOneEndpoint, kOneTier)),
            "<accepted>");
  // Nesting between comments that look like strings is still counted.
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  const std::string tier =
      R"([{"model": "m", "routes": [{"endpoint": "a", "params": {"x": /* " */ )" + deep +
      R"( /* " */}}]}])";
  EXPECT_EQ(error_of(with(kOneEndpoint, tier)), "config nests too deeply to be a configuration");
}

TEST(Config, CountsAreNeverWrapped) {
  for (const char* extra :
       {R"("retry": {"max_attempts": 4294967297})", R"("retry": {"max_attempts": 2147483648})",
        R"("hedging": {"delay_ms": 10, "max_extra": 4294967296})"}) {
    const std::string got = error_of(with(kOneEndpoint, kOneTier, extra));
    EXPECT_NE(got.find("must be at most 2147483647"), std::string::npos) << extra << ": " << got;
  }
  const std::string big = error_of(with(
      R"([{"name": "a", "base_url": "http://127.0.0.1:1/v1", "api_key": "k",
           "limits": {"max_concurrency": 4294967297}}])",
      kOneTier));
  EXPECT_EQ(big, "endpoints[0].limits.max_concurrency must be at most 2147483647 (got 4294967297)");
  const std::string weight =
      error_of(with(kOneEndpoint, R"([{"model": "m", "routes": [{"endpoint": "a",
                                                              "weight": 4294967298}]}])"));
  EXPECT_EQ(weight, "priority[0].routes[0].weight must be at most 2147483647 (got 4294967298)");
}

TEST(Config, EnvironmentReferencesInRouteParamsAreReplaced) {
  ClientOptions o = options_from_json(with(kOneEndpoint,
                                           R"([{"model": "m", "routes": [{"endpoint": "a",
                "params": {"user": "${HOLYSHEEP_API_KEY}", "tags": ["${OPENAI_ORG:-x}"]}}]}])"),
                                      env());
  EXPECT_EQ(nlohmann::json::parse(o.priority[0].routes[0].params),
            nlohmann::json::parse(R"({"user": "sk-hs-123", "tags": ["x"]})"));
}

TEST(Config, AKeyGivenTwiceIsAnError) {
  EXPECT_EQ(error_of(with(kOneEndpoint, kOneTier,
                          R"("retry": {"max_attempts": 2}, "retry": {"max_attempts": 9})")),
            "retry appears twice in one object; the second would silently win");
  EXPECT_EQ(error_of(with(R"([{"name": "a", "base_url": "http://127.0.0.1:1/v1", "api_key": "k",
                             "limits": {"rpm": 1, "rpm": 2}}])",
                          kOneTier)),
            "endpoints[0].limits.rpm appears twice in one object; the second would silently win");
}

TEST(Config, APathNamesAKeyWithSpacesWhole) {
  try {
    (void)options_from_json(
        with(kOneEndpoint, kOneTier, R"("prices": {"my model": {"input_per_mtok": "x"}})"), env());
    FAIL() << "a string price was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "prices.\"my model\".input_per_mtok") << e.what();
  }
}

TEST(Config, EnvironmentValuesAreTakenAsTheyAre) {
  EnvLookup lookup = [](const std::string& name) -> std::optional<std::string> {
    if (name == "KEY") return "sk-123";
    if (name == "NESTED") return "a${KEY}b";
    if (name == "LATIN1") return "caf\xE9";
    return std::nullopt;
  };
  const std::string endpoint = R"([{"name": "a", "base_url": "http://127.0.0.1:1/v1",
                                    "api_key": "$API"}])";
  auto key_of = [&](const std::string& value) {
    std::string e = endpoint;
    e.replace(e.find("$API"), 4, value);
    return options_from_json(with(e, kOneTier), lookup).endpoints[0].api_key;
  };
  EXPECT_EQ(key_of("$${KEY}"), "${KEY}");      // a literal ${
  EXPECT_EQ(key_of("${NESTED}"), "a${KEY}b");  // never expanded again
  // ...not after a round trip either.
  ClientOptions o = options_from_json(
      with(endpoint.substr(0, endpoint.find("$API")) + "${NESTED}\"}]", kOneTier), lookup);
  ClientOptions again = options_from_json(options_to_json(o, true), lookup);
  EXPECT_EQ(again.endpoints[0].api_key, "a${KEY}b");
  try {
    (void)key_of("${LATIN1}");
    FAIL() << "a value that is not UTF-8 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "endpoints[0].api_key refers to ${LATIN1}, whose value is not valid UTF-8");
  }
}

// Endpoint, Route and Tier take their fields in order, as braced lists gave them when they were
// aggregates: every positional form keeps every field.
TEST(OptionsInCode, BracedFormsSetTheirFieldsInOrderAndLeaveTheRestAtTheirDefaults) {
  std::vector<Endpoint> endpoints = {
      {"plain", "http://127.0.0.1:1/v1"},
      {"org", "http://127.0.0.1:2/v1", "sk-org", {{"OpenAI-Organization", "org-1"}}},
      {"azure",
       "http://127.0.0.1:3/v1",
       "key",
       {},
       AuthStyle::ApiKey,
       Dialect::OpenAI,
       {{"api-version", "2024-10-21"}},
       "eu",
       EndpointLimits{60.0, std::nullopt, 2},
       Continuation::Prefill,
       false},
  };
  EXPECT_EQ(endpoints[0].api_key, "");
  EXPECT_EQ(endpoints[0].auth, AuthStyle::Bearer);
  EXPECT_TRUE(endpoints[0].streaming);
  EXPECT_EQ(endpoints[1].headers.at("OpenAI-Organization"), "org-1");
  const Endpoint& a = endpoints[2];
  EXPECT_EQ(a.auth, AuthStyle::ApiKey);
  EXPECT_EQ(a.query.at("api-version"), "2024-10-21");
  EXPECT_EQ(a.region, "eu");
  EXPECT_EQ(a.limits.rpm, 60.0);
  EXPECT_EQ(a.limits.max_concurrency, 2);
  EXPECT_EQ(a.continuation, Continuation::Prefill);
  EXPECT_FALSE(a.streaming);

  Route r{"primary", "o3", 3, {}, R"({"reasoning_effort":"low"})", {"temperature"}, false};
  EXPECT_EQ(r.weight, 3);
  EXPECT_EQ(r.params, R"({"reasoning_effort":"low"})");
  EXPECT_EQ(r.drop_params, (std::vector<std::string>{"temperature"}));
  EXPECT_FALSE(r.model_rules);
  EXPECT_TRUE(Route({"b", "m"}).model_rules);

  TimeoutOverrides slow;
  slow.attempt = std::chrono::seconds(90);
  Tier t{{{"primary", "o3"}, {"backup", "o3", 2}}, BalanceStrategy::Weighted, nullptr, slow};
  ASSERT_EQ(t.routes.size(), 2u);
  EXPECT_EQ(t.routes[1].weight, 2);
  EXPECT_EQ(t.balance, BalanceStrategy::Weighted);
  EXPECT_EQ(t.timeouts.attempt, std::chrono::seconds(90));
  const Tier short_form{{{"a", "m"}}};
  EXPECT_EQ(short_form.balance, BalanceStrategy::Ordered);
}

}  // namespace
}  // namespace failover
