// One process of a test fleet: a client made from a configuration file runs calls on several
// threads for a bounded time and count, then prints what happened as one JSON object:
//   {"calls": N, "ok": N, "errors": {"kind": N}, "served_by": {"endpoint": N},
//    "failed_attempts": N, "last": endpoint that served the last call,
//    "canary": {"state": S, "reason": R} | null}
// Usage: fleet_worker CONFIG THREADS SECONDS MAX_CALLS_PER_THREAD [MAX_TOKENS] [PAUSE_MS]
// A thread stops early once budget_exceeded has answered it for a whole second (the fleet's
// budget is spent, reservations in flight included). Exit 0 unless the arguments are wrong.

#include <failover/failover.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fo = failover;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: fleet_worker CONFIG THREADS SECONDS MAX_CALLS [MAX_TOKENS] [PAUSE_MS]\n";
    return 2;
  }
  const int threads = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  const int max_calls = std::atoi(argv[4]);
  const int max_tokens = argc > 5 ? std::atoi(argv[5]) : 0;
  const int pause_ms = argc > 6 ? std::atoi(argv[6]) : 0;
  if (threads < 1 || threads > 256 || seconds <= 0 || seconds > 120 || max_calls < 1) {
    std::cerr << "fleet_worker: THREADS 1..256, SECONDS up to 120, MAX_CALLS at least 1\n";
    return 2;
  }
  std::optional<fo::Client> client;
  try {
    client.emplace(fo::options_from_file(argv[1]));
  } catch (const std::exception& e) {
    std::cerr << "fleet_worker: " << e.what() << "\n";
    return 2;
  }
  std::mutex mutex;
  std::map<std::string, int> errors;
  std::map<std::string, int> served_by;
  std::string last;         // the endpoint that served the latest call
  int failed_attempts = 0;  // attempts that failed inside calls that were served
  std::atomic<int> calls{0};
  std::atomic<int> ok{0};
  const Clock::time_point end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                   std::chrono::duration<double>(seconds));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      fo::ChatRequest request;
      request.messages = {fo::Message::user("hi")};
      if (max_tokens > 0) request.max_tokens = max_tokens;
      Clock::time_point refused_since{};  // of the refusals in a row; epoch = none
      for (int i = 0; i < max_calls && Clock::now() < end; ++i) {
        fo::CallOptions options;
        options.user = "user-" + std::to_string(t) + "-" + std::to_string(i);
        auto r = client->chat(request, options);
        ++calls;
        std::chrono::milliseconds pause(pause_ms);
        if (r) {
          ++ok;
          refused_since = Clock::time_point{};
          std::lock_guard<std::mutex> lock(mutex);
          ++served_by[r->served_by.endpoint];
          last = r->served_by.endpoint;
          for (const fo::Attempt& a : r->attempts) failed_attempts += a.error ? 1 : 0;
        } else {
          const fo::ErrorKind kind = r.error().kind();
          {
            std::lock_guard<std::mutex> lock(mutex);
            ++errors[std::string(fo::to_string(kind))];
          }
          if (kind == fo::ErrorKind::BudgetExceeded) {
            if (refused_since == Clock::time_point{}) refused_since = Clock::now();
            if (Clock::now() - refused_since > std::chrono::seconds(1)) break;
            pause = std::max(pause, std::chrono::milliseconds(20));
          } else if (kind == fo::ErrorKind::RateLimited) {
            pause = std::max(pause, std::chrono::milliseconds(20));
          }
        }
        if (pause.count() > 0) std::this_thread::sleep_for(pause);
      }
    });
  }
  for (std::thread& t : pool) t.join();
  nlohmann::json out = {{"calls", calls.load()},
                        {"ok", ok.load()},
                        {"errors", errors},
                        {"served_by", served_by},
                        {"failed_attempts", failed_attempts},
                        {"last", last},
                        {"canary", nullptr}};
  if (std::optional<fo::CanaryStatus> c = client->canary()) {
    out["canary"] = {{"state", std::string(fo::to_string(c->state))}, {"reason", c->reason}};
  }
  client.reset();  // publishes what is still queued before the process ends
  std::cout << out.dump() << std::endl;
  return 0;
}
