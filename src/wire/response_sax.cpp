// The fast path of decode_response: simdjson parses the body (it validates all of it, several
// times faster than nlohmann's lexer), and a SAX-style handler walks the parsed document and
// fills a ChatResponse directly, with no nlohmann DOM in between. It accepts only the usual
// shape of a response and gives up at the first thing it would not decode exactly as the DOM
// decoder does (an error object, content parts, non-string tool arguments, a value of the wrong
// type, deep nesting, anything simdjson rejects: malformed JSON, but also a byte order mark or
// a number beyond 64 bits, which nlohmann accepts); the DOM decoder then decides, so both paths
// always agree. tests/unit/wire_test.cpp and tests/fuzz/fuzz_response.cpp check that they do.

#include "wire/json_codec.hpp"

#include <simdjson.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace failover::wire {

namespace {

// Receives the parsed document as a stream of events, in document order (the order nlohmann's
// DOM builder sees them, so a repeated key ends the same way in both).
class ResponseSax {
 public:
  explicit ResponseSax(ChatResponse& out) : out_(out) {}

  bool complete() const { return done_ && saw_choices_ && messages_ == out_.choices.size(); }

  bool null() { return scalar(Value::Null, {}, 0); }
  bool boolean() { return scalar(Value::Bool, {}, 0); }
  bool number(std::int64_t v) { return scalar(Value::Int, {}, v); }
  // The text stays in simdjson's document: each field copies it straight into place.
  bool string(std::string_view v) { return scalar(Value::String, v, 0); }

  // The key stays in simdjson's document, which outlives the walk.
  void key(std::string_view k) { key_ = k; }

  bool start_object() {
    if (too_deep()) return false;
    if (depth_ == 0) return push(Frame::Root);
    const Frame f = top();
    if (f == Frame::Root && k() == "usage") {
      out_.usage.emplace();
      prompt_details_seen_ = completion_details_seen_ = false;
      return push(Frame::Usage);
    }
    if (f == Frame::Choices) {
      out_.choices.emplace_back();
      choice_message_ = false;
      return push(Frame::Choice);
    }
    if (f == Frame::Choice && k() == "message") {
      // Counted per choice: a choice with two messages is the DOM decoder's to judge.
      if (std::exchange(choice_message_, true)) return false;
      ++messages_;
      reasoning_content_.reset();
      reasoning_.reset();
      return push(Frame::Message);
    }
    if (f == Frame::ToolCalls) {
      message().tool_calls.emplace_back();
      message().tool_calls.back().type.clear();
      function_seen_ = false;
      return push(Frame::ToolCall);
    }
    // Objects that may appear once: the DOM keeps the last of a repeated key.
    if (f == Frame::ToolCall && k() == "function") return once(function_seen_, Frame::Function);
    if (f == Frame::Usage && k() == "prompt_tokens_details") {
      return once(prompt_details_seen_, Frame::PromptDetails);
    }
    if (f == Frame::Usage && k() == "completion_tokens_details") {
      return once(completion_details_seen_, Frame::CompletionDetails);
    }
    return nest();
  }

  bool end_object() {
    if (top() == Frame::Choice && !choice_message_) return false;  // a choice without a message
    if (top() == Frame::Message) {  // reasoning_content wins over OpenRouter's reasoning
      if (reasoning_content_) {
        message().reasoning.emplace(*reasoning_content_);
      } else if (reasoning_) {
        message().reasoning.emplace(*reasoning_);
      }
    }
    return pop();
  }

  bool start_array() {
    if (too_deep() || depth_ == 0) return false;
    const Frame f = top();
    if (f == Frame::Root && k() == "choices") return once(saw_choices_, Frame::Choices);
    if (f == Frame::Message && k() == "tool_calls") {
      if (!message().tool_calls.empty()) return false;
      return push(Frame::ToolCalls);
    }
    // Citations are rare: an empty list is read here, any item by the DOM decoder.
    if (f == Frame::Message && k() == "annotations") return push(Frame::Annotations);
    return nest();
  }

