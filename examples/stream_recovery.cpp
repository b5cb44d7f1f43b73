// A stream that breaks mid-answer, recovered by a restart on the fallback route. The handler
// keeps what the user sees on "screen" and clears it at the restart notice, as a chat UI must.
//
//   stream_recovery [PRIMARY_URL] [FALLBACK_URL]
//       (defaults: http://127.0.0.1:18082/v1 and http://127.0.0.1:18081/v1)
//
// With examples/mock/cut_stream.json on the primary (it sends "Hel", then drops the
// connection) and examples/mock/healthy.json on the fallback, it prints:
//   Hel
//   [the stream broke: discarding 3 characters, restarting]
//   Hello
//   screen: Hello (the whole answer, from fallback)

#include <failover/failover.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  const std::string primary = argc > 1 ? argv[1] : "http://127.0.0.1:18082/v1";
  const std::string fallback = argc > 2 ? argv[2] : "http://127.0.0.1:18081/v1";

  failover::ClientOptions options;
  options.endpoints = {{"primary", primary, "sk-primary"}, {"fallback", fallback, "sk-fallback"}};
  options.priority = {failover::Tier{{{"primary", "gpt-4.1"}, {"fallback", "gpt-4.1"}}}};
  options.timeouts.first_byte = std::chrono::seconds(10);
  options.timeouts.idle = std::chrono::seconds(10);
  // Restart: a broken stream is answered again, whole, by the next route. Continue would send
  // the partial answer to an endpoint with `continuation = Continuation::Prefill` and stream
  // only the rest.
  options.stream_recovery = failover::StreamRecovery::Restart;
  failover::Client client(options);

  failover::ChatRequest request;
  request.messages = {failover::Message::user("Say hello")};
  std::string screen;  // what the user sees
  auto result = client.chat_stream(request, [&](const failover::ChatChunk& chunk) {
    if (chunk.restart) {  // everything shown so far is void: the whole answer follows
      std::printf("\n[the stream broke: discarding %zu characters, restarting]\n", screen.size());
      screen.clear();
      return true;
    }
    screen += chunk.content();
    std::fwrite(chunk.content().data(), 1, chunk.content().size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (!result) {
    const failover::Error& e = result.error();
    std::fprintf(stderr, "%s: %s\n", std::string(failover::to_string(e.kind())).c_str(),
                 e.message().c_str());
    return 1;
  }
  std::printf("screen: %s (%s, from %s)\n", screen.c_str(),
              screen == result->text() ? "the whole answer" : "NOT the answer",
              result->served_by.endpoint.c_str());
  return screen == result->text() ? 0 : 1;
}
