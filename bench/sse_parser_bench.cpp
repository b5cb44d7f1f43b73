// The SSE parser on recorded-shape streams: throughput when bytes arrive in large reads, and
// linear time when they arrive one byte at a time (the complexity fit should report O(N)).

#include "wire/sse.hpp"

#include <benchmark/benchmark.h>

#include <string>

namespace {

// A chat stream of about `bytes` bytes: role chunk, many small content deltas, [DONE].
std::string make_stream(std::size_t bytes) {
  const std::string head =
      R"(data: {"id":"chatcmpl-b","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":")";
  const std::string tail = R"("},"finish_reason":null}]})"
                           "\n\n";
  std::string out;
  out.reserve(bytes + 256);
  int i = 0;
  while (out.size() < bytes) {
    out += head;
    out += "token" + std::to_string(i++ % 1000);
    out += tail;
    if (i % 50 == 0) out += ": keep-alive\n\n";
  }
  out += "data: [DONE]\n\n";
  return out;
}

void parse(benchmark::State& state, std::size_t read_size) {
  const std::string stream = make_stream(static_cast<std::size_t>(state.range(0)));
  std::size_t events = 0;
  for (auto _ : state) {
    failover::wire::SseParser parser;
    std::string_view rest(stream);
    while (!rest.empty()) {
      std::string_view piece = rest.substr(0, read_size);
      rest.remove_prefix(piece.size());
      parser.feed(piece,
                  [&](const failover::wire::SseEvent& e) { events += e.data.size() > 0 ? 1 : 0; });
    }
  }
  benchmark::DoNotOptimize(events);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
  state.SetComplexityN(state.range(0));
}

void BM_SseLargeReads(benchmark::State& state) { parse(state, 16 * 1024); }
void BM_SseOneByteReads(benchmark::State& state) { parse(state, 1); }

}  // namespace

BENCHMARK(BM_SseLargeReads)->Arg(1 << 20);
BENCHMARK(BM_SseOneByteReads)->RangeMultiplier(4)->Range(1 << 14, 1 << 20)->Complexity();

BENCHMARK_MAIN();
