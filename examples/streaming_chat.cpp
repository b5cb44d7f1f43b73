// Streams an answer and prints each token as it arrives.
//
//   streaming_chat [BASE_URL] [MESSAGE]      (default: http://127.0.0.1:18081/v1, "Say hello")
//
// Against scripts/demo.sh's local upstreams it prints "Hello".

#include <failover/failover.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  std::string base = argc > 1 ? argv[1] : "http://127.0.0.1:18081/v1";
  std::string message = argc > 2 ? argv[2] : "Say hello";

  failover::ClientOptions options;
  options.endpoints = {{"local", base, "sk-local"}};
  options.priority = {failover::Tier{{{"local", "gpt-4.1"}}}};
  options.timeouts.first_byte = std::chrono::seconds(10);
  options.timeouts.idle = std::chrono::seconds(10);
  failover::Client client(options);

  failover::ChatRequest request;
  request.messages = {failover::Message::user(message)};
  request.include_usage = true;
  auto result = client.chat_stream(request, [](const failover::ChatChunk& chunk) {
    std::fwrite(chunk.content().data(), 1, chunk.content().size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputc('\n', stdout);
  if (!result) {
    const failover::Error& e = result.error();
    std::fprintf(stderr, "%s: %s\n", std::string(failover::to_string(e.kind())).c_str(),
                 e.message().c_str());
    if (e.partial()) {
      std::fprintf(stderr, "received before the break: \"%s\"\n", e.partial()->text().c_str());
    }
    return 1;
  }
  return 0;
}
