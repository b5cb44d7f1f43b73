// options_to_json: ClientOptions written as a config file that loads back to the same
// options, section by section.

#include <failover/config.hpp>

#include "util/secret_names.hpp"
#include "wire/dialect.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace failover {

namespace {

using nlohmann::json;

std::int64_t ms(Duration d) { return to_millis(d); }

// A resolved value that holds `${` is written as `$${`, which loading reads back as `${`:
// nothing is expanded a second time.
void escape_references(json& v) {
  if (v.is_string()) {
    const std::string& text = v.get_ref<const std::string&>();
    if (text.find("${") == std::string::npos) return;
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 2, "${") == 0) out += '$';
      out += text[i];
    }
    v = out;
  } else if (v.is_structured()) {
    for (json& item : v) escape_references(item);
  }
}

void write_endpoints(json& doc, const ClientOptions& o, bool include_keys) {
  json endpoints = json::array();
  for (const Endpoint& e : o.endpoints) {
    json j = {{"name", e.name}, {"base_url", e.base_url}};
    if (e.auth == AuthStyle::None) {
      j["auth"] = "none";
    } else {
      j["api_key"] = include_keys ? e.api_key : std::string("<redacted>");
      if (e.auth == AuthStyle::ApiKey) j["auth"] = "api-key";
    }
    // Headers and query parameters that carry secrets are keys too.
    auto shown = [&](const std::map<std::string, std::string>& values) {
      json out = json::object();
      for (const auto& [k, v] : values) {
        out[k] = include_keys || !detail::is_secret_name(k) ? v : std::string("<redacted>");
      }
      return out;
    };
    if (!e.headers.empty()) j["headers"] = shown(e.headers);
    if (!e.query.empty()) j["query"] = shown(e.query);
    if (!e.region.empty()) j["region"] = e.region;
    if (e.continuation == Continuation::Prefill) j["continuation"] = "prefill";
    if (e.dialect != Dialect::OpenAI) j["dialect"] = wire::api_of(e.dialect).name();
    if (!e.streaming) j["streaming"] = false;
    json limits = json::object();
    if (e.limits.rpm) limits["rpm"] = *e.limits.rpm;
    if (e.limits.tpm) limits["tpm"] = *e.limits.tpm;
    if (e.limits.max_concurrency) limits["max_concurrency"] = *e.limits.max_concurrency;
    if (!limits.empty()) j["limits"] = std::move(limits);
    endpoints.push_back(std::move(j));
  }
  doc["endpoints"] = std::move(endpoints);
}

json overrides(const TimeoutOverrides& t) {
  json out = json::object();
  if (t.connect) out["connect_ms"] = ms(*t.connect);
  if (t.headers) out["headers_ms"] = ms(*t.headers);
  if (t.first_byte) out["first_byte_ms"] = ms(*t.first_byte);
  if (t.idle) out["idle_ms"] = ms(*t.idle);
  if (t.attempt) out["attempt_ms"] = ms(*t.attempt);
  return out;
}

void write_priority(json& doc, const ClientOptions& o) {
  json priority = json::array();
  for (const Tier& t : o.priority) {
    json routes = json::array();
    for (const Route& r : t.routes) {
      json route = {{"endpoint", r.endpoint}, {"model", r.model}};
      if (r.weight != 1) route["weight"] = r.weight;
      if (json limits = overrides(r.timeouts); !limits.empty()) route["timeouts"] = limits;
      if (!r.params.empty()) route["params"] = json::parse(r.params, nullptr, false);
      if (!r.drop_params.empty()) route["drop_params"] = r.drop_params;
      if (!r.model_rules) route["model_rules"] = false;
      routes.push_back(std::move(route));
    }
    json tier = {{"routes", std::move(routes)}, {"balance", std::string(to_string(t.balance))}};
    if (json limits = overrides(t.timeouts); !limits.empty()) tier["timeouts"] = limits;
    priority.push_back(std::move(tier));
  }
  doc["priority"] = std::move(priority);
}

