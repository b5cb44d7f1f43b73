// Shadow traffic: every call is also sent, in the background, to a candidate model, and the
// two answers are compared. The caller only ever sees the primary's answer.
//
//   shadow_compare [BASE_URL]      (default: http://127.0.0.1:18081/v1)
//
// Against scripts/demo.sh's local upstreams it prints the comparison of 20 pairs and READY.

#include <failover/failover.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  std::string base = argc > 1 ? argv[1] : "http://127.0.0.1:18081/v1";

  failover::ClientOptions options;
  options.endpoints = {{"local", base, "sk-local"}};
  options.priority = {failover::Tier{{{"local", "gpt-4.1"}}}};
  options.shadow.candidate = failover::RouteRef{"local", "deepseek-v3.2"};
  options.shadow.sample = 1.0;  // mirror every call (in production: a few percent)
  options.shadow.thresholds.min_pairs = 20;
  options.shadow.thresholds.max_p95_ratio = 5;  // loopback latencies are a few ms of noise
  failover::Client client(options);

  for (int i = 0; i < 20; ++i) {
    failover::ChatRequest request;
    request.messages = {failover::Message::user("Say hello, #" + std::to_string(i))};
    auto result = client.chat(request);  // the mirror never delays or fails this call
    if (!result) {
      std::fprintf(stderr, "call failed: %s\n", result.error().message().c_str());
      return 1;
    }
  }
  if (!client.wait_for_shadow(std::chrono::seconds(30))) {
    std::fprintf(stderr, "mirrors still in flight after 30 s\n");
    return 1;
  }
  failover::ShadowReport r = *client.shadow_report();
  std::printf("pairs %llu, candidate answered %llu, mean similarity %.3f, exact %.0f %%\n",
              static_cast<unsigned long long>(r.pairs),
              static_cast<unsigned long long>(r.candidate_ok), r.mean_similarity,
              r.exact_match_rate * 100);
  std::printf("%s\n", std::string(failover::to_string(r.recommendation)).c_str());
  for (const std::string& why : r.reasons) std::fprintf(stderr, "  %s\n", why.c_str());
  return 0;
}
