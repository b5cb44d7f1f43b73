// The classification table (DESIGN.md "Defaults: Classification"), row by row, on error bodies
// written after each provider's documented error format.

#include "policy/classify.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace failover {
namespace {

ErrorKind classify(int status, const std::string& body, HttpHeaders headers = {}) {
  return policy::classify_http(status, headers, body, WallTime{}).kind;
}

std::string err(const std::string& code, const std::string& message = "m",
                const std::string& type = "") {
  return R"({"error":{"message":")" + message + R"(","type":")" + type + R"(","code":")" + code +
         R"("}})";
}

struct Row {
  const char* what;
  int status;
  std::string body;
  ErrorKind expected;
};

// One row or more for every rule of the table; Classify.EveryRuleIsExercised checks that.
const std::vector<Row>& rows() {
  static const std::vector<Row> rows = {
      // Content filters.
      {"OpenAI policy violation", 400, err("content_policy_violation"), ErrorKind::ContentFiltered},
      {"Azure filter code", 400,
       R"({"error":{"code":"content_filter","message":"The response was filtered","status":400}})",
       ErrorKind::ContentFiltered},
      {"Azure inner code", 400,
       R"({"error":{"code":"ResponsibleAIPolicyViolation","message":"blocked"}})",
       ErrorKind::ContentFiltered},
      {"Azure filter wording", 400,
       err("invalid_prompt",
           "The response was filtered due to the prompt triggering Azure OpenAI's content "
           "management policy."),
       ErrorKind::ContentFiltered},
      {"OpenRouter guardrail 403", 403,
       R"({"error":{"code":403,"message":"Request blocked: prompt injection patterns detected","metadata":{"patterns":["x"]}}})",
       ErrorKind::ContentFiltered},
      {"OpenRouter moderation 403", 403,
       R"({"error":{"code":403,"message":"Your chosen model requires moderation and your input was flagged for \"violence\""}})",
       ErrorKind::ContentFiltered},
      {"content filter inside a 200", 200, err("content_filter"), ErrorKind::ContentFiltered},
      {"Google block reason", 400,
       R"({"error":{"code":400,"message":"blocked","status":"INVALID_ARGUMENT","details":[{"reason":"SAFETY"}]}})",
       ErrorKind::ContentFiltered},
      // Overload.
      {"Anthropic 529", 529,
       R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       ErrorKind::Overloaded},
      {"Anthropic overload as 500", 500,
       R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       ErrorKind::Overloaded},
      // Quota.
      {"DeepSeek 402", 402,
       R"({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}})",
       ErrorKind::QuotaExhausted},
      {"OpenAI insufficient_quota", 429,
       err("insufficient_quota", "You exceeded your current quota", "insufficient_quota"),
       ErrorKind::QuotaExhausted},
      {"insufficient_quota type only", 429, err("", "m", "insufficient_quota"),
       ErrorKind::QuotaExhausted},
      {"Anthropic billing_error", 400,
       R"({"type":"error","error":{"type":"billing_error","message":"billing"}})",
       ErrorKind::QuotaExhausted},
      {"insufficient_quota inside a 200", 200, err("insufficient_quota"),
       ErrorKind::QuotaExhausted},
      {"Anthropic low credit 400", 400,
       R"({"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}})",
       ErrorKind::QuotaExhausted},
      {"relay 403 no credits", 403, err("forbidden", "This key has no credits left"),
       ErrorKind::QuotaExhausted},
      {"gateway spend limit", 400, err("", "Monthly spend limit reached for this team"),
       ErrorKind::QuotaExhausted},
      // A 429 is a rate limit, whatever its message says of quota.
      {"OpenAI rate limit", 429, err("rate_limit_exceeded", "Rate limit reached", "requests"),
       ErrorKind::RateLimited},
      {"Gemini per-minute quota", 429,
       R"({"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED"}})",
       ErrorKind::RateLimited},
      // Authentication sent as 400/403.
      {"Gemini API_KEY_INVALID", 400,
       R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}})",
       ErrorKind::Authentication},
      {"xAI plain string error", 400,
       R"({"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***fe. You can obtain an API key from the console."})",
       ErrorKind::Authentication},
      {"401", 401, err("invalid_api_key"), ErrorKind::Authentication},
      // Permission.
      {"Anthropic permission_error", 403,
       R"({"type":"error","error":{"type":"permission_error","message":"not allowed"}})",
       ErrorKind::PermissionDenied},
      {"Gemini unsupported location", 400,
       R"({"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}})",
       ErrorKind::PermissionDenied},
      {"403 plain", 403, err("model_not_allowed"), ErrorKind::PermissionDenied},
      // Context overflow.
      {"OpenAI context code", 400, err("context_length_exceeded"),
       ErrorKind::ContextLengthExceeded},
      {"llama.cpp 500", 500,
       R"({"error":{"code":500,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":4096}})",
       ErrorKind::ContextLengthExceeded},
      {"Anthropic 413", 413,
       R"({"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}})",
       ErrorKind::ContextLengthExceeded},
      {"OpenAI wording", 400, err("", "This model's maximum context length is 8192 tokens"),
       ErrorKind::ContextLengthExceeded},
      {"Anthropic wording", 400, err("", "prompt is too long: 250000 tokens > 200000 maximum"),
       ErrorKind::ContextLengthExceeded},
      {"Anthropic input and max_tokens over the window", 400,
       R"({"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 178959 + 64000 > 200000, decrease input length or `max_tokens` and try again"}})",
       ErrorKind::ContextLengthExceeded},
      {"vLLM negative max_tokens", 400,
       R"({"object":"error","message":"max_tokens must be at least 1, got -563072.","type":"BadRequestError","param":null,"code":400})",
       ErrorKind::ContextLengthExceeded},
      {"Mistral too many tokens", 422, err("", "Prompt contains too many tokens for the model"),
       ErrorKind::ContextLengthExceeded},
      // Model not found sent as 400.
      {"Together model_not_available", 400,
       R"({"error":{"message":"Unable to access model x. Please visit the models page.","type":"invalid_request_error","param":null,"code":"model_not_available"}})",
       ErrorKind::NotFound},
      {"model does not exist", 400,
       err("", "The model `gpt-9` does not exist or you do not have access to it."),
       ErrorKind::NotFound},
      {"Ollama 404 typed api_error", 404,
       R"({"error":{"message":"model \"x\" not found, try pulling it first","type":"api_error","param":null,"code":null}})",
       ErrorKind::NotFound},
      // Rate limits inside 200s.
      {"Anthropic rate limit in a stream", 200,
       R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})",
       ErrorKind::RateLimited},
      {"OpenRouter numeric code in a 200", 200,
       R"({"error":{"code":429,"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}}})",
       ErrorKind::RateLimited},
      // Google statuses and Anthropic types.
      {"Google UNAVAILABLE", 500,
       R"({"error":{"code":500,"message":"The model is overloaded.","status":"UNAVAILABLE"}})",
       ErrorKind::Overloaded},
      {"Google DEADLINE_EXCEEDED", 504,
       R"({"error":{"code":504,"message":"Deadline expired","status":"DEADLINE_EXCEEDED"}})",
       ErrorKind::Timeout},
      {"invalid request inside a 200", 200, err("", "bad", "invalid_request_error"),
       ErrorKind::InvalidRequest},
      // The status alone.
      {"404", 404, err("model_not_found"), ErrorKind::NotFound},
      {"408", 408, "", ErrorKind::Timeout},
      {"409", 409, "", ErrorKind::Conflict},
      {"503", 503, "", ErrorKind::Overloaded},
      {"unsupported parameter stays invalid", 400,
       err("unsupported_parameter",
           "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
           "'max_completion_tokens' instead.",
           "invalid_request_error"),
       ErrorKind::InvalidRequest},
      {"422", 422, err("unprocessable"), ErrorKind::InvalidRequest},
      {"413 without a signal", 413, "", ErrorKind::InvalidRequest},
      {"418", 418, "", ErrorKind::InvalidRequest},
      {"500", 500, err("server_error"), ErrorKind::ServerError},
      {"nginx 502", 502,
       "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
       "Gateway</h1></center></body></html>",
       ErrorKind::ServerError},
      {"Cloudflare 522", 522, "<!DOCTYPE html><html><body>Connection timed out</body></html>",
       ErrorKind::ServerError},
      {"504", 504, "", ErrorKind::ServerError},
      {"relay status in a 200", 200, err("502"), ErrorKind::ServerError},
      {"unknown error in a 200", 200, err("whatever"), ErrorKind::ServerError},
      {"302", 302, "", ErrorKind::Protocol},
      {"101", 101, "", ErrorKind::Protocol},
      {"304", 304, "", ErrorKind::Protocol},

      // Paraphrases, so that each rule holds for the ways its wording varies.
      // Overload by its type, whatever the status.
      {"Moonshot engine overloaded as 429", 429,
       err("", "The engine is currently overloaded, please try again later",
           "engine_overloaded_error"),
       ErrorKind::Overloaded},
      {"overloaded inside a 200", 200, err("overloaded", "busy"), ErrorKind::Overloaded},
      // 402 whatever it says.
      {"402 out of credits", 402, err("", "You are out of credits"), ErrorKind::QuotaExhausted},
      {"402 empty", 402, "", ErrorKind::QuotaExhausted},
      // Money words before the 429 rule: singular, plural, Chinese, encoded.
      {"insufficient balance as 429", 429, err("", "Insufficient Balance"),
       ErrorKind::QuotaExhausted},
      {"credits plural", 403, err("", "Your account has run out of credits."),
       ErrorKind::QuotaExhausted},
      {"credit singular", 400, err("", "Not enough credit to complete this request"),
       ErrorKind::QuotaExhausted},
      {"funds", 400, err("", "insufficient funds on the account"), ErrorKind::QuotaExhausted},
      {"balance in Chinese", 403, err("", "用户余额不足"), ErrorKind::QuotaExhausted},
      {"relay token quota in Chinese", 429, err("", "该令牌额度已用尽"), ErrorKind::QuotaExhausted},
      {"arrears in Chinese", 400, err("", "您的账户已欠费，请充值后重试。"),
       ErrorKind::QuotaExhausted},
      {"balance percent-encoded", 400, err("", "Insufficient%20account%20balance"),
       ErrorKind::QuotaExhausted},
      // Billing codes.
      {"Moonshot quota type", 429,
       err("", "Your account is suspended, please check your plan and billing details",
           "exceeded_current_quota_error"),
       ErrorKind::QuotaExhausted},
      {"Qwen Arrearage", 400, err("Arrearage", "Access denied, account is in arrears"),
       ErrorKind::QuotaExhausted},
      {"Zhipu 1113 as 429", 429, R"({"error":{"code":"1113","message":"账户已欠费"}})",
       ErrorKind::QuotaExhausted},
      {"one-api user quota", 403, err("insufficient_user_quota", "用户额度不足"),
       ErrorKind::QuotaExhausted},
      // Fixed billing phrases (no money word).
      {"billing", 400, err("", "Billing is not active for this account"),
       ErrorKind::QuotaExhausted},
      {"spend limit", 403, err("", "Monthly spend limit exceeded"), ErrorKind::QuotaExhausted},
      {"payment required", 400, err("", "Payment Required"), ErrorKind::QuotaExhausted},
      // Word families for quotas and limits.
      {"have reached your usage limits", 400,
       err("",
           "You have reached your specified API usage limits. You will regain access on "
           "2026-01-01"),
       ErrorKind::QuotaExhausted},
      {"usage limit singular", 403, err("", "usage limit reached for this key"),
       ErrorKind::QuotaExhausted},
      {"quota exhausted", 400, err("", "The quota has been exhausted"), ErrorKind::QuotaExhausted},
      {"budget exceeded", 400, err("", "Budget has been exceeded! Current cost: 10.2"),
       ErrorKind::QuotaExhausted},
      // Bad keys by code.
      {"Moonshot invalid authentication", 400,
       err("", "Invalid Authentication", "invalid_authentication_error"),
       ErrorKind::Authentication},
      {"Qwen InvalidApiKey", 400, err("InvalidApiKey", "Invalid API-key provided."),
       ErrorKind::Authentication},
      {"Zhipu 1002", 403, R"({"error":{"code":"1002","message":"Authorization Token非法"}})",
       ErrorKind::Authentication},
      // Bad keys by phrase.
      {"DeepSeek authentication fails", 400, err("", "Authentication Fails (no such user)"),
       ErrorKind::Authentication},
      {"new-api invalid token", 403, err("", "无效的令牌"), ErrorKind::Authentication},
      {"Zhipu authentication failed", 400, err("", "身份验证失败。"), ErrorKind::Authentication},
      // Bad keys by word family, encoded as relays pass them on.
      {"key not valid", 400, err("", "API key not valid. Please pass a valid API key."),
       ErrorKind::Authentication},
      {"x-api-key", 403, err("", "invalid x-api-key"), ErrorKind::Authentication},
      {"revoked key", 403, err("", "This API key has been revoked"), ErrorKind::Authentication},
      {"missing key", 400, err("", "Missing API_KEY in the request headers"),
       ErrorKind::Authentication},
      {"invalid key percent-encoded", 400, err("", "Invalid%20API%20key%20provided%3A%20sk-x"),
       ErrorKind::Authentication},
      {"invalid key with JSON escapes", 400,
       R"({"error":{"message":"{\"error\":\"invalid_api_key\",\"detail\":\"The api\u005fkey is invalid\"}"}})",
       ErrorKind::Authentication},
      // No access.
      {"Moonshot permission", 400, err("", "not allowed", "permission_denied_error"),
       ErrorKind::PermissionDenied},
      {"Qwen AccessDenied", 400, err("AccessDenied", "Access denied."),
       ErrorKind::PermissionDenied},
      {"Zhipu 1220", 400, R"({"error":{"code":"1220","message":"您无权访问glm-4"}})",
       ErrorKind::PermissionDenied},
      // Models not served here.
      {"Moonshot resource not found", 400, err("", "model not found", "resource_not_found_error"),
       ErrorKind::NotFound},
      {"Zhipu 1211", 400, R"({"error":{"code":"1211","message":"模型不存在，请检查模型代码。"}})",
       ErrorKind::NotFound},
      {"no such model", 400, err("", "No such model: gpt-9"), ErrorKind::NotFound},
      {"unknown model", 400, err("", "Unknown model 'x'"), ErrorKind::NotFound},
      // Rate limits by code.
      {"Moonshot rate limit type", 429, err("", "slow down", "rate_limit_reached_error"),
       ErrorKind::RateLimited},
      {"Qwen Throttling in a 200", 200, err("Throttling.RateQuota", "Requests rate limit exceeded"),
       ErrorKind::RateLimited},
      {"Zhipu 1302 in a 200", 200,
       R"({"error":{"code":"1302","message":"您当前使用该API的并发数过高"}})",
       ErrorKind::RateLimited},
      // Google statuses on other 5xx and inside 200s.
      {"UNAVAILABLE in a 200", 200, R"({"error":{"message":"m","status":"UNAVAILABLE"}})",
       ErrorKind::Overloaded},
      {"UNAVAILABLE as 500", 500, R"({"error":{"code":500,"message":"m","status":"UNAVAILABLE"}})",
       ErrorKind::Overloaded},
      {"DEADLINE_EXCEEDED in a 200", 200,
       R"({"error":{"message":"m","status":"DEADLINE_EXCEEDED"}})", ErrorKind::Timeout},
      {"DEADLINE_EXCEEDED as 500", 500,
       R"({"error":{"code":500,"message":"m","status":"DEADLINE_EXCEEDED"}})", ErrorKind::Timeout},
      {"Anthropic invalid request in a 200", 200,
       R"({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})",
       ErrorKind::InvalidRequest},
      {"Google INVALID_ARGUMENT in a 200", 200,
       R"({"error":{"message":"bad","status":"INVALID_ARGUMENT"}})", ErrorKind::InvalidRequest},
      // Statuses alone, whatever the body says.
      {"401 empty", 401, "", ErrorKind::Authentication},
      {"401 html", 401, "<html>Unauthorized</html>", ErrorKind::Authentication},
      {"403 empty", 403, "", ErrorKind::PermissionDenied},
      {"403 region", 403, err("", "Country, region, or territory not supported"),
       ErrorKind::PermissionDenied},
      {"404 html", 404, "<html>Not Found</html>", ErrorKind::NotFound},
      {"408 empty", 408, "", ErrorKind::Timeout},
      {"408 text", 408, "Request Timeout", ErrorKind::Timeout},
      {"409 empty", 409, "", ErrorKind::Conflict},
      {"409 text", 409, err("", "conflict"), ErrorKind::Conflict},
      {"503 html", 503, "<html>Service Unavailable</html>", ErrorKind::Overloaded},
      {"529 empty", 529, "", ErrorKind::Overloaded},
      {"Anthropic 504 timeout_error", 504,
       R"({"type":"error","error":{"type":"timeout_error","message":"Request timed out"}})",
       ErrorKind::Timeout},
      {"Anthropic timeout_error event in a 200 stream", 200,
       R"({"type":"error","error":{"type":"timeout_error","message":"Request timed out"}})",
       ErrorKind::Timeout},
      {"empty error in a 200", 200, R"({"error":{}})", ErrorKind::ServerError},
      {"error text in a 200", 200, R"({"error":"something broke"})", ErrorKind::ServerError},
  };
  return rows;
}

