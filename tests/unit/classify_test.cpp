// The classification table of DESIGN.md ("Defaults: Classification"), row by row.

#include "policy/classify.hpp"

#include <gtest/gtest.h>

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
  int status;
  std::string body;
  ErrorKind expected;
};

TEST(Classify, TableRowByRow) {
  const std::vector<Row> rows = {
      {400, err("invalid_value"), ErrorKind::InvalidRequest},
      {400, err("context_length_exceeded"), ErrorKind::ContextLengthExceeded},
      {400, err("", "This model's maximum context length is 8192 tokens"),
       ErrorKind::ContextLengthExceeded},
      {400, err("", "prompt is too long: 250000 tokens > 200000 maximum"),
       ErrorKind::ContextLengthExceeded},
      {400, err("content_filter"), ErrorKind::ContentFiltered},
      {400, err("content_policy_violation"), ErrorKind::ContentFiltered},
      {401, err("invalid_api_key"), ErrorKind::Authentication},
      {403, err("model_not_allowed"), ErrorKind::PermissionDenied},
      {403, err("content_filter"), ErrorKind::ContentFiltered},
      {404, err("model_not_found"), ErrorKind::NotFound},
      {408, "", ErrorKind::Timeout},
      {409, "", ErrorKind::Conflict},
      {413, "", ErrorKind::InvalidRequest},
      {422, err("unprocessable"), ErrorKind::InvalidRequest},
      {429, err("rate_limit_exceeded", "m", "requests"), ErrorKind::RateLimited},
      {429, err("insufficient_quota", "m", "insufficient_quota"), ErrorKind::QuotaExhausted},
      {429, err("", "m", "insufficient_quota"), ErrorKind::QuotaExhausted},
      {500, err("server_error"), ErrorKind::ServerError},
      {502, "<html>Bad Gateway</html>", ErrorKind::ServerError},
      {503, "", ErrorKind::Overloaded},
      {504, "", ErrorKind::ServerError},
      {529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       ErrorKind::Overloaded},
      {418, "", ErrorKind::InvalidRequest},
      {302, "", ErrorKind::Protocol},
      {101, "", ErrorKind::Protocol},
      // An error object inside a 200, as some relays send it.
      {200, err("502"), ErrorKind::ServerError},
      {200, err("429"), ErrorKind::RateLimited},
      {200, err("insufficient_quota"), ErrorKind::QuotaExhausted},
      {200, err("rate_limit_exceeded"), ErrorKind::RateLimited},
      {200, err("content_filter"), ErrorKind::ContentFiltered},
      {200, err("whatever"), ErrorKind::ServerError},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(classify(row.status, row.body), row.expected)
        << "status " << row.status << " body " << row.body;
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

}  // namespace
}  // namespace failover
