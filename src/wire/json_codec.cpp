#include "wire/json_codec.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace failover::wire {

using nlohmann::json;

bool json_depth_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

std::int64_t to_int64(double v) noexcept {
  if (!(v == v)) return 0;
  if (v >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
  if (v <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(v);
}

std::optional<json> parse_json(std::string_view text) {
  if (!json_depth_within(text)) return std::nullopt;
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

std::string excerpt(std::string_view text, std::size_t max) {
  std::string out;
  std::size_t n = std::min(text.size(), max);
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
  }
  if (text.size() > max) out += "...";
  return out;
}

// ---- request --------------------------------------------------------------------------------

namespace {

struct Invalid {
  std::string message;
};

std::string at(const std::string& base, std::size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

json parse_object_field(const std::string& text, const std::string& field) {
  auto doc = parse_json(text);
  if (!doc) throw Invalid{field + " is not valid JSON"};
  if (!doc->is_object()) throw Invalid{field + " must be a JSON object"};
  return std::move(*doc);
}

void check_range(const std::optional<double>& v, double lo, double hi, const char* field) {
  if (v && !(*v >= lo && *v <= hi)) {
    throw Invalid{std::string(field) + " must be between " + json(lo).dump() + " and " +
                  json(hi).dump()};
  }
}

json encode_part(const ContentPart& part, const std::string& field) {
  switch (part.type) {
    case ContentPart::Type::Text:
      return {{"type", "text"}, {"text", part.text}};
    case ContentPart::Type::ImageUrl: {
      if (part.url.empty()) throw Invalid{field + ".url is empty"};
      json image = {{"url", part.url}};
      if (!part.detail.empty()) image["detail"] = part.detail;
      return {{"type", "image_url"}, {"image_url", std::move(image)}};
    }
    case ContentPart::Type::InputAudio:
      if (part.data.empty()) throw Invalid{field + ".data is empty"};
      if (part.format.empty()) throw Invalid{field + ".format is empty"};
      return {{"type", "input_audio"},
              {"input_audio", {{"data", part.data}, {"format", part.format}}}};
    case ContentPart::Type::Raw: {
      json raw = parse_object_field(part.raw_json, field + ".raw_json");
      if (!raw.contains("type")) throw Invalid{field + ".raw_json has no \"type\""};
      return raw;
    }
  }
  throw Invalid{field + ".type is unknown"};
}

json encode_message(const Message& m, const std::string& field) {
  static const char* kRoles[] = {"system", "developer", "user", "assistant", "tool"};
  bool role_ok = false;
  for (const char* r : kRoles) role_ok = role_ok || m.role == r;
  if (!role_ok) {
    throw Invalid{field + ".role must be one of system, developer, user, assistant, tool"};
  }
  json out = {{"role", m.role}};
  if (!m.parts.empty()) {
    json parts = json::array();
    for (std::size_t i = 0; i < m.parts.size(); ++i) {
      parts.push_back(encode_part(m.parts[i], at(field + ".parts", i)));
    }
    out["content"] = std::move(parts);
  } else if (m.content) {
    out["content"] = *m.content;
  } else if (m.role == "assistant" && (!m.tool_calls.empty() || m.refusal)) {
    out["content"] = nullptr;
  } else {
    throw Invalid{field + ".content is missing"};
  }
  if (!m.name.empty()) out["name"] = m.name;
  if (!m.tool_calls.empty()) {
    if (m.role != "assistant") throw Invalid{field + ".tool_calls is only for assistant messages"};
    json calls = json::array();
    for (std::size_t i = 0; i < m.tool_calls.size(); ++i) {
      const ToolCall& c = m.tool_calls[i];
      std::string f = at(field + ".tool_calls", i);
      if (c.id.empty()) throw Invalid{f + ".id is empty"};
      if (c.name.empty()) throw Invalid{f + ".name is empty"};
      calls.push_back({{"id", c.id},
                       {"type", c.type.empty() ? "function" : c.type},
                       {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    out["tool_calls"] = std::move(calls);
  }
  if (m.role == "tool") {
    if (m.tool_call_id.empty()) throw Invalid{field + ".tool_call_id is empty"};
    out["tool_call_id"] = m.tool_call_id;
  }
  if (m.refusal) out["refusal"] = *m.refusal;
  return out;
}

bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> encode_request(const ChatRequest& r, bool stream, json& out,
                                          std::string* text) {
  try {
    out = json::object();
    if (r.messages.empty()) throw Invalid{"messages is empty"};
    json messages = json::array();
    for (std::size_t i = 0; i < r.messages.size(); ++i) {
      messages.push_back(encode_message(r.messages[i], at("messages", i)));
    }
    out["messages"] = std::move(messages);
    if (!r.tools.empty()) {
      json tools = json::array();
      for (std::size_t i = 0; i < r.tools.size(); ++i) {
        const Tool& t = r.tools[i];
        std::string f = at("tools", i);
        if (!valid_function_name(t.name)) {
          throw Invalid{f + ".name must be 1-64 characters of a-z, A-Z, 0-9, _ and -"};
        }
        json fn = {{"name", t.name}};
        if (!t.description.empty()) fn["description"] = t.description;
        if (!t.parameters_json.empty()) {
          fn["parameters"] = parse_object_field(t.parameters_json, f + ".parameters_json");
        }
        if (t.strict) fn["strict"] = *t.strict;
        tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
      }
      out["tools"] = std::move(tools);
    }
    if (r.tool_choice) {
      const ToolChoice& c = *r.tool_choice;
      if (!c.function.empty()) {
        out["tool_choice"] = {{"type", "function"}, {"function", {{"name", c.function}}}};
      } else if (c.mode == "none" || c.mode == "auto" || c.mode == "required") {
        out["tool_choice"] = c.mode;
      } else {
        throw Invalid{"tool_choice must be none, auto, required or a function name"};
      }
    }
    if (r.parallel_tool_calls) out["parallel_tool_calls"] = *r.parallel_tool_calls;
    if (r.response_format) {
      const ResponseFormat& f = *r.response_format;
      if (f.type == "text" || f.type == "json_object") {
        out["response_format"] = {{"type", f.type}};
      } else if (f.type == "json_schema") {
        if (f.schema_name.empty()) throw Invalid{"response_format.schema_name is empty"};
        json schema = {{"name", f.schema_name}};
        if (!f.schema_description.empty()) schema["description"] = f.schema_description;
        if (!f.schema_json.empty()) {
          schema["schema"] = parse_object_field(f.schema_json, "response_format.schema_json");
        }
        if (f.strict) schema["strict"] = *f.strict;
        out["response_format"] = {{"type", "json_schema"}, {"json_schema", std::move(schema)}};
      } else {
        throw Invalid{"response_format.type must be text, json_object or json_schema"};
      }
    }
    check_range(r.temperature, 0.0, 2.0, "temperature");
    check_range(r.top_p, 0.0, 1.0, "top_p");
    check_range(r.presence_penalty, -2.0, 2.0, "presence_penalty");
    check_range(r.frequency_penalty, -2.0, 2.0, "frequency_penalty");
    if (r.temperature) out["temperature"] = *r.temperature;
    if (r.top_p) out["top_p"] = *r.top_p;
    if (r.presence_penalty) out["presence_penalty"] = *r.presence_penalty;
    if (r.frequency_penalty) out["frequency_penalty"] = *r.frequency_penalty;
    if (r.max_tokens) {
      if (*r.max_tokens < 1) throw Invalid{"max_tokens must be at least 1"};
      out["max_tokens"] = *r.max_tokens;
    }
    if (r.max_completion_tokens) {
      if (*r.max_completion_tokens < 1) throw Invalid{"max_completion_tokens must be at least 1"};
      out["max_completion_tokens"] = *r.max_completion_tokens;
    }
    if (!r.stop.empty()) out["stop"] = r.stop;
    if (r.seed) out["seed"] = *r.seed;
    if (r.n) {
      if (*r.n < 1) throw Invalid{"n must be at least 1"};
      out["n"] = *r.n;
    }
    if (!r.user.empty()) out["user"] = r.user;
    if (stream) {
      out["stream"] = true;
      if (r.include_usage) out["stream_options"] = {{"include_usage", *r.include_usage}};
    }
    if (!r.extra_json.empty()) {
      json extra = parse_object_field(r.extra_json, "extra_json");
      if (extra.contains("model")) throw Invalid{"extra_json may not set \"model\" (routes do)"};
      if (extra.contains("stream")) throw Invalid{"extra_json may not set \"stream\""};
      for (auto& [key, value] : extra.items()) out[key] = std::move(value);
    }
    // Strings must be valid UTF-8 to be sent at all: find out now, not at dump time. dump()
    // throws the error that names the first bad byte.
    std::string dumped;
    dumped.reserve(256);
    if (!append_json(out, dumped)) dumped = out.dump();
    if (text) *text = std::move(dumped);
  } catch (const Invalid& e) {
    return e.message;
  } catch (const json::exception& e) {
    return std::string("request cannot be encoded as JSON: ") + e.what();
  }
  return std::nullopt;
}

namespace {

// The length of the well-formed UTF-8 sequence at `p` (Unicode's table 3-7: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(const unsigned char* p, std::size_t left) {
  const unsigned char c = p[0];
  auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < left && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

bool append_string(const std::string& s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  out += '"';
  std::size_t run = 0;  // the start of the bytes copied as they are
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(p + i, n - i);
      if (len == 0) return false;
      i += len;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(s, run, i - run);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escaped, sizeof escaped);
      }
    }
    run = ++i;
  }
  out.append(s, run, n - run);
  out += '"';
  return true;
}

template <typename Int>
void append_integer(Int v, std::string& out) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

}  // namespace

bool append_json(const json& value, std::string& out) {
  switch (value.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out += ',';
        first = false;
        if (!append_string(it.key(), out)) return false;
        out += ':';
        if (!append_json(it.value(), out)) return false;
      }
      out += '}';
      return true;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& item : value) {
        if (!first) out += ',';
        first = false;
        if (!append_json(item, out)) return false;
      }
      out += ']';
      return true;
    }
    case json::value_t::string:
      return append_string(value.get_ref<const std::string&>(), out);
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return true;
    case json::value_t::null:
      out += "null";
      return true;
    case json::value_t::number_integer:
      append_integer(value.get<std::int64_t>(), out);
      return true;
    case json::value_t::number_unsigned:
      append_integer(value.get<std::uint64_t>(), out);
      return true;
    case json::value_t::number_float:  // nlohmann's shortest round-trip form, NaN as null
    case json::value_t::binary:
    case json::value_t::discarded:
      out += value.dump();
      return true;
  }
  return false;
}

// ---- response -------------------------------------------------------------------------------

namespace {

std::string get_string(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_string()) throw Invalid{std::string("\"") + key + "\" is not a string"};
  return it->get<std::string>();
}

std::int64_t get_int(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return 0;
  if (!it->is_number()) throw Invalid{std::string("\"") + key + "\" is not a number"};
  return it->is_number_float() ? to_int64(it->get<double>()) : it->get<std::int64_t>();
}

Usage decode_usage(const json& u) {
  if (!u.is_object()) throw Invalid{"\"usage\" is not an object"};
  Usage out;
  out.prompt_tokens = get_int(u, "prompt_tokens");
  out.completion_tokens = get_int(u, "completion_tokens");
  out.total_tokens = get_int(u, "total_tokens");
  if (auto it = u.find("prompt_tokens_details"); it != u.end() && it->is_object()) {
    out.cached_tokens = get_int(*it, "cached_tokens");
    out.prompt_audio_tokens = get_int(*it, "audio_tokens");
  }
  if (auto it = u.find("completion_tokens_details"); it != u.end() && it->is_object()) {
    out.reasoning_tokens = get_int(*it, "reasoning_tokens");
    out.completion_audio_tokens = get_int(*it, "audio_tokens");
    out.accepted_prediction_tokens = get_int(*it, "accepted_prediction_tokens");
    out.rejected_prediction_tokens = get_int(*it, "rejected_prediction_tokens");
  }
  return out;
}

Message decode_message(const json& m) {
  if (!m.is_object()) throw Invalid{"\"message\" is not an object"};
  Message out;
  out.role = get_string(m, "role");
  if (out.role.empty()) out.role = "assistant";
  if (auto it = m.find("content"); it != m.end() && !it->is_null()) {
    if (it->is_string()) {
      out.content = it->get<std::string>();
    } else if (it->is_array()) {  // some servers answer with content parts
      std::string text;
      for (const json& part : *it) {
        if (part.is_object() && part.value("type", "") == "text") text += get_string(part, "text");
      }
      out.content = std::move(text);
    } else {
      throw Invalid{"\"content\" is neither a string nor null"};
    }
  }
  if (auto it = m.find("refusal"); it != m.end() && it->is_string()) {
    out.refusal = it->get<std::string>();
  }
  if (auto it = m.find("tool_calls"); it != m.end() && !it->is_null()) {
    if (!it->is_array()) throw Invalid{"\"tool_calls\" is not an array"};
    for (const json& c : *it) {
      if (!c.is_object()) throw Invalid{"a tool call is not an object"};
      ToolCall call;
      call.id = get_string(c, "id");
      call.type = get_string(c, "type");
      if (call.type.empty()) call.type = "function";
      if (auto fn = c.find("function"); fn != c.end() && fn->is_object()) {
        call.name = get_string(*fn, "name");
        auto args = fn->find("arguments");
        if (args != fn->end() && !args->is_null()) {
          call.arguments = args->is_string() ? args->get<std::string>() : args->dump();
        }
      }
      out.tool_calls.push_back(std::move(call));
    }
  }
  return out;
}

}  // namespace

