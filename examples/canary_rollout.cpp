// A canary roll-out with automatic rollback: 10 % of users try the candidate first. The
// candidate here is broken (it answers 503), so the canary rolls back after its second error,
// the alert callback fires once, and no user ever sees an error: each failed canary attempt
// fails over to the primary.
//
//   canary_rollout [PRIMARY_URL] [CANDIDATE_URL]
//       (default: http://127.0.0.1:18081/v1 and http://127.0.0.1:18082/v1, scripts/demo.sh's
//        healthy and overloaded upstreams)

#include <failover/failover.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  std::string primary = argc > 1 ? argv[1] : "http://127.0.0.1:18081/v1";
  std::string candidate = argc > 2 ? argv[2] : "http://127.0.0.1:18082/v1";

  failover::ClientOptions options;
  options.endpoints = {{"stable", primary, "sk-stable"}, {"next", candidate, "sk-next"}};
  options.priority = {failover::Tier{{{"stable", "gpt-4.1"}}}};
  options.canary.candidate = failover::RouteRef{"next", "gpt-4.1"};
  options.canary.steps = {10, 50, 100};
  options.canary.step = std::chrono::minutes(5);
  options.canary.rollback.min_calls = 20;  // 2 errors in 20 calls is 10 %: above 5 %
  int alerts = 0;
  options.canary.on_rollback = [&](const failover::CanaryAlert& alert) {
    ++alerts;  // in production: page someone
    std::printf("rolled back at %.0f %%: %s\n", alert.percent, alert.reason.c_str());
  };
  failover::Client client(options);

  int served = 0;
  for (int i = 0; i < 200; ++i) {
    failover::ChatRequest request;
    request.messages = {failover::Message::user("ping")};
    failover::CallOptions call;
    call.user = "user-" + std::to_string(i);  // sticky: a user keeps its side
    if (client.chat(request, call)) ++served;
  }
  failover::CanaryStatus status = *client.canary();
  std::printf("served %d of 200 calls; canary %s at %.0f %%; %d alert\n", served,
              std::string(failover::to_string(status.state)).c_str(), status.percent, alerts);
  return served == 200 && alerts == 1 ? 0 : 1;
}
