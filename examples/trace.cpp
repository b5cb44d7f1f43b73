// Prints the whole attempt trace of one call, successful or not: which routes were tried, how
// each attempt ended, its latency and the wait before the next one.
//
//   trace BASE_URL [BASE_URL...]   (one endpoint per URL, all in one tier, model "gpt-4.1")

#include <failover/failover.hpp>
#include <failover/format.hpp>  // describe(), operator<< and fmt formatters of results

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s BASE_URL [BASE_URL...]\n", argv[0]);
    return 2;
  }
  failover::ClientOptions options;
  failover::Tier tier;
  for (int i = 1; i < argc; ++i) {
    std::string name = "route" + std::to_string(i);
    options.endpoints.push_back({name, argv[i], "sk-example"});
    tier.routes.push_back({name, "gpt-4.1"});
  }
  options.priority = {tier};
  options.timeouts.total = std::chrono::seconds(20);
  try {
    failover::Client client(options);
    failover::ChatRequest request;
    request.messages = {failover::Message::user("ping")};
    auto result = client.chat(request);
    if (result) {
      std::cout << "answer: " << result->text() << "\n" << *result << "\n";
      return 0;
    }
    std::cout << "error: " << result.error() << "\n";
    return 1;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bad options: %s\n", e.what());
    return 2;
  }
}
