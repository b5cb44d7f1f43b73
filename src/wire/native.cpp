#include "wire/native.hpp"

#include "util/ascii.hpp"
#include "wire/stream.hpp"

#include <algorithm>
#include <utility>

namespace failover::wire {

using nlohmann::json;

namespace {

// A translation that cannot be made; caught at the entry points.
struct Untranslatable {
  std::string what;
};
[[noreturn]] void untranslatable(std::string what) { throw Untranslatable{std::move(what)}; }

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

// The conversation as turns: consecutive turns of one role are joined into one (both APIs want
// user and assistant turns to alternate). `items` is each turn's list: `content` or `parts`.
class Turns {
 public:
  explicit Turns(const char* items) : items_(items) {}
  void push(const char* role, json items) {
    if (items.empty()) return;
    if (!turns_.empty() && turns_.back()["role"] == role) {
      for (json& item : items) turns_.back()[items_].push_back(std::move(item));
    } else {
      turns_.push_back({{"role", role}, {items_, std::move(items)}});
    }
  }
  json take() {
    if (turns_.empty()) untranslatable("messages holds no user or assistant turn");
    return std::move(turns_);
  }

 private:
  const char* items_;
  json turns_ = json::array();
};

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

// A user or assistant message's items in a dialect: its text, its parts and its tool calls,
// each made by the dialect's `part` and `call` (which gets the arguments as an object).
template <class Part, class Call>
json message_items(const Message& m, const std::string& field, Part part, Call call) {
  json items = json::array();
  if (m.content && !m.content->empty()) {
    items.push_back(part(ContentPart::text_part(*m.content), field + ".content"));
  }
  for (std::size_t j = 0; j < m.parts.size(); ++j) {
    const ContentPart& p = m.parts[j];
    if (p.type == ContentPart::Type::Text && p.text.empty()) continue;
    items.push_back(part(p, field + ".content[" + std::to_string(j) + "]"));
  }
  for (std::size_t k = 0; k < m.tool_calls.size(); ++k) {
    const ToolCall& t = m.tool_calls[k];
    items.push_back(call(
        t, arguments_object(t.arguments,
                            field + ".tool_calls[" + std::to_string(k) + "].function.arguments")));
  }
  return items;
}

// The request fields a route's `drop_params` name: translated as if unset.
struct Dropped {
  const std::vector<std::string>& names;
  bool operator()(std::string_view name) const {
    return std::find(names.begin(), names.end(), name) != names.end();
  }
};

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

// ---------------------------------------------------------------------------------------------
// Anthropic Messages

std::string anthropic_finish(const std::string& stop_reason) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence" || stop_reason == "pause_turn") {
    return "stop";
  }
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return "length";
  }
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return stop_reason;
}

json anthropic_part(const ContentPart& p, const std::string& field) {
  switch (p.type) {
    case ContentPart::Type::Text:
      return {{"type", "text"}, {"text", p.text}};
    case ContentPart::Type::ImageUrl: {
      std::string mime, data;
      if (split_data_uri(p.url, mime, data)) {
        return {{"type", "image"},
                {"source", {{"type", "base64"}, {"media_type", mime}, {"data", data}}}};
      }
      if (is_web_url(p.url)) {
        return {{"type", "image"}, {"source", {{"type", "url"}, {"url", p.url}}}};
      }
      untranslatable(field + ".image_url.url is neither a base64 data: URI nor an http(s) URL");
    }
    case ContentPart::Type::InputAudio:
      untranslatable(field + " is input_audio (anthropic takes no audio)");
    case ContentPart::Type::Raw:
      break;
  }
  auto raw = parse_json(p.raw_json);
  if (!raw) untranslatable(field + " is not JSON");
  return std::move(*raw);
}

