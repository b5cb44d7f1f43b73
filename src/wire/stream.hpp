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

/** Joins chunks into the response they add up to. */
class StreamAccumulator {
 public:
  /** Adds one chunk. */
  void add(const ChatChunk& chunk);
  /** Whether some choice has finished. */
  bool finished() const;
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
    std::vector<std::pair<int, ToolCall>> calls;  // by delta index, in first-seen order
    std::string finish_reason;
  };
  ChoiceState& choice(int index);

  std::string id_;
  std::string model_;
  std::int64_t created_ = 0;
  std::string system_fingerprint_;
  std::vector<ChoiceState> choices_;
  std::optional<Usage> usage_;
};

}  // namespace failover::wire