  bool end_array() { return pop(); }

 private:
  enum class Frame : std::uint8_t {
    Root,
    Choices,
    Choice,
    Message,
    ToolCalls,
    ToolCall,
    Annotations,
    Function,
    Usage,
    PromptDetails,
    CompletionDetails,
    Skip,
  };
  enum class Value { Null, Bool, Int, String };

  Frame top() const { return stack_[depth_ - 1]; }
  bool push(Frame f) {  // after too_deep(): the stack has room
    stack_[depth_++] = f;
    return true;
  }
  bool pop() {
    if (--depth_ == 0) done_ = true;
    return true;
  }
  bool once(bool& seen, Frame f) {
    if (seen) return false;
    seen = true;
    return push(f);
  }
  // Any other object or array: skipped unless it sits where the decoder reads a value (or where
  // an object belongs), which the DOM decoder must judge.
  bool nest() {
    const Frame f = top();
    if (f == Frame::Skip) return push(Frame::Skip);
    if (f == Frame::Choices || f == Frame::ToolCalls || f == Frame::Annotations) return false;
    return known_key(f) ? false : push(Frame::Skip);
  }
  // The keys each frame reads.
  bool known_key(Frame f) const {
    switch (f) {
      case Frame::Root:
        return is_root_scalar() || k() == "choices" || k() == "usage" || k() == "error";
      case Frame::Choice:
        return k() == "message" || k() == "index" || k() == "finish_reason" || k() == "logprobs";
      case Frame::Message:
        return k() == "role" || k() == "content" || k() == "refusal" || k() == "tool_calls" ||
               k() == "reasoning_content" || k() == "reasoning" || k() == "annotations";
      case Frame::ToolCall:
        return k() == "function" || k() == "id" || k() == "type";
      case Frame::Function:
        return k() == "name" || k() == "arguments";
      case Frame::Usage:
        return is_usage_field() || k() == "prompt_tokens_details" ||
               k() == "completion_tokens_details";
      case Frame::PromptDetails:
      case Frame::CompletionDetails:
        return is_detail_field();
      case Frame::Choices:
      case Frame::ToolCalls:
      case Frame::Annotations:
      case Frame::Skip:
        return false;
    }
    return false;
  }
  Message& message() { return out_.choices.back().message; }
  // The current key as a view: comparisons check the length before any byte.
  std::string_view k() const { return key_; }
  bool too_deep() const { return depth_ >= stack_.size(); }
  bool is_root_scalar() const {
    return k() == "id" || k() == "object" || k() == "created" || k() == "model" ||
           k() == "system_fingerprint" || k() == "service_tier";
  }
  bool is_usage_field() const {
    return k() == "prompt_tokens" || k() == "completion_tokens" || k() == "total_tokens";
  }
  bool is_detail_field() const {
    return k() == "cached_tokens" || k() == "audio_tokens" || k() == "reasoning_tokens" ||
           k() == "accepted_prediction_tokens" || k() == "rejected_prediction_tokens";
  }

  // A string field: a string, or null for empty; anything else is the DOM decoder's to judge.
  static bool text(Value type, std::string_view v, std::string& into) {
    if (type == Value::String) {
      into.assign(v.data(), v.size());
      return true;
    }
    if (type == Value::Null) {
      into.clear();
      return true;
    }
    return false;
  }
  // A token count: a number clamped as the DOM decoder clamps it, or null for 0.
  static bool tokens(Value type, std::int64_t v, std::int64_t& into) {
    if (!number(type, v, into)) return false;
    into = clamp_tokens(into);
    return true;
  }
  // A field that may be absent: a string, or null for absent.
  static bool optional_text(Value type, std::string_view v, std::optional<std::string_view>& into) {
    if (type == Value::String) {
      into = v;
      return true;
    }
    if (type == Value::Null) {
      into.reset();
      return true;
    }
    return false;
  }
  // A number field: a number, or null for 0.
  template <typename T>
  static bool number(Value type, std::int64_t v, T& into) {
    if (type == Value::Int) {
      into = static_cast<T>(v);
      return true;
    }
    if (type == Value::Null) {
      into = 0;
      return true;
    }
    return false;
  }

