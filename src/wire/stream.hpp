#pragma once

// Stream chunks: decoding `CreateChatCompletionStreamResponse` and assembling the final response.

#include "wire/json_codec.hpp"

#include <failover/chat.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace failover::wire {

/** Whether a chunk carries something the user sees: content, refusal or tool-call text. */
bool has_content(const ChatChunk& chunk);

/** Whether a chunk shows the model at work: content, refusal, tool-call text or reasoning
 *  (what the first-token and idle watchdogs wait for). */
bool has_progress(const ChatChunk& chunk);

/** A whole response as the one chunk that carries all of it (a server that answered a stream
 *  request with a plain JSON body). */
ChatChunk chunk_of(const ChatResponse& response);

/** Joins chunks into the response they add up to. */
class StreamAccumulator {
 public:
  /** With `keep_unknown`, the chunks' top-level members this SDK does not model (a provider's
   *  `citations`, ...) are kept, the latest value of each, and `build()`'s `raw_json` carries
   *  them: for an answer assembled for a caller who sees only the whole. */
  explicit StreamAccumulator(bool keep_unknown = false) : keep_unknown_(keep_unknown) {}
  /** Adds one chunk. */
  void add(const ChatChunk& chunk);
  /** Whether the whole answer arrived: each of the `n` choices (indices 0 to n-1) finished. */
  bool finished(int n = 1) const;
  /** The usage the stream reported, if it did. */
  const std::optional<Usage>& usage() const { return usage_; }
  /** The response assembled so far; `raw_json` is a `chat.completion` object built from it. */
  ChatResponse build() const;

 private:
  struct ChoiceState {
    int index = 0;
    std::string role;
    std::string content;
    bool has_content = false;
    std::string refusal;
    bool has_refusal = false;
    std::string reasoning;
    bool has_reasoning = false;
    std::vector<std::pair<int, ToolCall>> calls;  // by delta index, in first-seen order
    std::vector<Annotation> annotations;
    std::string finish_reason;
    // Token log probabilities joined across chunks (`content` and `refusal` lists).
    nlohmann::json logprobs_content;
    nlohmann::json logprobs_refusal;
  };
  ChoiceState& choice(int index);
  static void add_logprobs(ChoiceState& c, const std::string& text);

  std::string id_;
  std::string model_;
  std::int64_t created_ = 0;
  std::string system_fingerprint_;
  std::string service_tier_;
  std::vector<ChoiceState> choices_;
  std::optional<Usage> usage_;
  bool keep_unknown_ = false;
  nlohmann::json unknown_;  // see the constructor
};

}  // namespace failover::wire
