#include "core/client_core.hpp"

#include "core/call.hpp"
#include "core/call_env.hpp"
#include "core/user_code.hpp"
#include "engine/async_engine.hpp"
#include "state/state_sync.hpp"
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

void RouteState::cool_down_until(TimePoint until, bool publish) {
  TimePoint::rep wanted = until.time_since_epoch().count();
  TimePoint::rep current = cooldown_until.load(std::memory_order_relaxed);
  while (current < wanted &&
         !cooldown_until.compare_exchange_weak(current, wanted, std::memory_order_relaxed)) {
  }
  if (sync && publish && current < wanted) sync->cooling(index, until);
}

void RouteState::release_hold(TimePoint now) {
  held_until.store(TimePoint::min().time_since_epoch().count(), std::memory_order_relaxed);
  try {
    breaker->on_probe_success(now);
  } catch (...) {  // the application's breaker: its next call will say what is wrong
  }
  observe_breaker(now);
}

std::optional<TimePoint> RouteState::own_open_until(TimePoint now) const {
  try {
    if (breaker->state(now) != BreakerState::Open) return std::nullopt;
    return breaker->reopens_at(now).value_or(now);
  } catch (...) {
    return std::nullopt;
  }
}

void RouteState::fleet_decided(TimePoint now) {
  if (auto* b = dynamic_cast<DefaultCircuitBreaker*>(breaker.get())) b->forget_calls();
  observe_breaker(now);
}

bool RouteState::own_breaker_closed(TimePoint now) const {
  try {
    return breaker->state(now) == BreakerState::Closed;
  } catch (...) {
    return false;
  }
}

void RouteState::publish_breaker(TimePoint now) {
  if (const std::optional<TimePoint> open = own_open_until(now)) {  // tripped, or again
    const TimePoint::rep until = std::max<TimePoint::rep>(open->time_since_epoch().count(), 1);
    if (published_open.exchange(until, std::memory_order_relaxed) != until) {
      sync->opened(index, *open);
    }
    return;
  }
  if (published_open.load(std::memory_order_relaxed) == 0) return;
  bool closed = false;
  try {
    closed = breaker->state(now) == BreakerState::Closed;
  } catch (...) {
  }
  // Half-open is still the last open period; closed means a probe passed.
  if (closed && published_open.exchange(0, std::memory_order_relaxed) != 0) sync->closed(index);
}

void RouteState::record_latency(Duration latency) {
  Duration::rep sample = std::max<Duration::rep>(latency.count(), 1);
  Duration::rep current = ewma_latency.load(std::memory_order_relaxed);
  Duration::rep next;
  do {
    next = current == 0 ? sample : current + (sample - current) / 5;
  } while (!ewma_latency.compare_exchange_weak(current, next, std::memory_order_relaxed));
}

void RouteState::record_output(std::int64_t tokens) {
  std::lock_guard<std::mutex> lock(outputs_mutex);
  outputs[outputs_next] = tokens;
  outputs_next = (outputs_next + 1) % outputs.size();
  outputs_kept = std::min(outputs_kept + 1, outputs.size());
}

std::optional<std::int64_t> RouteState::typical_output() const {
  std::array<std::int64_t, 64> kept{};
  std::size_t n = 0;
  {
    std::lock_guard<std::mutex> lock(outputs_mutex);
    n = outputs_kept;
    std::copy(outputs.begin(), outputs.begin() + static_cast<std::ptrdiff_t>(n), kept.begin());
  }
  if (n == 0) return std::nullopt;
  const std::size_t rank = (95 * n + 99) / 100;  // nearest rank, 1-based
  auto at = kept.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(kept.begin(), at, kept.begin() + static_cast<std::ptrdiff_t>(n));
  return *at;
}

// Transitions are counted against the last state this route reported, so a breaker that
// turned half-open by itself (its open period passed) is counted when it is next looked at.
void RouteState::observe_breaker(TimePoint now) {
  int current = static_cast<int>(reported_state(now));
  int last = last_state.exchange(current, std::memory_order_relaxed);
  if (current == static_cast<int>(BreakerState::Open) && last != current) {
    trips.fetch_add(1, std::memory_order_relaxed);
  }
  if (last != current) {
    stats.record_transition(static_cast<BreakerState>(last), static_cast<BreakerState>(current));
  }
}

