// A ChatRequest encoded as a Chat Completions request body, checked field by field as it is
// written.

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

// Reasoning and token detail: reasoning_effort, verbosity, logprobs and logit_bias.
void write_reasoning(RequestWriter& w, const ChatRequest& r) {
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
}

// The account's fields: service_tier, store, metadata, and a predicted output.
void write_account_fields(RequestWriter& w, const ChatRequest& r) {
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
}

// The output's form and the request's tools of OpenAI's own: modalities, audio, web search, the
// prompt cache key and the safety identifier.
void write_output_fields(RequestWriter& w, const ChatRequest& r) {
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

namespace {

// `tools`, `tool_choice` and `parallel_tool_calls`.
void write_tools(RequestWriter& w, const ChatRequest& r) {
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
}

// `response_format`: text, json_object or json_schema.
void write_response_format(RequestWriter& w, const ResponseFormat& f) {
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

// Sampling and length: temperature, top_p, the penalties, the output caps, stop, seed, n, user.
void write_sampling(RequestWriter& w, const ChatRequest& r) {
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
    write_tools(w, r);
    if (r.response_format) write_response_format(w, *r.response_format);
    write_sampling(w, r);
    write_reasoning(w, r);
    write_account_fields(w, r);
    write_output_fields(w, r);
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
