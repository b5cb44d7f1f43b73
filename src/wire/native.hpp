#pragma once

// The native dialects: Anthropic Messages and Google Gemini. Requests are translated from
// `ChatRequest`; answers and stream events are translated into `ChatChunk`s, which the stream
// accumulator joins as it does for Chat Completions, so every dialect ends in the same
// `ChatResponse`. What a dialect cannot express fails the translation with a message naming the
// request's field; docs/providers.md ("Dialects") has the whole mapping.

#include "wire/json_codec.hpp"
#include "wire/shaping.hpp"
#include "wire/sse.hpp"

#include <failover/chat.hpp>
#include <failover/options.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace failover::wire {

/** The `anthropic-version` header sent unless the endpoint's headers set one. */
inline constexpr const char* kAnthropicVersion = "2023-06-01";

/** `max_tokens` sent to Anthropic when the request sets no output cap (Anthropic requires one). */
inline constexpr std::int64_t kAnthropicDefaultMaxTokens = 4096;

/** Thinking budget in tokens for a `reasoning_effort` (0 for `none` and unknown values). */
std::int64_t thinking_budget(std::string_view effort);

/**
 * Writes `request` as the body of a native `dialect` (not OpenAI): an Anthropic body without
 * `model` (put in front per route, as for Chat Completions), or a Gemini body (the model is in
 * the URL). With a route's `shaping`, the request fields its `drop` names (Chat Completions
 * names) count as unset, and its `params` are merged into the native body last. `request` must
 * already be valid (`encode_request` accepted it). On failure returns what cannot be
 * translated, naming the field (`temperature 1.5 is above anthropic's maximum of 1`) and leaves
 * `body` as it was.
 */
std::optional<std::string> encode_native(Dialect dialect, const ChatRequest& request, bool stream,
                                         const RequestShaping* shaping, std::string& body);

/** Decodes a native dialect's 2xx answer. On success `out.raw_json` is the `chat.completion`
 *  object built from it and `body` is moved into `out.native_json`; on failure `body` is left
 *  as it was. */
std::optional<DecodeFailure> decode_native_response(Dialect dialect, std::string& body,
                                                    ChatResponse& out);

/** Translates one stream of any dialect, event by event, into chunks (state kept between
 *  events: block indexes, usage, tool-call numbering). One per attempt. */
class NativeStream {
 public:
  /** What an event brought. */
  enum class Outcome {
    Chunk,    ///< `out` holds a chunk.
    Nothing,  ///< A keep-alive or an event with nothing to show.
    Done,     ///< The stream said it ended (Anthropic's `message_stop`).
  };

  explicit NativeStream(Dialect dialect = Dialect::OpenAI) : dialect_(dialect) {}

  Dialect dialect() const { return dialect_; }

  /** Translates `event`. A failure is a malformed event (skipped by the caller) or, with
   *  `in_band_error`, an error event. */
  std::optional<DecodeFailure> translate(const SseEvent& event, ChatChunk& out, Outcome& outcome);

 private:
  std::optional<DecodeFailure> anthropic(const nlohmann::json& doc, ChatChunk& out,
                                         Outcome& outcome);
  // Anthropic's content_block_start and content_block_delta: `d` gets what the block brought;
  // `show` is false when it brought nothing to show.
  std::optional<DecodeFailure> block_start(const nlohmann::json& doc, int at, ChoiceDelta& d,
                                           bool& show);
  std::optional<DecodeFailure> block_delta(const nlohmann::json& doc, int at, ChoiceDelta& d,
                                           bool& show);

  Dialect dialect_;
  std::string id_;
  std::string model_;
  Usage usage_;
  struct Block {
    int index = -1;  // the content block's index
    int tool = -1;   // the tool call it is, or -1
    bool arguments = false;
  };
  std::vector<Block> blocks_;
  int tools_ = 0;                       // Anthropic: tool calls so far (their delta indexes)
  std::map<int, int> candidate_tools_;  // Gemini: each candidate's tool calls so far
  Block* block(int at);                 // the started block of index `at`, or null
};

}  // namespace failover::wire