std::optional<std::int64_t> RouteState::add_usage(const Usage& u) {
  prompt_tokens.fetch_add(u.prompt_tokens, std::memory_order_relaxed);
  cached_tokens.fetch_add(u.cached_tokens, std::memory_order_relaxed);
  completion_tokens.fetch_add(u.completion_tokens, std::memory_order_relaxed);
  if (!price) return std::nullopt;
  // Per-million-token prices: one token costs price * 1000 nano-dollars.
  const std::int64_t cached = std::clamp<std::int64_t>(u.cached_tokens, 0, u.prompt_tokens);
  const std::int64_t written =
      std::clamp<std::int64_t>(u.cache_write_tokens, 0, u.prompt_tokens - cached);
  const double nanos =
      static_cast<double>(u.prompt_tokens - cached - written) * price->input_per_mtok * 1000.0 +
      static_cast<double>(cached) * price->cached_input_per_mtok.value_or(price->input_per_mtok) *
          1000.0 +
      static_cast<double>(written) *
          price->cache_write_per_mtok.value_or(price->input_per_mtok * 1.25) * 1000.0 +
      static_cast<double>(u.completion_tokens) * price->output_per_mtok * 1000.0;
  const std::int64_t cost = std::llround(nanos);
  cost_nanos.fetch_add(cost, std::memory_order_relaxed);
  return cost;
}

void RouteState::record_probe(TimePoint at, bool ok, std::string message) {
  std::lock_guard<std::mutex> lock(probe_mutex);
  probe_at = at;
  probe_ok = ok;
  probe_message = std::move(message);
}

void RouteState::fill_probe(RouteHealth& out) const {
  std::lock_guard<std::mutex> lock(probe_mutex);
  out.last_probe_at = probe_at;
  out.last_probe_ok = probe_ok;
  out.last_probe_message = probe_message;
}

bool RouteState::try_acquire(TimePoint now) {
  if (held(now)) return false;  // the fleet's hold: the local breaker is not asked
  bool ok = invoke_user(hook_name, [&] { return breaker->try_acquire(now); });
  observe_breaker(now);
  return ok;
}

void RouteState::on_success(TimePoint now, Duration latency) {
  invoke_user(hook_name, [&] { breaker->on_success(now, latency); });
  observe_breaker(now);
  if (sync) {
    publish_breaker(now);
    sync->call_ended(index, false);
  }
}

void RouteState::on_failure(TimePoint now, ErrorKind kind) {
  invoke_user(hook_name, [&] { breaker->on_failure(now, kind); });
  observe_breaker(now);
  if (sync) {
    publish_breaker(now);
    if (DefaultCircuitBreaker::counts_as_failure(kind)) sync->call_ended(index, true);
  }
}

BreakerState RouteState::breaker_state(TimePoint now) const {
  if (held(now)) return BreakerState::Open;
  return invoke_user(hook_name, [&] { return breaker->state(now); });
}

std::optional<TimePoint> RouteState::reopens_at(TimePoint now) const {
  std::optional<TimePoint> own = invoke_user(hook_name, [&] { return breaker->reopens_at(now); });
  if (!held(now)) return own;
  const TimePoint hold{Duration{held_until.load(std::memory_order_relaxed)}};
  return own ? std::max(*own, hold) : hold;
}

bool RouteState::would_admit(TimePoint now) const {
  return !held(now) && invoke_user(hook_name, [&] { return breaker->would_admit(now); });
}

BreakerState RouteState::reported_state(TimePoint now) const noexcept {
  if (held(now)) return BreakerState::Open;
  try {
    return breaker->state(now);
  } catch (...) {
    return BreakerState::Open;  // a breaker that cannot say is not trusted with traffic
  }
}