// Time limits, and the retry policy and circuit breaker when they are the default ones.
void write_policies(json& doc, const ClientOptions& o) {
  doc["timeouts"] = {
      {"connect_ms", ms(o.timeouts.connect)},       {"headers_ms", ms(o.timeouts.headers)},
      {"first_byte_ms", ms(o.timeouts.first_byte)}, {"idle_ms", ms(o.timeouts.idle)},
      {"attempt_ms", ms(o.timeouts.attempt)},       {"total_ms", ms(o.timeouts.total)}};
  if (auto* policy = dynamic_cast<const DefaultRetryPolicy*>(o.retry.get())) {
    const RetryOptions& r = policy->options();
    doc["retry"] = {{"max_attempts", r.max_attempts},
                    {"base_delay_ms", ms(r.base_delay)},
                    {"max_delay_ms", ms(r.max_delay)},
                    {"max_retry_after_ms", ms(r.max_retry_after)},
                    {"max_wait_before_next_tier_ms", ms(r.max_wait_before_next_tier)},
                    {"retries_before_next_tier", r.retries_before_next_tier}};
  }
  if (auto* factory = o.circuit_breaker.target<DefaultCircuitBreakerFactory>()) {
    const CircuitBreakerOptions& b = factory->options;
    doc["circuit_breaker"] = {{"consecutive_failures", b.consecutive_failures},
                              {"failure_rate", b.failure_rate},
                              {"window", b.window},
                              {"min_calls", b.min_calls},
                              {"open_ms", ms(b.open_duration)},
                              {"max_open_ms", ms(b.max_open_duration)},
                              {"half_open_probes", b.half_open_probes}};
  }
}

void write_spend(json& doc, const ClientOptions& o) {
  if (!o.prices.empty()) {
    json prices = json::object();
    for (const auto& [model, p] : o.prices) {
      json j = {{"input_per_mtok", p.input_per_mtok}, {"output_per_mtok", p.output_per_mtok}};
      if (p.cached_input_per_mtok) j["cached_input_per_mtok"] = *p.cached_input_per_mtok;
      if (p.cache_write_per_mtok) j["cache_write_per_mtok"] = *p.cache_write_per_mtok;
      if (p.output_tokens) j["output_tokens"] = *p.output_tokens;
      prices[model] = std::move(j);
    }
    doc["prices"] = std::move(prices);
  }
  if (o.budget.usd_per_day || o.budget.usd_per_month) {
    json b = json::object();
    if (o.budget.usd_per_day) b["usd_per_day"] = *o.budget.usd_per_day;
    if (o.budget.usd_per_month) b["usd_per_month"] = *o.budget.usd_per_month;
    if (o.budget.fail_closed) b["fail_closed"] = true;
    if (o.budget.default_output_tokens != BudgetOptions{}.default_output_tokens) {
      b["default_output_tokens"] = o.budget.default_output_tokens;
    }
    doc["budget"] = std::move(b);
  }
}

// Hedging, health probes, logging and the retry budget.
void write_runtime(json& doc, const ClientOptions& o) {
  if (o.hedging.delay > Duration::zero() || o.hedging.use_p95) {
    doc["hedging"] = {{"max_extra", o.hedging.max_extra}, {"use_p95", o.hedging.use_p95}};
    if (o.hedging.delay > Duration::zero()) doc["hedging"]["delay_ms"] = ms(o.hedging.delay);
  }
  const HealthProbeOptions& hp = o.health_probe;
  if (hp.interval > Duration::zero() || hp.method != HealthProbeOptions{}.method ||
      hp.timeout != HealthProbeOptions{}.timeout) {
    doc["health"] = {{"probe", hp.method == ProbeMethod::Models ? "models" : "chat"},
                     {"timeout_ms", ms(hp.timeout)},
                     {"jitter", hp.jitter}};
    if (hp.interval > Duration::zero()) doc["health"]["interval_ms"] = ms(hp.interval);
  }
  if (!o.log.level.empty() || !o.log.file.empty()) {
    json l = json::object();
    if (!o.log.level.empty()) l["level"] = o.log.level;
    if (!o.log.file.empty()) l["file"] = o.log.file;
    doc["log"] = std::move(l);
  }
  doc["retry_budget"] = {{"ratio", o.retry_budget.ratio},
                         {"min_concurrent", o.retry_budget.min_concurrent},
                         {"throttle_max_tokens", o.retry_budget.throttle_max_tokens},
                         {"throttle_token_ratio", o.retry_budget.throttle_token_ratio}};
}

