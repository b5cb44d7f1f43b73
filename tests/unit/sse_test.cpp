// SSE parsing at every split point, chunk decoding and stream aggregation.

#include "wire/sse.hpp"
#include "wire/json_codec.hpp"
#include "wire/stream.hpp"

#include <failover/time.hpp>

#include <gtest/gtest.h>

namespace failover {
namespace {

struct Seen {
  std::string event;
  std::string data;
  bool operator==(const Seen& o) const { return event == o.event && data == o.data; }
};

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{" << s.event << ": " << s.data << "}";
}

// A recorded stream: role chunk, content pieces, a comment, a keep-alive, two tool calls whose
// arguments arrive in pieces, a usage chunk with empty choices, [DONE]. Lines end in LF.
const std::string kStream =
    ": OPENROUTER PROCESSING\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]})"
    "\n\n"
    ":\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}},{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}},{"index":1,"function":{"arguments":"{\"tz\""}}]},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":":\"UTC\"}"}},{"index":0,"function":{"arguments":"\"Hanoi\"}"}}]},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}})"
    "\n\n"
    "data: [DONE]\n\n";

std::vector<Seen> parse_in_pieces(const std::string& stream, const std::vector<std::size_t>& cuts) {
  wire::SseParser parser;
  std::vector<Seen> out;
  auto sink = [&](const wire::SseEvent& e) {
    out.push_back(Seen{std::string(e.event), std::string(e.data)});
  };
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    parser.feed(std::string_view(stream).substr(from, cut - from), sink);
    from = cut;
  }
  parser.feed(std::string_view(stream).substr(from), sink);
  EXPECT_EQ(parser.pending(), 0u);
  return out;
}

std::string crlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

TEST(SseParser, RecordedStreamGivesEveryEvent) {
  auto events = parse_in_pieces(kStream, {});
  ASSERT_EQ(events.size(), 9u);
  EXPECT_EQ(events.back(), (Seen{"message", "[DONE]"}));
  EXPECT_NE(events[1].data.find("\"Hel\""), std::string::npos);
}

TEST(SseParser, EverySplitPointGivesTheSameEvents) {
  const auto whole = parse_in_pieces(kStream, {});
  for (std::size_t cut = 0; cut <= kStream.size(); ++cut) {
    ASSERT_EQ(parse_in_pieces(kStream, {cut}), whole) << "split at " << cut;
  }
  const std::string windows = crlf(kStream);
  const auto whole_crlf = parse_in_pieces(windows, {});
  EXPECT_EQ(whole_crlf, whole);
  for (std::size_t cut = 0; cut <= windows.size(); ++cut) {
    ASSERT_EQ(parse_in_pieces(windows, {cut}), whole) << "CRLF split at " << cut;
  }
}

// Anthropic's framing: an `event:` line before each `data:`, and an event of two `data:`
// lines. Split between a line's CR and its LF, a parser that takes the LF for a blank line
// would end the event early (its name without its data, or half its data).
const std::string kNamedEvents =
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_1","role":"assistant"}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,)"
    "\n"
    R"(data: "delta":{"type":"text_delta","text":"Hi"}})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type":"ping"})"
    "\n\n"
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

TEST(SseParser, EverySplitPointOfNamedAndMultiLineEventsInCrlf) {
  const auto whole = parse_in_pieces(kNamedEvents, {});
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole[1].event, "content_block_delta");
  EXPECT_EQ(whole[1].data,
            "{\"type\":\"content_block_delta\",\"index\":0,\n\"delta\":{\"type\":\"text_delta\","
            "\"text\":\"Hi\"}}");
  const std::string windows = crlf(kNamedEvents);
  for (std::size_t cut = 0; cut <= windows.size(); ++cut) {
    ASSERT_EQ(parse_in_pieces(windows, {cut}), whole) << "CRLF split at " << cut;
  }
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < windows.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(parse_in_pieces(windows, cuts), whole);
}

