#pragma once

// The parts both native dialects are written with (internal to wire/): lenient readers of a
// provider's document, the conversation as alternating turns, and the request fields a dialect
// cannot express. Each dialect's own translation is in its file (anthropic.cpp, gemini.cpp).

#include "wire/dialect.hpp"
#include "wire/json_codec.hpp"

#include <failover/chat.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace failover::wire::native {

using nlohmann::json;

// A translation that cannot be made; caught at the entry points.
struct Untranslatable {
  std::string what;
};
[[noreturn]] inline void untranslatable(std::string what) { throw Untranslatable{std::move(what)}; }

// Lenient readers of a provider's document: a member of the wrong type reads as absent.
const json* member(const json& doc, const char* key);
std::string text_of(const json& doc, const char* key);
std::int64_t tokens_of(const json& doc, const char* key);
bool has_tokens(const json& doc, const char* key);

// A tool call's arguments as the object both native dialects want.
json arguments_object(const std::string& arguments, const std::string& field);

// `data:<mime>;base64,<data>`: mime and data, or false.
bool split_data_uri(const std::string& url, std::string& mime, std::string& data);
bool is_web_url(const std::string& url);

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
std::string text_only(const Message& m, const std::string& field);

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
std::optional<std::int64_t> output_cap(const ChatRequest& r, const Dropped& dropped);

// The request fields a dialect has no equivalent for: each fails the translation. Gemini takes
// the penalties, logprobs, seed and several choices (`sampling_extras`); Anthropic does not.
void refuse_unsupported(const ChatRequest& r, const Dropped& dropped, const char* dialect,
                        bool sampling_extras);

// Anthropic Messages (anthropic.cpp).
json encode_anthropic(const ChatRequest& r, bool stream, const Dropped& dropped);
std::optional<DecodeFailure> anthropic_message(const json& doc, ChatChunk& out);
const DialectApi& anthropic_api();

// Gemini (gemini.cpp).
json encode_gemini(const ChatRequest& r, const Dropped& dropped);
std::optional<DecodeFailure> gemini_response(const json& doc, ChatChunk& out,
                                             std::map<int, int>& tools);
const DialectApi& gemini_api();

}  // namespace failover::wire::native