  bool scalar(Value type, std::string_view s, std::int64_t n) {
    if (depth_ == 0) return false;  // a bare scalar document
    switch (top()) {
      case Frame::Skip:
        return true;
      case Frame::Root:
        if (k() == "id") return text(type, s, out_.id);
        if (k() == "object") return text(type, s, out_.object);
        if (k() == "model") return text(type, s, out_.model);
        if (k() == "system_fingerprint") return text(type, s, out_.system_fingerprint);
        if (k() == "service_tier") return text(type, s, out_.service_tier);
        if (k() == "created") return number(type, n, out_.created);
        if (k() == "usage") {
          if (type != Value::Null) return false;
          out_.usage.reset();
          return true;
        }
        return k() != "choices" && k() != "error";
      case Frame::Choice: {
        Choice& c = out_.choices.back();
        if (k() == "index") return number(type, n, c.index);
        if (k() == "finish_reason") return text(type, s, c.finish_reason);
        if (k() == "logprobs") return type == Value::Null;
        return k() != "message";
      }
      case Frame::Message: {
        Message& m = message();
        if (k() == "role") return text(type, s, m.role);
        if (k() == "content") {
          if (type == Value::Null) {
            m.content.reset();
            return true;
          }
          if (type != Value::String) return false;
          m.content.emplace(s);
          return true;
        }
        if (k() == "refusal") {
          if (type == Value::String) {
            m.refusal.emplace(s);
          } else {
            m.refusal.reset();  // the DOM decoder ignores a refusal that is not a string
          }
          return true;
        }
        if (k() == "tool_calls") return type == Value::Null && m.tool_calls.empty();
        if (k() == "reasoning_content") return optional_text(type, s, reasoning_content_);
        if (k() == "reasoning") return optional_text(type, s, reasoning_);
        return true;
      }
      case Frame::ToolCall: {
        ToolCall& t = message().tool_calls.back();
        if (k() == "id") return text(type, s, t.id);
        if (k() == "type") return text(type, s, t.type);
        if (k() == "function") return !function_seen_;  // not an object: ignored
        return true;
      }
      case Frame::Function: {
        ToolCall& t = message().tool_calls.back();
        if (k() == "name") return text(type, s, t.name);
        if (k() == "arguments") return text(type, s, t.arguments);
        return true;
      }
      case Frame::Usage: {
        Usage& u = *out_.usage;
        if (k() == "prompt_tokens") return tokens(type, n, u.prompt_tokens);
        if (k() == "completion_tokens") return tokens(type, n, u.completion_tokens);
        if (k() == "total_tokens") return tokens(type, n, u.total_tokens);
        if (k() == "prompt_tokens_details") return !prompt_details_seen_;
        if (k() == "completion_tokens_details") return !completion_details_seen_;
        return true;  // other members, and details that are not objects, are ignored
      }
      case Frame::PromptDetails: {
        Usage& u = *out_.usage;
        if (k() == "cached_tokens") return tokens(type, n, u.cached_tokens);
        if (k() == "audio_tokens") return tokens(type, n, u.prompt_audio_tokens);
        return true;
      }
      case Frame::CompletionDetails: {
        Usage& u = *out_.usage;
        if (k() == "reasoning_tokens") return tokens(type, n, u.reasoning_tokens);
        if (k() == "audio_tokens") return tokens(type, n, u.completion_audio_tokens);
        if (k() == "accepted_prediction_tokens") {
          return tokens(type, n, u.accepted_prediction_tokens);
        }
        if (k() == "rejected_prediction_tokens") {
          return tokens(type, n, u.rejected_prediction_tokens);
        }
        return true;
      }
      case Frame::Choices:
      case Frame::ToolCalls:
      case Frame::Annotations:
        return false;  // a scalar where an object belongs
    }
    return false;
  }

