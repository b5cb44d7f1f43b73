// Anthropic's Messages API: requests, answers and stream events (docs/providers.md, "Dialects").

#include "wire/native_parts.hpp"
#include "wire/stream.hpp"

#include "util/ascii.hpp"

#include <algorithm>
#include <utility>

namespace failover::wire {

namespace native {

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

// The conversation as Anthropic's messages, with system and developer messages as `system`
// and tool results in user turns.
struct AnthropicTurns {
  Turns messages{"content"};  // taken where the body gets them (an empty one is refused there)
  json system = json::array();
};
AnthropicTurns anthropic_turns(const ChatRequest& r) {
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
  return AnthropicTurns{std::move(messages), std::move(system)};
}

// `tools` with their input schemas, and `tool_choice` (parallel calls off when asked).
void anthropic_tools(const ChatRequest& r, const Dropped& dropped, json& body) {
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
}

json encode_anthropic(const ChatRequest& r, bool stream, const Dropped& dropped) {
  json body = json::object();
  AnthropicTurns turns = anthropic_turns(r);

  const std::int64_t budget = dropped("reasoning_effort") ? 0 : thinking_budget(r.reasoning_effort);
  const std::optional<std::int64_t> cap = output_cap(r, dropped);
  if (budget > 0 && cap && *cap <= budget) {
    untranslatable("max_tokens " + std::to_string(*cap) + " is not above the thinking budget " +
                   std::to_string(budget) + " of reasoning_effort \"" + r.reasoning_effort + "\"");
  }
  body["max_tokens"] = cap ? *cap : kAnthropicDefaultMaxTokens + budget;
  body["messages"] = turns.messages.take();
  if (!turns.system.empty()) body["system"] = std::move(turns.system);
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
  anthropic_tools(r, dropped, body);
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
  // The thinking part of the output (Messages API `usage.output_tokens_details`).
  if (const json* details = member(u, "output_tokens_details")) {
    if (has_tokens(*details, "thinking_tokens")) {
      usage.reasoning_tokens = tokens_of(*details, "thinking_tokens");
    }
  }
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

}  // namespace native

using namespace native;

std::optional<DecodeFailure> NativeStream::anthropic(const json& doc, ChatChunk& out,
                                                     Outcome& outcome) {
  const std::string type = text_of(doc, "type");
  if (type == "error" || member(doc, "error")) {
    return DecodeFailure{"an error event", error_from_json(doc)};
  }
  const json* index = member(doc, "index");
  const int at = index && index->is_number_integer() ? index->get<int>() : -1;
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
  } else if (type == "content_block_start" || type == "content_block_delta") {
    bool show = true;
    auto failure = type == "content_block_start" ? block_start(doc, at, d, show)
                                                 : block_delta(doc, at, d, show);
    if (failure || !show) return failure;
  } else if (type == "content_block_stop") {
    Block* b = block(at);
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

NativeStream::Block* NativeStream::block(int at) {
  for (Block& b : blocks_) {
    if (b.index == at) return &b;
  }
  return nullptr;
}

std::optional<DecodeFailure> NativeStream::block_start(const json& doc, int at, ChoiceDelta& d,
                                                       bool& show) {
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
  show = !(d.tool_calls.empty() && d.content.empty() && d.reasoning.empty());
  return std::nullopt;
}

std::optional<DecodeFailure> NativeStream::block_delta(const json& doc, int at, ChoiceDelta& d,
                                                       bool& show) {
  const json* delta = member(doc, "delta");
  if (!delta) return DecodeFailure{"content_block_delta without a delta", {}};
  const std::string kind = text_of(*delta, "type");
  Block* b = block(at);  // text needs no start; a tool call's fragment needs its call
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
    show = false;  // signature_delta, citations_delta, ...: nothing to show
  }
  return std::nullopt;
}

namespace native {
namespace {

class AnthropicApi final : public DialectApi {
 public:
  Dialect id() const override { return Dialect::Anthropic; }
  const char* name() const override { return "anthropic"; }
  RouteUrls urls(const std::string& base, const std::string& query,
                 const std::string&) const override {
    std::string url = base + "/messages" + query;
    return {url, url};
  }
  void add_key(const std::string& api_key, HttpHeaders& headers) const override {
    headers.emplace_back("x-api-key", api_key);
  }
  void add_required(const std::map<std::string, std::string>& own,
                    HttpHeaders& headers) const override {
    if (std::none_of(own.begin(), own.end(), [](const auto& h) {
          return detail::ascii_lower(h.first) == "anthropic-version";
        })) {
      headers.emplace_back("anthropic-version", kAnthropicVersion);
    }
  }
  bool translates() const override { return true; }
  // Anthropic refuses a prefill that ends in whitespace.
  std::string trim_prefix(std::string& prefix) const override {
    const std::size_t end = prefix.find_last_not_of(" \t\r\n");
    std::string seam = prefix.substr(end == std::string::npos ? 0 : end + 1);
    prefix.resize(prefix.size() - seam.size());
    return seam;
  }
  std::optional<DecodeFailure> decode(std::string& body, ChatResponse& out) const override {
    return decode_native_response(Dialect::Anthropic, body, out);
  }
};

}  // namespace

const DialectApi& anthropic_api() {
  static const AnthropicApi api;
  return api;
}

}  // namespace native
}  // namespace failover::wire
