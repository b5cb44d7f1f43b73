#include "wire/json_codec.hpp"

#include "util/utf8.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <string_view>

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
      case '/':  // a comment, where the parser takes them (configs): what it holds is not read
        if (i + 1 < text.size() && text[i + 1] == '/') {
          i = text.find_first_of("\n\r", i);
          if (i == std::string_view::npos) return true;
        } else if (i + 1 < text.size() && text[i + 1] == '*') {
          i = text.find("*/", i + 2);
          if (i == std::string_view::npos) return true;
          ++i;
        }
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
  // Cut between characters, control characters as spaces, bad bytes as U+FFFD: the excerpt is
  // valid UTF-8 whatever `text` holds.
  std::string out = detail::valid_utf8_prefix(text, max);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  if (text.size() > max) out += "...";
  return out;
}

// ---- request --------------------------------------------------------------------------------

namespace {

struct Invalid {
  std::string message;
};

// "base[i]": built for every item (for the error it may name), so in one buffer.
std::string at(const std::string& base, std::size_t i) {
  char index[24];
  const char* end = std::to_chars(index, index + sizeof index, i).ptr;
  std::string name;
  name.reserve(base.size() + static_cast<std::size_t>(end - index) + 2);
  name += base;
  name += '[';
  name.append(index, static_cast<std::size_t>(end - index));
  name += ']';
  return name;
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

bool valid_function_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '_' || c == '-')) return false;
  }
  return true;
}

bool append_string(const std::string& s, std::string& out);
template <typename Int>
void append_integer(Int v, std::string& out);

// Writes a request body as it validates it, without building a document: the JSON text is
// appended to `out` member by member, commas placed by looking at the byte before.
class RequestWriter {
 public:
  RequestWriter(std::string& out, const json* extra) : out_(out), extra_(extra) {}

  // Opens top-level member `key` and returns the writer for its value. When `extra_json` sets
  // the member, its value is written at the end instead: the modelled value is still
  // validated, by a writer whose text is dropped.
  RequestWriter& member(const char* key) {
    if (extra_ && extra_->contains(key)) {
      dropped_text_.clear();
      if (!dropped_) dropped_ = std::make_unique<RequestWriter>(dropped_text_, nullptr);
      return *dropped_;
    }
    write_name(key);
    return *this;
  }
  // A member whose name comes from the user (escaped as any string).
  void key(const std::string& name, const std::string& field) {
    string(name, field);
    out_ += ':';
  }
  void open(char bracket) {
    separate();
    out_ += bracket;
  }
  void close(char bracket) { out_ += bracket; }
  void string(const std::string& s, const std::string& field) {
    separate();
    if (!append_string(s, out_)) throw Invalid{field + " is not valid UTF-8"};
  }
  void literal(const char* text) {
    separate();
    out_ += text;
  }
  void boolean(bool v) { literal(v ? "true" : "false"); }
  void integer(std::int64_t v) {
    separate();
    append_integer(v, out_);
  }
  // A parsed document (a raw part, a schema, an extra member): nlohmann's own form.
  void value(const json& v, const std::string& field) {
    separate();
    if (!append_json(v, out_)) throw Invalid{field + " is not valid UTF-8"};
  }
  void number(double v) { value(json(v), "number"); }
  // Member `key` with a string value, in a nested object `extra_json` cannot reach. A bad
  // value is reported as `base.key` (or `base.field_key`); the name is only built then.
  void pair(const char* key, const std::string& v, const std::string& base,
            const char* field_key = nullptr) {
    write_name(key);
    if (!append_string(v, out_)) {
      throw Invalid{base + "." + (field_key ? field_key : key) + " is not valid UTF-8"};
    }
  }

