#include "core/attempt_stream.hpp"

#include <algorithm>

namespace failover::detail {

AttemptStream::AttemptStream(const wire::DialectApi& api, TimePoint now, bool whole, bool restarts)
    : accumulated(whole && !api.translates()),
      native(api.id()),
      last_chunk(now),
      notice_due(restarts) {}

AttemptStream::Read AttemptStream::read(TimePoint now, const wire::SseEvent& e, int choices) {
  Read r;
  frame();
  if (error || done_seen) return r;
  wire::NativeStream::Outcome got = wire::NativeStream::Outcome::Chunk;
  std::optional<wire::DecodeFailure> failure = native.translate(e, r.chunk, got);
  if (!failure && got == wire::NativeStream::Outcome::Done) {
    done_seen = true;
    done_at = now;
    r.event = Event::Done;
    return r;
  }
  if (!failure && got == wire::NativeStream::Outcome::Nothing) return r;  // a keep-alive
  // An error event: `event: error`, a chunk with an `error` member, or a choice that finished
  // with `finish_reason: "error"` (decode_chunk reports the last two as in-band errors).
  if (e.event == "error" || (failure && failure->in_band_error)) {
    r.error_body = failure && failure->in_band_error ? std::move(*failure->in_band_error)
                                                     : wire::decode_error_body(e.data);
    r.event = Event::Error;
    return r;
  }
  if (failure) {
    ++skipped_events;
    r.why = std::move(failure->message);
    r.event = Event::Malformed;
    return r;
  }
  if (!seam.empty()) skip_seam(r.chunk);
  chunk_accepted = true;
  last_chunk = now;
  if (!progressed && wire::has_progress(r.chunk)) progressed = true;
  for (const ChoiceDelta& d : r.chunk.choices) {
    received_chars += d.content.size() + d.reasoning.size() + d.refusal.size();
    for (const ToolCallDelta& t : d.tool_calls)
      received_chars += t.name.size() + t.arguments.size();
  }
  accumulated.add(r.chunk);
  if (!answer_finished && accumulated.finished(choices)) answer_finished = true;
  r.event = Event::Chunk;
  return r;
}

// A continuation sent with its prefix's end trimmed: the text it opens with, up to what was
// trimmed, was shown already.
void AttemptStream::skip_seam(ChatChunk& chunk) {
  for (ChoiceDelta& d : chunk.choices) {
    if (d.content.empty()) continue;
    std::size_t n = 0;
    while (n < d.content.size() && n < seam.size() && d.content[n] == seam[n]) ++n;
    d.content.erase(0, n);
    if (d.content.empty() && n < seam.size()) {
      seam.erase(0, n);  // the rest may open the next chunk
    } else {
      seam.clear();
    }
    return;
  }
}

TimePoint AttemptStream::watchdog(TimePoint start, Duration first_byte, Duration idle,
                                  TimePoint hard, TimePoint deadline) const {
  if (done_seen) return std::min(hard, done_at + kDoneGrace);
  if (answer_finished) return std::min(hard, last_chunk + kDoneGrace);  // usage or [DONE]
  // Until the first content, tool-call or reasoning text, the first-token limit; after it, the
  // idle limit between chunks (a reasoning model may think for minutes before it answers).
  const TimePoint soft = progressed ? last_chunk + idle : start + first_byte;
  return std::min(hard, std::min(soft, deadline));
}

Usage AttemptStream::usage(std::int64_t prompt_tokens) const {
  if (const std::optional<Usage>& reported = accumulated.usage()) return *reported;
  Usage u;
  u.prompt_tokens = prompt_tokens;
  u.completion_tokens = static_cast<std::int64_t>((received_chars + 3) / 4);
  u.total_tokens = u.prompt_tokens + u.completion_tokens;
  return u;
}

void AttemptStream::seed(const ChatResponse& shown) {
  ChatChunk seed;
  ChoiceDelta d;
  d.role = "assistant";
  d.content = shown.text();
  d.reasoning = shown.reasoning();
  seed.choices.push_back(std::move(d));
  accumulated.add(seed);
}

void AttemptStream::count_delivered(const ChatChunk& chunk) {
  if (chunk.restart) return;
  ++delivered_chunks;
  for (const ChoiceDelta& d : chunk.choices)
    delivered_chars += d.content.size() + d.reasoning.size();
}

}  // namespace failover::detail