namespace {

[[noreturn]] void invalid(const std::string& message) { throw ConfigError(message); }

void check_fraction(double v, const char* field) {
  if (!(v >= 0 && v <= 1)) invalid(std::string(field) + " must be between 0 and 1");
}

std::string shown(const std::string& s) { return "\"" + wire::excerpt(s, 80) + "\""; }

std::string percent_encode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

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

// The logger `log` asks for: named "failover", at its level, to its file or to stderr.
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

ResolvedOptions resolve_options(ClientOptions& o) {
  ResolvedOptions out;
  if (o.endpoints.empty()) invalid("endpoints is empty: at least one endpoint is required");
  std::map<std::string, std::size_t> endpoint_index;
  const std::string user_agent = std::string("failover-cpp/") + FAILOVER_VERSION_STRING +
                                 (o.user_agent.empty() ? "" : " " + o.user_agent);
  if (!wire::valid_header_value(user_agent)) invalid("user_agent contains control characters");
  for (std::size_t i = 0; i < o.endpoints.size(); ++i) {
    Endpoint& e = o.endpoints[i];
    const std::string field = "endpoints[" + std::to_string(i) + "]";
    if (e.name.empty()) invalid(field + ".name is empty");
    if (has_control(e.name)) invalid(field + ".name contains control characters");
    if (!endpoint_index.emplace(e.name, i).second) {
      invalid(field + ".name " + shown(e.name) + " is a duplicate");
    }
    const std::string base = validate_base_url(e.base_url, field + ".base_url");
    e.api_key = std::string(wire::trim(e.api_key));
    if (has_control(e.api_key)) {
      invalid(field + ".api_key contains control characters (the key is not shown)");
    }
    for (unsigned char c : e.api_key) {
      if (c == ' ' || c >= 0x80)
        invalid(field + ".api_key contains spaces or non-ASCII characters");
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

    ResolvedEndpoint r;
    r.name = e.name;
    r.continuation = e.continuation;
    r.streaming = e.streaming;
    // Values too short to be secrets ("1", "v2") would only mangle messages.
    auto add_secret = [&](const std::string& value) {
      if (value.size() >= 4 &&
          std::find(r.secrets.begin(), r.secrets.end(), value) == r.secrets.end()) {
        r.secrets.push_back(value);
      }
    };
    if (!e.api_key.empty()) add_secret(e.api_key);
    for (const auto& [k, v] : e.headers) {
      if (is_secret_name(k)) add_secret(v);
    }
    for (const auto& [k, v] : e.query) {
      if (!is_secret_name(k)) continue;
      add_secret(v);
      add_secret(percent_encode(v));  // as it appears in URLs
    }
    std::string query;
    for (const auto& [k, v] : e.query) {
      query += (query.empty() ? "?" : "&") + percent_encode(k) + "=" + percent_encode(v);
    }
    r.dialect = e.dialect;
    r.base = base;
    r.query = query;
    r.url = base + (e.dialect == Dialect::Anthropic ? "/messages" : "/chat/completions") + query;
    r.models_url = base + "/models" + query;
    r.headers.emplace_back("Content-Type", "application/json");
    r.headers.emplace_back("Accept", "application/json");
    r.headers.emplace_back("User-Agent", user_agent);
    r.headers.emplace_back("Expect", "");  // no 100-continue round trip for large bodies
    if (!e.api_key.empty()) {
      if (e.auth == AuthStyle::ApiKey) {
        r.headers.emplace_back("api-key", e.api_key);
      } else if (e.dialect == Dialect::Anthropic) {
        r.headers.emplace_back("x-api-key", e.api_key);
      } else if (e.dialect == Dialect::Gemini) {
        r.headers.emplace_back("x-goog-api-key", e.api_key);
      } else {
        r.headers.emplace_back("Authorization", "Bearer " + e.api_key);
      }
    }
    if (e.dialect == Dialect::Anthropic &&
        std::none_of(e.headers.begin(), e.headers.end(),
                     [](const auto& h) { return ascii_lower(h.first) == "anthropic-version"; })) {
      r.headers.emplace_back("anthropic-version", wire::kAnthropicVersion);
    }
    for (const auto& [k, v] : e.headers) r.headers.emplace_back(k, v);
    out.endpoints.push_back(std::move(r));
  }

  if (o.priority.empty()) invalid("priority is empty: at least one tier is required");
  const Timeouts& t = o.timeouts;
  if (t.connect <= Duration::zero()) invalid("timeouts.connect must be positive");
  if (t.headers <= Duration::zero()) invalid("timeouts.headers must be positive");
  if (t.first_byte <= Duration::zero()) invalid("timeouts.first_byte must be positive");
  if (t.idle <= Duration::zero()) invalid("timeouts.idle must be positive");
  if (t.attempt <= Duration::zero()) invalid("timeouts.attempt must be positive");
  if (t.total <= Duration::zero()) invalid("timeouts.total must be positive");
  // Time is counted in nanoseconds: a deadline a year out is already beyond any real use, and
  // far larger ones would overflow.
  constexpr Duration kYear = std::chrono::hours(24 * 365);
  for (const auto& [value, name] : {std::pair{t.connect, "connect"},
                                    {t.headers, "headers"},
                                    {t.first_byte, "first_byte"},
                                    {t.idle, "idle"},
                                    {t.attempt, "attempt"},
                                    {t.total, "total"}}) {
    if (value > kYear) invalid(std::string("timeouts.") + name + " must be at most a year");
  }
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

  // A tier's or a route's replacements of the client's time limits, checked like them.
  auto overridden = [&](Timeouts base, const TimeoutOverrides& with, const std::string& field) {
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
  };

  std::map<std::pair<std::string, std::string>, std::size_t> route_index;
  for (std::size_t ti = 0; ti < o.priority.size(); ++ti) {
    const Tier& tier = o.priority[ti];
    const std::string tfield = "priority[" + std::to_string(ti) + "]";
    if (tier.routes.empty()) invalid(tfield + ".routes is empty");
    const Timeouts tier_timeouts = overridden(o.timeouts, tier.timeouts, tfield);
    std::set<std::pair<std::string, std::string>> in_tier;
    for (std::size_t ri = 0; ri < tier.routes.size(); ++ri) {
      const Route& route = tier.routes[ri];
      const std::string rfield = tfield + ".routes[" + std::to_string(ri) + "]";
      auto ep = endpoint_index.find(route.endpoint);
      if (ep == endpoint_index.end()) {
        invalid(rfield + ".endpoint " + shown(route.endpoint) + " is not a defined endpoint");
      }
      check_model(route.model, rfield);
      if (route.weight < 1) invalid(rfield + ".weight must be at least 1");
      auto key = std::make_pair(route.endpoint, route.model);
      if (!in_tier.insert(key).second) {
        invalid(rfield + " repeats " + shown(route.endpoint + "/" + route.model) + " in its tier");
      }
      auto found = route_index.find(key);
      std::size_t index;
      if (found == route_index.end()) {
        index = out.routes.size();
        out.routes.emplace_back(RouteRef{route.endpoint, route.model}, ep->second);
        route_index.emplace(key, index);
      } else {
        index = found->second;
      }
      PlanEntry entry{index, ti, overridden(tier_timeouts, route.timeouts, rfield), nullptr};
      try {
        // The model rules are about Chat Completions bodies: a native dialect has its own.
        const bool rules = route.model_rules && o.endpoints[ep->second].dialect == Dialect::OpenAI;
        entry.shaping =
            wire::make_shaping(route.model, route.params, route.drop_params, rules, rfield);
      } catch (const std::invalid_argument& e) {
        invalid(e.what());
      }
      out.plan.push_back(std::move(entry));
    }
  }

  // A candidate route of shadow or canary traffic: a route of its own (stats, breaker, cost)
  // and a plan entry after the priority list, in a tier of its own.
  auto candidate = [&](const RouteRef& ref, const std::string& field) {
    auto ep = endpoint_index.find(ref.endpoint);
    if (ep == endpoint_index.end()) {
      invalid(field + ".endpoint " + shown(ref.endpoint) + " is not a defined endpoint");
    }
    check_model(ref.model, field);
    auto key = std::make_pair(ref.endpoint, ref.model);
    auto found = route_index.find(key);
    std::size_t index;
    if (found == route_index.end()) {
      index = out.routes.size();
      out.routes.emplace_back(ref, ep->second);
      route_index.emplace(key, index);
    } else {
      index = found->second;
    }
    out.plan.push_back(
        PlanEntry{index, o.priority.size() + out.plan.size(), o.timeouts,
                  wire::make_shaping(ref.model, "", {},
                                     o.endpoints[ep->second].dialect == Dialect::OpenAI, field)});
    return out.plan.size() - 1;
  };
  const CanaryOptions& c = o.canary;
  if (c.candidate) {
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
    out.canary_plan = candidate(*c.candidate, "canary.candidate");
  }
  const ShadowOptions& sh = o.shadow;
  check_fraction(sh.sample, "shadow.sample");
  if (sh.timeout && *sh.timeout <= Duration::zero()) invalid("shadow.timeout_ms must be positive");
  if (sh.candidate) {
    if (sh.queue < 1) invalid("shadow.queue must be at least 1");
    const ShadowThresholds& th = sh.thresholds;
    check_fraction(th.min_success_rate, "shadow.thresholds.min_success_rate");
    check_fraction(th.min_similarity, "shadow.thresholds.min_similarity");
    if (!(th.max_p95_ratio > 0)) invalid("shadow.thresholds.max_p95_ratio must be positive");
    out.shadow_plan = candidate(*sh.candidate, "shadow.candidate");
  }
  check_budget_applies(o, out.routes);
  static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                "error", "critical", "off"};
  if (!o.log.level.empty() && !kLevels.count(o.log.level)) {
    invalid("log.level must be trace, debug, info, warn, error, critical or off (got " +
            shown(o.log.level) + ")");
  }
  return out;
}

ClientCore::ClientCore(ClientOptions options) : options_(std::move(options)) {
  ClientOptions& o = options_;
  ResolvedOptions resolved = resolve_options(o);
  if (!o.retry) o.retry = std::make_shared<DefaultRetryPolicy>();
  if (!o.circuit_breaker) o.circuit_breaker = DefaultCircuitBreaker::factory();
  if (!o.clock) o.clock = std::make_shared<SystemClock>();
  if (!o.logger && !o.log.level.empty()) o.logger = make_logger(o.log);
  if (!o.rng) o.rng = std::make_shared<SystemRng>();
  if (!o.transport) o.transport = make_curl_transport();
  budget_ = std::make_unique<RetryBudget>(o.retry_budget);
  spend_ = std::make_unique<SpendTracker>(o.budget);
  for (const Endpoint& e : o.endpoints) {
    RateLimiter::Limits l{e.limits.rpm, e.limits.tpm, e.limits.max_concurrency};
    limiters_.push_back(l.rpm || l.tpm || l.max_concurrency
                            ? std::make_unique<RateLimiter>(l, o.clock->now())
                            : nullptr);
  }
  started_ = o.clock->now();
  endpoints_ = std::move(resolved.endpoints);
  plan_ = std::move(resolved.plan);
  for (std::size_t ti = 0; ti < o.priority.size(); ++ti) {
    TierState t;
    t.first = tiers_.empty() ? 0 : tiers_.back().first + tiers_.back().count;
    t.count = o.priority[ti].routes.size();
    t.hook_name = "the balancer of priority[" + std::to_string(ti) + "]";
    for (const Route& r : o.priority[ti].routes) t.weights.push_back(r.weight);
    t.balancer = o.priority[ti].balancer ? o.priority[ti].balancer
                                         : std::shared_ptr<Balancer>(make_balancer(
                                               o.priority[ti].balance, o.priority[ti].routes));
    tiers_.push_back(std::move(t));
  }
  canary_plan_ = resolved.canary_plan;
  shadow_plan_ = resolved.shadow_plan;
  if (canary_plan_) canary_ = std::make_unique<CanaryController>(o.canary, started_);
  if (shadow_plan_) {
    shadow_ = std::make_unique<ShadowAnalyzer>(o.shadow.thresholds, o.shadow.worst_pairs);
  }
  for (auto& [ref, endpoint] : resolved.routes) {
    auto state = std::make_unique<RouteState>();
    state->ref = ref;
    state->endpoint = endpoint;
    wire::append_json(nlohmann::json(ref.model), state->model_json);  // checked valid above
    const ResolvedEndpoint& e = endpoints_[endpoint];
    state->url = state->stream_url = e.url;
    if (e.dialect == Dialect::Gemini) {  // the model is in the URL; `models/` may be in front
      std::string model = ref.model.compare(0, 7, "models/") == 0 ? ref.model.substr(7) : ref.model;
      const std::string at = e.base + "/models/" + percent_encode(model);
      state->url = at + ":generateContent" + e.query;
      state->stream_url =
          at + ":streamGenerateContent?alt=sse" + (e.query.empty() ? "" : "&" + e.query.substr(1));
    }
    state->hook_name = "the circuit breaker of " + ref.endpoint + "/" + ref.model;
    state->breaker = o.circuit_breaker(state->ref);
    if (auto price = o.prices.find(ref.model); price != o.prices.end())
      state->price = &price->second;
    if (!state->breaker) {
      invalid("circuit_breaker factory returned null for " + ref.endpoint + "/" + ref.model);
    }
    routes_.push_back(std::move(state));
  }
  if (o.state.store) {
    StateSync::Parts shared;
    shared.routes = &routes_;
    shared.spend = spend_.get();
    shared.limiters = &limiters_;
    for (const Endpoint& e : o.endpoints) shared.endpoints.push_back(e.name);
    if (canary_) {
      shared.canary = canary_.get();
      shared.canary_candidate = o.canary.candidate->endpoint + "/" + o.canary.candidate->model;
    }
    if (const auto* factory = o.circuit_breaker.target<DefaultCircuitBreakerFactory>()) {
      shared.breaker = factory->options;
    }
    sync_ = std::make_unique<StateSync>(o.state, std::move(shared), *o.clock, o.logger.get());
    for (std::size_t i = 0; i < routes_.size(); ++i) {
      routes_[i]->sync = sync_.get();
      routes_[i]->index = i;
    }
    sync_->start();  // reads the fleet's state before the first call
  }
  CallEnv::Parts parts;
  parts.options = &options_;
  parts.endpoints = &endpoints_;
  parts.routes = &routes_;
  parts.plan = &plan_;
  parts.tiers = &tiers_;
  parts.limiters = &limiters_;
  parts.budget = budget_.get();
  parts.spend = spend_.get();
  parts.stats = &stats_;
  parts.exchange_ids = &next_exchange_;
  parts.canary = canary_.get();
  parts.canary_plan = canary_plan_;
  parts.shadow = shadow_.get();
  parts.shadow_plan = shadow_plan_;
  parts.native_dialects =
      std::any_of(endpoints_.begin(), endpoints_.end(),
                  [](const ResolvedEndpoint& e) { return e.dialect != Dialect::OpenAI; });
  call_env_ = std::make_unique<CallEnv>(parts);
}

ClientCore::~ClientCore() { shutdown(); }

std::unique_ptr<TransportSession> ClientCore::acquire_session() {
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    if (!idle_sessions_.empty()) {
      auto s = std::move(idle_sessions_.back());
      idle_sessions_.pop_back();
      return s;
    }
  }
  return options_.transport->open_session();
}