 private:
  // `"key":` for a member whose name needs no escaping.
  void write_name(const char* key) {
    separate();
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  // A comma before every item but the first of an object or array; none after a key.
  void separate() {
    const char last = out_.empty() ? '{' : out_.back();
    if (last != '{' && last != '[' && last != ':') out_ += ',';
  }
  std::string& out_;
  const json* extra_;
  std::string dropped_text_;                // see member()
  std::unique_ptr<RequestWriter> dropped_;  // made on the first member extra_json overrides
};

void write_part(RequestWriter& w, const ContentPart& part, const std::string& field) {
  switch (part.type) {
    case ContentPart::Type::Text:
      w.open('{');
      w.pair("type", "text", field);
      w.pair("text", part.text, field);
      w.close('}');
      return;
    case ContentPart::Type::ImageUrl:
      if (part.url.empty()) throw Invalid{field + ".url is empty"};
      w.open('{');
      w.pair("type", "image_url", field);
      w.literal("\"image_url\":{");
      w.pair("url", part.url, field);
      if (!part.detail.empty()) w.pair("detail", part.detail, field);
      w.close('}');
      w.close('}');
      return;
    case ContentPart::Type::InputAudio:
      if (part.data.empty()) throw Invalid{field + ".data is empty"};
      if (part.format.empty()) throw Invalid{field + ".format is empty"};
      w.open('{');
      w.pair("type", "input_audio", field);
      w.literal("\"input_audio\":{");
      w.pair("data", part.data, field);
      w.pair("format", part.format, field);
      w.close('}');
      w.close('}');
      return;
    case ContentPart::Type::Raw: {
      json raw = parse_object_field(part.raw_json, field + ".raw_json");
      if (!raw.contains("type")) throw Invalid{field + ".raw_json has no \"type\""};
      w.value(raw, field + ".raw_json");
      return;
    }
  }
  throw Invalid{field + ".type is unknown"};
}

void write_message(RequestWriter& w, const Message& m, const std::string& field) {
  using namespace std::string_view_literals;  // compared without a strlen
  static constexpr std::string_view kRoles[] = {"system", "developer", "user", "assistant", "tool"};
  bool role_ok = false;
  for (std::string_view r : kRoles) role_ok = role_ok || m.role == r;
  if (!role_ok) {
    throw Invalid{field + ".role must be one of system, developer, user, assistant, tool"};
  }
  w.open('{');
  w.pair("role", m.role, field);
  if (!m.parts.empty()) {
    w.literal("\"content\":[");
    for (std::size_t i = 0; i < m.parts.size(); ++i) {
      write_part(w, m.parts[i], at(field + ".parts", i));
    }
    w.close(']');
  } else if (m.content) {
    w.pair("content", *m.content, field);
  } else if (m.role == "assistant"sv && (!m.tool_calls.empty() || m.refusal)) {
    w.literal("\"content\":null");
  } else {
    throw Invalid{field + ".content is missing"};
  }
  if (!m.name.empty()) w.pair("name", m.name, field);
  if (!m.tool_calls.empty()) {
    if (m.role != "assistant"sv)
      throw Invalid{field + ".tool_calls is only for assistant messages"};
    w.literal("\"tool_calls\":[");
    for (std::size_t i = 0; i < m.tool_calls.size(); ++i) {
      const ToolCall& c = m.tool_calls[i];
      std::string f = at(field + ".tool_calls", i);
      if (c.id.empty()) throw Invalid{f + ".id is empty"};
      if (c.name.empty()) throw Invalid{f + ".name is empty"};
      w.open('{');
      w.pair("id", c.id, f);
      w.pair("type", c.type.empty() ? "function" : c.type, f);
      w.literal("\"function\":{");
      w.pair("name", c.name, f);
      w.pair("arguments", c.arguments, f);
      w.close('}');
      w.close('}');
    }
    w.close(']');
  }
  if (m.role == "tool"sv) {
    if (m.tool_call_id.empty()) throw Invalid{field + ".tool_call_id is empty"};
    w.pair("tool_call_id", m.tool_call_id, field);
  }
  if (m.refusal) w.pair("refusal", *m.refusal, field);
  w.close('}');
}

void one_of(const std::string& value, std::initializer_list<std::string_view> allowed,
            const char* field) {
  for (std::string_view a : allowed) {
    if (value == a) return;
  }
  std::string list;
  for (std::string_view a : allowed) {
    if (!list.empty()) list += ", ";
    list += a;
  }
  throw Invalid{std::string(field) + " must be one of " + list};
}

// The newer members of CreateChatCompletionRequest: reasoning, output shaping, storage,
// caching and safety.
void write_reasoning_and_output(RequestWriter& w, const ChatRequest& r) {
  if (!r.reasoning_effort.empty()) {
    one_of(r.reasoning_effort, {"none", "minimal", "low", "medium", "high", "xhigh", "max"},
           "reasoning_effort");
    w.member("reasoning_effort").string(r.reasoning_effort, "reasoning_effort");
  }
  if (!r.verbosity.empty()) {
    one_of(r.verbosity, {"low", "medium", "high"}, "verbosity");
    w.member("verbosity").string(r.verbosity, "verbosity");
  }
  if (r.logprobs) w.member("logprobs").boolean(*r.logprobs);
  if (r.top_logprobs) {
    if (*r.top_logprobs < 0 || *r.top_logprobs > 20) {
      throw Invalid{"top_logprobs must be between 0 and 20"};
    }
    if (!r.logprobs.value_or(false)) throw Invalid{"top_logprobs needs logprobs set to true"};
    w.member("top_logprobs").integer(*r.top_logprobs);
  }
  if (!r.logit_bias.empty()) {
    RequestWriter& bw = w.member("logit_bias");
    bw.open('{');
    for (const auto& [token, bias] : r.logit_bias) {
      const std::string field = "logit_bias[" + token + "]";
      if (token.empty() || token.size() > 12 ||
          !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        throw Invalid{"logit_bias keys must be token ids (decimal digits)"};
      }
      if (bias < -100 || bias > 100) throw Invalid{field + " must be between -100 and 100"};
      bw.key(token, "logit_bias");
      bw.integer(bias);
    }
    bw.close('}');
  }
  if (!r.service_tier.empty()) {
    one_of(r.service_tier, {"auto", "default", "flex", "scale", "priority", "fast"},
           "service_tier");
    w.member("service_tier").string(r.service_tier, "service_tier");
  }
  if (r.store) w.member("store").boolean(*r.store);
  if (!r.metadata.empty()) {
    if (r.metadata.size() > 16) throw Invalid{"metadata holds at most 16 pairs"};
    RequestWriter& mw = w.member("metadata");
    mw.open('{');
    for (const auto& [key, value] : r.metadata) {
      if (key.empty() || key.size() > 64) {
        throw Invalid{"metadata keys must be 1 to 64 characters"};
      }
      if (value.size() > 512) throw Invalid{"metadata[" + key + "] is longer than 512"};
      mw.key(key, "metadata");
      mw.string(value, "metadata[" + key + "]");
    }
    mw.close('}');
  }
  if (r.prediction) {
    RequestWriter& pw = w.member("prediction");
    pw.open('{');
    pw.pair("type", "content", "prediction");
    pw.pair("content", *r.prediction, "prediction");
    pw.close('}');
  }
  if (!r.modalities.empty()) {
    RequestWriter& mw = w.member("modalities");
    mw.open('[');
    for (const std::string& m : r.modalities) {
      one_of(m, {"text", "audio"}, "modalities[]");
      mw.string(m, "modalities");
    }
    mw.close(']');
  }
  if (r.audio) {
    if (r.audio->voice.empty()) throw Invalid{"audio.voice is empty"};
    one_of(r.audio->format, {"wav", "aac", "mp3", "flac", "opus", "pcm16"}, "audio.format");
    RequestWriter& aw = w.member("audio");
    aw.open('{');
    if (r.audio->voice.rfind("voice_", 0) == 0) {  // a custom voice: `{"id": "voice_1234"}`
      aw.key("voice", "audio.voice");
      aw.open('{');
      aw.pair("id", r.audio->voice, "audio", "voice");
      aw.close('}');
    } else {
      aw.pair("voice", r.audio->voice, "audio");
    }
    aw.pair("format", r.audio->format, "audio");
    aw.close('}');
  }
  if (!r.web_search_options_json.empty()) {
    json options = parse_object_field(r.web_search_options_json, "web_search_options_json");
    w.member("web_search_options").value(options, "web_search_options_json");
  }
  if (!r.prompt_cache_key.empty()) {
    w.member("prompt_cache_key").string(r.prompt_cache_key, "prompt_cache_key");
  }
  if (!r.safety_identifier.empty()) {
    w.member("safety_identifier").string(r.safety_identifier, "safety_identifier");
  }
}

}  // namespace