TEST(Classify, TableRowByRow) {
  for (const Row& row : rows()) {
    EXPECT_EQ(classify(row.status, row.body), row.expected)
        << row.what << ": status " << row.status << " body " << row.body;
  }
}

// Every rule is reached by at least three rows: the recorded wording and paraphrases of it,
// so a rule holds for the ways providers actually vary it.
TEST(Classify, EveryRuleIsExercisedThreeWays) {
  std::map<std::size_t, int> hits;
  for (const Row& row : rows()) {
    ++hits[policy::match_rule(row.status, wire::decode_error_body(row.body)).rule];
  }
  for (std::size_t i = 0; i < policy::rule_count(); ++i) {
    EXPECT_GE(hits[i], 3) << "rule " << i << " is reached by " << hits[i]
                          << " rows: " << policy::rule_source(i);
  }
}

TEST(Classify, CarriesProviderFieldsAndHeaders) {
  auto c = policy::classify_http(
      429, {{"retry-after", "7"}, {"x-should-retry", "false"}},
      R"({"error":{"message":"Rate limit reached","type":"requests","param":"model","code":"rate_limit_exceeded"}})",
      WallTime{});
  EXPECT_EQ(c.kind, ErrorKind::RateLimited);
  EXPECT_EQ(c.status, 429);
  EXPECT_EQ(c.message, "Rate limit reached");
  EXPECT_EQ(c.code, "rate_limit_exceeded");
  EXPECT_EQ(c.type, "requests");
  EXPECT_EQ(c.param, "model");
  EXPECT_EQ(c.retry_after, Duration(std::chrono::seconds(7)));
  EXPECT_EQ(c.should_retry, false);
}

