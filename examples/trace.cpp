// Prints the whole attempt trace of one call, successful or not: which routes were tried, how
// each attempt ended, its latency and the wait before the next one.
//
//   trace BASE_URL [BASE_URL...]   (one endpoint per URL, all in one tier, model "gpt-4.1")

#include <failover/failover.hpp>

#include <cstdio>
#include <string>

namespace {

void print_trace(const std::vector<failover::Attempt>& attempts) {
  std::printf("%-3s %-24s %-24s %6s %12s %10s\n", "#", "route", "outcome", "status", "latency_ms",
              "delay_ms");
  int n = 0;
  for (const failover::Attempt& a : attempts) {
    std::string route = a.route.endpoint + "/" + a.route.model;
    std::printf("%-3d %-24s %-24s %6d %12.2f %10.0f\n", ++n, route.c_str(), a.outcome().c_str(),
                a.status, std::chrono::duration<double, std::milli>(a.latency).count(),
                std::chrono::duration<double, std::milli>(a.delay).count());
  }
}

}  // namespace

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
      std::printf("answer: %s\nserved by: %s/%s\n", result->text().c_str(),
                  result->served_by.endpoint.c_str(), result->served_by.model.c_str());
      print_trace(result->attempts);
      return 0;
    }
    const failover::Error& e = result.error();
    std::printf("error: %s: %s\n", std::string(failover::to_string(e.kind())).c_str(),
                e.message().c_str());
    print_trace(e.attempts());
    return 1;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bad options: %s\n", e.what());
    return 2;
  }
}