std::optional<DecodeFailure> decode_response(std::string& body, ChatResponse& out) {
  if (decode_response_fast(body, out)) {
    out.raw_json = std::move(body);
    return std::nullopt;
  }
  return decode_response_dom(body, out);
}

std::optional<DecodeFailure> decode_response_dom(std::string& body, ChatResponse& out) {
  auto doc = parse_json(body);
  if (!doc) return DecodeFailure{"the response body is not valid JSON: " + excerpt(body, 120), {}};
  try {
    if (!doc->is_object()) throw Invalid{"the response body is not a JSON object"};
    auto choices = doc->find("choices");
    if (choices == doc->end() && doc->contains("error")) {
      ErrorBody e = error_from_json(*doc);
      return DecodeFailure{"error object in a successful response: " + e.message, std::move(e)};
    }
    if (choices == doc->end() || !choices->is_array()) {
      throw Invalid{"the response has no \"choices\" array"};
    }
    out.id = get_string(*doc, "id");
    out.object = get_string(*doc, "object");
    out.created = get_int(*doc, "created");
    out.model = get_string(*doc, "model");
    out.system_fingerprint = get_string(*doc, "system_fingerprint");
    out.service_tier = get_string(*doc, "service_tier");
    out.choices.clear();
    out.choices.reserve(choices->size());
    for (const json& c : *choices) {
      if (!c.is_object()) throw Invalid{"a choice is not an object"};
      Choice choice;
      choice.index = static_cast<int>(get_int(c, "index"));
      auto msg = c.find("message");
      if (msg == c.end()) throw Invalid{"a choice has no \"message\""};
      choice.message = decode_message(*msg);
      choice.finish_reason = get_string(c, "finish_reason");
      out.choices.push_back(std::move(choice));
    }
    if (auto u = doc->find("usage"); u != doc->end() && !u->is_null()) {
      out.usage = decode_usage(*u);
    }
  } catch (const Invalid& e) {
    return DecodeFailure{e.message, {}};
  } catch (const json::exception& e) {
    return DecodeFailure{std::string("the response does not match the API: ") + e.what(), {}};
  }
  out.raw_json = std::move(body);
  return std::nullopt;
}