std::optional<std::string> encode_request(const ChatRequest& r, bool stream, std::string& text,
                                          StreamForm* form) {
  std::string out;
  out.reserve(128);
  try {
    // Members of extra_json override the modelled ones: the writer drops those (see
    // RequestWriter::member) and they are written, as given, at the end.
    std::optional<json> extra;
    if (!r.extra_json.empty()) {
      extra = parse_object_field(r.extra_json, "extra_json");
      if (extra->contains("model")) throw Invalid{"extra_json may not set \"model\" (routes do)"};
      if (extra->contains("stream")) throw Invalid{"extra_json may not set \"stream\""};
    }
    RequestWriter w(out, extra ? &*extra : nullptr);
    out += '{';
    if (r.messages.empty()) throw Invalid{"messages is empty"};
    RequestWriter& mw = w.member("messages");
    mw.open('[');
    for (std::size_t i = 0; i < r.messages.size(); ++i) {
      write_message(mw, r.messages[i], at("messages", i));
    }
    mw.close(']');
    if (!r.tools.empty()) {
      RequestWriter& tw = w.member("tools");
      tw.open('[');
      for (std::size_t i = 0; i < r.tools.size(); ++i) {
        const Tool& t = r.tools[i];
        std::string f = at("tools", i);
        if (!valid_function_name(t.name)) {
          throw Invalid{f + ".name must be 1-64 characters of a-z, A-Z, 0-9, _ and -"};
        }
        tw.open('{');
        tw.pair("type", "function", f);
        tw.literal("\"function\":{");
        tw.pair("name", t.name, f);
        if (!t.description.empty()) tw.pair("description", t.description, f);
        if (!t.parameters_json.empty()) {
          json parameters = parse_object_field(t.parameters_json, f + ".parameters_json");
          tw.literal("\"parameters\":");
          tw.value(parameters, f + ".parameters_json");
        }
        if (t.strict) tw.literal(*t.strict ? "\"strict\":true" : "\"strict\":false");
        tw.close('}');
        tw.close('}');
      }
      tw.close(']');
    }
    if (r.tool_choice) {
      const ToolChoice& c = *r.tool_choice;
      if (c.function.empty() && c.mode != "none" && c.mode != "auto" && c.mode != "required") {
        throw Invalid{"tool_choice must be none, auto, required or a function name"};
      }
      RequestWriter& cw = w.member("tool_choice");
      if (!c.function.empty()) {
        cw.open('{');
        cw.pair("type", "function", "tool_choice");
        cw.literal("\"function\":{");
        cw.pair("name", c.function, "tool_choice", "function");
        cw.close('}');
        cw.close('}');
      } else {
        cw.string(c.mode, "tool_choice");
      }
    }
    if (r.parallel_tool_calls) w.member("parallel_tool_calls").boolean(*r.parallel_tool_calls);
    if (r.response_format) {
      const ResponseFormat& f = *r.response_format;
      if (f.type == "text" || f.type == "json_object") {
        RequestWriter& fw = w.member("response_format");
        fw.open('{');
        fw.pair("type", f.type, "response_format");
        fw.close('}');
      } else if (f.type == "json_schema") {
        if (f.schema_name.empty()) throw Invalid{"response_format.schema_name is empty"};
        std::optional<json> schema;
        if (!f.schema_json.empty()) {
          schema = parse_object_field(f.schema_json, "response_format.schema_json");
        }
        RequestWriter& fw = w.member("response_format");
        fw.open('{');
        fw.pair("type", "json_schema", "response_format");
        fw.literal("\"json_schema\":{");
        fw.pair("name", f.schema_name, "response_format", "schema_name");
        if (!f.schema_description.empty()) {
          fw.pair("description", f.schema_description, "response_format", "schema_description");
        }
        if (schema) {
          fw.literal("\"schema\":");
          fw.value(*schema, "response_format.schema_json");
        }
        if (f.strict) fw.literal(*f.strict ? "\"strict\":true" : "\"strict\":false");
        fw.close('}');
        fw.close('}');
      } else {
        throw Invalid{"response_format.type must be text, json_object or json_schema"};
      }
    }
    check_range(r.temperature, 0.0, 2.0, "temperature");
    check_range(r.top_p, 0.0, 1.0, "top_p");
    check_range(r.presence_penalty, -2.0, 2.0, "presence_penalty");
    check_range(r.frequency_penalty, -2.0, 2.0, "frequency_penalty");
    if (r.temperature) w.member("temperature").number(*r.temperature);
    if (r.top_p) w.member("top_p").number(*r.top_p);
    if (r.presence_penalty) w.member("presence_penalty").number(*r.presence_penalty);
    if (r.frequency_penalty) w.member("frequency_penalty").number(*r.frequency_penalty);
    if (r.max_tokens) {
      if (*r.max_tokens < 1) throw Invalid{"max_tokens must be at least 1"};
      w.member("max_tokens").integer(*r.max_tokens);
    }
    if (r.max_completion_tokens) {
      if (*r.max_completion_tokens < 1) throw Invalid{"max_completion_tokens must be at least 1"};
      w.member("max_completion_tokens").integer(*r.max_completion_tokens);
    }
    if (!r.stop.empty()) {
      if (r.stop.size() > 4) {
        throw Invalid{"stop has " + std::to_string(r.stop.size()) + " entries; at most 4"};
      }
      RequestWriter& sw = w.member("stop");
      sw.open('[');
      for (std::size_t i = 0; i < r.stop.size(); ++i) sw.string(r.stop[i], at("stop", i));
      sw.close(']');
    }
    if (r.seed) w.member("seed").integer(*r.seed);
    if (r.n) {
      if (*r.n < 1 || *r.n > 128) throw Invalid{"n must be from 1 to 128"};
      w.member("n").integer(*r.n);
    }
    if (!r.user.empty()) w.member("user").string(r.user, "user");
    write_reasoning_and_output(w, r);
    if (extra) {
      for (auto it = extra->begin(); it != extra->end(); ++it) {
        w.key(it.key(), "extra_json");
        w.value(it.value(), "extra_json." + it.key());
      }
    }
    // Last, so that cutting them off gives the whole-answer form (see StreamForm).
    if (stream) {
      if (form) form->at = out.size();
      w.member("stream").boolean(true);  // extra_json may not set it
      const std::optional<bool> usage =
          form && form->usage ? std::optional<bool>(true) : r.include_usage;
      if (usage) {  // not written when extra_json sets stream_options
        w.member("stream_options")
            .literal(*usage ? "{\"include_usage\":true}" : "{\"include_usage\":false}");
      }
    }
    out += '}';
  } catch (const Invalid& e) {
    return e.message;
  }
  text = std::move(out);
  return std::nullopt;
}

