#include "wire/stream.hpp"

#include <algorithm>

namespace failover::wire {

using nlohmann::json;

bool has_content(const ChatChunk& chunk) {
  for (const ChoiceDelta& d : chunk.choices) {
    if (!d.content.empty() || !d.refusal.empty()) return true;
    for (const ToolCallDelta& t : d.tool_calls) {
      if (!t.name.empty() || !t.arguments.empty()) return true;
    }
  }
  return false;
}

bool has_progress(const ChatChunk& chunk) {
  if (has_content(chunk)) return true;
  return std::any_of(chunk.choices.begin(), chunk.choices.end(),
                     [](const ChoiceDelta& d) { return !d.reasoning.empty(); });
}

StreamAccumulator::ChoiceState& StreamAccumulator::choice(int index) {
  for (ChoiceState& c : choices_) {
    if (c.index == index) return c;
  }
  choices_.push_back(ChoiceState{});
  choices_.back().index = index;
  return choices_.back();
}

void StreamAccumulator::add(const ChatChunk& chunk) {
  if (id_.empty()) id_ = chunk.id;
  if (model_.empty()) model_ = chunk.model;
  if (created_ == 0) created_ = chunk.created;
  if (system_fingerprint_.empty()) system_fingerprint_ = chunk.system_fingerprint;
  if (service_tier_.empty()) service_tier_ = chunk.service_tier;
  if (chunk.usage) usage_ = chunk.usage;
  if (keep_unknown_ && !chunk.raw_json.empty()) {
    static constexpr const char* kModelled[] = {
        "id",          "object", "created", "model", "choices", "usage", "system_fingerprint",
        "service_tier"};
    if (std::optional<json> doc = parse_json(chunk.raw_json); doc && doc->is_object()) {
      for (auto it = doc->begin(); it != doc->end(); ++it) {
        if (std::none_of(std::begin(kModelled), std::end(kModelled),
                         [&](const char* k) { return it.key() == k; })) {
          unknown_[it.key()] = std::move(it.value());
        }
      }
    }
  }
  for (const ChoiceDelta& d : chunk.choices) {
    ChoiceState& c = choice(d.index);
    if (!d.role.empty()) c.role = d.role;
    if (!d.content.empty()) {
      c.content += d.content;
      c.has_content = true;
    }
    if (!d.refusal.empty()) {
      c.refusal += d.refusal;
      c.has_refusal = true;
    }
    if (!d.reasoning.empty()) {
      c.reasoning += d.reasoning;
      c.has_reasoning = true;
    }
    for (const ToolCallDelta& t : d.tool_calls) {
      // The latest call with this index; a piece with another call's id starts a new call
      // (providers that send no index number every call of a chunk from 0).
      auto it = std::find_if(c.calls.rbegin(), c.calls.rend(),
                             [&](const auto& p) { return p.first == t.index; });
      if (it == c.calls.rend() ||
          (!t.id.empty() && !it->second.id.empty() && it->second.id != t.id)) {
        c.calls.emplace_back(t.index, ToolCall{});
        it = c.calls.rbegin();
      }
      ToolCall& call = it->second;
      if (!t.id.empty()) call.id = t.id;
      if (!t.type.empty()) call.type = t.type;
      if (!t.name.empty()) call.name += t.name;
      call.arguments += t.arguments;
    }
    if (!d.finish_reason.empty()) c.finish_reason = d.finish_reason;
    if (!d.logprobs_json.empty()) add_logprobs(c, d.logprobs_json);
    c.annotations.insert(c.annotations.end(), d.annotations.begin(), d.annotations.end());
  }
}

void StreamAccumulator::add_logprobs(ChoiceState& c, const std::string& text) {
  std::optional<json> doc = parse_json(text);
  if (!doc || !doc->is_object()) return;
  for (auto [key, into] :
       {std::pair{"content", &c.logprobs_content}, std::pair{"refusal", &c.logprobs_refusal}}) {
    auto it = doc->find(key);
    if (it == doc->end() || !it->is_array()) continue;
    if (!into->is_array()) *into = json::array();
    for (json& item : *it) into->push_back(std::move(item));
  }
}

ChatChunk chunk_of(const ChatResponse& response) {
  ChatChunk chunk;
  chunk.id = response.id;
  chunk.model = response.model;
  chunk.created = response.created;
  chunk.system_fingerprint = response.system_fingerprint;
  chunk.service_tier = response.service_tier;
  chunk.usage = response.usage;
  for (const Choice& c : response.choices) {
    ChoiceDelta d;
    d.index = c.index;
    d.role = c.message.role;
    d.content = c.message.content.value_or(std::string());
    d.refusal = c.message.refusal.value_or(std::string());
    d.reasoning = c.message.reasoning.value_or(std::string());
    int k = 0;
    for (const ToolCall& call : c.message.tool_calls) {
      d.tool_calls.push_back(ToolCallDelta{k++, call.id, call.type, call.name, call.arguments});
    }
    d.finish_reason = c.finish_reason;
    d.logprobs_json = c.logprobs_json;
    d.annotations = c.message.annotations;
    chunk.choices.push_back(std::move(d));
  }
  return chunk;
}

bool StreamAccumulator::finished(int n) const {
  for (int i = 0; i < std::max(n, 1); ++i) {
    auto it = std::find_if(choices_.begin(), choices_.end(),
                           [&](const ChoiceState& c) { return c.index == i; });
    if (it == choices_.end() || it->finish_reason.empty()) return false;
  }
  return true;
}

namespace {

// A message as a `chat.completion` carries it (annotations: URL citations).
json message_json(const Message& m) {
  json message = {{"role", m.role}};
  message["content"] = m.content ? json(*m.content) : json(nullptr);
  if (m.refusal) message["refusal"] = *m.refusal;
  if (m.reasoning) message["reasoning_content"] = *m.reasoning;
  if (!m.tool_calls.empty()) {
    json calls = json::array();
    for (const ToolCall& t : m.tool_calls) {
      calls.push_back({{"id", t.id},
                       {"type", t.type.empty() ? "function" : t.type},
                       {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
    }
    message["tool_calls"] = std::move(calls);
  }
  if (!m.annotations.empty()) {
    json notes = json::array();
    for (const Annotation& a : m.annotations) {
      notes.push_back({{"type", a.type},
                       {"url_citation",
                        {{"url", a.url},
                         {"title", a.title},
                         {"start_index", a.start_index},
                         {"end_index", a.end_index}}}});
    }
    message["annotations"] = std::move(notes);
  }
  return message;
}

// Usage as a `chat.completion` carries it, with its details.
json usage_json(const Usage& u) {
  json usage = {{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.total_tokens},
                {"prompt_tokens_details",
                 {{"cached_tokens", u.cached_tokens}, {"audio_tokens", u.prompt_audio_tokens}}},
                {"completion_tokens_details",
                 {{"reasoning_tokens", u.reasoning_tokens},
                  {"audio_tokens", u.completion_audio_tokens},
                  {"accepted_prediction_tokens", u.accepted_prediction_tokens},
                  {"rejected_prediction_tokens", u.rejected_prediction_tokens}}}};
  if (u.cache_write_tokens > 0) {
    usage["prompt_tokens_details"]["cache_write_tokens"] = u.cache_write_tokens;
  }
  return usage;
}

}  // namespace

ChatResponse StreamAccumulator::build() const {
  ChatResponse r;
  r.id = id_;
  r.object = "chat.completion";
  r.created = created_;
  r.model = model_;
  r.system_fingerprint = system_fingerprint_;
  r.usage = usage_;
  std::vector<const ChoiceState*> ordered;
  for (const ChoiceState& c : choices_) ordered.push_back(&c);
  std::sort(ordered.begin(), ordered.end(),
            [](const ChoiceState* a, const ChoiceState* b) { return a->index < b->index; });
  json choices = json::array();
  for (const ChoiceState* c : ordered) {
    Choice choice;
    choice.index = c->index;
    choice.message.role = c->role.empty() ? "assistant" : c->role;
    // No content at all is null, as in a whole answer, when a refusal or tool calls stand
    // instead; an empty answer is "".
    if (c->has_content || (c->calls.empty() && !c->has_refusal)) {
      choice.message.content = c->content;
    }
    if (c->has_refusal) choice.message.refusal = c->refusal;
    if (c->has_reasoning) choice.message.reasoning = c->reasoning;
    for (const auto& [index, call] : c->calls) choice.message.tool_calls.push_back(call);
    choice.message.annotations = c->annotations;
    choice.finish_reason = c->finish_reason;

    json entry = {{"index", choice.index},
                  {"message", message_json(choice.message)},
                  {"finish_reason",
                   choice.finish_reason.empty() ? json(nullptr) : json(choice.finish_reason)}};
    if (c->logprobs_content.is_array() || c->logprobs_refusal.is_array()) {
      json logprobs = {{"content", c->logprobs_content}, {"refusal", c->logprobs_refusal}};
      entry["logprobs"] = logprobs;
      choice.logprobs_json = logprobs.dump();
    }
    choices.push_back(std::move(entry));
    r.choices.push_back(std::move(choice));
  }
  json doc = {{"id", r.id},
              {"object", r.object},
              {"created", r.created},
              {"model", r.model},
              {"choices", std::move(choices)}};
  if (!r.system_fingerprint.empty()) doc["system_fingerprint"] = r.system_fingerprint;
  r.service_tier = service_tier_;
  if (!r.service_tier.empty()) doc["service_tier"] = r.service_tier;
  if (usage_) doc["usage"] = usage_json(*usage_);
  if (unknown_.is_object()) {
    for (auto it = unknown_.begin(); it != unknown_.end(); ++it) doc[it.key()] = it.value();
  }
  r.raw_json = doc.dump();
  return r;
}

}  // namespace failover::wire
