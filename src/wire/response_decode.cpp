// Chat Completions answers decoded: whole responses (the DOM path) and stream chunks.

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

// Thrown where the answer does not match the API; caught at the top of a decode.
struct Invalid {
  std::string message;
};

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

}  // namespace failover::wire