std::optional<std::string> encode_request(const ChatRequest& r, bool stream, json& out) {
  std::string text;
  if (auto problem = encode_request(r, stream, text)) return problem;
  out = json::parse(text);
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
  auto tokens = [](const json& obj, const char* key) { return clamp_tokens(get_int(obj, key)); };
  Usage out;
  out.prompt_tokens = tokens(u, "prompt_tokens");
  out.completion_tokens = tokens(u, "completion_tokens");
  out.total_tokens = tokens(u, "total_tokens");
  if (auto it = u.find("prompt_tokens_details"); it != u.end() && it->is_object()) {
    out.cached_tokens = tokens(*it, "cached_tokens");
    out.prompt_audio_tokens = tokens(*it, "audio_tokens");
  }
  if (auto it = u.find("completion_tokens_details"); it != u.end() && it->is_object()) {
    out.reasoning_tokens = tokens(*it, "reasoning_tokens");
    out.completion_audio_tokens = tokens(*it, "audio_tokens");
    out.accepted_prediction_tokens = tokens(*it, "accepted_prediction_tokens");
    out.rejected_prediction_tokens = tokens(*it, "rejected_prediction_tokens");
  }
  return out;
}

// `reasoning_content` (DeepSeek, vLLM, xAI, Qwen) or `reasoning` (OpenRouter), when a string.
std::optional<std::string> reasoning_of(const json& m) {
  for (const char* key : {"reasoning_content", "reasoning"}) {
    if (auto it = m.find(key); it != m.end() && it->is_string()) return it->get<std::string>();
  }
  return std::nullopt;
}

