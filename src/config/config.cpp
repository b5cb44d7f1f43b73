// JSON configuration files -> ClientOptions, strictly checked, and back.

#include <failover/config.hpp>

#include "options/resolve.hpp"
#include "util/edit_distance.hpp"
#include "util/secret_names.hpp"
#include "util/utf8.hpp"
#include "wire/dialect.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace failover {

ConfigError::ConfigError(const std::string& message)
    : std::invalid_argument(message), path_(message.substr(0, message.find(' '))) {}

ConfigError::ConfigError(std::string path, const std::string& what)
    : std::invalid_argument(path + " " + what), path_(std::move(path)) {}

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ConfigError(path, what);
}

std::string index_path(const std::string& base, std::size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

// A key of the user's choosing (a model, a header) is quoted in a path when it holds more than
// a name's characters (model names keep their dots): `prices."my model".input_per_mtok`.
std::string join_path(const std::string& base, const std::string& key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
           c == ':' || c == '/';
  });
  const std::string k =
      plain ? key
            : nlohmann::json(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return base.empty() ? k : base + "." + k;
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

constexpr BalanceStrategy kStrategies[] = {
    BalanceStrategy::Ordered,        BalanceStrategy::Weighted,
    BalanceStrategy::RoundRobin,     BalanceStrategy::LeastOutstanding,
    BalanceStrategy::ConsistentHash, BalanceStrategy::LatencyAware};

class Reader {
 public:
  explicit Reader(const EnvLookup& env) : env_(env) {}

  ClientOptions read(const json& doc) {
    if (!doc.is_object()) fail("config", "must be a JSON object");
    check_keys(doc, "",
               {"endpoints", "priority", "timeouts", "retry", "retry_budget", "circuit_breaker",
                "health", "hedging", "prices", "budget", "shadow", "canary", "max_response_bytes",
                "ca_bundle", "user_agent", "content_filter", "stream_recovery", "state", "log"});
    ClientOptions o;
    const json& endpoints = member(doc, "", "endpoints");
    if (!endpoints.is_array())
      fail("endpoints", std::string("must be an array, not ") + type_name(endpoints));
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      o.endpoints.push_back(endpoint(endpoints[i], index_path("endpoints", i)));
    }
    const json& priority = member(doc, "", "priority");
    if (!priority.is_array())
      fail("priority", std::string("must be an array, not ") + type_name(priority));
    for (std::size_t i = 0; i < priority.size(); ++i) {
      o.priority.push_back(tier(priority[i], index_path("priority", i)));
    }
    if (doc.contains("timeouts")) o.timeouts = timeouts(doc["timeouts"]);
    if (doc.contains("retry")) o.retry = retry(doc["retry"]);
    if (doc.contains("retry_budget")) o.retry_budget = budget(doc["retry_budget"]);
    if (doc.contains("health")) o.health_probe = health(doc["health"]);
    if (doc.contains("hedging")) o.hedging = hedging(doc["hedging"]);
    if (doc.contains("prices")) o.prices = prices(doc["prices"]);
    if (doc.contains("budget")) o.budget = budget_limits(doc["budget"]);
    if (doc.contains("circuit_breaker")) o.circuit_breaker = breaker(doc["circuit_breaker"]);
    if (doc.contains("shadow")) o.shadow = shadow(doc["shadow"]);
    if (doc.contains("canary")) o.canary = canary(doc["canary"]);
    if (doc.contains("state")) o.state = state(doc["state"]);
    if (doc.contains("log")) o.log = log(doc["log"]);
    if (doc.contains("max_response_bytes")) {
      o.max_response_bytes =
          static_cast<std::size_t>(positive(doc["max_response_bytes"], "max_response_bytes"));
    }
    if (doc.contains("ca_bundle")) o.ca_bundle = string(doc["ca_bundle"], "ca_bundle");
    if (doc.contains("user_agent")) o.user_agent = string(doc["user_agent"], "user_agent");
    if (doc.contains("content_filter")) {
      const std::string policy = string(doc["content_filter"], "content_filter");
      if (policy == "fail") {
        o.content_filter = ContentFilterPolicy::Fail;
      } else if (policy == "fail_over") {
        o.content_filter = ContentFilterPolicy::FailOver;
      } else {
        fail("content_filter",
             "must be fail or fail_over (got \"" + wire::excerpt(policy, 40) + "\")");
      }
    }
    if (doc.contains("stream_recovery")) {
      const std::string mode = string(doc["stream_recovery"], "stream_recovery");
      if (mode == "fail") {
        o.stream_recovery = StreamRecovery::Fail;
      } else if (mode == "restart") {
        o.stream_recovery = StreamRecovery::Restart;
      } else if (mode == "continue") {
        o.stream_recovery = StreamRecovery::Continue;
      } else {
        fail("stream_recovery",
             "must be fail, restart or continue (got \"" + wire::excerpt(mode, 40) + "\")");
      }
    }
    return o;
  }

 private:
  void check_keys(const json& obj, const std::string& path,
                  std::initializer_list<const char*> allowed) {
    for (const auto& item : obj.items()) {
      const std::string& key = item.key();
      bool known =
          std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; });
      if (known) continue;
      std::string best;
      std::size_t best_distance = 3;
      for (const char* a : allowed) {
        std::size_t d = detail::edit_distance(key, a);
        if (d < best_distance) {
          best_distance = d;
          best = a;
        }
      }
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      fail(join_path(path, key),
           "is not a known key" + (best.empty() ? std::string() : " (did you mean " + best + "?)") +
               "; known keys: " + list);
    }
  }

  const json& member(const json& obj, const std::string& path, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end()) fail(join_path(path, key), "is missing");
    return *it;
  }

  std::string string(const json& v, const std::string& path) {
    if (!v.is_string()) fail(path, std::string("must be a string, not ") + type_name(v));
    return interpolate(v.get<std::string>(), path);
  }

  std::int64_t positive(const json& v, const std::string& path) {
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) {
      fail(path, "must be a positive whole number (got " + wire::excerpt(v.dump(), 40) + ")");
    }
    return v.get<std::int64_t>();
  }

  std::int64_t non_negative(const json& v, const std::string& path) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
      fail(path, "must be a whole number of at least 0 (got " + wire::excerpt(v.dump(), 40) + ")");
    }
    return v.get<std::int64_t>();
  }

  // A count held in an int: a larger value is refused, never wrapped.
  int positive_int(const json& v, const std::string& path) {
    return as_int(positive(v, path), path);
  }
  int non_negative_int(const json& v, const std::string& path) {
    return as_int(non_negative(v, path), path);
  }
  static int as_int(std::int64_t n, const std::string& path) {
    constexpr std::int64_t kMax = std::numeric_limits<int>::max();
    if (n > kMax) {
      fail(path, "must be at most " + std::to_string(kMax) + " (got " + std::to_string(n) + ")");
    }
    return static_cast<int>(n);
  }

  bool boolean(const json& v, const std::string& path) {
    if (!v.is_boolean()) fail(path, std::string("must be true or false, not ") + type_name(v));
    return v.get<bool>();
  }

  // Durations in milliseconds, at most a year: the SDK counts time in nanoseconds, and a larger
  // value would overflow (found by fuzz_config: total_ms 555555555555600000).
  static constexpr std::int64_t kMaxMillis = 365LL * 24 * 3600 * 1000;

  Duration millis(const json& v, const std::string& path) {
    return std::chrono::milliseconds(at_most_a_year(positive(v, path), path));
  }

  std::int64_t at_most_a_year(std::int64_t ms, const std::string& path) {
    if (ms > kMaxMillis) {
      fail(path, "must be at most " + std::to_string(kMaxMillis) + " ms (a year; got " +
                     std::to_string(ms) + ")");
    }
    return ms;
  }

  std::map<std::string, std::string> string_map(const json& v, const std::string& path) {
    if (!v.is_object())
      fail(path, std::string("must be an object of strings, not ") + type_name(v));
    std::map<std::string, std::string> out;
    for (const auto& [key, value] : v.items()) out[key] = string(value, join_path(path, key));
    return out;
  }

  // `${NAME}` and `${NAME:-fallback}` replaced; `$${` is a literal `${`. A value from the
  // environment is taken as it is (never expanded again) and must be valid UTF-8.
  std::string interpolate(const std::string& s, const std::string& path) {
    if (s.find("${") == std::string::npos) return s;
    std::string out;
    std::size_t i = 0;
    while (i < s.size()) {
      if (s.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 3;
        continue;
      }
      if (s.compare(i, 2, "${") != 0) {
        out += s[i++];
        continue;
      }
      const std::size_t open = i;
      std::size_t close = s.find('}', open);
      if (close == std::string::npos) fail(path, "has a ${ without its closing }");
      std::string inside = s.substr(open + 2, close - open - 2);
      std::optional<std::string> fallback;
      if (std::size_t sep = inside.find(":-"); sep != std::string::npos) {
        fallback = inside.substr(sep + 2);
        inside.resize(sep);
      }
      bool valid = !inside.empty() && !std::isdigit(static_cast<unsigned char>(inside[0]));
      for (char c : inside)
        valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
      if (!valid) fail(path, "has a malformed reference ${" + wire::excerpt(inside, 40) + "}");
      std::optional<std::string> value = lookup(inside);
      if (!value || value->empty()) {
        if (!fallback)
          fail(path, "refers to ${" + inside + "}, which is not set in the environment");
        value = fallback;
      } else if (detail::valid_utf8(*value) != *value) {
        fail(path, "refers to ${" + inside + "}, whose value is not valid UTF-8");
      }
      out += *value;
      i = close + 1;
    }
    return out;
  }

  // A JSON value with `${...}` replaced in every string in it (route params).
  json interpolated(const json& v, const std::string& path) {
    if (v.is_string()) return interpolate(v.get<std::string>(), path);
    if (v.is_object()) {
      json out = json::object();
      for (const auto& [key, item] : v.items()) out[key] = interpolated(item, join_path(path, key));
      return out;
    }
    if (v.is_array()) {
      json out = json::array();
      for (std::size_t k = 0; k < v.size(); ++k)
        out.push_back(interpolated(v[k], index_path(path, k)));
      return out;
    }
    return v;
  }

  std::optional<std::string> lookup(const std::string& name) {
    if (env_) return env_(name);
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  }

  Endpoint endpoint(const json& v, const std::string& path) {
    if (!v.is_object()) fail(path, std::string("must be an object, not ") + type_name(v));
    check_keys(v, path,
               {"name", "base_url", "api_key", "headers", "auth", "query", "region", "limits",
                "continuation", "dialect", "streaming"});
    Endpoint e;
    e.name = string(member(v, path, "name"), path + ".name");
    e.base_url = string(member(v, path, "base_url"), path + ".base_url");
    if (v.contains("dialect")) {
      const std::string d = string(v["dialect"], path + ".dialect");
      if (const wire::DialectApi* api = wire::api_named(d)) {
        e.dialect = api->id();
      } else {
        fail(path + ".dialect",
             "must be " + wire::dialect_names() + " (got \"" + wire::excerpt(d, 40) + "\")");
      }
    }
    if (v.contains("auth")) {
      std::string auth = string(v["auth"], path + ".auth");
      if (auth == "bearer") {
        e.auth = AuthStyle::Bearer;
      } else if (auth == "api-key") {
        e.auth = AuthStyle::ApiKey;
      } else if (auth == "none") {
        e.auth = AuthStyle::None;
      } else {
        fail(path + ".auth", "must be \"bearer\", \"api-key\" or \"none\" (got \"" +
                                 wire::excerpt(auth, 40) + "\")");
      }
    }
    if (e.auth != AuthStyle::None) {
      if (!v.contains("api_key")) {
        fail(path + ".api_key", "is missing (use \"auth\": \"none\" for a server without keys)");
      }
      e.api_key = string(v["api_key"], path + ".api_key");
      if (wire::trim(e.api_key).empty()) {
        fail(path + ".api_key", "is empty (use \"auth\": \"none\" for a server without keys)");
      }
    } else if (v.contains("api_key")) {
      fail(path + ".api_key", "is set but auth is none");
    }
    if (v.contains("headers")) e.headers = string_map(v["headers"], path + ".headers");
    if (v.contains("query")) e.query = string_map(v["query"], path + ".query");
    if (v.contains("region")) e.region = string(v["region"], path + ".region");
    if (v.contains("continuation")) {
      const std::string c = string(v["continuation"], path + ".continuation");
      if (c == "prefill") {
        e.continuation = Continuation::Prefill;
      } else if (c != "none") {
        fail(path + ".continuation",
             "must be \"prefill\" or \"none\" (got \"" + wire::excerpt(c, 40) + "\")");
      }
    }
    if (v.contains("streaming")) e.streaming = boolean(v["streaming"], path + ".streaming");
    if (v.contains("limits")) {
      const json& l = v["limits"];
      const std::string lp = path + ".limits";
      if (!l.is_object()) fail(lp, std::string("must be an object, not ") + type_name(l));
      check_keys(l, lp, {"rpm", "tpm", "max_concurrency"});
      auto rate = [&](const char* key) {
        const json& x = l[key];
        if (!x.is_number() || !(x.get<double>() > 0) || x.get<double>() > 1e12) {
          fail(lp + "." + key,
               "must be a positive number (got " + wire::excerpt(x.dump(), 40) + ")");
        }
        return x.get<double>();
      };
      if (l.contains("rpm")) e.limits.rpm = rate("rpm");
      if (l.contains("tpm")) e.limits.tpm = rate("tpm");
      if (l.contains("max_concurrency")) {
        e.limits.max_concurrency = positive_int(l["max_concurrency"], lp + ".max_concurrency");
      }
    }
    return e;
  }

  Tier tier(const json& v, const std::string& path) {
    if (!v.is_object()) fail(path, std::string("must be an object, not ") + type_name(v));
    check_keys(v, path, {"model", "routes", "balance", "timeouts"});
    Tier t;
    if (v.contains("timeouts")) t.timeouts = timeout_overrides(v["timeouts"], path + ".timeouts");
    std::string model;
    if (v.contains("model")) model = string(v["model"], path + ".model");
    const json& routes = member(v, path, "routes");
    if (!routes.is_array())
      fail(path + ".routes", std::string("must be an array, not ") + type_name(routes));
    for (std::size_t i = 0; i < routes.size(); ++i) {
      const std::string rpath = index_path(path + ".routes", i);
      const json& r = routes[i];
      Route route;
      if (r.is_string()) {
        route.endpoint = string(r, rpath);
        if (model.empty()) fail(rpath, "names only an endpoint, but the tier has no \"model\"");
        route.model = model;
      } else if (r.is_object()) {
        check_keys(
            r, rpath,
            {"endpoint", "model", "weight", "timeouts", "params", "drop_params", "model_rules"});
        if (r.contains("params")) {
          if (!r["params"].is_object()) {
            fail(rpath + ".params",
                 std::string("must be an object, not ") + type_name(r["params"]));
          }
          route.params = interpolated(r["params"], rpath + ".params").dump();
        }
        if (r.contains("drop_params")) {
          const json& d = r["drop_params"];
          if (!d.is_array()) {
            fail(rpath + ".drop_params",
                 std::string("must be an array of field names, not ") + type_name(d));
          }
          for (std::size_t k = 0; k < d.size(); ++k) {
            route.drop_params.push_back(string(d[k], index_path(rpath + ".drop_params", k)));
          }
        }
        if (r.contains("model_rules")) {
          if (!r["model_rules"].is_boolean()) {
            fail(rpath + ".model_rules",
                 std::string("must be true or false, not ") + type_name(r["model_rules"]));
          }
          route.model_rules = r["model_rules"].get<bool>();
        }
        if (r.contains("timeouts")) {
          route.timeouts = timeout_overrides(r["timeouts"], rpath + ".timeouts");
        }
        route.endpoint = string(member(r, rpath, "endpoint"), rpath + ".endpoint");
        route.model = r.contains("model") ? string(r["model"], rpath + ".model") : model;
        if (route.model.empty()) fail(rpath + ".model", "is missing and the tier has no \"model\"");
        if (r.contains("weight")) route.weight = positive_int(r["weight"], rpath + ".weight");
      } else {
        fail(rpath, std::string("must be an endpoint name or an object, not ") + type_name(r));
      }
      t.routes.push_back(std::move(route));
    }
    if (v.contains("balance")) {
      std::string balance = string(v["balance"], path + ".balance");
      bool known = false;
      for (BalanceStrategy b : kStrategies) {
        if (balance == to_string(b)) {
          t.balance = b;
          known = true;
        }
      }
      if (!known) {
        fail(path + ".balance",
             "must be one of ordered, weighted, round_robin, "
             "least_outstanding, consistent_hash, latency (got \"" +
                 wire::excerpt(balance, 40) + "\")");
      }
    }
    return t;
  }

  StateOptions state(const json& v) {
    if (!v.is_object()) fail("state", std::string("must be an object, not ") + type_name(v));
    check_keys(v, "state", {"redis", "prefix", "timeout_ms", "call_timeout_ms", "sync_ms"});
    RedisStoreOptions r;
    r.url = string(member(v, "state", "redis"), "state.redis");
    if (v.contains("prefix")) r.prefix = string(v["prefix"], "state.prefix");
    if (v.contains("timeout_ms")) r.timeout = millis(v["timeout_ms"], "state.timeout_ms");
    if (v.contains("call_timeout_ms")) {
      r.call_timeout = millis(v["call_timeout_ms"], "state.call_timeout_ms");
    }
    StateOptions s;
    if (v.contains("sync_ms")) s.sync_interval = millis(v["sync_ms"], "state.sync_ms");
    try {
      s.store = make_redis_store(r);
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      const std::string prefix = "state.redis: ";
      fail("state.redis", what.rfind(prefix, 0) == 0 ? what.substr(prefix.size()) : what);
    }
    s.redis = std::move(r);
    return s;
  }

  Timeouts timeouts(const json& v) {
    if (!v.is_object()) fail("timeouts", std::string("must be an object, not ") + type_name(v));
    check_keys(v, "timeouts",
               {"connect_ms", "headers_ms", "first_byte_ms", "idle_ms", "attempt_ms", "total_ms"});
    Timeouts t;
    if (v.contains("connect_ms")) t.connect = millis(v["connect_ms"], "timeouts.connect_ms");
    if (v.contains("headers_ms")) t.headers = millis(v["headers_ms"], "timeouts.headers_ms");
    if (v.contains("first_byte_ms"))
      t.first_byte = millis(v["first_byte_ms"], "timeouts.first_byte_ms");
    if (v.contains("idle_ms")) t.idle = millis(v["idle_ms"], "timeouts.idle_ms");
    if (v.contains("attempt_ms")) t.attempt = millis(v["attempt_ms"], "timeouts.attempt_ms");
    if (v.contains("total_ms")) t.total = millis(v["total_ms"], "timeouts.total_ms");
    return t;
  }

  // A tier's or a route's own limits: every timeout but the call's total.
  TimeoutOverrides timeout_overrides(const json& v, const std::string& path) {
    if (!v.is_object()) fail(path, std::string("must be an object, not ") + type_name(v));
    if (v.contains("total_ms")) {
      fail(path + ".total_ms", "bounds the whole call: set it in the top-level timeouts");
    }
    check_keys(v, path, {"connect_ms", "headers_ms", "first_byte_ms", "idle_ms", "attempt_ms"});
    TimeoutOverrides t;
    if (v.contains("connect_ms")) t.connect = millis(v["connect_ms"], path + ".connect_ms");
    if (v.contains("headers_ms")) t.headers = millis(v["headers_ms"], path + ".headers_ms");
    if (v.contains("first_byte_ms")) {
      t.first_byte = millis(v["first_byte_ms"], path + ".first_byte_ms");
    }
    if (v.contains("idle_ms")) t.idle = millis(v["idle_ms"], path + ".idle_ms");
    if (v.contains("attempt_ms")) t.attempt = millis(v["attempt_ms"], path + ".attempt_ms");
    return t;
  }

  std::shared_ptr<const RetryPolicy> retry(const json& v) {
    if (!v.is_object()) fail("retry", std::string("must be an object, not ") + type_name(v));
    if (v.contains("failover_on_content_filter")) {
      fail("retry.failover_on_content_filter",
           "moved to the top-level key content_filter (\"fail\" or \"fail_over\")");
    }
    check_keys(v, "retry",
               {"max_attempts", "base_delay_ms", "max_delay_ms", "max_retry_after_ms",
                "max_wait_before_next_tier_ms", "retries_before_next_tier"});
    RetryOptions r;
    if (v.contains("max_attempts")) {
      r.max_attempts = positive_int(v["max_attempts"], "retry.max_attempts");
    }
    if (v.contains("base_delay_ms"))
      r.base_delay = millis(v["base_delay_ms"], "retry.base_delay_ms");
    if (v.contains("max_delay_ms")) r.max_delay = millis(v["max_delay_ms"], "retry.max_delay_ms");
    if (v.contains("max_retry_after_ms")) {
      r.max_retry_after = std::chrono::milliseconds(
          at_most_a_year(non_negative(v["max_retry_after_ms"], "retry.max_retry_after_ms"),
                         "retry.max_retry_after_ms"));
    }
    if (v.contains("max_wait_before_next_tier_ms")) {
      r.max_wait_before_next_tier = std::chrono::milliseconds(at_most_a_year(
          non_negative(v["max_wait_before_next_tier_ms"], "retry.max_wait_before_next_tier_ms"),
          "retry.max_wait_before_next_tier_ms"));
    }
    if (v.contains("retries_before_next_tier")) {
      r.retries_before_next_tier =
          non_negative_int(v["retries_before_next_tier"], "retry.retries_before_next_tier");
    }
    if (r.max_delay < r.base_delay)
      fail("retry.max_delay_ms", "must be at least retry.base_delay_ms");
    return std::make_shared<DefaultRetryPolicy>(r);
  }

  double fraction_or_more(const json& v, const std::string& path, double max) {
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > max) {
      fail(path, "must be a number from 0 to " + json(max).dump() + " (got " +
                     wire::excerpt(v.dump(), 40) + ")");
    }
    return v.get<double>();
  }

  std::map<std::string, ModelPrice> prices(const json& v) {
    if (!v.is_object())
      fail("prices", std::string("must be an object of models, not ") + type_name(v));
    std::map<std::string, ModelPrice> out;
    for (const auto& [model, p] : v.items()) {
      const std::string path = join_path("prices", model);
      if (!p.is_object()) fail(path, std::string("must be an object, not ") + type_name(p));
      check_keys(p, path,
                 {"input_per_mtok", "cached_input_per_mtok", "output_per_mtok",
                  "cache_write_per_mtok", "output_tokens"});
      ModelPrice price;
      price.input_per_mtok =
          fraction_or_more(member(p, path, "input_per_mtok"), path + ".input_per_mtok", 1e6);
      price.output_per_mtok =
          fraction_or_more(member(p, path, "output_per_mtok"), path + ".output_per_mtok", 1e6);
      if (p.contains("cache_write_per_mtok")) {
        price.cache_write_per_mtok =
            fraction_or_more(p["cache_write_per_mtok"], path + ".cache_write_per_mtok", 1e6);
      }
      if (p.contains("cached_input_per_mtok")) {
        price.cached_input_per_mtok =
            fraction_or_more(p["cached_input_per_mtok"], path + ".cached_input_per_mtok", 1e6);
      }
      if (p.contains("output_tokens")) {
        price.output_tokens = positive(p["output_tokens"], path + ".output_tokens");
      }
      out[model] = price;
    }
    return out;
  }

  BudgetOptions budget_limits(const json& v) {
    const std::string p = "budget";
    if (!v.is_object()) fail(p, std::string("must be an object, not ") + type_name(v));
    check_keys(v, p, {"usd_per_day", "usd_per_month", "default_output_tokens", "fail_closed"});
    BudgetOptions b;
    if (v.contains("fail_closed")) b.fail_closed = boolean(v["fail_closed"], p + ".fail_closed");
    if (v.contains("default_output_tokens")) {
      b.default_output_tokens = positive(v["default_output_tokens"], p + ".default_output_tokens");
    }
    for (const char* key : {"usd_per_day", "usd_per_month"}) {
      if (!v.contains(key)) continue;
      double amount = fraction_or_more(v[key], p + "." + key, 1e9);
      if (amount <= 0) fail(p + "." + key, "must be a positive amount");
      (std::string(key) == "usd_per_day" ? b.usd_per_day : b.usd_per_month) = amount;
    }
    return b;
  }

  RouteRef route_ref(const json& v, const std::string& path) {
    if (!v.is_object()) {
      fail(path, std::string("must be an object {\"endpoint\": ..., \"model\": ...}, not ") +
                     type_name(v));
    }
    check_keys(v, path, {"endpoint", "model"});
    RouteRef r;
    r.endpoint = string(member(v, path, "endpoint"), path + ".endpoint");
    r.model = string(member(v, path, "model"), path + ".model");
    return r;
  }

  ShadowOptions shadow(const json& v) {
    const std::string p = "shadow";
    if (!v.is_object()) fail(p, std::string("must be an object, not ") + type_name(v));
    check_keys(v, p, {"candidate", "sample", "queue", "timeout_ms", "worst_pairs", "thresholds"});
    ShadowOptions o;
    o.candidate = route_ref(member(v, p, "candidate"), p + ".candidate");
    o.sample = fraction_or_more(member(v, p, "sample"), p + ".sample", 1.0);
    if (v.contains("queue")) o.queue = static_cast<std::size_t>(positive(v["queue"], p + ".queue"));
    if (v.contains("timeout_ms")) o.timeout = millis(v["timeout_ms"], p + ".timeout_ms");
    if (v.contains("worst_pairs")) {
      o.worst_pairs = static_cast<std::size_t>(non_negative(v["worst_pairs"], p + ".worst_pairs"));
    }
    if (v.contains("thresholds")) {
      const std::string tp = p + ".thresholds";
      const json& t = v["thresholds"];
      if (!t.is_object()) fail(tp, std::string("must be an object, not ") + type_name(t));
      check_keys(t, tp, {"min_pairs", "min_success_rate", "min_similarity", "max_p95_ratio"});
      ShadowThresholds& th = o.thresholds;
      if (t.contains("min_pairs")) {
        th.min_pairs = static_cast<std::size_t>(non_negative(t["min_pairs"], tp + ".min_pairs"));
      }
      if (t.contains("min_success_rate")) {
        th.min_success_rate = fraction_or_more(t["min_success_rate"], tp + ".min_success_rate", 1);
      }
      if (t.contains("min_similarity")) {
        th.min_similarity = fraction_or_more(t["min_similarity"], tp + ".min_similarity", 1);
      }
      if (t.contains("max_p95_ratio")) {
        th.max_p95_ratio = fraction_or_more(t["max_p95_ratio"], tp + ".max_p95_ratio", 1e6);
        if (th.max_p95_ratio <= 0) fail(tp + ".max_p95_ratio", "must be positive");
      }
    }
    return o;
  }

  CanaryOptions canary(const json& v) {
    const std::string p = "canary";
    if (!v.is_object()) fail(p, std::string("must be an object, not ") + type_name(v));
    check_keys(v, p, {"candidate", "steps", "step_ms", "rollback"});
    CanaryOptions o;
    o.candidate = route_ref(member(v, p, "candidate"), p + ".candidate");
    if (v.contains("steps")) {
      const json& steps = v["steps"];
      if (!steps.is_array() || steps.empty()) {
        fail(p + ".steps", "must be a non-empty array of percentages, e.g. [5, 10, 25, 50, 100]");
      }
      o.steps.clear();
      for (std::size_t i = 0; i < steps.size(); ++i) {
        const std::string sp = index_path(p + ".steps", i);
        double step = fraction_or_more(steps[i], sp, 100);
        if (step <= 0) fail(sp, "must be above 0");
        if (!o.steps.empty() && step <= o.steps.back()) {
          fail(sp, "must be above the step before it (steps increase)");
        }
        o.steps.push_back(step);
      }
    }
    if (v.contains("step_ms")) o.step = millis(v["step_ms"], p + ".step_ms");
    if (v.contains("rollback")) {
      const std::string rp = p + ".rollback";
      const json& r = v["rollback"];
      if (!r.is_object()) fail(rp, std::string("must be an object, not ") + type_name(r));
      check_keys(r, rp, {"error_rate", "p99_ms", "min_success_rate", "min_calls"});
      CanaryRollback& rb = o.rollback;
      if (r.contains("error_rate"))
        rb.error_rate = fraction_or_more(r["error_rate"], rp + ".error_rate", 1);
      if (r.contains("p99_ms")) rb.p99 = millis(r["p99_ms"], rp + ".p99_ms");
      if (r.contains("min_success_rate")) {
        rb.min_success_rate = fraction_or_more(r["min_success_rate"], rp + ".min_success_rate", 1);
      }
      if (r.contains("min_calls")) {
        rb.min_calls = static_cast<std::size_t>(positive(r["min_calls"], rp + ".min_calls"));
      }
    }
    return o;
  }

  HedgingOptions hedging(const json& v) {
    const std::string p = "hedging";
    if (!v.is_object()) fail(p, std::string("must be an object, not ") + type_name(v));
    check_keys(v, p, {"delay_ms", "max_extra", "use_p95"});
    HedgingOptions h;
    if (v.contains("delay_ms")) h.delay = millis(v["delay_ms"], p + ".delay_ms");
    if (v.contains("max_extra")) h.max_extra = non_negative_int(v["max_extra"], p + ".max_extra");
    if (v.contains("use_p95")) h.use_p95 = boolean(v["use_p95"], p + ".use_p95");
    if (h.delay == Duration::zero() && !h.use_p95) {
      fail(p, "needs delay_ms, use_p95 or both (remove the key to turn hedging off)");
    }
    return h;
  }

  LogOptions log(const json& v) {
    if (!v.is_object()) fail("log", std::string("must be an object, not ") + type_name(v));
    check_keys(v, "log", {"level", "file"});
    LogOptions l;
    if (v.contains("level")) l.level = string(v["level"], "log.level");
    if (v.contains("file")) l.file = string(v["file"], "log.file");
    return l;
  }

  HealthProbeOptions health(const json& v) {
    const std::string p = "health";
    if (!v.is_object()) fail(p, std::string("must be an object, not ") + type_name(v));
    check_keys(v, p, {"interval_ms", "probe", "timeout_ms", "jitter"});
    HealthProbeOptions h;
    // Without an interval nothing probes in the background; the probe and its timeout still
    // apply to Client::probe() and `failover health`.
    if (v.contains("interval_ms")) h.interval = millis(v["interval_ms"], p + ".interval_ms");
    if (v.contains("probe")) {
      std::string probe = string(v["probe"], p + ".probe");
      if (probe == "models") {
        h.method = ProbeMethod::Models;
      } else if (probe == "chat") {
        h.method = ProbeMethod::Chat;
      } else {
        fail(p + ".probe",
             "must be \"models\" or \"chat\" (got \"" + wire::excerpt(probe, 40) + "\")");
      }
    }
    if (v.contains("timeout_ms")) h.timeout = millis(v["timeout_ms"], p + ".timeout_ms");
    if (v.contains("jitter")) {
      h.jitter = fraction_or_more(v["jitter"], p + ".jitter", 0.99);
    }
    return h;
  }

  RetryBudgetOptions budget(const json& v) {
    const std::string p = "retry_budget";
    if (!v.is_object()) fail(p, std::string("must be an object, not ") + type_name(v));
    check_keys(v, p, {"ratio", "min_concurrent", "throttle_max_tokens", "throttle_token_ratio"});
    RetryBudgetOptions b;
    if (v.contains("ratio")) b.ratio = fraction_or_more(v["ratio"], p + ".ratio", 1.0);
    if (v.contains("min_concurrent")) {
      b.min_concurrent = non_negative_int(v["min_concurrent"], p + ".min_concurrent");
    }
    if (v.contains("throttle_max_tokens")) {
      b.throttle_max_tokens =
          fraction_or_more(v["throttle_max_tokens"], p + ".throttle_max_tokens", 1e6);
    }
    if (v.contains("throttle_token_ratio")) {
      b.throttle_token_ratio =
          fraction_or_more(v["throttle_token_ratio"], p + ".throttle_token_ratio", 1e6);
    }
    return b;
  }

  CircuitBreakerFactory breaker(const json& v) {
    const std::string p = "circuit_breaker";
    if (!v.is_object()) fail(p, std::string("must be an object, not ") + type_name(v));
    check_keys(v, p,
               {"consecutive_failures", "failure_rate", "window", "min_calls", "open_ms",
                "max_open_ms", "half_open_probes"});
    CircuitBreakerOptions b;
    if (v.contains("consecutive_failures")) {
      b.consecutive_failures = positive_int(v["consecutive_failures"], p + ".consecutive_failures");
    }
    if (v.contains("failure_rate")) {
      const json& rate = v["failure_rate"];
      if (!rate.is_number() || !(rate.get<double>() > 0.0 && rate.get<double>() <= 1.0)) {
        fail(p + ".failure_rate",
             "must be a number in (0, 1] (got " + wire::excerpt(rate.dump(), 40) + ")");
      }
      b.failure_rate = rate.get<double>();
    }
    if (v.contains("window")) b.window = positive_int(v["window"], p + ".window");
    if (v.contains("min_calls")) b.min_calls = positive_int(v["min_calls"], p + ".min_calls");
    if (v.contains("open_ms")) b.open_duration = millis(v["open_ms"], p + ".open_ms");
    if (v.contains("max_open_ms"))
      b.max_open_duration = millis(v["max_open_ms"], p + ".max_open_ms");
    if (v.contains("half_open_probes")) {
      b.half_open_probes = positive_int(v["half_open_probes"], p + ".half_open_probes");
    }
    if (b.min_calls > b.window) fail(p + ".min_calls", "must not exceed circuit_breaker.window");
    if (b.max_open_duration < b.open_duration)
      fail(p + ".max_open_ms", "must be at least circuit_breaker.open_ms");
    return DefaultCircuitBreaker::factory(b);
  }

  const EnvLookup& env_;
};

}  // namespace

