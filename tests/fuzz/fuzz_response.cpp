// Fuzzes the response decoders: the SAX fast path must either decline or agree exactly with the
// DOM decoder, the public decoder and the native dialects' must never throw, and error bodies
// decode to something; every message made of a body is valid UTF-8.

#include "util/utf8.hpp"
#include "wire/error_body.hpp"
#include "wire/json_codec.hpp"
#include "wire/native.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

namespace {

std::string describe(const failover::ChatResponse& r) {
  std::string out = r.id + '\x1f' + r.object + '\x1f' + std::to_string(r.created) + '\x1f' +
                    r.model + '\x1f' + r.system_fingerprint + '\x1f' + r.service_tier;
  for (const failover::Choice& c : r.choices) {
    out += '\x1e' + std::to_string(c.index) + '\x1f' + c.finish_reason + '\x1f' + c.message.role +
           '\x1f' + (c.message.content ? "1" + *c.message.content : "0") + '\x1f' +
           (c.message.refusal ? "1" + *c.message.refusal : "0") + '\x1f' +
           (c.message.reasoning ? "1" + *c.message.reasoning : "0") + '\x1f' +
           std::to_string(c.message.annotations.size()) + '\x1f' + c.logprobs_json;
    for (const failover::ToolCall& t : c.message.tool_calls) {
      out += '\x1d' + t.id + '\x1f' + t.type + '\x1f' + t.name + '\x1f' + t.arguments;
    }
  }
  if (r.usage) {
    const failover::Usage& u = *r.usage;
    for (auto v : {u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens,
                   u.prompt_audio_tokens, u.reasoning_tokens, u.completion_audio_tokens,
                   u.accepted_prediction_tokens, u.rejected_prediction_tokens}) {
      out += '\x1c' + std::to_string(v);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(bytes), size);
  failover::ChatResponse fast;
  const bool took = failover::wire::decode_response_fast(body, fast);
  failover::ChatResponse dom;
  std::string copy = body;
  auto failure = failover::wire::decode_response_dom(copy, dom);
  if (took && (failure || describe(fast) != describe(dom))) std::abort();
  failover::ChatResponse any;
  copy = body;
  (void)failover::wire::decode_response(copy, any);
  for (auto dialect : {failover::Dialect::Anthropic, failover::Dialect::Gemini}) {
    failover::ChatResponse native;
    copy = body;
    if (!failover::wire::decode_native_response(dialect, copy, native) &&
        native.native_json != body) {
      std::abort();  // a decoded answer keeps the body exactly
    }
  }
  failover::wire::ErrorBody e = failover::wire::decode_error_body(body);
  // A bad byte becomes U+FFFD, three bytes: a message is at most three times the body.
  if (e.message.size() > 3 * body.size() + 64 && !e.found) std::abort();
  // Every message the library makes is valid UTF-8, whatever the body holds.
  if (failover::detail::valid_utf8(e.message) != e.message) std::abort();
  if (failure && failover::detail::valid_utf8(failure->message) != failure->message) std::abort();
  return 0;
}
