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
  std::string_view source;  // where the rule comes from
  // Text rules: the message must contain one of these as well (a word family: the needles
  // name the thing, these say what happened to it).
  std::vector<std::string_view> also = {};
};

// What happened to a balance, a quota or a key, in the words providers use.
const std::vector<std::string_view> kRanOut = {
    "insufficient", "exceeded",   "exceed",     "exhausted", "reached",      "too low",
    "out of",       "not enough", "ran out",    "run out",   "depleted",     "used up",
    "no more",      "over your",  "check your", "limit",     "has been used"};
const std::vector<std::string_view> kBadKey = {
    "invalid", "incorrect", "revoked",     "missing",      "expired",   "not valid",
    "wrong",   "disabled",  "deactivated", "not provided", "malformed", "unknown",
    "no ",     "not found", "is required", "required"};

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
        "responsibleaipolicyviolation", "safety", "prohibited_content", "blocklist", "spii",
        "datainspectionfailed", "data_inspection_failed", "1301"},
       K::ContentFiltered,
       "OpenAI content_policy_violation; Azure content_filter and ResponsibleAIPolicyViolation; "
       "Google block reasons SAFETY, PROHIBITED_CONTENT, BLOCKLIST, SPII; Moonshot "
       "content_filter; Qwen DataInspectionFailed; Zhipu 1301"},
      {{400, 403, 422, kInBand},
       Look::Text,
       {"content filter", "content management policy", "content policy", "safety system",
        "guardrail", "prompt injection", "input was flagged", "was flagged for",
        "inappropriate content", "敏感内容", "不安全或敏感", "内容安全"},
       K::ContentFiltered,
       "Azure 'filtered due to the prompt triggering ... content management policy'; OpenAI "
       "'rejected as a result of our safety system'; OpenRouter 403 guardrail 'Request blocked: "
       "prompt injection patterns detected' and moderation 'your input was flagged'; Qwen 'may "
       "contain inappropriate content'; Zhipu '不安全或敏感内容'"},
      // --- Overload: Anthropic's 529 type, also inside 200 streams and other statuses.
      {{kAny},
       Look::Ids,
       {"overloaded_error", "overloaded", "engine_overloaded_error"},
       K::Overloaded,
       "Anthropic overloaded_error (HTTP 529 or an SSE error event); Moonshot 429 "
       "engine_overloaded_error"},
      // --- A dead account: no retry of that route helps, another provider may serve.
      {{402},
       Look::Status,
       {},
       K::QuotaExhausted,
       "402 Payment Required: DeepSeek 'Insufficient Balance', OpenRouter out of credits"},
      {{k4xx, kInBand},
       Look::Ids,
       {"insufficient_quota", "billing_error", "billing_not_active", "billing_hard_limit_reached",
        "insufficient_balance", "insufficient_credits", "payment_required",
        "exceeded_current_quota_error", "arrearage", "insufficient_user_quota", "1113"},
       K::QuotaExhausted,
       "OpenAI 429 insufficient_quota; Anthropic billing_error; relays' balance codes (one-api "
       "insufficient_user_quota); Moonshot 429 exceeded_current_quota_error; Qwen Arrearage; "
       "Zhipu 1113 (account in arrears)"},
      // Words that speak only of money, before the 429 rule: a balance, credits, arrears.
      {{k4xx, kInBand},
       Look::Text,
       {"balance", "credits", "credit", "funds", "arrear", "余额不足", "欠费", "额度不足",
        "额度已用尽", "额度已用完", "额度用尽"},
       K::QuotaExhausted,
       "'Insufficient Balance' (DeepSeek, sent as 429 by relays), 'out of credits', 'funds', "
       "'余额不足' / '欠费' / '额度已用尽' from relays in front of Chinese providers",
       {"insufficient", "exhausted", "too low", "out of", "not enough", "ran out", "run out",
        "depleted", "used up", "no ", "arrear", "不足", "欠费", "用尽", "用完"}},
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
      {{k4xx, kInBand},
       Look::Text,
       {"quota", "usage limit", "spend limit", "spending limit", "budget", "payment"},
       K::QuotaExhausted,
       "word families: 'You have reached your specified API usage limits', 'quota has been "
       "exhausted', 'monthly budget exceeded'",
       kRanOut},
      // --- A bad key sent as 400 or 403 (401 is authentication by its status).
      {{400, 403, kInBand},
       Look::Ids,
       {"invalid_api_key", "api_key_invalid", "incorrect_api_key", "authentication_error",
        "unauthenticated", "invalid_authentication", "api_key_expired",
        "invalid_authentication_error", "invalidapikey", "1000", "1001", "1002", "1003", "1004"},
       K::Authentication,
       "Gemini 400 reason API_KEY_INVALID; Anthropic authentication_error; Google "
       "UNAUTHENTICATED; Moonshot invalid_authentication_error; Qwen InvalidApiKey; Zhipu "
       "1000-1004"},
      {{400, 403, kInBand},
       Look::Text,
       {"api key provided", "invalid authentication", "authentication fails",
        "authentication failed", "无效的令牌", "令牌无效", "无效令牌", "令牌已过期", "未提供令牌",
        "身份验证失败", "api key无效", "无效的api key"},
       K::Authentication,
       "xAI 400 'Incorrect API key provided'; DeepSeek 'Authentication Fails'; new-api relays "
       "'无效的令牌'; Zhipu '身份验证失败'"},
      {{400, 403, kInBand},
       Look::Text,
       {"api key", "apikey", "x api key", "access key", "secret key", "auth token"},
       K::Authentication,
       "word families: 'API key not valid', 'Invalid x-api-key', 'the API key was revoked', "
       "'missing API key'",
       kBadKey},
      // --- No access from here: another provider may serve.
      {{400, 403, kInBand},
       Look::Ids,
       {"permission_error", "permission_denied", "failed_precondition",
        "unsupported_country_region_territory", "permission_denied_error", "accessdenied", "1220"},
       K::PermissionDenied,
       "Anthropic permission_error; Google PERMISSION_DENIED and FAILED_PRECONDITION ('User "
       "location is not supported'); OpenAI unsupported_country_region_territory; Moonshot "
       "permission_denied_error; Qwen AccessDenied; Zhipu 1220"},
      // --- The prompt does not fit this model: a later tier may take it.
      {{400, 413, 422, k5xx, kInBand},
       Look::Ids,
       {"context_length_exceeded", "exceed_context_size_error", "string_above_max_length",
        "request_too_large", "model_context_window_exceeded", "1261"},
       K::ContextLengthExceeded,
       "OpenAI context_length_exceeded; llama.cpp 500 exceed_context_size_error; Anthropic 413 "
       "request_too_large; Zhipu 1261 (prompt too long)"},
      {{400, 413, 422, k5xx, kInBand},
       Look::Text,
       {"context length", "context_length", "maximum context", "context window", "context size",
        "context limit", "prompt is too long", "too many tokens", "reduce the length",
        "input is too long", "exceeds the maximum number of tokens", "must be at least 1, got -",
        "超过最大长度", "prompt超长"},
       K::ContextLengthExceeded,
       "'maximum context length is 8192 tokens' (OpenAI, vLLM); Anthropic 'prompt is too long' "
       "and 'input length and `max_tokens` exceed context limit'; "
       "vLLM 'max_tokens must be at least 1, got -563072' when the prompt eats the window"},
      // --- The model is not served here (404 says so by its status).
      {{400, kInBand},
       Look::Ids,
       {"model_not_found", "model_not_available", "not_found_error", "not_found",
        "deploymentnotfound", "resource_not_found_error", "1211"},
       K::NotFound,
       "Together 400 model_not_available; Anthropic not_found_error; Google NOT_FOUND; Azure "
       "DeploymentNotFound; Moonshot resource_not_found_error; Zhipu 1211"},
      {{400, kInBand},
       Look::Text,
       {"not found", "does not exist", "not available", "unknown model", "no such model",
        "invalid model", "not a valid model"},
       K::NotFound,
       "'The model `x` does not exist or you do not have access to it' sent as 400",
       {"model"}},
      // --- Rate limits named inside 200 streams or other statuses.
      {{429, kInBand},
       Look::Ids,
       {"rate_limit_error", "rate_limit_exceeded", "rate_limited", "resource_exhausted",
        "too_many_requests", "rate_limit_reached_error", "throttling", "throttling.ratequota",
        "throttling.allocationquota", "1302", "1303"},
       K::RateLimited,
       "Anthropic rate_limit_error; OpenRouter metadata.error_type rate_limit_exceeded; Google "
       "RESOURCE_EXHAUSTED; Moonshot rate_limit_reached_error; Qwen Throttling; Zhipu 1302 and "
       "1303"},
      // --- Google statuses and Anthropic types on server errors and inside 200s.
      {{k5xx, kInBand}, Look::Ids, {"unavailable"}, K::Overloaded, "Google UNAVAILABLE (503)"},
      {{k5xx, kInBand},
       Look::Ids,
       {"deadline_exceeded", "timeout_error"},
       K::Timeout,
       "Google DEADLINE_EXCEEDED (504); Anthropic timeout_error (504, or an SSE error event)"},
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

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A message as the rules read it: what providers and relays encode decoded (percent-encoding,
// JSON escapes left in the text, `+` for a space in a query string), in lower case, with `_`,
// `-` and runs of whitespace as one space ("x-api-key", "API_KEY" and "api  key" read alike).
std::string normalized(std::string_view message) {
  std::string decoded;
  decoded.reserve(message.size());
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    if (c == '%' && i + 2 < message.size() && hex_value(message[i + 1]) >= 0 &&
        hex_value(message[i + 2]) >= 0) {
      decoded += static_cast<char>(hex_value(message[i + 1]) * 16 + hex_value(message[i + 2]));
      i += 2;
    } else if (c == '\\' && i + 1 < message.size()) {
      const char e = message[i + 1];
      if (e == 'u' && i + 5 < message.size()) {
        int code = 0;
        bool ok = true;
        for (std::size_t k = i + 2; k < i + 6; ++k) {
          const int h = hex_value(message[k]);
          ok = ok && h >= 0;
          code = code * 16 + std::max(h, 0);
        }
        if (ok && code < 0x80) {  // an ASCII character; others are kept as written
          decoded += static_cast<char>(code);
          i += 5;
          continue;
        }
      }
      if (e == 'n' || e == 't' || e == 'r') {
        decoded += ' ';
        ++i;
      } else if (e == '"' || e == '\\' || e == '/' || e == '\'') {
        decoded += e;
        ++i;
      } else {
        decoded += c;
      }
    } else {
      decoded += c;
    }
  }
  std::string out;
  out.reserve(decoded.size());
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    char c = detail::ascii_lower(decoded[i]);
    // A minus sign stays (a negative number, or a needle that ends in one).
    const bool minus =
        c == '-' && (i + 1 == decoded.size() || (decoded[i + 1] >= '0' && decoded[i + 1] <= '9'));
    if (!minus && (c == '_' || c == '-' || c == '+' || c == '\t' || c == '\n' || c == '\r')) {
      c = ' ';
    }
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  return out;
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
  s.text = normalized(e.message);
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
      if (!rule.also.empty() &&
          std::none_of(rule.also.begin(), rule.also.end(),
                       [&](std::string_view n) { return contains(s.text, normalized(n)); })) {
        return false;
      }
      return std::any_of(rule.needles.begin(), rule.needles.end(),
                         [&](std::string_view n) { return contains(s.text, normalized(n)); });
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
  const std::string said = detail::ascii_lower(out.message);
  out.bare = !e.found || (out.code.empty() && out.type.empty() && said.size() <= 30 &&
                          said.find("not found") != std::string::npos);
  if (out.message.empty()) {
    out.message = "HTTP " + std::to_string(status) + " with no error message";
  }
  out.retry_after = wire::retry_after_from(headers, now);
  if (!out.retry_after) out.retry_after = e.retry_delay;
  out.should_retry = wire::should_retry_from(headers);
  return out;
}

void explain_not_found(Classified& c, std::string_view url) {
  if (c.status != 404 || !c.bare) return;
  const std::string said = c.message.rfind("HTTP 404", 0) == 0 ? std::string() : c.message;
  c.message = "HTTP 404 from " + std::string(url.substr(0, url.find('?'))) +
              (said.empty() ? ", with no error message" : " (" + said + ")") +
              ": is the endpoint's base_url the API's base path (such as https://host/v1)?";
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