void ClientCore::release_session(std::unique_ptr<TransportSession> session) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  idle_sessions_.push_back(std::move(session));
}

AsyncEngine& ClientCore::engine() {
  std::lock_guard<std::mutex> lock(engine_mutex_);
  return engine_locked();
}

AsyncEngine& ClientCore::engine_locked() {
  if (!engine_) engine_ = std::make_shared<AsyncEngine>(*this, shared_from_this());
  return *engine_;
}

void ClientCore::shutdown() {
  std::shared_ptr<AsyncEngine> engine;
  {
    std::lock_guard<std::mutex> lock(engine_mutex_);
    closed_ = true;
    if (engine_ && engine_->on_engine_thread()) {
      // Released from inside a callback: the thread cannot join itself. It stops once the
      // callback returns, cancelling the other calls, and its keep-alive of this core goes
      // last, destroying the core (and the engine) on that thread.
      engine_->stop_from_callback();
      return;
    }
    engine = std::move(engine_);
  }
  // The thread cancels its calls and ends; a mirror that still holds the engine finds it
  // stopped, and the last holder frees it.
  if (engine) engine->join();
}

std::optional<CanaryStatus> ClientCore::canary_status(TimePoint now) const {
  if (!canary_) return std::nullopt;
  const RouteState& route = *routes_[plan_[*canary_plan_].route];
  CanaryStatus s = canary_->status(now, route.in_flight.load(std::memory_order_relaxed));
  s.candidate = route.ref;
  return s;
}