// `logprobs` of a choice as JSON text; empty when absent or null.
std::string logprobs_of(const json& choice) {
  auto it = choice.find("logprobs");
  if (it == choice.end() || it->is_null()) return {};
  std::string text;
  if (!append_json(*it, text)) throw Invalid{"\"logprobs\" is not valid UTF-8"};
  return text;
}

// An error a 2xx body or stream chunk carries instead of (or beside) its answer: a non-null
// top-level `error`, or a choice that finished with `finish_reason: "error"`.
std::optional<ErrorBody> in_band_error(const json& doc) {
  if (auto e = doc.find("error"); e != doc.end() && !e->is_null()) {
    ErrorBody body = error_from_json(doc);
    if (body.message.empty()) body.message = "the response carries an error object";
    return body;
  }
  auto choices = doc.find("choices");
  if (choices == doc.end() || !choices->is_array()) return std::nullopt;
  for (const json& c : *choices) {
    if (!c.is_object()) continue;
    auto reason = c.find("finish_reason");
    if (reason == c.end() || !reason->is_string() ||
        reason->get_ref<const std::string&>() != "error")
      continue;
    ErrorBody body = error_from_json(c);  // some relays put the error in the choice
    body.found = true;
    if (body.message.empty())
      body.message = "the provider ended the answer with finish_reason \"error\"";
    return body;
  }
  return std::nullopt;
}