std::optional<DecodeFailure> decode_chunk(std::string_view data, ChatChunk& out) {
  auto doc = parse_json(data);
  if (!doc) return DecodeFailure{"a stream chunk is not valid JSON: " + excerpt(data, 120), {}};
  try {
    if (!doc->is_object()) throw Invalid{"a stream chunk is not a JSON object"};
    auto choices = doc->find("choices");
    if (choices == doc->end() && doc->contains("error")) {
      ErrorBody e = error_from_json(*doc);
      return DecodeFailure{"error event in the stream: " + e.message, std::move(e)};
    }
    out.id = get_string(*doc, "id");
    out.model = get_string(*doc, "model");
    out.created = get_int(*doc, "created");
    out.system_fingerprint = get_string(*doc, "system_fingerprint");
    out.choices.clear();
    if (choices != doc->end() && !choices->is_null()) {
      if (!choices->is_array()) throw Invalid{"\"choices\" is not an array"};
      for (const json& c : *choices) {
        if (!c.is_object()) throw Invalid{"a choice is not an object"};
        ChoiceDelta d;
        d.index = static_cast<int>(get_int(c, "index"));
        d.finish_reason = get_string(c, "finish_reason");
        auto delta = c.find("delta");
        if (delta != c.end() && delta->is_object()) {
          d.role = get_string(*delta, "role");
          d.content = get_string(*delta, "content");
          d.refusal = get_string(*delta, "refusal");
          if (auto calls = delta->find("tool_calls"); calls != delta->end() && !calls->is_null()) {
            if (!calls->is_array()) throw Invalid{"\"tool_calls\" is not an array"};
            for (const json& call : *calls) {
              if (!call.is_object()) throw Invalid{"a tool call delta is not an object"};
              ToolCallDelta t;
              t.index = static_cast<int>(get_int(call, "index"));
              t.id = get_string(call, "id");
              t.type = get_string(call, "type");
              if (auto fn = call.find("function"); fn != call.end() && fn->is_object()) {
                t.name = get_string(*fn, "name");
                t.arguments = get_string(*fn, "arguments");
              }
              d.tool_calls.push_back(std::move(t));
            }
          }
        }
        out.choices.push_back(std::move(d));
      }
    }
    out.usage.reset();
    if (auto u = doc->find("usage"); u != doc->end() && !u->is_null()) out.usage = decode_usage(*u);
  } catch (const Invalid& e) {
    return DecodeFailure{e.message, {}};
  } catch (const json::exception& e) {
    return DecodeFailure{std::string("a stream chunk does not match the API: ") + e.what(), {}};
  }
  out.raw_json.assign(data.data(), data.size());
  return std::nullopt;
}