json encode_anthropic(const ChatRequest& r, bool stream, const Dropped& dropped) {
  json body = json::object();
  json system = json::array();
  Turns messages("content");
  for (std::size_t i = 0; i < r.messages.size(); ++i) {
    const Message& m = r.messages[i];
    const std::string field = "messages[" + std::to_string(i) + "]";
    json blocks = json::array();
    if (m.role == "system" || m.role == "developer") {
      const std::string text = text_only(m, field);
      if (!text.empty()) system.push_back({{"type", "text"}, {"text", text}});
      continue;
    }
    if (m.role == "tool") {
      const std::string text = text_only(m, field);
      json result = {{"type", "tool_result"}, {"tool_use_id", m.tool_call_id}};
      if (!text.empty()) result["content"] = text;
      blocks.push_back(std::move(result));
      messages.push("user", std::move(blocks));
      continue;
    }
    blocks = message_items(m, field, anthropic_part, [](const ToolCall& t, json input) {
      return json{
          {"type", "tool_use"}, {"id", t.id}, {"name", t.name}, {"input", std::move(input)}};
    });
    if (blocks.empty()) {
      if (m.role == "assistant") continue;  // nothing said: Anthropic refuses empty turns
      untranslatable(field + ".content is empty (anthropic refuses empty messages)");
    }
    messages.push(m.role == "assistant" ? "assistant" : "user", std::move(blocks));
  }

  const std::int64_t budget = dropped("reasoning_effort") ? 0 : thinking_budget(r.reasoning_effort);
  const std::optional<std::int64_t> cap = output_cap(r, dropped);
  if (budget > 0 && cap && *cap <= budget) {
    untranslatable("max_tokens " + std::to_string(*cap) + " is not above the thinking budget " +
                   std::to_string(budget) + " of reasoning_effort \"" + r.reasoning_effort + "\"");
  }
  body["max_tokens"] = cap ? *cap : kAnthropicDefaultMaxTokens + budget;
  body["messages"] = messages.take();
  if (!system.empty()) body["system"] = std::move(system);
  if (stream) body["stream"] = true;
  if (budget > 0) body["thinking"] = {{"type", "enabled"}, {"budget_tokens", budget}};

  if (r.temperature && !dropped("temperature")) {
    if (*r.temperature > 1) {
      untranslatable("temperature " + json(*r.temperature).dump() +
                     " is above anthropic's maximum of 1");
    }
    body["temperature"] = *r.temperature;
  }
  if (r.top_p && !dropped("top_p")) body["top_p"] = *r.top_p;
  if (!r.stop.empty() && !dropped("stop")) body["stop_sequences"] = r.stop;
  if (!r.user.empty() && !dropped("user")) body["metadata"] = {{"user_id", r.user}};
  if (r.response_format && r.response_format->type != "text" && !dropped("response_format")) {
    untranslatable("response_format " + r.response_format->type +
                   " is set (anthropic has no equivalent)");
  }
  if (!r.tools.empty() && !dropped("tools")) {
    json tools = json::array();
    for (const Tool& t : r.tools) {
      json tool = {{"name", t.name}};
      if (!t.description.empty()) tool["description"] = t.description;
      auto schema = t.parameters_json.empty() ? std::nullopt : parse_json(t.parameters_json);
      tool["input_schema"] =
          schema ? std::move(*schema) : json{{"type", "object"}, {"properties", json::object()}};
      tools.push_back(std::move(tool));
    }
    body["tools"] = std::move(tools);
  }
  json choice;
  if (r.tool_choice && !dropped("tool_choice")) {
    const ToolChoice& c = *r.tool_choice;
    if (!c.function.empty()) {
      choice = {{"type", "tool"}, {"name", c.function}};
    } else {
      choice = {{"type", c.mode == "required" ? "any" : c.mode}};
    }
  }
  if (r.parallel_tool_calls == false && !dropped("parallel_tool_calls") && !r.tools.empty()) {
    if (choice.is_null()) choice = {{"type", "auto"}};
    if (choice["type"] != "none") choice["disable_parallel_tool_use"] = true;
  }
  if (!choice.is_null()) body["tool_choice"] = std::move(choice);
  refuse_unsupported(r, dropped, "anthropic", /*sampling_extras=*/false);
  return body;
}

void anthropic_usage(const json& u, Usage& usage) {
  if (has_tokens(u, "input_tokens") || has_tokens(u, "cache_read_input_tokens") ||
      has_tokens(u, "cache_creation_input_tokens")) {
    usage.cached_tokens = tokens_of(u, "cache_read_input_tokens");
    usage.cache_write_tokens = tokens_of(u, "cache_creation_input_tokens");
    usage.prompt_tokens =
        clamp_tokens(tokens_of(u, "input_tokens") + usage.cached_tokens + usage.cache_write_tokens);
  }
  if (has_tokens(u, "output_tokens")) usage.completion_tokens = tokens_of(u, "output_tokens");
  usage.total_tokens = clamp_tokens(usage.prompt_tokens + usage.completion_tokens);
}