// One set of rules for answers and stream deltas: `content` is a string or an array of parts
// (some servers answer with parts; the text parts are joined), a tool call's `arguments` a
// string or a JSON value (written as its text).
std::string content_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) throw Invalid{"\"content\" is neither a string nor null"};
  std::string text;
  for (const json& part : v) {
    if (part.is_object() && part.value("type", "") == "text") text += get_string(part, "text");
  }
  return text;
}

std::string arguments_text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// `annotations[]` of a message or a stream delta (URL citations).
std::vector<Annotation> annotations_of(const json& holder) {
  std::vector<Annotation> out;
  auto it = holder.find("annotations");
  if (it == holder.end() || !it->is_array()) return out;
  for (const json& a : *it) {
    if (!a.is_object()) continue;
    Annotation annotation;
    annotation.type = get_string(a, "type");
    const json* cite = &a;
    if (auto c = a.find("url_citation"); c != a.end() && c->is_object()) cite = &*c;
    annotation.url = get_string(*cite, "url");
    annotation.title = get_string(*cite, "title");
    annotation.start_index = get_int(*cite, "start_index");
    annotation.end_index = get_int(*cite, "end_index");
    out.push_back(std::move(annotation));
  }
  return out;
}

Message decode_message(const json& m) {
  if (!m.is_object()) throw Invalid{"\"message\" is not an object"};
  Message out;
  out.role = get_string(m, "role");
  if (out.role.empty()) out.role = "assistant";
  if (auto it = m.find("content"); it != m.end() && !it->is_null()) out.content = content_text(*it);
  if (auto it = m.find("refusal"); it != m.end() && it->is_string()) {
    out.refusal = it->get<std::string>();
  }
  out.reasoning = reasoning_of(m);
  out.annotations = annotations_of(m);
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
        if (args != fn->end() && !args->is_null()) call.arguments = arguments_text(*args);
      }
      out.tool_calls.push_back(std::move(call));
    }
  }
  return out;
}

}  // namespace

