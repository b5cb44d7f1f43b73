// The configuration's sections: endpoints, tiers, timeouts, policies, prices and budgets,
// traffic, state and logging.

#include "config/reader.hpp"

#include "options/resolve.hpp"
#include "util/secret_names.hpp"
#include "util/utf8.hpp"
#include "wire/dialect.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace failover::detail::config_read {

Endpoint Reader::endpoint(const json& v, const std::string& path) {
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
      fail(path + ".auth",
           "must be \"bearer\", \"api-key\" or \"none\" (got \"" + wire::excerpt(auth, 40) + "\")");
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
        fail(lp + "." + key, "must be a positive number (got " + wire::excerpt(x.dump(), 40) + ")");
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

Tier Reader::tier(const json& v, const std::string& path) {
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
          fail(rpath + ".params", std::string("must be an object, not ") + type_name(r["params"]));
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

StateOptions Reader::state(const json& v) {
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

Timeouts Reader::timeouts(const json& v) {
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

TimeoutOverrides Reader::timeout_overrides(const json& v, const std::string& path) {
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

std::shared_ptr<const RetryPolicy> Reader::retry(const json& v) {
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
  if (v.contains("base_delay_ms")) r.base_delay = millis(v["base_delay_ms"], "retry.base_delay_ms");
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

double Reader::fraction_or_more(const json& v, const std::string& path, double max) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > max) {
    fail(path, "must be a number from 0 to " + json(max).dump() + " (got " +
                   wire::excerpt(v.dump(), 40) + ")");
  }
  return v.get<double>();
}

std::map<std::string, ModelPrice> Reader::prices(const json& v) {
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

BudgetOptions Reader::budget_limits(const json& v) {
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

RouteRef Reader::route_ref(const json& v, const std::string& path) {
  if (!v.is_object()) {
    fail(path,
         std::string("must be an object {\"endpoint\": ..., \"model\": ...}, not ") + type_name(v));
  }
  check_keys(v, path, {"endpoint", "model"});
  RouteRef r;
  r.endpoint = string(member(v, path, "endpoint"), path + ".endpoint");
  r.model = string(member(v, path, "model"), path + ".model");
  return r;
}

ShadowOptions Reader::shadow(const json& v) {
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

CanaryOptions Reader::canary(const json& v) {
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

HedgingOptions Reader::hedging(const json& v) {
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

LogOptions Reader::log(const json& v) {
  if (!v.is_object()) fail("log", std::string("must be an object, not ") + type_name(v));
  check_keys(v, "log", {"level", "file"});
  LogOptions l;
  if (v.contains("level")) l.level = string(v["level"], "log.level");
  if (v.contains("file")) l.file = string(v["file"], "log.file");
  return l;
}

HealthProbeOptions Reader::health(const json& v) {
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

RetryBudgetOptions Reader::budget(const json& v) {
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

CircuitBreakerFactory Reader::breaker(const json& v) {
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
  if (v.contains("max_open_ms")) b.max_open_duration = millis(v["max_open_ms"], p + ".max_open_ms");
  if (v.contains("half_open_probes")) {
    b.half_open_probes = positive_int(v["half_open_probes"], p + ".half_open_probes");
  }
  if (b.min_calls > b.window) fail(p + ".min_calls", "must not exceed circuit_breaker.window");
  if (b.max_open_duration < b.open_duration)
    fail(p + ".max_open_ms", "must be at least circuit_breaker.open_ms");
  return DefaultCircuitBreaker::factory(b);
}

}  // namespace failover::detail::config_read