TEST(Classify, GoogleRetryInfoIsTheRetryAfterWhenNoHeaderSaysIt) {
  const std::string body = R"({"error":{"code":429,"message":"Quota exceeded",
    "status":"RESOURCE_EXHAUSTED","details":[
      {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"PerMinute"}]},
      {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.4s"}]}})";
  auto c = policy::classify_http(429, {}, body, WallTime{});
  EXPECT_EQ(c.kind, ErrorKind::RateLimited);
  EXPECT_EQ(c.retry_after, Duration(std::chrono::milliseconds(34400)));
  // A header wins over the body.
  auto h = policy::classify_http(429, {{"retry-after", "2"}}, body, WallTime{});
  EXPECT_EQ(h.retry_after, Duration(std::chrono::seconds(2)));
}

TEST(Classify, WordsCountOnlyWhereTheyMeanSomething) {
  // "too many tokens" is a context overflow on a 400, a rate limit on a 429.
  EXPECT_EQ(classify(429, err("", "Too many tokens per minute")), ErrorKind::RateLimited);
  // "model" alone does not make a 400 a missing model.
  EXPECT_EQ(classify(400, err("", "model must be a string")), ErrorKind::InvalidRequest);
}

TEST(Classify, RedirectIsNamedAndNotFollowed) {
  auto c =
      policy::classify_http(302, {{"location", "http://127.0.0.1:1/elsewhere"}}, "", WallTime{});
  EXPECT_EQ(c.kind, ErrorKind::Protocol);
  EXPECT_EQ(c.message,
            "HTTP 302 redirect to http://127.0.0.1:1/elsewhere not followed (redirects are never "
            "followed)");
}

TEST(Classify, EmptyBodyGetsAMessage) {
  EXPECT_EQ(policy::classify_http(500, {}, "", WallTime{}).message,
            "HTTP 500 with no error message");
}

TEST(Classify, HtmlPagesGiveAShortMarkupFreeMessage) {
  auto c = policy::classify_http(
      522, {},
      "<!DOCTYPE html>\n<html><head><title>example.com | 522: Connection timed out</title>"
      "<style>body{color:red}</style></head><body><h1>Connection timed out</h1></body></html>",
      WallTime{});
  EXPECT_EQ(c.kind, ErrorKind::ServerError);
  EXPECT_EQ(c.message, "example.com | 522: Connection timed out");
  auto text =
      policy::classify_http(502, {}, "upstream connect error or disconnect/reset", WallTime{});
  EXPECT_EQ(text.message, "upstream connect error or disconnect/reset");
}

}  // namespace
}  // namespace failover
