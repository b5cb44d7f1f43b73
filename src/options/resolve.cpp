#include "options/resolve.hpp"

#include "util/ascii.hpp"
#include "util/edit_distance.hpp"
#include "util/format.hpp"
#include "util/secret_names.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"
#include "wire/native.hpp"

#include <failover/config.hpp>
#include <failover/version.hpp>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace failover::detail {

std::string ResolvedEndpoint::redact(std::string text) const {
  for (const std::string& secret : secrets) {
    for (std::size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + 10)) {
      text.replace(at, secret.size(), "[redacted]");
    }
    // An excerpt may have cut a secret short at its end ("... sk-abc12..."): a tail that
    // begins the secret goes too.
    const std::size_t end = text.size() >= 3 && text.compare(text.size() - 3, 3, "...") == 0
                                ? text.size() - 3
                                : text.size();
    for (std::size_t k = std::min(secret.size() - 1, end); k >= 6; --k) {
      if (text.compare(end - k, k, secret, 0, k) == 0) {
        text.replace(end - k, k, "[redacted]");
        break;
      }
    }
  }
  return text;
}

namespace {

[[noreturn]] void invalid(const std::string& message) { throw ConfigError(message); }

void check_fraction(double v, const char* field) {
  if (!(v >= 0 && v <= 1)) invalid(std::string(field) + " must be between 0 and 1");
}

std::string shown(const std::string& s) { return "\"" + wire::excerpt(s, 80) + "\""; }

bool has_control(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A route's model: sent as a JSON string in every request body, so it must be valid UTF-8.
void check_model(const std::string& model, const std::string& field) {
  if (model.empty()) invalid(field + ".model is empty");
  if (has_control(model)) invalid(field + ".model contains control characters");
  std::string encoded;
  if (!wire::append_json(nlohmann::json(model), encoded)) {
    invalid(field + ".model is not valid UTF-8");
  }
}

std::string validate_base_url(const std::string& url, const std::string& field) {
  std::string u(wire::trim(url));
  if (u.empty()) invalid(field + " is empty");
  for (unsigned char c : u) {
    if (c <= 0x20 || c == 0x7f) invalid(field + " contains whitespace or control characters");
  }
  std::size_t scheme_end = u.find("://");
  const std::string scheme =
      scheme_end == std::string::npos ? "" : detail::ascii_lower(u.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") {
    invalid(field + " must start with http:// or https:// (got " + shown(u) + ")");
  }
  std::string rest = u.substr(scheme_end + 3);
  std::size_t host_end = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, host_end);
  if (authority.empty() || authority.front() == ':') invalid(field + " has no host");
  if (authority.find('@') != std::string::npos) {
    invalid(field + " must not contain credentials; use api_key");
  }
  if (u.find_first_of("?#") != std::string::npos) {
    invalid(field + " must not contain a query or fragment; use the endpoint's query map");
  }
  while (!u.empty() && u.back() == '/') u.pop_back();
  // The path of an operation, which the client adds itself: the base is what comes before.
  const std::string path = u.substr(scheme_end + 3 + authority.size());
  std::size_t op = std::string::npos;
  for (const char* suffix : {"/chat/completions", "/messages"}) {
    const std::size_t n = std::char_traits<char>::length(suffix);
    if (path.size() >= n && path.compare(path.size() - n, n, suffix) == 0) op = u.size() - n;
  }
  for (const char* verb : {":generateContent", ":streamGenerateContent"}) {
    const std::size_t at = path.rfind(verb);
    const std::size_t models = path.rfind("/models/", at);
    if (at != std::string::npos && models != std::string::npos) {
      op = scheme_end + 3 + authority.size() + models;
    }
  }
  if (op != std::string::npos) {
    invalid(field + " ends in " + u.substr(op) + ", which the client adds itself: use " +
            shown(u.substr(0, op)));
  }
  return u;
}

// A budget counts only the routes whose model has a price: one that can count none, or whose
// prices miss a routed model by a typo, would silently never apply.
void check_budget_applies(const ClientOptions& o,
                          const std::vector<std::pair<RouteRef, std::size_t>>& routes) {
  if (!o.budget.usd_per_day && !o.budget.usd_per_month) return;
  std::vector<std::string> unpriced;
  bool priced = false;
  for (const auto& route : routes) {
    const std::string& model = route.first.model;
    if (o.prices.count(model)) {
      priced = true;
    } else if (std::find(unpriced.begin(), unpriced.end(), model) == unpriced.end()) {
      unpriced.push_back(model);
    }
  }
  auto squeezed = [](const std::string& name) {
    std::string out;
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c))) out += ascii_lower(c);
    }
    return out;
  };
  auto routed = [&](const std::string& model) {
    return std::any_of(routes.begin(), routes.end(),
                       [&](const auto& route) { return route.first.model == model; });
  };
  for (const std::string& model : unpriced) {
    for (const auto& [name, price] : o.prices) {
      if (routed(name)) continue;
      const std::size_t d = edit_distance(ascii_lower(name), ascii_lower(model));
      if ((d <= 2 && d * 4 <= model.size()) || squeezed(name) == squeezed(model)) {
        invalid("prices." + name + " prices a model no route uses (did you mean " + model +
                "?): the budget cannot count " + model + " without its price");
      }
    }
  }
  if (!priced) {
    invalid("budget can never apply: no routed model has a price (routed: " + join_names(unpriced) +
            "); add \"prices\" for them");
  }
}

}  // namespace