void write_traffic(json& doc, const ClientOptions& o) {
  if (o.shadow.candidate) {
    const ShadowOptions& sh = o.shadow;
    json j = {{"candidate", {{"endpoint", sh.candidate->endpoint}, {"model", sh.candidate->model}}},
              {"sample", sh.sample},
              {"queue", sh.queue},
              {"worst_pairs", sh.worst_pairs},
              {"thresholds",
               {{"min_pairs", sh.thresholds.min_pairs},
                {"min_success_rate", sh.thresholds.min_success_rate},
                {"min_similarity", sh.thresholds.min_similarity},
                {"max_p95_ratio", sh.thresholds.max_p95_ratio}}}};
    if (sh.timeout) j["timeout_ms"] = ms(*sh.timeout);
    doc["shadow"] = std::move(j);
  }
  if (o.canary.candidate) {
    const CanaryOptions& c = o.canary;
    doc["canary"] = {
        {"candidate", {{"endpoint", c.candidate->endpoint}, {"model", c.candidate->model}}},
        {"steps", c.steps},
        {"step_ms", ms(c.step)},
        {"rollback",
         {{"error_rate", c.rollback.error_rate},
          {"p99_ms", ms(c.rollback.p99)},
          {"min_success_rate", c.rollback.min_success_rate},
          {"min_calls", c.rollback.min_calls}}}};
  }
}

// Limits of a response, TLS, user agent, content filter, shared state, stream recovery.
void write_transport(json& doc, const ClientOptions& o, bool include_keys) {
  doc["max_response_bytes"] = o.max_response_bytes;
  if (!o.ca_bundle.empty()) doc["ca_bundle"] = o.ca_bundle;
  if (!o.user_agent.empty()) doc["user_agent"] = o.user_agent;
  doc["content_filter"] = o.content_filter == ContentFilterPolicy::FailOver ? "fail_over" : "fail";
  if (o.state.redis) {
    const RedisStoreOptions& r = *o.state.redis;
    std::string url = r.url;
    // The password is a key: redacted unless keys are asked for.
    if (auto at = url.rfind('@'); !include_keys && at != std::string::npos) {
      auto colon = url.find(':', 8);  // after "redis://"
      if (colon != std::string::npos && colon < at)
        url = url.substr(0, colon + 1) + "<redacted>" + url.substr(at);
    }
    doc["state"] = {{"redis", url},
                    {"prefix", r.prefix},
                    {"timeout_ms", ms(r.timeout)},
                    {"call_timeout_ms", ms(r.call_timeout)},
                    {"sync_ms", ms(o.state.sync_interval)}};
  }
  doc["stream_recovery"] = o.stream_recovery == StreamRecovery::Restart    ? "restart"
                           : o.stream_recovery == StreamRecovery::Continue ? "continue"
                                                                           : "fail";
}

}  // namespace

std::string options_to_json(const ClientOptions& o, bool include_keys) {
  json doc;
  write_endpoints(doc, o, include_keys);
  write_priority(doc, o);
  write_policies(doc, o);
  write_spend(doc, o);
  write_runtime(doc, o);
  write_traffic(doc, o);
  write_transport(doc, o, include_keys);
  escape_references(doc);  // read again, every string stays what it is
  return doc.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace failover