TEST(SseParser, AByteOrderMarkOpeningTheStreamIsSkippedAtEverySplit) {
  const std::string stream = kStream.substr(kStream.find("data:"));  // data from the first byte
  const std::string marked = "\xEF\xBB\xBF" + stream;
  const auto whole = parse_in_pieces(stream, {});
  ASSERT_EQ(whole.size(), 9u);
  for (std::size_t cut = 0; cut <= 8; ++cut) {
    ASSERT_EQ(parse_in_pieces(marked, {cut}), whole) << "split at " << cut;
  }
  // Only at the start: later it is text (and a prefix of it that is not the mark is kept).
  const auto odd = parse_in_pieces("\xEF" "data: x\n\n", {1});
  ASSERT_EQ(odd.size(), 0u);  // "\xEF" "data" is no field the parser knows
}

TEST(SseParser, ByteByByte) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < kStream.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(parse_in_pieces(kStream, cuts), parse_in_pieces(kStream, {}));
  const std::string windows = crlf(kStream);
  cuts.clear();
  for (std::size_t i = 1; i < windows.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(parse_in_pieces(windows, cuts), parse_in_pieces(kStream, {}));
}

TEST(SseParser, RandomSplitsWithASeededRng) {
  SeededRng rng(2026);
  const auto whole = parse_in_pieces(kStream, {});
  for (int round = 0; round < 500; ++round) {
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (true) {
      at += 1 + rng.next_u64() % 40;
      if (at >= kStream.size()) break;
      cuts.push_back(at);
    }
    ASSERT_EQ(parse_in_pieces(kStream, cuts), whole) << "round " << round;
  }
}

TEST(SseParser, CommentsMultiLineDataEventNamesAndBareCr) {
  const std::string s =
      ": comment\r"
      "event: error\r\n"
      "data: {\"error\":\r\n"
      "data:  {\"message\":\"boom\"}}\n"
      "id: 7\n"
      "retry: 100\n"
      "\n"
      "data\n"
      "\n"
      "event: ignored-without-data\n"
      "\n"
      "data:x\n\n";
  auto events = parse_in_pieces(s, {});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], (Seen{"error", "{\"error\":\n {\"message\":\"boom\"}}"}));
  EXPECT_EQ(events[1], (Seen{"message", ""}));
  EXPECT_EQ(events[2], (Seen{"message", "x"}));
}

TEST(SseParser, UnfinishedEventIsHeld) {
  wire::SseParser parser;
  int count = 0;
  parser.feed("data: {\"a\":1}\n", [&](const wire::SseEvent&) { ++count; });
  EXPECT_EQ(count, 0);
  EXPECT_GT(parser.pending(), 0u);
  parser.feed("\n", [&](const wire::SseEvent&) { ++count; });
  EXPECT_EQ(count, 1);
}

TEST(StreamChunks, AggregateContentParallelToolCallsAndUsage) {
  wire::StreamAccumulator acc;
  std::string text;
  int with_content = 0;
  for (const Seen& e : parse_in_pieces(kStream, {})) {
    if (e.data == "[DONE]") continue;
    ChatChunk chunk;
    auto failure = wire::decode_chunk(e.data, chunk);
    ASSERT_FALSE(failure.has_value()) << failure->message;
    text += chunk.content();
    with_content += wire::has_content(chunk) ? 1 : 0;
    acc.add(chunk);
  }
  EXPECT_EQ(text, "Hello");
  EXPECT_EQ(with_content, 5);  // Hel, lo and the three chunks of tool-call pieces
  ASSERT_TRUE(acc.finished());
  ChatResponse r = acc.build();
  EXPECT_EQ(r.id, "c1");
  EXPECT_EQ(r.model, "gpt-4.1");
  EXPECT_EQ(r.text(), "Hello");
  EXPECT_EQ(r.finish_reason(), "tool_calls");
  ASSERT_EQ(r.tool_calls().size(), 2u);
  EXPECT_EQ(r.tool_calls()[0].id, "call_a");
  EXPECT_EQ(r.tool_calls()[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls()[0].arguments, "{\"city\":\"Hanoi\"}");
  EXPECT_EQ(r.tool_calls()[1].id, "call_b");
  EXPECT_EQ(r.tool_calls()[1].arguments, "{\"tz\":\"UTC\"}");
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->total_tokens, 21);
  // The assembled raw JSON decodes back to the same response.
  ChatResponse again;
  std::string raw = r.raw_json;
  ASSERT_FALSE(wire::decode_response(raw, again).has_value());
  EXPECT_EQ(again.text(), "Hello");
  EXPECT_EQ(again.tool_calls()[1].arguments, "{\"tz\":\"UTC\"}");
  EXPECT_EQ(again.usage->completion_tokens, 12);
}