// A whole Anthropic message as one chunk.
std::optional<DecodeFailure> anthropic_message(const json& doc, ChatChunk& out) {
  if (text_of(doc, "type") == "error" || member(doc, "error")) {
    return DecodeFailure{"an error object instead of a message", error_from_json(doc)};
  }
  const json* content = member(doc, "content");
  if (text_of(doc, "type") != "message" || !content || !content->is_array()) {
    return DecodeFailure{"not an Anthropic message (no type \"message\" with a content list)", {}};
  }
  out.id = text_of(doc, "id");
  out.model = text_of(doc, "model");
  ChoiceDelta d;
  d.role = "assistant";
  int tools = 0;
  for (const json& block : *content) {
    const std::string type = text_of(block, "type");
    if (type == "text") {
      d.content += text_of(block, "text");
    } else if (type == "thinking") {
      d.reasoning += text_of(block, "thinking");
    } else if (type == "tool_use") {
      ToolCallDelta t;
      t.index = tools++;
      t.id = text_of(block, "id");
      t.type = "function";
      t.name = text_of(block, "name");
      const json* input = member(block, "input");
      t.arguments = input ? input->dump() : "{}";
      d.tool_calls.push_back(std::move(t));
    }
  }
  d.finish_reason = anthropic_finish(text_of(doc, "stop_reason"));
  if (d.finish_reason.empty()) d.finish_reason = "stop";
  out.choices.push_back(std::move(d));
  if (const json* u = member(doc, "usage")) {
    Usage usage;
    anthropic_usage(*u, usage);
    out.usage = usage;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Gemini

std::string gemini_finish(const std::string& reason, bool called_tools) {
  if (reason.empty()) return {};
  if (reason == "STOP") return called_tools ? "tool_calls" : "stop";
  if (reason == "MAX_TOKENS") return "length";
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
      reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason == "IMAGE_SAFETY" ||
      reason == "IMAGE_PROHIBITED_CONTENT" || reason == "IMAGE_RECITATION") {
    return "content_filter";
  }
  return detail::ascii_lower(reason);  // LANGUAGE, MALFORMED_FUNCTION_CALL, OTHER, ...
}

std::string image_mime_of(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  const std::size_t dot = path.rfind('.');
  const std::string ext =
      dot == std::string::npos ? std::string() : detail::ascii_lower(path.substr(dot + 1));
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "webp") return "image/webp";
  if (ext == "gif") return "image/gif";
  if (ext == "heic") return "image/heic";
  if (ext == "heif") return "image/heif";
  return {};
}

json gemini_part(const ContentPart& p, const std::string& field) {
  switch (p.type) {
    case ContentPart::Type::Text:
      return {{"text", p.text}};
    case ContentPart::Type::ImageUrl: {
      std::string mime, data;
      if (split_data_uri(p.url, mime, data)) {
        return {{"inlineData", {{"mimeType", mime}, {"data", data}}}};
      }
      if (is_web_url(p.url)) {
        std::string type = image_mime_of(p.url);
        if (type.empty()) {
          untranslatable(field +
                         ".image_url.url has no image file extension (gemini needs the "
                         "image's type; send it as a data: URI)");
        }
        return {{"fileData", {{"mimeType", type}, {"fileUri", p.url}}}};
      }
      untranslatable(field + ".image_url.url is neither a base64 data: URI nor an http(s) URL");
    }
    case ContentPart::Type::InputAudio:
      return {{"inlineData", {{"mimeType", "audio/" + p.format}, {"data", p.data}}}};
    case ContentPart::Type::Raw:
      break;
  }
  auto raw = parse_json(p.raw_json);
  if (!raw) untranslatable(field + " is not JSON");
  return std::move(*raw);
}