std::optional<DecodeFailure> decode_response(std::string& body, ChatResponse& out) {
  std::optional<DecodeFailure> failure;
  if (decode_response_fast(body, out)) {
    out.raw_json = std::move(body);
  } else {
    failure = decode_response_dom(body, out);
  }
  // Choices by index, as a stream's are assembled (`raw_json` keeps the server's order).
  if (!failure && out.choices.size() > 1) {
    std::stable_sort(out.choices.begin(), out.choices.end(),
                     [](const Choice& a, const Choice& b) { return a.index < b.index; });
  }
  return failure;
}

std::optional<DecodeFailure> decode_response_dom(std::string& body, ChatResponse& out) {
  auto doc = parse_json(body);
  if (!doc) return DecodeFailure{"the response body is not valid JSON: " + excerpt(body, 120), {}};
  try {
    if (!doc->is_object()) throw Invalid{"the response body is not a JSON object"};
    if (std::optional<ErrorBody> e = in_band_error(*doc)) {
      std::string message = "error inside a successful response: " + e->message;
      return DecodeFailure{std::move(message), std::move(e)};
    }
    auto choices = doc->find("choices");
    if (choices == doc->end()) {
      // No answer at all: whatever error it carries ({"detail": ...}, {"message": ...}).
      ErrorBody e = error_from_json(*doc);
      if (e.found) {
        std::string message = "error inside a successful response: " + e.message;
        return DecodeFailure{std::move(message), std::move(e)};
      }
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
      choice.logprobs_json = logprobs_of(c);
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
    if (std::optional<ErrorBody> e = in_band_error(*doc)) {
      std::string message = "error event in the stream: " + e->message;
      return DecodeFailure{std::move(message), std::move(e)};
    }
    auto choices = doc->find("choices");
    out.id = get_string(*doc, "id");
    out.model = get_string(*doc, "model");
    out.created = get_int(*doc, "created");
    out.system_fingerprint = get_string(*doc, "system_fingerprint");
    out.service_tier = get_string(*doc, "service_tier");
    out.choices.clear();
    if (choices != doc->end() && !choices->is_null()) {
      if (!choices->is_array()) throw Invalid{"\"choices\" is not an array"};
      for (const json& c : *choices) {
        if (!c.is_object()) throw Invalid{"a choice is not an object"};
        ChoiceDelta d;
        d.index = static_cast<int>(get_int(c, "index"));
        d.finish_reason = get_string(c, "finish_reason");
        d.logprobs_json = logprobs_of(c);
        auto delta = c.find("delta");
        if (delta != c.end() && delta->is_object()) {
          d.role = get_string(*delta, "role");
          auto content = delta->find("content");
          d.content = content != delta->end() && content->is_array()
                          ? content_text(*content)
                          : get_string(*delta, "content");
          d.refusal = get_string(*delta, "refusal");
          d.reasoning = reasoning_of(*delta).value_or(std::string());
          d.annotations = annotations_of(*delta);
          if (auto calls = delta->find("tool_calls"); calls != delta->end() && !calls->is_null()) {
            if (!calls->is_array()) throw Invalid{"\"tool_calls\" is not an array"};
            int position = 0;
            for (const json& call : *calls) {
              if (!call.is_object()) throw Invalid{"a tool call delta is not an object"};
              ToolCallDelta t;
              // Mistral sends no index: the position in the list stands for it.
              t.index =
                  call.contains("index") ? static_cast<int>(get_int(call, "index")) : position;
              ++position;
              t.id = get_string(call, "id");
              t.type = get_string(call, "type");
              if (auto fn = call.find("function"); fn != call.end() && fn->is_object()) {
                t.name = get_string(*fn, "name");
                if (auto args = fn->find("arguments"); args != fn->end() && !args->is_null()) {
                  t.arguments = arguments_text(*args);
                }
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

void with_model(std::string_view model_json, std::string_view rest, std::string& out) {
  out.clear();
  out.reserve(model_json.size() + rest.size() + 10);
  out += "{\"model\":";
  out += model_json;
  if (rest.size() > 2) {
    out += ',';
    out.append(rest, 1, std::string_view::npos);
  } else {
    out += '}';
  }
}

}  // namespace failover::wire
