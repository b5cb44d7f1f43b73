#include <failover/chat.hpp>
#include <failover/error.hpp>
#include <failover/policy/circuit_breaker.hpp>

#include <utility>

namespace failover {

std::string_view to_string(SkipReason reason) noexcept {
  switch (reason) {
    case SkipReason::CoolingDown:
      return "cooling_down";
    case SkipReason::CircuitOpen:
      return "circuit_open";
    case SkipReason::RateLimited:
      return "rate_limited";
    case SkipReason::OverBudget:
      return "over_budget";
  }
  return "unknown";
}

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::InvalidRequest:
      return "invalid_request";
    case ErrorKind::Authentication:
      return "authentication";
    case ErrorKind::PermissionDenied:
      return "permission_denied";
    case ErrorKind::NotFound:
      return "not_found";
    case ErrorKind::Conflict:
      return "conflict";
    case ErrorKind::ContextLengthExceeded:
      return "context_length_exceeded";
    case ErrorKind::ContentFiltered:
      return "content_filtered";
    case ErrorKind::RateLimited:
      return "rate_limited";
    case ErrorKind::QuotaExhausted:
      return "quota_exhausted";
    case ErrorKind::ServerError:
      return "server_error";
    case ErrorKind::Overloaded:
      return "overloaded";
    case ErrorKind::ConnectFailed:
      return "connect_failed";
    case ErrorKind::ConnectionLost:
      return "connection_lost";
    case ErrorKind::Tls:
      return "tls";
    case ErrorKind::Timeout:
      return "timeout";
    case ErrorKind::Protocol:
      return "protocol";
    case ErrorKind::ResponseTooLarge:
      return "response_too_large";
    case ErrorKind::DeadlineExceeded:
      return "deadline_exceeded";
    case ErrorKind::AllRoutesUnavailable:
      return "all_routes_unavailable";
    case ErrorKind::Cancelled:
      return "cancelled";
    case ErrorKind::StreamInterrupted:
      return "stream_interrupted";
    case ErrorKind::HookFailed:
      return "hook_failed";
    case ErrorKind::BudgetExceeded:
      return "budget_exceeded";
  }
  return "unknown";
}

std::string_view to_string(BreakerState state) noexcept {
  switch (state) {
    case BreakerState::Closed:
      return "closed";
    case BreakerState::Open:
      return "open";
    case BreakerState::HalfOpen:
      return "half_open";
  }
  return "unknown";
}

Error::Error(ErrorKind kind, const std::string& message, ErrorDetails details)
    : std::runtime_error(message),
      kind_(kind),
      details_(std::make_shared<const ErrorDetails>(std::move(details))) {}

// ---- chat.hpp helpers ------------------------------------------------------------------------

ContentPart ContentPart::text_part(std::string text) {
  ContentPart p;
  p.type = Type::Text;
  p.text = std::move(text);
  return p;
}

ContentPart ContentPart::image(std::string url, std::string detail) {
  ContentPart p;
  p.type = Type::ImageUrl;
  p.url = std::move(url);
  p.detail = std::move(detail);
  return p;
}

ContentPart ContentPart::audio(std::string base64_data, std::string format) {
  ContentPart p;
  p.type = Type::InputAudio;
  p.data = std::move(base64_data);
  p.format = std::move(format);
  return p;
}

namespace {
Message text_message(const char* role, std::string text) {
  Message m;
  m.role = role;
  m.content = std::move(text);
  return m;
}
}  // namespace

Message Message::system(std::string text) { return text_message("system", std::move(text)); }
Message Message::developer(std::string text) { return text_message("developer", std::move(text)); }
Message Message::user(std::string text) { return text_message("user", std::move(text)); }
Message Message::user(std::vector<ContentPart> parts) {
  Message m;
  m.role = "user";
  m.parts = std::move(parts);
  return m;
}
Message Message::assistant(std::string text) { return text_message("assistant", std::move(text)); }
Message Message::assistant(std::vector<ToolCall> calls) {
  Message m;
  m.role = "assistant";
  m.tool_calls = std::move(calls);
  return m;
}
Message Message::tool(std::string tool_call_id, std::string content) {
  Message m = text_message("tool", std::move(content));
  m.tool_call_id = std::move(tool_call_id);
  return m;
}

namespace {
const std::string kEmpty;
const std::vector<ToolCall> kNoCalls;
}  // namespace

const std::string& ChatResponse::text() const {
  if (choices.empty() || !choices.front().message.content) return kEmpty;
  return *choices.front().message.content;
}

const std::vector<ToolCall>& ChatResponse::tool_calls() const {
  return choices.empty() ? kNoCalls : choices.front().message.tool_calls;
}

const std::string& ChatChunk::content() const {
  return choices.empty() ? kEmpty : choices.front().content;
}

const std::string& ChatResponse::finish_reason() const {
  return choices.empty() ? kEmpty : choices.front().finish_reason;
}

const std::string& ChatResponse::reasoning() const {
  if (choices.empty() || !choices.front().message.reasoning) return kEmpty;
  return *choices.front().message.reasoning;
}

bool ChatResponse::content_filtered() const {
  for (const Choice& c : choices) {
    if (c.finish_reason == "content_filter") return true;
  }
  return false;
}

const std::string& ChatChunk::reasoning() const {
  return choices.empty() ? kEmpty : choices.front().reasoning;
}

}  // namespace failover
