// Fuzzes the SSE parser and the stream chunk decoder. The input is fed whole and then in pieces
// whose sizes come from the input itself: both feeds must give the same events (a parser that
// depends on where the network split the bytes would corrupt streams), and every event's data
// goes through decode_chunk and through the native dialects' stream translators, whose chunks
// are joined as a call joins them.

#include "wire/json_codec.hpp"
#include "wire/native.hpp"
#include "wire/sse.hpp"
#include "wire/stream.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Events = std::vector<std::pair<std::string, std::string>>;

Events feed(std::string_view data, std::size_t seed) {
  failover::wire::SseParser parser;
  Events events;
  auto sink = [&](const failover::wire::SseEvent& e) { events.emplace_back(e.event, e.data); };
  if (seed == 0) {
    parser.feed(data, sink);
    return events;
  }
  std::size_t at = 0;
  std::size_t step = seed;
  while (at < data.size()) {
    std::size_t n = std::min(data.size() - at, 1 + step % 17);
    parser.feed(data.substr(at, n), sink);
    at += n;
    step = step * 2654435761u + 1;
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::string_view data(reinterpret_cast<const char*>(bytes), size);
  const Events whole = feed(data, 0);
  const Events split = feed(data, size + 1);
  if (whole != split) std::abort();  // the split changed the events
  for (const auto& [event, payload] : whole) {
    failover::ChatChunk chunk;
    (void)failover::wire::decode_chunk(payload, chunk);
  }
  for (auto dialect : {failover::Dialect::Anthropic, failover::Dialect::Gemini}) {
    failover::wire::NativeStream native(dialect);
    failover::wire::StreamAccumulator joined;
    for (const auto& [event, payload] : whole) {
      failover::ChatChunk chunk;
      failover::wire::NativeStream::Outcome outcome;
      if (native.translate(failover::wire::SseEvent{event, payload}, chunk, outcome)) continue;
      if (outcome == failover::wire::NativeStream::Outcome::Chunk) joined.add(chunk);
    }
    (void)joined.build();
  }
  return 0;
}