json encode_gemini(const ChatRequest& r, const Dropped& dropped) {
  json body = json::object();
  json system = json::array();
  Turns contents("parts");
  for (std::size_t i = 0; i < r.messages.size(); ++i) {
    const Message& m = r.messages[i];
    const std::string field = "messages[" + std::to_string(i) + "]";
    json parts = json::array();
    if (m.role == "system" || m.role == "developer") {
      const std::string text = text_only(m, field);
      if (!text.empty()) system.push_back({{"text", text}});
      continue;
    }
    if (m.role == "tool") {
      // Gemini answers a call by the function's name: the assistant turn that made the call
      // has it.
      std::string name;
      for (std::size_t k = i; k-- > 0 && name.empty();) {
        for (const ToolCall& t : r.messages[k].tool_calls) {
          if (t.id == m.tool_call_id) name = t.name;
        }
      }
      if (name.empty()) {
        untranslatable(field +
                       ".tool_call_id answers no earlier tool call (gemini needs the "
                       "function's name)");
      }
      const std::string text = text_only(m, field);
      auto doc = parse_json(text);
      json response = doc && doc->is_object() ? std::move(*doc) : json{{"content", text}};
      parts.push_back({{"functionResponse", {{"name", name}, {"response", std::move(response)}}}});
      contents.push("user", std::move(parts));
      continue;
    }
    parts = message_items(m, field, gemini_part, [](const ToolCall& t, json args) {
      return json{{"functionCall", {{"name", t.name}, {"args", std::move(args)}}}};
    });
    if (parts.empty()) {
      if (m.role == "assistant") continue;
      untranslatable(field + ".content is empty (gemini refuses empty turns)");
    }
    contents.push(m.role == "assistant" ? "model" : "user", std::move(parts));
  }
  body["contents"] = contents.take();
  if (!system.empty()) body["systemInstruction"] = {{"parts", std::move(system)}};

  if (!r.tools.empty() && !dropped("tools")) {
    json declarations = json::array();
    for (const Tool& t : r.tools) {
      json d = {{"name", t.name}};
      if (!t.description.empty()) d["description"] = t.description;
      if (auto schema = t.parameters_json.empty() ? std::nullopt : parse_json(t.parameters_json)) {
        d["parameters"] = std::move(*schema);
      }
      declarations.push_back(std::move(d));
    }
    body["tools"] = json::array({{{"functionDeclarations", std::move(declarations)}}});
  }
  if (r.tool_choice && !dropped("tool_choice")) {
    const ToolChoice& c = *r.tool_choice;
    json config;
    if (!c.function.empty()) {
      config = {{"mode", "ANY"}, {"allowedFunctionNames", {c.function}}};
    } else {
      config = {{"mode", c.mode == "required" ? "ANY" : c.mode == "none" ? "NONE" : "AUTO"}};
    }
    body["toolConfig"] = {{"functionCallingConfig", std::move(config)}};
  }

  json generation = json::object();
  auto put = [&](bool set, const char* name, const char* native, json value) {
    if (set && !dropped(name)) generation[native] = std::move(value);
  };
  put(r.temperature.has_value(), "temperature", "temperature", r.temperature.value_or(0));
  put(r.top_p.has_value(), "top_p", "topP", r.top_p.value_or(0));
  if (auto cap = output_cap(r, dropped)) generation["maxOutputTokens"] = *cap;
  put(!r.stop.empty(), "stop", "stopSequences", r.stop);
  put(r.presence_penalty.has_value(), "presence_penalty", "presencePenalty",
      r.presence_penalty.value_or(0));
  put(r.frequency_penalty.has_value(), "frequency_penalty", "frequencyPenalty",
      r.frequency_penalty.value_or(0));
  put(r.seed.has_value(), "seed", "seed", r.seed.value_or(0));
  put(r.n.has_value(), "n", "candidateCount", r.n.value_or(1));
  put(r.logprobs.has_value(), "logprobs", "responseLogprobs", r.logprobs.value_or(false));
  put(r.top_logprobs.has_value(), "top_logprobs", "logprobs", r.top_logprobs.value_or(0));
  if (r.response_format && !dropped("response_format")) {
    const ResponseFormat& f = *r.response_format;
    if (f.type == "json_object" || f.type == "json_schema") {
      generation["responseMimeType"] = "application/json";
    }
    if (f.type == "json_schema" && !f.schema_json.empty()) {
      if (auto schema = parse_json(f.schema_json)) generation["responseJsonSchema"] = *schema;
    }
  }
  if (!r.reasoning_effort.empty() && !dropped("reasoning_effort")) {
    const std::int64_t budget = thinking_budget(r.reasoning_effort);
    generation["thinkingConfig"] = budget > 0
                                       ? json{{"thinkingBudget", budget}, {"includeThoughts", true}}
                                       : json{{"thinkingBudget", 0}};
  }
  if (!generation.empty()) body["generationConfig"] = std::move(generation);
  refuse_unsupported(r, dropped, "gemini", /*sampling_extras=*/true);
  return body;
}

