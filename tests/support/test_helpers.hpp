#pragma once

// Small helpers shared by the unit and integration tests.

#include <failover/failover.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace failover::testing {

using Strings = std::vector<std::string>;

#ifndef FAILOVER_TEST_TIME_SCALE
#define FAILOVER_TEST_TIME_SCALE 1
#endif
/** How much longer than a plain build a sanitized one needs for real-time steps (a short
 *  limit a test races on purpose): 1, or 4 under ASan or TSan. */
inline constexpr int kTimeScale = FAILOVER_TEST_TIME_SCALE;

/** Waits (real time, polling every 2 ms) until `done()` holds, for `limit` at most; returns
 *  whether it did. For what a background thread brings about; a hang guard, not a timing. */
template <typename F>
bool eventually(F done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return done();
}

/** Calls served and refused for the budget by `threads` threads making `calls` calls each of
 *  `request` on `client` at once; any other failure is a test failure. */
struct BudgetRace {
  int served = 0;
  int refused = 0;
};
inline BudgetRace race_for_the_budget(Client& client, const ChatRequest& request, int threads,
                                      int calls) {
  std::atomic<int> served{0}, refused{0};
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&] {
      for (int i = 0; i < calls; ++i) {
        auto r = client.chat(request);
        if (r) {
          ++served;
        } else if (r.error().kind() == ErrorKind::BudgetExceeded) {
          ++refused;
        } else {
          ADD_FAILURE() << r.error().message();
        }
      }
    });
  }
  for (std::thread& t : running) t.join();
  return {served.load(), refused.load()};
}

/** A one-message request: the user says "ping". */
inline ChatRequest ping() {
  ChatRequest r;
  r.messages = {Message::user("ping")};
  return r;
}

/** "endpoint:outcome" for each attempt of a trace. */
inline Strings outcomes(const std::vector<Attempt>& attempts) {
  Strings out;
  for (const Attempt& a : attempts) out.push_back(a.route.endpoint + ":" + a.outcome());
  return out;
}

}  // namespace failover::testing