// Decodes `events` (JSON payloads) into one accumulator.
ChatResponse assemble(const std::vector<std::string>& events) {
  wire::StreamAccumulator acc;
  for (const std::string& e : events) {
    ChatChunk chunk;
    auto failure = wire::decode_chunk(e, chunk);
    EXPECT_FALSE(failure.has_value()) << e << ": " << failure->message;
    acc.add(chunk);
  }
  return acc.build();
}

TEST(StreamChunks, ToolCallsWithoutIndexOrTypeComeWhole) {
  // Mistral: no index, no type, the whole call and finish_reason in one chunk.
  ChatResponse one = assemble({
      R"({"id":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})",
      R"({"id":"m","choices":[{"index":0,"delta":{"content":null,"tool_calls":[{"id":"gS","function":{"name":"weather","arguments":"{\"location\": \"SF\"}"}}]},"finish_reason":"tool_calls"}]})",
  });
  ASSERT_EQ(one.tool_calls().size(), 1u);
  EXPECT_EQ(one.tool_calls()[0].id, "gS");
  EXPECT_EQ(one.tool_calls()[0].type, "function");
  EXPECT_EQ(one.tool_calls()[0].arguments, "{\"location\": \"SF\"}");
  EXPECT_EQ(one.finish_reason(), "tool_calls");
  // Two whole calls without an index: in one chunk, or one chunk each.
  ChatResponse together = assemble({
      R"({"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}},{"id":"b","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}]})",
  });
  ASSERT_EQ(together.tool_calls().size(), 2u);
  EXPECT_EQ(together.tool_calls()[1].name, "g");
  ChatResponse apart = assemble({
      R"({"choices":[{"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{}"}}]}}]})",
      R"({"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":"{\"x\":1}"}}]},"finish_reason":"tool_calls"}]})",
  });
  ASSERT_EQ(apart.tool_calls().size(), 2u);
  EXPECT_EQ(apart.tool_calls()[0].arguments, "{}");
  EXPECT_EQ(apart.tool_calls()[1].arguments, "{\"x\":1}");
}

TEST(StreamChunks, ToolCallIndicesMayStartAtOne) {
  // Anthropic's OpenAI layer: text, then a call at index 1 whose first fragment is empty.
  ChatResponse r = assemble({
      R"({"id":"msg","created":0,"choices":[{"index":0,"delta":{"content":"Reading"}}]})",
      R"({"id":"msg","created":0,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"toolu_1","type":"function","function":{"name":"read","arguments":""}}]}}]})",
      R"({"id":"msg","created":0,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"path\":"}}]}}]})",
      R"({"id":"msg","created":0,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"a\"}"}}]}}]})",
      R"({"id":"msg","created":0,"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})",
  });
  EXPECT_EQ(r.text(), "Reading");
  ASSERT_EQ(r.tool_calls().size(), 1u);
  EXPECT_EQ(r.tool_calls()[0].id, "toolu_1");
  EXPECT_EQ(r.tool_calls()[0].arguments, "{\"path\":\"a\"}");
}