std::optional<std::string> check_call_options(const CallOptions& call) {
  if (call.timeout && *call.timeout <= Duration::zero()) {
    return std::string("CallOptions.timeout must be positive");
  }
  try {
    validate_headers(call.headers, "CallOptions.headers");
  } catch (const std::invalid_argument& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

void validate_headers(const std::map<std::string, std::string>& headers, std::string_view field) {
  for (const auto& [name, value] : headers) {
    if (!wire::valid_header_name(name)) {
      invalid(std::string(field) + " has an invalid header name " + shown(name));
    }
    if (!wire::valid_header_value(value)) {
      invalid(std::string(field) + "[" + name + "] contains CR, LF or other control characters");
    }
  }
}

std::shared_ptr<spdlog::logger> make_logger(const LogOptions& log) {
  spdlog::sink_ptr sink;
  if (log.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log.file);
    } catch (const spdlog::spdlog_ex& e) {
      invalid("log.file " + shown(log.file) + " cannot be opened: " + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("failover", std::move(sink));
  logger->set_level(spdlog::level::from_str(log.level));
  return logger;
}

namespace {

// Time is counted in nanoseconds: a deadline a year out is already beyond any real use, and
// far larger ones would overflow.
constexpr Duration kYear = std::chrono::hours(24 * 365);

// Checks the key (trimming it), headers, limits and query of `e`; `field` names it.
void check_endpoint(Endpoint& e, const std::string& field) {
  e.api_key = std::string(wire::trim(e.api_key));
  if (has_control(e.api_key)) {
    invalid(field + ".api_key contains control characters (the key is not shown)");
  }
  for (unsigned char c : e.api_key) {
    if (c == ' ' || c >= 0x80) invalid(field + ".api_key contains spaces or non-ASCII characters");
  }
  if (e.auth == AuthStyle::None && !e.api_key.empty()) {
    invalid(field + ".api_key is set but auth is none");
  }
  validate_headers(e.headers, field + ".headers");
  if (e.limits.rpm && !(*e.limits.rpm > 0)) invalid(field + ".limits.rpm must be positive");
  if (e.limits.tpm && !(*e.limits.tpm > 0)) invalid(field + ".limits.tpm must be positive");
  if (e.limits.max_concurrency && *e.limits.max_concurrency < 1) {
    invalid(field + ".limits.max_concurrency must be at least 1");
  }
  for (const auto& [k, v] : e.query) {
    if (k.empty()) invalid(field + ".query has an empty parameter name");
    if (has_control(k) || has_control(v)) invalid(field + ".query contains control characters");
  }
}

// The secrets of `e` to redact: its key, and the values of headers and query parameters that
// carry secrets. Values too short to be secrets ("1", "v2") would only mangle messages.
std::vector<std::string> secrets_of(const Endpoint& e) {
  std::vector<std::string> secrets;
  auto add = [&](const std::string& value) {
    if (value.size() >= 4 && std::find(secrets.begin(), secrets.end(), value) == secrets.end()) {
      secrets.push_back(value);
    }
  };
  if (!e.api_key.empty()) add(e.api_key);
  for (const auto& [k, v] : e.headers) {
    if (is_secret_name(k)) add(v);
  }
  for (const auto& [k, v] : e.query) {
    if (!is_secret_name(k)) continue;
    add(v);
    add(wire::percent_encode(v));  // as it appears in URLs
  }
  return secrets;
}

// Every request's headers for `e`: content type, accept, user agent, auth, the endpoint's own.
HttpHeaders headers_of(const Endpoint& e, const std::string& user_agent) {
  HttpHeaders headers;
  headers.emplace_back("Content-Type", "application/json");
  headers.emplace_back("Accept", "application/json");
  headers.emplace_back("User-Agent", user_agent);
  headers.emplace_back("Expect", "");  // no 100-continue round trip for large bodies
  const wire::DialectApi& api = wire::api_of(e.dialect);
  if (!e.api_key.empty()) {
    if (e.auth == AuthStyle::ApiKey) {
      headers.emplace_back("api-key", e.api_key);
    } else {
      api.add_key(e.api_key, headers);
    }
  }
  api.add_required(e.headers, headers);
  for (const auto& [k, v] : e.headers) headers.emplace_back(k, v);
  return headers;
}

// A checked endpoint, ready for requests.
ResolvedEndpoint resolve_endpoint(const Endpoint& e, const std::string& base,
                                  const std::string& user_agent) {
  ResolvedEndpoint r;
  r.name = e.name;
  r.continuation = e.continuation;
  r.streaming = e.streaming;
  r.secrets = secrets_of(e);
  for (const auto& [k, v] : e.query) {
    r.query +=
        (r.query.empty() ? "?" : "&") + wire::percent_encode(k) + "=" + wire::percent_encode(v);
  }
  r.api = &wire::api_of(e.dialect);
  r.base = base;
  r.models_url = base + "/models" + r.query;
  r.headers = headers_of(e, user_agent);
  return r;
}

void check_timeouts(const Timeouts& t) {
  const std::pair<Duration, const char*> limits[] = {
      {t.connect, "connect"}, {t.headers, "headers"}, {t.first_byte, "first_byte"},
      {t.idle, "idle"},       {t.attempt, "attempt"}, {t.total, "total"}};
  for (const auto& [value, name] : limits) {
    if (value <= Duration::zero()) invalid(std::string("timeouts.") + name + " must be positive");
  }
  for (const auto& [value, name] : limits) {
    if (value > kYear) invalid(std::string("timeouts.") + name + " must be at most a year");
  }
}

// The client-wide limits: response size, state, hedging, health, prices, budget, retry budget.
void check_limits(const ClientOptions& o) {
  if (o.max_response_bytes == 0) invalid("max_response_bytes must be positive");
  if (has_control(o.ca_bundle)) invalid("ca_bundle contains control characters");
  if (o.state.sync_interval <= Duration::zero() || o.state.sync_interval > kYear) {
    invalid("state.sync_interval must be positive and at most a year");
  }
  if (o.hedging.delay < Duration::zero()) invalid("hedging.delay must not be negative");
  if (o.hedging.delay > kYear) invalid("hedging.delay must be at most a year");
  if (o.hedging.max_extra < 0) invalid("hedging.max_extra must not be negative");
  const HealthProbeOptions& hp = o.health_probe;
  if (hp.interval < Duration::zero()) invalid("health.interval must not be negative");
  if (hp.timeout <= Duration::zero()) invalid("health.timeout must be positive");
  if (hp.interval > kYear || hp.timeout > kYear)
    invalid("health.interval and timeout must be at most a year");
  if (!(hp.jitter >= 0 && hp.jitter < 1)) invalid("health.jitter must be in [0, 1)");
  for (const auto& [model, price] : o.prices) {
    auto bad = [](double v) { return !(v >= 0 && v < 1e9); };
    if (bad(price.input_per_mtok) || bad(price.output_per_mtok) ||
        (price.cached_input_per_mtok && bad(*price.cached_input_per_mtok))) {
      invalid("prices." + model + " must hold non-negative dollar amounts per million tokens");
    }
    if (price.output_tokens && *price.output_tokens <= 0) {
      invalid("prices." + model + ".output_tokens must be positive");
    }
  }
  if (o.budget.default_output_tokens <= 0) {
    invalid("budget.default_output_tokens must be positive");
  }
  for (const auto* limit : {&o.budget.usd_per_day, &o.budget.usd_per_month}) {
    if (*limit && !(**limit > 0 && **limit < 1e12)) {
      invalid(limit == &o.budget.usd_per_day ? "budget.usd_per_day must be a positive amount"
                                             : "budget.usd_per_month must be a positive amount");
    }
  }
  const RetryBudgetOptions& b = o.retry_budget;
  check_fraction(b.ratio, "retry_budget.ratio");
  if (b.min_concurrent < 0) invalid("retry_budget.min_concurrent must not be negative");
  if (!(b.throttle_max_tokens >= 0))
    invalid("retry_budget.throttle_max_tokens must not be negative");
  if (!(b.throttle_token_ratio >= 0))
    invalid("retry_budget.throttle_token_ratio must not be negative");
}

// A tier's or a route's replacements of the client's time limits, checked like them.
Timeouts overridden(Timeouts base, const TimeoutOverrides& with, const std::string& field) {
  for (const auto& [value, into, name] :
       {std::tuple{with.connect, &base.connect, "connect"},
        std::tuple{with.headers, &base.headers, "headers"},
        std::tuple{with.first_byte, &base.first_byte, "first_byte"},
        std::tuple{with.idle, &base.idle, "idle"},
        std::tuple{with.attempt, &base.attempt, "attempt"}}) {
    if (!value) continue;
    if (*value <= Duration::zero()) invalid(field + ".timeouts." + name + " must be positive");
    if (*value > kYear) invalid(field + ".timeouts." + name + " must be at most a year");
    *into = *value;
  }
  return base;
}

void check_canary(const CanaryOptions& c) {
  if (c.steps.empty()) invalid("canary.steps is empty");
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    const std::string f = "canary.steps[" + std::to_string(i) + "]";
    if (!(c.steps[i] > 0 && c.steps[i] <= 100)) invalid(f + " must be a percentage in (0, 100]");
    if (i > 0 && !(c.steps[i] > c.steps[i - 1])) invalid(f + " must be above the step before");
  }
  if (c.step <= Duration::zero()) invalid("canary.step_ms must be positive");
  const CanaryRollback& r = c.rollback;
  check_fraction(r.error_rate, "canary.rollback.error_rate");
  check_fraction(r.min_success_rate, "canary.rollback.min_success_rate");
  if (r.p99 <= Duration::zero()) invalid("canary.rollback.p99_ms must be positive");
  if (r.min_calls < 1) invalid("canary.rollback.min_calls must be at least 1");
}

void check_shadow(const ShadowOptions& sh) {
  check_fraction(sh.sample, "shadow.sample");
  if (sh.timeout && *sh.timeout <= Duration::zero()) invalid("shadow.timeout_ms must be positive");
  if (!sh.candidate) return;
  if (sh.queue < 1) invalid("shadow.queue must be at least 1");
  const ShadowThresholds& th = sh.thresholds;
  check_fraction(th.min_success_rate, "shadow.thresholds.min_success_rate");
  check_fraction(th.min_similarity, "shadow.thresholds.min_similarity");
  if (!(th.max_p95_ratio > 0)) invalid("shadow.thresholds.max_p95_ratio must be positive");
}

void check_log(const LogOptions& log) {
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (!log.level.empty() && !kLevels.count(log.level)) {
    invalid("log.level must be trace, debug, info, warn, error, critical or off (got " +
            shown(log.level) + ")");
  }
}

// The plan: the priority list's routes in order, then the candidates of canary and shadow.
class PlanBuilder {
 public:
  PlanBuilder(const ClientOptions& o, ResolvedOptions& out,
              const std::map<std::string, std::size_t>& endpoint_index)
      : o_(o), out_(out), endpoint_index_(endpoint_index) {}

  void add_tier(std::size_t ti) {
    const Tier& tier = o_.priority[ti];
    const std::string tfield = "priority[" + std::to_string(ti) + "]";
    if (tier.routes.empty()) invalid(tfield + ".routes is empty");
    const Timeouts tier_timeouts = overridden(o_.timeouts, tier.timeouts, tfield);
    std::set<std::pair<std::string, std::string>> in_tier;
    for (std::size_t ri = 0; ri < tier.routes.size(); ++ri) {
      const Route& route = tier.routes[ri];
      const std::string rfield = tfield + ".routes[" + std::to_string(ri) + "]";
      const std::size_t endpoint = endpoint_of(route.endpoint, rfield);
      check_model(route.model, rfield);
      if (route.weight < 1) invalid(rfield + ".weight must be at least 1");
      if (!in_tier.emplace(route.endpoint, route.model).second) {
        invalid(rfield + " repeats " + shown(route.endpoint + "/" + route.model) + " in its tier");
      }
      PlanEntry entry{route_of(RouteRef{route.endpoint, route.model}, endpoint), ti,
                      overridden(tier_timeouts, route.timeouts, rfield), nullptr};
      try {
        // The model rules are about Chat Completions bodies: a native dialect has its own.
        const bool rules =
            route.model_rules && !wire::api_of(o_.endpoints[endpoint].dialect).translates();
        entry.shaping =
            wire::make_shaping(route.model, route.params, route.drop_params, rules, rfield);
      } catch (const std::invalid_argument& e) {
        invalid(e.what());
      }
      out_.plan.push_back(std::move(entry));
    }
  }

  // A candidate route of shadow or canary traffic: a route of its own (stats, breaker, cost)
  // and a plan entry after the priority list, in a tier of its own.
  std::size_t add_candidate(const RouteRef& ref, const std::string& field) {
    const std::size_t endpoint = endpoint_of(ref.endpoint, field);
    check_model(ref.model, field);
    const std::size_t route = route_of(ref, endpoint);
    out_.plan.push_back(PlanEntry{
        route, o_.priority.size() + out_.plan.size(), o_.timeouts,
        wire::make_shaping(ref.model, "", {},
                           !wire::api_of(o_.endpoints[endpoint].dialect).translates(), field)});
    return out_.plan.size() - 1;
  }

 private:
  const ClientOptions& o_;
  ResolvedOptions& out_;
  const std::map<std::string, std::size_t>& endpoint_index_;
  std::map<std::pair<std::string, std::string>, std::size_t> route_index_;

  std::size_t endpoint_of(const std::string& name, const std::string& field) const {
    auto ep = endpoint_index_.find(name);
    if (ep == endpoint_index_.end()) {
      invalid(field + ".endpoint " + shown(name) + " is not a defined endpoint");
    }
    return ep->second;
  }

  // The index of the distinct route `ref`, added at its first use.
  std::size_t route_of(const RouteRef& ref, std::size_t endpoint) {
    auto [it, added] =
        route_index_.emplace(std::make_pair(ref.endpoint, ref.model), out_.routes.size());
    if (added) out_.routes.emplace_back(ref, endpoint);
    return it->second;
  }
};

}  // namespace

ResolvedOptions resolve_options(ClientOptions& o) {
  ResolvedOptions out;
  if (o.endpoints.empty()) invalid("endpoints is empty: at least one endpoint is required");
  const std::string user_agent = std::string("failover-cpp/") + FAILOVER_VERSION_STRING +
                                 (o.user_agent.empty() ? "" : " " + o.user_agent);
  if (!wire::valid_header_value(user_agent)) invalid("user_agent contains control characters");
  std::map<std::string, std::size_t> endpoint_index;
  for (std::size_t i = 0; i < o.endpoints.size(); ++i) {
    Endpoint& e = o.endpoints[i];
    const std::string field = "endpoints[" + std::to_string(i) + "]";
    if (e.name.empty()) invalid(field + ".name is empty");
    if (has_control(e.name)) invalid(field + ".name contains control characters");
    if (!endpoint_index.emplace(e.name, i).second) {
      invalid(field + ".name " + shown(e.name) + " is a duplicate");
    }
    const std::string base = validate_base_url(e.base_url, field + ".base_url");
    check_endpoint(e, field);
    out.endpoints.push_back(resolve_endpoint(e, base, user_agent));
  }

  if (o.priority.empty()) invalid("priority is empty: at least one tier is required");
  check_timeouts(o.timeouts);
  check_limits(o);
  PlanBuilder plan(o, out, endpoint_index);
  for (std::size_t ti = 0; ti < o.priority.size(); ++ti) plan.add_tier(ti);
  if (o.canary.candidate) {
    check_canary(o.canary);
    out.canary_plan = plan.add_candidate(*o.canary.candidate, "canary.candidate");
  }
  check_shadow(o.shadow);
  if (o.shadow.candidate)
    out.shadow_plan = plan.add_candidate(*o.shadow.candidate, "shadow.candidate");
  check_budget_applies(o, out.routes);
  check_log(o.log);
  return out;
}

}  // namespace failover::detail
