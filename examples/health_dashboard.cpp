// A refreshing table of route health while traffic flows.
//
//   health_dashboard CONFIG [SECONDS]     (default 10 seconds; stops by itself)
//
// Sends one call every 100 ms through the configured client and redraws, once a second, what
// Client::health() sees: breaker state, calls in flight, success rate, latency percentiles,
// EWMA, the last error and when an open route comes back.

#include <failover/failover.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

double ms(failover::Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void draw(const failover::HealthSnapshot& h, int calls, int ok) {
  std::printf("\033[H\033[2J");  // clear the screen
  std::printf("calls %d, succeeded %d\n\n", calls, ok);
  std::printf("%-24s %-10s %4s %8s %9s %9s %9s %9s  %s\n", "route", "breaker", "busy", "success",
              "p50 ms", "p95 ms", "p99 ms", "ewma ms", "last error / back in");
  for (const failover::RouteHealth& r : h.routes) {
    std::string route = r.route.endpoint + "/" + r.route.model;
    std::string note = r.last_error ? std::string(failover::to_string(*r.last_error)) : "-";
    if (r.reopens_at)
      note += ", reopens in " + std::to_string(static_cast<int>(ms(*r.reopens_at - h.at))) + " ms";
    if (r.cooldown_until)
      note += ", cooling down " + std::to_string(static_cast<int>(ms(*r.cooldown_until - h.at))) +
              " ms";
    std::printf("%-24s %-10s %4d %7.1f%% %9.2f %9.2f %9.2f %9.2f  %s\n", route.c_str(),
                std::string(failover::to_string(r.state)).c_str(), r.in_flight,
                r.success_rate * 100.0, ms(r.p50), ms(r.p95), ms(r.p99), ms(r.ewma), note.c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CONFIG [SECONDS]\n", argv[0]);
    return 2;
  }
  int seconds = argc > 2 ? std::atoi(argv[2]) : 10;
  try {
    failover::Client client = failover::Client::from_config_file(argv[1]);
    failover::ChatRequest request;
    request.messages = {failover::Message::user("ping")};
    failover::CallOptions call;
    call.timeout = std::chrono::seconds(5);
    int calls = 0, ok = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    auto next_draw = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < end) {
      ++calls;
      ok += client.chat(request, call) ? 1 : 0;
      if (std::chrono::steady_clock::now() >= next_draw) {
        draw(client.health(), calls, ok);
        next_draw += std::chrono::seconds(1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    draw(client.health(), calls, ok);
    return 0;
  } catch (const failover::ConfigError& e) {
    std::fprintf(stderr, "bad configuration: %s\n", e.what());
    return 2;
  }
}