TEST(StreamChunks, ChunksInTheWild) {
  // Azure's first chunk: empty id and model, no choices, prompt filter results; a float
  // `created`; chunks without a finish_reason key; usage after the finish chunk; service tier.
  ChatResponse r = assemble({
      R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]})",
      R"({"id":"c","model":"gpt","created":1762317021.5,"service_tier":"default","choices":[{"index":0,"delta":{"role":"assistant","content":"Capital"}}]})",
      R"({"id":"c","model":"gpt","created":1762317021,"choices":[{"index":0,"delta":{"content":" city."},"logprobs":{"content":[{"token":" city","logprob":-0.5}],"refusal":null}}]})",
      R"({"id":"c","model":"gpt","created":1762317021,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
      R"({"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})",
  });
  EXPECT_EQ(r.id, "c");
  EXPECT_EQ(r.model, "gpt");
  EXPECT_EQ(r.created, 1762317021);
  EXPECT_EQ(r.service_tier, "default");
  EXPECT_EQ(r.text(), "Capital city.");
  EXPECT_EQ(r.finish_reason(), "stop");
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->total_tokens, 5);
  auto logprobs = nlohmann::json::parse(r.choices[0].logprobs_json);
  EXPECT_EQ(logprobs["content"].size(), 1u);
  EXPECT_EQ(logprobs["content"][0]["token"], " city");
}

TEST(StreamChunks, ReasoningIsAccumulatedButIsNotContent) {
  wire::StreamAccumulator acc;
  int progress = 0, content = 0;
  for (
      const char* e : {
          R"({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""}}]})",
          R"({"choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Count"}}]})",
          R"({"choices":[{"index":0,"delta":{"reasoning":" the rs."}}]})",
          R"({"choices":[{"index":0,"delta":{"content":"Three."},"finish_reason":"stop"}]})",
      }) {
    ChatChunk chunk;
    ASSERT_FALSE(wire::decode_chunk(e, chunk).has_value());
    progress += wire::has_progress(chunk) ? 1 : 0;
    content += wire::has_content(chunk) ? 1 : 0;
    acc.add(chunk);
  }
  EXPECT_EQ(progress, 3);
  EXPECT_EQ(content, 1);
  ChatResponse r = acc.build();
  EXPECT_EQ(r.reasoning(), "Count the rs.");
  EXPECT_EQ(r.text(), "Three.");
}

TEST(StreamChunks, ARefusalOnlyStreamHasNullContentAsAWholeAnswerHas) {
  wire::StreamAccumulator acc;
  for (const char* e : {
           R"({"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}}]})",
           R"({"choices":[{"index":0,"delta":{"refusal":"I can't help with that."}}]})",
           R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
       }) {
    ChatChunk chunk;
    ASSERT_FALSE(wire::decode_chunk(e, chunk).has_value());
    acc.add(chunk);
  }
  ChatResponse r = acc.build();
  EXPECT_FALSE(r.choices[0].message.content.has_value());
  EXPECT_EQ(r.choices[0].message.refusal, std::optional<std::string>("I can't help with that."));
}

TEST(StreamChunks, ErrorEventsAndMalformedChunks) {
  ChatChunk chunk;
  auto error = wire::decode_chunk(
      R"({"error":{"message":"Upstream overloaded","type":"server_error","code":"503"}})", chunk);
  ASSERT_TRUE(error.has_value());
  ASSERT_TRUE(error->in_band_error.has_value());
  EXPECT_EQ(error->in_band_error->code, "503");
  auto bad = wire::decode_chunk("{\"choices\": [", chunk);
  ASSERT_TRUE(bad.has_value());
  EXPECT_FALSE(bad->in_band_error.has_value());
  // An error beside choices, and a choice that finished with "error", are errors too.
  auto beside = wire::decode_chunk(
      R"({"id":"g","error":{"code":429,"message":"Rate limit exceeded"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]})",
      chunk);
  ASSERT_TRUE(beside && beside->in_band_error);
  EXPECT_EQ(beside->in_band_error->code, "429");
  auto finished =
      wire::decode_chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"error"}]})", chunk);
  ASSERT_TRUE(finished && finished->in_band_error);
  EXPECT_FALSE(wire::decode_chunk(R"({"error":null,"choices":[]})", chunk).has_value());
  auto wrong = wire::decode_chunk(R"({"choices":[{"delta":{"content":7}}]})", chunk);
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->message, "\"content\" is not a string");
}

}  // namespace
}  // namespace failover
