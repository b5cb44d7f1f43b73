#include "policy/classify.hpp"

#include "util/ascii.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

namespace failover::policy {

namespace {

// Statuses a rule applies to. Besides real HTTP statuses: kInBand, an error inside a 2xx
// response or stream that names no status of its own; k4xx and k5xx, every status of a class;
// kAny, everything.
constexpr int kInBand = 0;
constexpr int k4xx = -4;
constexpr int k5xx = -5;
constexpr int kAny = -1;

// Where a rule looks for its needles.
enum class Look {
  Status,  // nowhere: the status alone decides
  Ids,     // the machine-readable signals (code, type, Google status, reasons), whole, any case
  Text,    // the message, as a substring, any case
};

struct Rule {
  std::vector<int> statuses;
  Look look;
  std::vector<std::string_view> needles;  // lower case
  ErrorKind kind;
  std::string_view source;     // where the rule comes from
  std::string_view also = {};  // Text rules: the message must contain this as well
};

using K = ErrorKind;

// The classification table, read top to bottom: the first rule that applies decides. Rules
// that read signals come before the status-only rules at the end; among them the more specific
// (a safety decision, a dead account, a bad key) come first.
const std::vector<Rule>& table() {
  static const std::vector<Rule> rules = {
      // --- Content filters: the provider's safety decision (fails the call by default).
      {{400, 403, 422, kInBand},
       Look::Ids,
       {"content_filter", "content_policy_violation", "content_filtered",
        "responsibleaipolicyviolation", "safety", "prohibited_content", "blocklist", "spii"},
       K::ContentFiltered,
       "OpenAI content_policy_violation; Azure content_filter and ResponsibleAIPolicyViolation; "
       "Google block reasons SAFETY, PROHIBITED_CONTENT, BLOCKLIST, SPII"},
      {{400, 403, 422, kInBand},
       Look::Text,
       {"content filter", "content management policy", "content policy", "safety system",
        "guardrail", "prompt injection", "input was flagged", "was flagged for"},
       K::ContentFiltered,
       "Azure 'filtered due to the prompt triggering ... content management policy'; OpenAI "
       "'rejected as a result of our safety system'; OpenRouter 403 guardrail 'Request blocked: "
       "prompt injection patterns detected' and moderation 'your input was flagged'"},
      // --- Overload: Anthropic's 529 type, also inside 200 streams and other statuses.
      {{kAny},
       Look::Ids,
       {"overloaded_error", "overloaded"},
       K::Overloaded,
       "Anthropic overloaded_error (HTTP 529 or an SSE error event)"},
      // --- A dead account: no retry of that route helps, another provider may serve.
      {{402},
       Look::Status,
       {},
       K::QuotaExhausted,
       "402 Payment Required: DeepSeek 'Insufficient Balance', OpenRouter out of credits"},
      {{k4xx, kInBand},
       Look::Ids,
       {"insufficient_quota", "billing_error", "billing_not_active", "billing_hard_limit_reached",
        "insufficient_balance", "insufficient_credits", "payment_required"},
       K::QuotaExhausted,
       "OpenAI 429 insufficient_quota; Anthropic billing_error; relays' balance codes"},
      // A 429 is a rate limit unless its code says quota: Gemini's per-minute limits say "You
      // exceeded your current quota, please check your plan and billing details".
      {{429},
       Look::Status,
       {},
       K::RateLimited,
       "429 Too Many Requests (Gemini RESOURCE_EXHAUSTED speaks of quota and billing)"},
      {{k4xx, kInBand},
       Look::Text,
       {"credit balance", "insufficient balance", "insufficient credit", "insufficient funds",
        "out of credits", "no credits", "not enough credits", "billing", "spend limit",
        "spending limit", "payment required", "exceeded your current quota", "quota exceeded"},
       K::QuotaExhausted,
       "Anthropic 400 'Your credit balance is too low'; 403 'no credits' from relays; "
       "'monthly spend limit' from gateways"},
      // --- A bad key sent as 400 or 403 (401 is authentication by its status).
      {{400, 403, kInBand},
       Look::Ids,
       {"invalid_api_key", "api_key_invalid", "incorrect_api_key", "authentication_error",
        "unauthenticated", "invalid_authentication", "api_key_expired"},
       K::Authentication,
       "Gemini 400 reason API_KEY_INVALID; Anthropic authentication_error; Google "
       "UNAUTHENTICATED"},
      {{400, 403, kInBand},
       Look::Text,
       {"invalid api key", "incorrect api key", "api key not valid", "api key is invalid",
        "api key provided", "invalid x-api-key", "missing api key", "no api key", "api key expired",
        "api key has expired", "invalid authentication"},
       K::Authentication,
       "xAI 400 'Incorrect API key provided'; Gemini 'API key not valid'"},
      // --- No access from here: another provider may serve.
      {{400, 403, kInBand},
       Look::Ids,
       {"permission_error", "permission_denied", "failed_precondition",
        "unsupported_country_region_territory"},
       K::PermissionDenied,
       "Anthropic permission_error; Google PERMISSION_DENIED and FAILED_PRECONDITION ('User "
       "location is not supported'); OpenAI unsupported_country_region_territory"},
      // --- The prompt does not fit this model: a later tier may take it.
      {{400, 413, 422, k5xx, kInBand},
       Look::Ids,
       {"context_length_exceeded", "exceed_context_size_error", "string_above_max_length",
        "request_too_large", "model_context_window_exceeded"},
       K::ContextLengthExceeded,
       "OpenAI context_length_exceeded; llama.cpp 500 exceed_context_size_error; Anthropic 413 "
       "request_too_large"},
      {{400, 413, 422, k5xx, kInBand},
       Look::Text,
       {"context length", "context_length", "maximum context", "context window", "context size",
        "prompt is too long", "too many tokens", "reduce the length", "input is too long",
        "exceeds the maximum number of tokens", "must be at least 1, got -"},
       K::ContextLengthExceeded,
       "'maximum context length is 8192 tokens' (OpenAI, vLLM); Anthropic 'prompt is too long'; "
       "vLLM 'max_tokens must be at least 1, got -563072' when the prompt eats the window"},
      // --- The model is not served here (404 says so by its status).
      {{400, kInBand},
       Look::Ids,
       {"model_not_found", "model_not_available", "not_found_error", "not_found",
        "deploymentnotfound"},
       K::NotFound,
       "Together 400 model_not_available; Anthropic not_found_error; Google NOT_FOUND; Azure "
       "DeploymentNotFound"},
      {{400, kInBand},
       Look::Text,
       {"not found", "does not exist", "not available", "unknown model", "no such model",
        "invalid model", "not a valid model"},
       K::NotFound,
       "'The model `x` does not exist or you do not have access to it' sent as 400",
       "model"},
      // --- Rate limits named inside 200 streams or other statuses.
      {{429, kInBand},
       Look::Ids,
       {"rate_limit_error", "rate_limit_exceeded", "rate_limited", "resource_exhausted",
        "too_many_requests"},
       K::RateLimited,
       "Anthropic rate_limit_error; OpenRouter metadata.error_type rate_limit_exceeded; Google "
       "RESOURCE_EXHAUSTED"},
      // --- Google statuses and Anthropic types on server errors and inside 200s.
      {{k5xx, kInBand}, Look::Ids, {"unavailable"}, K::Overloaded, "Google UNAVAILABLE (503)"},
      {{k5xx, kInBand},
       Look::Ids,
       {"deadline_exceeded"},
       K::Timeout,
       "Google DEADLINE_EXCEEDED (504)"},
      {{kInBand},
       Look::Ids,
       {"invalid_request_error", "invalid_argument"},
       K::InvalidRequest,
       "an invalid-request type inside a 200 (OpenAI, Anthropic, Google INVALID_ARGUMENT)"},
      // --- The status alone.
      {{401}, Look::Status, {}, K::Authentication, "401 Unauthorized"},
      {{403}, Look::Status, {}, K::PermissionDenied, "403 Forbidden"},
      {{404}, Look::Status, {}, K::NotFound, "404 Not Found (Ollama sends it with type api_error)"},
      {{408}, Look::Status, {}, K::Timeout, "408 Request Timeout"},
      {{409}, Look::Status, {}, K::Conflict, "409 Conflict"},
      {{503, 529},
       Look::Status,
       {},
       K::Overloaded,
       "503 Service Unavailable; Anthropic 529 Overloaded"},
      {{k4xx},
       Look::Status,
       {},
       K::InvalidRequest,
       "any other 4xx: the same request fails everywhere"},
      {{k5xx},
       Look::Status,
       {},
       K::ServerError,
       "any other 5xx, Cloudflare 52x and HTML pages from proxies included"},
      {{kInBand},
       Look::Status,
       {},
       K::ServerError,
       "an error inside a 200 that says nothing more: the provider failed"},
      {{kAny}, Look::Status, {}, K::Protocol, "anything else (1xx, 3xx): not the API's answer"},
  };
  return rules;
}

bool applies(const Rule& rule, int status) {
  for (int s : rule.statuses) {
    if (s == status || s == kAny) return true;
    if (s == k4xx && status >= 400 && status < 500) return true;
    if (s == k5xx && status >= 500 && status < 600) return true;
  }
  return false;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The body's signals, lower case.
struct Signals {
  std::vector<std::string> ids;
  std::string text;
};

Signals signals_of(const wire::ErrorBody& e) {
  Signals s;
  for (const std::string* id : {&e.code, &e.type, &e.status}) {
    if (!id->empty()) s.ids.push_back(detail::ascii_lower(*id));
  }
  for (const std::string& r : e.reasons) s.ids.push_back(detail::ascii_lower(r));
  s.text = detail::ascii_lower(e.message);
  return s;
}

bool matches(const Rule& rule, const Signals& s) {
  switch (rule.look) {
    case Look::Status:
      return true;
    case Look::Ids:
      return std::any_of(s.ids.begin(), s.ids.end(), [&](const std::string& id) {
        return std::find(rule.needles.begin(), rule.needles.end(), id) != rule.needles.end();
      });
    case Look::Text:
      if (!rule.also.empty() && !contains(s.text, rule.also)) return false;
      return std::any_of(rule.needles.begin(), rule.needles.end(),
                         [&](std::string_view n) { return contains(s.text, n); });
  }
  return false;
}

// The status the rules read: the HTTP status, or for an error inside a 2xx, the status its
// numeric code names (relays put the upstream status there), else kInBand.
int effective_status(int status, const std::string& code) {
  if (status < 200 || status >= 300) return status;
  int numeric = 0;
  auto r = std::from_chars(code.data(), code.data() + code.size(), numeric);
  if (r.ec == std::errc() && r.ptr == code.data() + code.size() && numeric >= 400 &&
      numeric < 600) {
    return numeric;
  }
  return kInBand;
}

}  // namespace

std::size_t rule_count() { return table().size(); }

std::string_view rule_source(std::size_t index) { return table().at(index).source; }

RuleMatch match_rule(int status, const wire::ErrorBody& e) {
  const int effective = effective_status(status, e.code);
  const Signals s = signals_of(e);
  const std::vector<Rule>& rules = table();
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (applies(rules[i], effective) && matches(rules[i], s)) return {rules[i].kind, i};
  }
  return {ErrorKind::Protocol, rules.size() - 1};  // unreachable: the last rule takes all
}

Classified classify_error(int status, const HttpHeaders& headers, wire::ErrorBody e, WallTime now) {
  Classified out;
  out.status = status;
  out.kind = match_rule(status, e).kind;
  out.message = std::move(e.message);
  out.code = std::move(e.code);
  out.type = std::move(e.type);
  out.param = std::move(e.param);
  if (status >= 300 && status < 400) {
    const std::string* location = wire::find_header(headers, "location");
    out.message = "HTTP " + std::to_string(status) + " redirect" +
                  (location ? " to " + wire::excerpt(*location, 200) : std::string()) +
                  " not followed (redirects are never followed)";
  }
  if (out.message.empty()) {
    out.message = "HTTP " + std::to_string(status) + " with no error message";
  }
  out.retry_after = wire::retry_after_from(headers, now);
  if (!out.retry_after) out.retry_after = e.retry_delay;
  out.should_retry = wire::should_retry_from(headers);
  return out;
}

bool refuses_streaming(const Classified& c) {
  if (c.status != 400 && c.status != 422) return false;
  if (c.param == "stream" || c.param == "stream_options") return true;
  // "stream" as a word's start ("stream", "streaming", "stream_options"; not "upstream").
  const std::string m = detail::ascii_lower(c.message);
  for (std::size_t at = m.find("stream"); at != std::string::npos; at = m.find("stream", at + 1)) {
    const char before = at == 0 ? ' ' : m[at - 1];
    if (!(before >= 'a' && before <= 'z')) return true;
  }
  return false;
}

Classified classify_http(int status, const HttpHeaders& headers, std::string_view body,
                         WallTime now) {
  return classify_error(status, headers, wire::decode_error_body(body), now);
}

}  // namespace failover::policy
