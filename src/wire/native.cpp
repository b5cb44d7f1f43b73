#include "wire/native.hpp"

#include "wire/native_parts.hpp"
#include "wire/stream.hpp"

#include <algorithm>
#include <utility>

namespace failover::wire {

using nlohmann::json;

namespace native {

// Lenient readers of a provider's document: a member of the wrong type reads as absent.
const json* member(const json& doc, const char* key) {
  if (!doc.is_object()) return nullptr;
  auto it = doc.find(key);
  return it == doc.end() || it->is_null() ? nullptr : &*it;
}
std::string text_of(const json& doc, const char* key) {
  const json* v = member(doc, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}
std::int64_t tokens_of(const json& doc, const char* key) {
  const json* v = member(doc, key);
  return v && v->is_number() ? clamp_tokens(to_int64(v->get<double>())) : 0;
}
bool has_tokens(const json& doc, const char* key) {
  const json* v = member(doc, key);
  return v && v->is_number();
}

// A tool call's arguments as the object both native dialects want.
json arguments_object(const std::string& arguments, const std::string& field) {
  if (arguments.empty()) return json::object();
  auto doc = parse_json(arguments);
  if (!doc || !doc->is_object()) untranslatable(field + " is not a JSON object");
  return std::move(*doc);
}

// `data:<mime>;base64,<data>`: mime and data, or false.
bool split_data_uri(const std::string& url, std::string& mime, std::string& data) {
  if (url.compare(0, 5, "data:") != 0) return false;
  const std::size_t comma = url.find(',');
  const std::size_t marker = url.find(";base64");
  if (comma == std::string::npos || marker == std::string::npos || marker > comma) return false;
  mime = url.substr(5, marker - 5);
  data = url.substr(comma + 1);
  return !mime.empty();
}
bool is_web_url(const std::string& url) {
  return url.compare(0, 8, "https://") == 0 || url.compare(0, 7, "http://") == 0;
}

// The text of a system, developer or tool message (they take text only): `content` and its
// text parts.
std::string text_only(const Message& m, const std::string& field) {
  std::string text = m.content.value_or(std::string());
  for (const ContentPart& p : m.parts) {
    if (p.type != ContentPart::Type::Text) untranslatable(field + " has parts other than text");
    text += p.text;
  }
  return text;
}

// The output cap: `max_completion_tokens`, else `max_tokens`, each unless dropped.
std::optional<std::int64_t> output_cap(const ChatRequest& r, const Dropped& dropped) {
  if (r.max_completion_tokens && !dropped("max_completion_tokens")) return r.max_completion_tokens;
  if (r.max_tokens && !dropped("max_tokens")) return r.max_tokens;
  return std::nullopt;
}

// The request fields a dialect has no equivalent for: each fails the translation. Gemini takes
// the penalties, logprobs, seed and several choices (`sampling_extras`); Anthropic does not.
void refuse_unsupported(const ChatRequest& r, const Dropped& dropped, const char* dialect,
                        bool sampling_extras) {
  const std::string in = std::string(" (") + dialect + " has no equivalent)";
  auto refuse = [&](bool set, const char* name) {
    if (set && !dropped(name)) untranslatable(std::string(name) + " is set" + in);
  };
  refuse(!sampling_extras && r.presence_penalty.has_value(), "presence_penalty");
  refuse(!sampling_extras && r.frequency_penalty.has_value(), "frequency_penalty");
  refuse(!r.logit_bias.empty(), "logit_bias");
  refuse(!sampling_extras && r.logprobs.value_or(false), "logprobs");
  refuse(!sampling_extras && r.top_logprobs.has_value(), "top_logprobs");
  refuse(!sampling_extras && r.seed.has_value(), "seed");
  refuse(!sampling_extras && r.n.value_or(1) != 1, "n");
  refuse(r.audio.has_value(), "audio");
  refuse(std::find(r.modalities.begin(), r.modalities.end(), "audio") != r.modalities.end(),
         "modalities");
  refuse(r.prediction.has_value(), "prediction");
  refuse(!r.web_search_options_json.empty(), "web_search_options");
  if (!r.extra_json.empty()) {
    auto extra = parse_json(r.extra_json);
    if (extra && extra->is_object()) {
      for (const auto& [key, value] : extra->items()) {
        if (!dropped(key)) {
          untranslatable("extra_json." + key +
                         " is a Chat Completions field; a native route takes its own fields "
                         "through the route's params");
        }
      }
    }
  }
}

}  // namespace native

using namespace native;

std::int64_t thinking_budget(std::string_view effort) {
  if (effort == "minimal" || effort == "low") return 1024;
  if (effort == "medium") return 4096;
  if (effort == "high") return 16384;
  if (effort == "xhigh" || effort == "max") return 32768;
  return 0;
}

std::optional<std::string> encode_native(Dialect dialect, const ChatRequest& request, bool stream,
                                         const RequestShaping* shaping, std::string& body) {
  static const std::vector<std::string> kNone;
  try {
    const Dropped dropped{shaping ? shaping->drop : kNone};
    json doc = dialect == Dialect::Anthropic ? encode_anthropic(request, stream, dropped)
                                             : encode_gemini(request, dropped);
    if (shaping) merge_params(shaping->params, doc);
    std::string text;
    if (!append_json(doc, text)) return std::string("a string is not valid UTF-8");
    body = std::move(text);
    return std::nullopt;
  } catch (const Untranslatable& e) {
    return e.what;
  }
}

std::optional<DecodeFailure> decode_native_response(Dialect dialect, std::string& body,
                                                    ChatResponse& out) {
  auto doc = parse_json(body);
  if (!doc || !doc->is_object()) {
    return DecodeFailure{"the body is not a JSON object: " + excerpt(body, 120), {}};
  }
  ChatChunk chunk;
  std::map<int, int> tools;
  auto failure = dialect == Dialect::Anthropic ? anthropic_message(*doc, chunk)
                                               : gemini_response(*doc, chunk, tools);
  if (failure) return failure;
  if (chunk.choices.empty()) return DecodeFailure{"the answer holds no candidate", {}};
  StreamAccumulator joined;
  joined.add(chunk);
  out = joined.build();
  out.native_json = std::move(body);
  return std::nullopt;
}

std::optional<DecodeFailure> NativeStream::translate(const SseEvent& event, ChatChunk& out,
                                                     Outcome& outcome) {
  if (dialect_ == Dialect::OpenAI) {  // Chat Completions chunks, then `[DONE]`
    outcome = event.data == "[DONE]" ? Outcome::Done : Outcome::Chunk;
    return outcome == Outcome::Done ? std::nullopt : decode_chunk(event.data, out);
  }
  outcome = Outcome::Nothing;
  auto doc = parse_json(event.data);
  if (!doc || !doc->is_object()) {
    return DecodeFailure{"the event is not a JSON object: " + excerpt(event.data, 120), {}};
  }
  out.raw_json.assign(event.data.data(), event.data.size());
  std::optional<DecodeFailure> failure;
  if (dialect_ == Dialect::Anthropic) {
    failure = anthropic(*doc, out, outcome);
  } else {
    failure = gemini_response(*doc, out, candidate_tools_);
    if (!failure) outcome = Outcome::Chunk;
  }
  if (outcome == Outcome::Chunk) {
    if (out.id.empty()) out.id = id_;
    if (out.model.empty()) out.model = model_;
    id_ = out.id;
    model_ = out.model;
  }
  return failure;
}

}  // namespace failover::wire