void CallEnv::canary_record(TimePoint now, const std::optional<ErrorKind>& error,
                            Duration latency) const {
  std::optional<CanaryAlert> alert = canary()->record(now, canary_outcome(error), latency);
  if (!alert) return;
  alert->candidate = routes()[plan()[*canary_plan()].route]->ref;
  if (spdlog::logger* log = logger()) {
    log->error("canary {}/{} rolled back from {}%: {}", alert->candidate.endpoint,
               alert->candidate.model, alert->percent, alert->reason);
  }
  if (!options().canary.on_rollback) return;
  try {
    options().canary.on_rollback(*alert);
  } catch (const std::exception& e) {
    if (spdlog::logger* log = logger())
      log->error("a canary rollback callback threw: {}", e.what());
  } catch (...) {
    if (spdlog::logger* log = logger()) log->error("a canary rollback callback threw");
  }
}

// Hands a sampled call's request to the engine as a mirror of one attempt on the candidate.
// The caller's result was already decided: nothing here can change it.
void ClientCore::mirror(ChatRequest request, const Result<ChatResponse>& primary,
                        Duration primary_latency) {
  shadow_->count_sampled();
  {
    std::lock_guard<std::mutex> lock(mirrors_mutex_);
    if (closed_ || mirrors_pending_ >= options_.shadow.queue) {
      shadow_->count_dropped();
      return;
    }
    ++mirrors_pending_;
  }
  auto request_copy = std::make_shared<ChatRequest>(std::move(request));
  auto primary_copy = std::make_shared<Result<ChatResponse>>(primary);
  CallOptions options;
  options.timeout = options_.shadow.timeout.value_or(options_.timeouts.total);
  auto done = [this, request_copy, primary_copy, primary_latency](Result<ChatResponse> result) {
    const std::vector<Attempt>& attempts =
        result.ok() ? result.value().attempts : result.error().attempts();
    const bool reached = !attempts.empty() && attempts.back().error != ErrorKind::Cancelled;
    try {
      if (!reached) throw HookError("");  // nothing to compare
      shadow_->add(invoke_user("the shadow comparator", [&] {
        return compare_results(*request_copy, *primary_copy, primary_latency, result,
                               attempts.back().latency, options_.shadow.comparator);
      }));
    } catch (const HookError& e) {
      shadow_->count_skipped();
      spdlog::logger* log = logger();
      if (log && *e.what()) log->error("a shadow pair was skipped: {}", e.what());
    }
    std::lock_guard<std::mutex> lock(mirrors_mutex_);
    --mirrors_pending_;
    mirrors_idle_.notify_all();
  };
  std::shared_ptr<AsyncEngine> engine;  // held: the client may be shut down meanwhile
  {
    std::lock_guard<std::mutex> lock(engine_mutex_);
    if (!closed_) {
      engine_locked();
      engine = engine_;
    }
  }
  if (!engine) {  // shutting down: nothing more is sent
    shadow_->count_dropped();
    std::lock_guard<std::mutex> lock(mirrors_mutex_);
    --mirrors_pending_;
    mirrors_idle_.notify_all();
    return;
  }
  engine->submit(ChatRequest(*request_copy), std::move(options), nullptr, std::move(done),
                 /*mirror=*/true);
}

bool ClientCore::wait_for_mirrors(std::chrono::steady_clock::duration timeout) {
  std::unique_lock<std::mutex> lock(mirrors_mutex_);
  return mirrors_idle_.wait_for(lock, timeout, [&] { return mirrors_pending_ == 0; });
}

void ClientCore::after_call(CallMachine& machine, const Result<ChatResponse>& result) {
  if (std::optional<ChatRequest> request = machine.take_shadow()) {
    mirror(std::move(*request), result, machine.elapsed());
  }
}

}  // namespace failover::detail
