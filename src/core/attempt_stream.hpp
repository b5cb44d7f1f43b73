#pragma once

// One attempt's stream session: what arrived of an attempt sent as a stream (SSE) and where it
// stands, made anew for each attempt. It parses the bytes, translates the dialect's events into
// chunks, joins them into the answer, keeps what a stream call holds back until its first
// content, and tells the watchdogs how far the stream has come. It reads no clock: times are
// passed in.

#include "wire/dialect.hpp"
#include "wire/native.hpp"
#include "wire/sse.hpp"
#include "wire/stream.hpp"

#include <failover/chat.hpp>
#include <failover/policy/retry.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace failover::detail {

class AttemptStream {
 public:
  /** After [DONE] (or every choice finished), how long the server may take to end the
   *  response, for usage or [DONE] to come and the connection to be reused. */
  static constexpr Duration kDoneGrace = std::chrono::milliseconds(500);

  /** `whole`: assembled for a caller who sees only the whole answer (its raw_json keeps the
   *  chunks' members this SDK does not model). `restarts`: the attempt restarts an answer the
   *  stream handler was shown part of: a restart notice goes before its first content. */
  AttemptStream(const wire::DialectApi& api, TimePoint now, bool whole, bool restarts = false);

  /** What an event brought. */
  enum class Event {
    Nothing,    ///< A keep-alive, an event after the end or after an error.
    Done,       ///< The stream said it ended.
    Error,      ///< An error event; `error_body` holds what it said.
    Malformed,  ///< Skipped (counted); `why` says what was wrong.
    Chunk,      ///< `chunk` holds the translated chunk, already joined into the answer.
  };
  struct Read {
    Event event = Event::Nothing;
    ChatChunk chunk;
    std::string why;
    wire::ErrorBody error_body;
  };

  /** Body bytes arrived: `on_event` gets each whole event. Until the first event the bytes are
   *  kept too, up to `max_unframed`, for a server that answers with a plain JSON body. */
  template <class OnEvent>
  void feed(std::string_view bytes, std::size_t max_unframed, OnEvent&& on_event) {
    if (!framed && unframed.size() + bytes.size() <= max_unframed) unframed += bytes;
    parser.feed(bytes, on_event);
  }
  /** An event came: the body is SSE, its bytes are not kept. */
  void frame() {
    if (framed) return;
    framed = true;
    unframed = std::string();
  }
  /** Reads `event`, which came at `now`: a chunk is joined into the answer (after the prefix's
   *  seam is skipped), and the progress the watchdogs see is updated. `choices` is the
   *  request's `n`. */
  Read read(TimePoint now, const wire::SseEvent& event, int choices);

  /** The answer is whole: [DONE] came, or every choice finished. */
  bool finished() const { return done_seen || answer_finished; }
  /** Whether any byte of the body arrived. */
  bool heard() const { return framed || !unframed.empty(); }
  /** The body was a plain one, not SSE: no event and no comment came. */
  bool unframed_body() const { return !framed && !unframed.empty() && parser.comments() == 0; }

  /** When the attempt's watchdog fires: the `hard` limit, the call's `deadline`, the wait for
   *  the first content (`first_byte` after `start`) and then between chunks (`idle`), or the
   *  grace after the end. */
  TimePoint watchdog(TimePoint start, Duration first_byte, Duration idle, TimePoint hard,
                     TimePoint deadline) const;

  /** What the attempt spent: the usage its stream reported, else an estimate (`prompt_tokens`,
   *  and the text it sent at about four characters a token). */
  Usage usage(std::int64_t prompt_tokens) const;

  /** A continuation goes on from `shown`: its answer starts with it. */
  void seed(const ChatResponse& shown);

  /** Keeps a chunk before the first content (handed over at the commit). */
  void hold(ChatChunk chunk) { held.push_back(std::move(chunk)); }
  /** Counts a chunk handed to the stream handler. */
  void count_delivered(const ChatChunk& chunk);

  wire::SseParser parser;
  wire::StreamAccumulator accumulated;
  wire::NativeStream native;  // the dialect's events as chunks
  bool done_seen = false;
  TimePoint done_at{};
  // Every choice finished: the answer is whole, whatever becomes of the connection (a break or
  // a server that lingers then ends it as a success, after a short grace for usage or [DONE]).
  bool answer_finished = false;
  // Until the first SSE event: the bytes as they came, for a server that answered the stream
  // request with a plain JSON body (an error, or a whole completion).
  bool framed = false;
  std::string unframed;
  TimePoint last_chunk{};
  bool progressed = false;              // content, tool-call or reasoning text arrived (watchdogs)
  bool chunk_accepted = false;          // some event decoded as a chunk
  int skipped_events = 0;               // malformed events skipped
  std::size_t received_chars = 0;       // content, reasoning and tool-call text received
  std::optional<AttemptOutcome> error;  // an error event or a malformed chunk
  std::string error_message;

  // What a stream call's handler is shown of this attempt.
  std::vector<ChatChunk> held;      // chunks before the first content, handed over at commit
  int delivered_chunks = 0;         // handed to the handler
  std::size_t delivered_chars = 0;  // content and reasoning bytes among them
  bool notice_due = false;          // the commit first hands the handler a restart notice
  std::string seam;  // trimmed off a continuation's prefix (DialectApi::trim_prefix): not shown
                     // twice

 private:
  void skip_seam(ChatChunk& chunk);
};

}  // namespace failover::detail
