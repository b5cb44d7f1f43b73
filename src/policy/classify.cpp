#include "policy/classify.hpp"

#include "util/ascii.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <algorithm>
#include <charconv>

namespace failover::policy {

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

bool is_content_filter(std::string_view code, std::string_view type) {
  return code == "content_filter" || code == "content_policy_violation" ||
         code == "content_filtered" || type == "content_filter" ||
         code == "responsibleaipolicyviolation";
}

bool is_context_length(std::string_view code, std::string_view message) {
  if (code == "context_length_exceeded" || code == "string_above_max_length") return true;
  return contains(message, "context length") || contains(message, "context_length_exceeded") ||
         contains(message, "maximum context") || contains(message, "context window") ||
         contains(message, "prompt is too long");
}

}  // namespace

ErrorKind kind_for_status(int status, std::string_view code_in, std::string_view type_in,
                          std::string_view message_in) {
  const std::string code = detail::ascii_lower(code_in);
  const std::string type = detail::ascii_lower(type_in);
  const std::string message = detail::ascii_lower(message_in);
  if (status >= 300 && status < 400) return ErrorKind::Protocol;  // redirects are not followed
  switch (status) {
    case 400:
    case 403:
    case 422:
      if (is_content_filter(code, type)) return ErrorKind::ContentFiltered;
      if (status == 403) return ErrorKind::PermissionDenied;
      if (is_context_length(code, message)) return ErrorKind::ContextLengthExceeded;
      return ErrorKind::InvalidRequest;
    case 401:
      return ErrorKind::Authentication;
    case 404:
      return ErrorKind::NotFound;
    case 408:
      return ErrorKind::Timeout;
    case 409:
      return ErrorKind::Conflict;
    case 413:
      return is_context_length(code, message) ? ErrorKind::ContextLengthExceeded
                                              : ErrorKind::InvalidRequest;
    case 429:
      if (code == "insufficient_quota" || type == "insufficient_quota") {
        return ErrorKind::QuotaExhausted;
      }
      return ErrorKind::RateLimited;
    case 503:
    case 529:
      return ErrorKind::Overloaded;
    default:
      break;
  }
  if (status >= 400 && status < 500) return ErrorKind::InvalidRequest;
  if (status >= 500 && status < 600) return ErrorKind::ServerError;
  return ErrorKind::Protocol;
}

Classified classify_http(int status, const HttpHeaders& headers, std::string_view body,
                         WallTime now) {
  Classified out;
  out.status = status;
  wire::ErrorBody e = wire::decode_error_body(body);
  out.message = std::move(e.message);
  out.code = std::move(e.code);
  out.type = std::move(e.type);
  out.param = std::move(e.param);
  int effective = status;
  if (status >= 200 && status < 300) {
    // An error object inside a 2xx: some relays put the real status in error.code.
    int numeric = 0;
    auto r = std::from_chars(out.code.data(), out.code.data() + out.code.size(), numeric);
    if (r.ec == std::errc() && r.ptr == out.code.data() + out.code.size() && numeric >= 400 &&
        numeric < 600) {
      effective = numeric;
    } else {
      effective = 500;
      const std::string code = detail::ascii_lower(out.code);
      const std::string type = detail::ascii_lower(out.type);
      if (code == "insufficient_quota" || type == "insufficient_quota") {
        effective = 429;
      } else if (is_content_filter(code, type)) {
        effective = 400;
      } else if (code == "context_length_exceeded") {
        effective = 400;
      } else if (contains(code, "rate_limit") || contains(type, "rate_limit")) {
        effective = 429;
      }
    }
  }
  out.kind = kind_for_status(effective, out.code, out.type, out.message);
  if (status >= 300 && status < 400) {
    const std::string* location = wire::find_header(headers, "location");
    out.message = "HTTP " + std::to_string(status) + " redirect" +
                  (location ? " to " + wire::excerpt(*location, 200) : std::string()) +
                  " not followed (redirects are never followed)";
  }
  if (out.message.empty())
    out.message = "HTTP " + std::to_string(status) + " with no error message";
  out.retry_after = wire::retry_after_from(headers, now);
  out.should_retry = wire::should_retry_from(headers);
  return out;
}

}  // namespace failover::policy
