#pragma once

// JSON codec for the Chat Completions wire format, on nlohmann/json.

#include "wire/error_body.hpp"

#include <failover/chat.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace failover::wire {

/** Deepest JSON nesting accepted from a server or a user (guards the recursive parser). */
inline constexpr int kMaxJsonDepth = 128;

// True when `text` nests arrays/objects no deeper than `max_depth`. Strings and comments (line
// and block comments, which the configuration parser accepts) are skipped, as the parser reads
// them.
bool json_depth_within(std::string_view text, int max_depth = kMaxJsonDepth);

/** A JSON number as an integer: truncated toward zero, clamped to the int64 range, NaN as 0
 *  (a plain cast of an out-of-range double is undefined behaviour). */
std::int64_t to_int64(double v) noexcept;

/** Most tokens a usage field may report: a server's absurd numbers (negative, or beyond any
 *  real answer) are clamped to [0, this], so costs and budgets stay finite. */
inline constexpr std::int64_t kMaxTokens = 1'000'000'000'000;

/** A token count as both response decoders keep it: clamped to [0, kMaxTokens]. */
constexpr std::int64_t clamp_tokens(std::int64_t n) {
  return n < 0 ? 0 : n > kMaxTokens ? kMaxTokens : n;
}

/** Parses `text` as JSON; empty on malformed or too deeply nested input. */
std::optional<nlohmann::json> parse_json(std::string_view text);

/** A streamed body's stream members (`"stream":true` and `stream_options`), which come last.
 *  Erasing them, from `at` to the closing brace, gives the same request for a whole answer. */
struct StreamForm {
  bool usage = false;  ///< In: ask for the usage chunk whatever the request's `include_usage`.
  std::size_t at = 0;  ///< Out: where the stream members begin.
};

/**
 * Validates `request` and writes it as the JSON text of a `CreateChatCompletionRequest` body
 * without `model`, straight from the request (no document is built). On failure returns a
 * message that names the offending field (e.g. `messages[2].role`, `messages[0].content is
 * not valid UTF-8`) and leaves `text` as it was.
 */
std::optional<std::string> encode_request(const ChatRequest& request, bool stream,
                                          std::string& text, StreamForm* form = nullptr);

/** Writes into `out` the body `rest` (a JSON object encoded without `model`) with `model_json`
 *  (a JSON string) as its first member: each route's model goes in front of one encoding. */
void with_model(std::string_view model_json, std::string_view rest, std::string& out);

/** The same body as a document (what `text` parses to). */
std::optional<std::string> encode_request(const ChatRequest& request, bool stream,
                                          nlohmann::json& out);

/** Why a 2xx body could not be used. */
struct DecodeFailure {
  std::string message;                     ///< What was wrong (malformed, wrong shape).
  std::optional<ErrorBody> in_band_error;  ///< Set when the body is an error object instead.
};

/** Appends `s` to `out` as a JSON string (quoted and escaped as `dump()` does); false, with
 *  `out` partly written, when `s` is not valid UTF-8. */
bool append_string(const std::string& s, std::string& out);

/** Appends the decimal digits of `v` to `out`. */
template <typename Int>
void append_integer(Int v, std::string& out) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

/** Appends `value` to `out` exactly as `value.dump()` writes it (compact, keys in the object's
 *  order, UTF-8 kept as it is), several times faster. False, with `out` partly written, at the
 *  first string that is not valid UTF-8: `dump()` throws there. */
bool append_json(const nlohmann::json& value, std::string& out);

/** Decodes a `CreateChatCompletionResponse`. On success `body` is moved into `raw_json`;
 *  on failure it is left as it was. */
std::optional<DecodeFailure> decode_response(std::string& body, ChatResponse& out);

/** The reference decoder behind `decode_response`: parses a DOM, then reads it. */
std::optional<DecodeFailure> decode_response_dom(std::string& body, ChatResponse& out);

/** The fast path of `decode_response` (SAX, no DOM): true when it decoded `body` into `out`
 *  exactly as `decode_response_dom` would; false (and `out` untouched) when the DOM decoder
 *  must decide. */
bool decode_response_fast(const std::string& body, ChatResponse& out);

/** Decodes one stream `data:` payload (`CreateChatCompletionStreamResponse`); the payload is
 *  copied into `raw_json`. An error object instead of a chunk comes back as `in_band_error`. */
std::optional<DecodeFailure> decode_chunk(std::string_view data, ChatChunk& out);

/** A printable excerpt of `text`: at most `max` bytes, control characters replaced. */
std::string excerpt(std::string_view text, std::size_t max = 300);

}  // namespace failover::wire