ErrorBody error_from_json(const json& doc) {
  ErrorBody out;
  if (!doc.is_object()) return out;
  auto text_of = [](const json& v) -> std::string {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_null()) return {};
    return v.dump();
  };
  auto err = doc.find("error");
  if (err != doc.end()) {
    out.found = true;
    if (err->is_object()) {
      if (auto it = err->find("message"); it != err->end()) out.message = text_of(*it);
      if (auto it = err->find("type"); it != err->end()) out.type = text_of(*it);
      if (auto it = err->find("code"); it != err->end()) out.code = text_of(*it);
      if (auto it = err->find("param"); it != err->end()) out.param = text_of(*it);
    } else {
      out.message = text_of(*err);
    }
  } else if (auto it = doc.find("message"); it != doc.end() && it->is_string()) {
    out.found = true;  // {"message": "..."} as some gateways answer
    out.message = it->get<std::string>();
    if (auto c = doc.find("code"); c != doc.end()) out.code = text_of(*c);
  }
  out.message = excerpt(out.message, 1000);
  return out;
}

ErrorBody decode_error_body(std::string_view body) {
  if (auto doc = parse_json(body)) {
    ErrorBody e = error_from_json(*doc);
    if (e.found) return e;
  }
  ErrorBody out;
  std::string_view trimmed = body.substr(0, std::min<std::size_t>(body.size(), 300));
  if (!trimmed.empty()) out.message = excerpt(trimmed, 300);
  return out;
}

}  // namespace failover::wire