  ChatResponse& out_;
  std::array<Frame, kMaxJsonDepth> stack_{};  // the open objects and arrays
  std::size_t depth_ = 0;
  std::string_view key_;
  bool done_ = false;
  bool saw_choices_ = false;
  bool function_seen_ = false;        // in the current tool call
  bool prompt_details_seen_ = false;  // in the current usage
  bool completion_details_seen_ = false;
  std::size_t messages_ = 0;
  bool choice_message_ = false;  // the current choice has its message
  // The current message's reasoning under either name (in simdjson's document).
  std::optional<std::string_view> reasoning_content_;
  std::optional<std::string_view> reasoning_;
};

// Replays one parsed value as events; false as soon as the handler declines. The handler stops
// past kMaxJsonDepth, which bounds the recursion.
bool replay(simdjson::dom::element e, ResponseSax& sax) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::OBJECT: {
      simdjson::dom::object object;
      if (e.get_object().get(object) != simdjson::SUCCESS || !sax.start_object()) return false;
      for (simdjson::dom::key_value_pair field : object) {
        sax.key(field.key);
        if (!replay(field.value, sax)) return false;
      }
      return sax.end_object();
    }
    case element_type::ARRAY: {
      simdjson::dom::array array;
      if (e.get_array().get(array) != simdjson::SUCCESS || !sax.start_array()) return false;
      for (simdjson::dom::element item : array) {
        if (!replay(item, sax)) return false;
      }
      return sax.end_array();
    }
    case element_type::STRING: {
      std::string_view v;
      return e.get_string().get(v) == simdjson::SUCCESS && sax.string(v);
    }
    case element_type::INT64: {
      std::int64_t v = 0;
      return e.get_int64().get(v) == simdjson::SUCCESS && sax.number(v);
    }
    case element_type::UINT64: {
      std::uint64_t v = 0;
      return e.get_uint64().get(v) == simdjson::SUCCESS && sax.number(static_cast<std::int64_t>(v));
    }
    case element_type::DOUBLE: {
      double v = 0;
      return e.get_double().get(v) == simdjson::SUCCESS && sax.number(to_int64(v));
    }
    case element_type::BOOL:
      return sax.boolean();
    case element_type::NULL_VALUE:
      return sax.null();
  }
  return false;
}

// Bodies up to this size are parsed by a parser kept per thread (its buffers grow to the
// largest such body and stay); larger ones get a parser of their own that is freed after.
constexpr std::size_t kReusedParserLimit = 1 << 20;

}  // namespace

bool decode_response_fast(const std::string& body, ChatResponse& out) {
  thread_local simdjson::dom::parser reused;
  std::optional<simdjson::dom::parser> own;
  simdjson::dom::parser& parser = body.size() <= kReusedParserLimit ? reused : own.emplace();
  simdjson::dom::element root;
  // parse(std::string) reads the string's spare capacity as simdjson's padding when there is
  // enough of it, and copies the body into the parser's padded buffer otherwise.
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return false;
  ChatResponse r;
  ResponseSax sax(r);
  if (!replay(root, sax) || !sax.complete()) return false;
  for (Choice& c : r.choices) {
    if (c.finish_reason == "error") return false;  // an error, which the DOM decoder reports
    if (c.message.role.empty()) c.message.role = "assistant";
    for (ToolCall& t : c.message.tool_calls) {
      if (t.type.empty()) t.type = "function";
    }
  }
  out.id = std::move(r.id);
  out.object = std::move(r.object);
  out.created = r.created;
  out.model = std::move(r.model);
  out.system_fingerprint = std::move(r.system_fingerprint);
  out.service_tier = std::move(r.service_tier);
  out.choices = std::move(r.choices);
  out.usage = r.usage;
  return true;
}

}  // namespace failover::wire
