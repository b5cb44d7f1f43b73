// Google's Gemini API (generateContent): requests, answers and stream events
// (docs/providers.md, "Dialects").

#include "wire/native_parts.hpp"
#include "wire/stream.hpp"

#include "util/ascii.hpp"

#include <algorithm>
#include <utility>

namespace failover::wire::native {

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

// The conversation: `contents` in turns, system and developer messages as
// `systemInstruction`, tool results answered by the function's name.
void gemini_contents(const ChatRequest& r, json& body) {
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
      // The id of the call it answers goes back with it (FunctionResponse.id).
      json answer{{"name", name}, {"response", std::move(response)}};
      if (!m.tool_call_id.empty()) answer["id"] = m.tool_call_id;
      parts.push_back({{"functionResponse", std::move(answer)}});
      contents.push("user", std::move(parts));
      continue;
    }
    parts = message_items(m, field, gemini_part, [](const ToolCall& t, json args) {
      json call{{"name", t.name}, {"args", std::move(args)}};
      if (!t.id.empty()) call["id"] = t.id;  // FunctionCall.id, as the answer gave it
      return json{{"functionCall", std::move(call)}};
    });
    if (parts.empty()) {
      if (m.role == "assistant") continue;
      untranslatable(field + ".content is empty (gemini refuses empty turns)");
    }
    contents.push(m.role == "assistant" ? "model" : "user", std::move(parts));
  }
  body["contents"] = contents.take();
  if (!system.empty()) body["systemInstruction"] = {{"parts", std::move(system)}};
}

// `tools` as function declarations, and `toolConfig`.
void gemini_tools(const ChatRequest& r, const Dropped& dropped, json& body) {
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
}

// `generationConfig`: sampling, the output cap and form, candidates and thinking.
json gemini_generation(const ChatRequest& r, const Dropped& dropped) {
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
  return generation;
}

json encode_gemini(const ChatRequest& r, const Dropped& dropped) {
  json body = json::object();
  gemini_contents(r, body);
  gemini_tools(r, dropped, body);
  json generation = gemini_generation(r, dropped);
  if (!generation.empty()) body["generationConfig"] = std::move(generation);
  refuse_unsupported(r, dropped, "gemini", /*sampling_extras=*/true);
  return body;
}

namespace {

// One token's log probability in Chat Completions' form (`bytes` unknown).
json token_logprob(const json& candidate) {
  const json* lp = member(candidate, "logProbability");
  return json{{"token", text_of(candidate, "token")},
              {"logprob", lp && lp->is_number() ? lp->get<double>() : 0.0},
              {"bytes", nullptr}};
}

// A candidate's `logprobsResult` as Chat Completions' `logprobs`: each chosen token, with the
// top candidates of its position. Empty when there is none.
std::string gemini_logprobs(const json& result) {
  const json* chosen = member(result, "chosenCandidates");
  if (!chosen || !chosen->is_array()) return {};
  const json* top = member(result, "topCandidates");
  json content = json::array();
  for (std::size_t i = 0; i < chosen->size(); ++i) {
    json item = token_logprob((*chosen)[i]);
    json alternatives = json::array();
    const json* at = top && top->is_array() && i < top->size() ? &(*top)[i] : nullptr;
    if (const json* list = at ? member(*at, "candidates") : nullptr; list && list->is_array()) {
      for (const json& a : *list) alternatives.push_back(token_logprob(a));
    }
    item["top_logprobs"] = std::move(alternatives);
    content.push_back(std::move(item));
  }
  return json{{"content", std::move(content)}}.dump();
}

}  // namespace

// One GenerateContentResponse (a whole answer or one stream event) as one chunk.
// `tools`: each candidate's tool calls so far (a stream's earlier events included), by its index.
std::optional<DecodeFailure> gemini_response(const json& doc, ChatChunk& out,
                                             std::map<int, int>& tools) {
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
      int& calls = tools[d.index];
      bool called = false;
      const json* content = member(c, "content");
      const json* parts = content ? member(*content, "parts") : nullptr;
      if (parts && parts->is_array()) {
        for (const json& p : *parts) {
          if (const json* call = member(p, "functionCall")) {
            ToolCallDelta t;
            t.index = calls++;
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
      d.finish_reason = gemini_finish(text_of(c, "finishReason"), called || calls > 0);
      if (const json* lp = member(c, "logprobsResult")) d.logprobs_json = gemini_logprobs(*lp);
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

namespace {

class GeminiApi final : public DialectApi {
 public:
  Dialect id() const override { return Dialect::Gemini; }
  const char* name() const override { return "gemini"; }
  // The model is in the URL (`models/` may be in front), with the method.
  RouteUrls urls(const std::string& base, const std::string& query,
                 const std::string& model) const override {
    const std::string bare = model.compare(0, 7, "models/") == 0 ? model.substr(7) : model;
    const std::string at = base + "/models/" + percent_encode(bare);
    return {at + ":generateContent" + query,
            at + ":streamGenerateContent?alt=sse" + (query.empty() ? "" : "&" + query.substr(1))};
  }
  void add_key(const std::string& api_key, HttpHeaders& headers) const override {
    headers.emplace_back("x-goog-api-key", api_key);
  }
  bool translates() const override { return true; }
  void put_model(std::string_view, std::string_view rest, std::string& out) const override {
    out.assign(rest.data(), rest.size());
  }
  std::optional<DecodeFailure> decode(std::string& body, ChatResponse& out) const override {
    return decode_native_response(Dialect::Gemini, body, out);
  }
};

}  // namespace

const DialectApi& gemini_api() {
  static const GeminiApi api;
  return api;
}

}  // namespace failover::wire::native