namespace {

// The parser's callback that refuses an object with the same key twice (a typo must never
// silently replace a policy), naming the key's path.
json::parser_callback_t duplicate_key_check() {
  struct Frame {
    bool array = false;
    std::string name;       // an object's current key
    std::size_t index = 0;  // an array's current element
    std::set<std::string> keys;
  };
  auto frames = std::make_shared<std::vector<Frame>>();
  return [frames](int, json::parse_event_t event, json& parsed) {
    std::vector<Frame>& f = *frames;
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        f.push_back(Frame{event == json::parse_event_t::array_start, {}, 0, {}});
        break;
      case json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        const bool fresh = f.back().keys.insert(key).second;
        f.back().name = key;
        if (!fresh) {
          std::string path;
          for (const Frame& frame : f) {
            path = frame.array ? index_path(path, frame.index) : join_path(path, frame.name);
          }
          fail(path, "appears twice in one object; the second would silently win");
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        f.pop_back();
        if (!f.empty() && f.back().array) ++f.back().index;
        break;
      case json::parse_event_t::value:
        if (!f.empty() && f.back().array) ++f.back().index;
        break;
    }
    return true;
  };
}

}  // namespace

ClientOptions options_from_json(std::string_view json_text, const EnvLookup& env) {
  if (!wire::json_depth_within(json_text)) fail("config", "nests too deeply to be a configuration");
  json doc = json::parse(json_text.begin(), json_text.end(), duplicate_key_check(), false,
                         /*comments=*/true);
  if (doc.is_discarded()) {
    // Parse again with exceptions for the position of the error.
    try {
      json ignored = json::parse(json_text.begin(), json_text.end(), nullptr, true, true);
      (void)ignored;
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
      // Without the library's "[json.exception.parse_error.101] parse error at " in front.
      std::string what = detail::valid_utf8(e.what());
      if (what.rfind("[json.exception.", 0) == 0) what.erase(0, what.find("] ") + 2);
      if (what.rfind("parse error at ", 0) == 0) what.erase(0, 15);
      fail("config", "is not valid JSON: " + what);
    }
    fail("config", "is not valid JSON");
  }
  Reader reader(env);
  ClientOptions options = reader.read(doc);
  ClientOptions check = options;
  (void)detail::resolve_options(check);  // URLs, duplicates, unknown endpoints, empty tiers
  return options;
}

ClientOptions options_from_file(const std::string& path, const EnvLookup& env) {
  const std::string shown = "file \"" + wire::excerpt(path, 200) + "\"";
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    fail("config", shown + " cannot be opened" +
                       (error ? std::string(": ") + std::strerror(error) : std::string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("config", shown + " cannot be read");
  try {
    return options_from_json(text.str(), env);
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    if (what.rfind("config is not valid JSON", 0) != 0) throw;
    fail("config", shown + what.substr(6));  // config file "x.json" is not valid JSON: ...
  }
}

}  // namespace failover