// One GenerateContentResponse (a whole answer or one stream event) as one chunk.
std::optional<DecodeFailure> gemini_response(const json& doc, ChatChunk& out, int& tools) {
  if (member(doc, "error")) {
    return DecodeFailure{"an error object instead of a response", error_from_json(doc)};
  }
  const json* candidates = member(doc, "candidates");
  const json* feedback = member(doc, "promptFeedback");
  const json* usage = member(doc, "usageMetadata");
  if (!doc.is_object() || (candidates && !candidates->is_array()) ||
      (!candidates && !feedback && !usage)) {
    return DecodeFailure{"not a Gemini response (no candidates, promptFeedback or usageMetadata)",
                         {}};
  }
  out.id = text_of(doc, "responseId");
  out.model = text_of(doc, "modelVersion");
  if (candidates) {
    for (std::size_t i = 0; i < candidates->size(); ++i) {
      const json& c = (*candidates)[i];
      ChoiceDelta d;
      const json* index = member(c, "index");
      d.index = index && index->is_number_integer() ? index->get<int>() : static_cast<int>(i);
      d.role = "assistant";
      bool called = false;
      const json* content = member(c, "content");
      const json* parts = content ? member(*content, "parts") : nullptr;
      if (parts && parts->is_array()) {
        for (const json& p : *parts) {
          if (const json* call = member(p, "functionCall")) {
            ToolCallDelta t;
            t.index = tools++;
            t.id = text_of(*call, "id");
            if (t.id.empty()) t.id = "call_" + std::to_string(t.index);
            t.type = "function";
            t.name = text_of(*call, "name");
            const json* args = member(*call, "args");
            t.arguments = args ? args->dump() : "{}";
            d.tool_calls.push_back(std::move(t));
            called = true;
          } else if (const json* v = member(p, "text"); v && v->is_string()) {
            const json* thought = member(p, "thought");
            (thought && thought->is_boolean() && thought->get<bool>() ? d.reasoning : d.content) +=
                v->get<std::string>();
          }
        }
      }
      d.finish_reason = gemini_finish(text_of(c, "finishReason"), called || tools > 0);
      out.choices.push_back(std::move(d));
    }
  }
  if (out.choices.empty() && feedback && !text_of(*feedback, "blockReason").empty()) {
    // The prompt itself was refused, with no candidate at all: a content-filter rejection, as
    // OpenAI's 400 content_policy_violation is (ContentFiltered; `content_filter` decides).
    ErrorBody e;
    e.found = true;
    e.type = "content_filter";
    e.code = detail::ascii_lower(text_of(*feedback, "blockReason"));
    e.message = "Gemini blocked the prompt (blockReason " + text_of(*feedback, "blockReason") + ")";
    return DecodeFailure{e.message, std::move(e)};
  }
  if (usage) {
    Usage u;
    u.prompt_tokens = clamp_tokens(tokens_of(*usage, "promptTokenCount") +
                                   tokens_of(*usage, "toolUsePromptTokenCount"));
    u.cached_tokens = tokens_of(*usage, "cachedContentTokenCount");
    u.reasoning_tokens = tokens_of(*usage, "thoughtsTokenCount");
    u.completion_tokens =
        clamp_tokens(tokens_of(*usage, "candidatesTokenCount") + u.reasoning_tokens);
    u.total_tokens = has_tokens(*usage, "totalTokenCount")
                         ? tokens_of(*usage, "totalTokenCount")
                         : clamp_tokens(u.prompt_tokens + u.completion_tokens);
    out.usage = u;
  }
  return std::nullopt;
}

}  // namespace

const char* to_string(Dialect dialect) {
  switch (dialect) {
    case Dialect::Anthropic:
      return "anthropic";
    case Dialect::Gemini:
      return "gemini";
    case Dialect::OpenAI:
      break;
  }
  return "openai";
}

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
  int tools = 0;
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
    failure = gemini_response(*doc, out, tools_);
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

std::optional<DecodeFailure> NativeStream::anthropic(const json& doc, ChatChunk& out,
                                                     Outcome& outcome) {
  const std::string type = text_of(doc, "type");
  if (type == "error" || member(doc, "error")) {
    return DecodeFailure{"an error event", error_from_json(doc)};
  }
  const json* index = member(doc, "index");
  const int at = index && index->is_number_integer() ? index->get<int>() : -1;
  auto block = [&]() -> Block* {
    for (Block& b : blocks_) {
      if (b.index == at) return &b;
    }
    return nullptr;
  };
  ChoiceDelta d;
  if (type == "message_start") {
    const json* message = member(doc, "message");
    if (!message || !message->is_object()) {
      return DecodeFailure{"message_start without a message", {}};
    }
    out.id = text_of(*message, "id");
    out.model = text_of(*message, "model");
    if (const json* u = member(*message, "usage")) anthropic_usage(*u, usage_);
    d.role = "assistant";
  } else if (type == "content_block_start") {
    const json* content = member(doc, "content_block");
    if (at < 0 || !content) return DecodeFailure{"content_block_start without a block", {}};
    Block b;
    b.index = at;
    const std::string kind = text_of(*content, "type");
    if (kind == "tool_use") {
      b.tool = tools_++;
      ToolCallDelta t;
      t.index = b.tool;
      t.id = text_of(*content, "id");
      t.type = "function";
      t.name = text_of(*content, "name");
      d.tool_calls.push_back(std::move(t));
    } else if (kind == "text") {
      d.content = text_of(*content, "text");
    } else if (kind == "thinking") {
      d.reasoning = text_of(*content, "thinking");
    }
    blocks_.push_back(b);
    if (d.tool_calls.empty() && d.content.empty() && d.reasoning.empty()) return std::nullopt;
  } else if (type == "content_block_delta") {
    const json* delta = member(doc, "delta");
    if (!delta) return DecodeFailure{"content_block_delta without a delta", {}};
    const std::string kind = text_of(*delta, "type");
    Block* b = block();  // text needs no start; a tool call's fragment needs its call
    if (kind == "text_delta") {
      d.content = text_of(*delta, "text");
    } else if (kind == "thinking_delta") {
      d.reasoning = text_of(*delta, "thinking");
    } else if (kind == "input_json_delta" && !b) {
      return DecodeFailure{"input_json_delta of no started tool_use block", {}};
    } else if (kind == "input_json_delta" && b->tool >= 0) {
      ToolCallDelta t;
      t.index = b->tool;
      t.arguments = text_of(*delta, "partial_json");
      b->arguments = b->arguments || !t.arguments.empty();
      d.tool_calls.push_back(std::move(t));
    } else {
      return std::nullopt;  // signature_delta, citations_delta, ...: nothing to show
    }
  } else if (type == "content_block_stop") {
    Block* b = block();
    if (!b || b->tool < 0 || b->arguments) return std::nullopt;
    ToolCallDelta t;  // a call without arguments: the empty object, as Chat Completions says
    t.index = b->tool;
    t.arguments = "{}";
    d.tool_calls.push_back(std::move(t));
  } else if (type == "message_delta") {
    const json* delta = member(doc, "delta");
    if (delta) d.finish_reason = anthropic_finish(text_of(*delta, "stop_reason"));
    if (const json* u = member(doc, "usage")) anthropic_usage(*u, usage_);
    out.usage = usage_;
  } else if (type == "message_stop") {
    outcome = Outcome::Done;
    return std::nullopt;
  } else {
    return std::nullopt;  // ping, and events added after this was written
  }
  out.choices.push_back(std::move(d));
  outcome = Outcome::Chunk;
  return std::nullopt;
}

}  // namespace failover::wire
