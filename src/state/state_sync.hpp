#pragma once

// Shares route state with the fleet through a StateStore, off the call path: calls queue what
// their routes learn (a breaker trip, a recovery, a 429 cooldown), and one background thread
// publishes it at once and reads the fleet's state every `sync_interval`, applying it as holds
// on the local routes. A store that fails is retried on the next round; meanwhile the client
// serves on its own state (fail-open), logs once per outage and counts the errors.

#include <failover/state.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace spdlog {
class logger;
}

namespace failover::detail {

struct RouteState;

class StateSync {
 public:
  StateSync(StateOptions options, const std::vector<std::unique_ptr<RouteState>>& routes,
            const Clock& clock, spdlog::logger* logger);
  /** Publishes what is still queued (each store call bounded by the store's own timeout), then
   *  stops the thread. */
  ~StateSync();
  StateSync(const StateSync&) = delete;
  StateSync& operator=(const StateSync&) = delete;

  /** Reads the fleet's state once, now, then starts the background thread. */
  void start();

  // From the call path: queued for the thread (cheap; these events are rare).
  void opened(std::size_t route, TimePoint until);
  void closed(std::size_t route);
  void cooling(std::size_t route, TimePoint until);

  /** Store calls that failed. */
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  /** Whether the last exchange with the store worked. */
  bool reachable() const { return reachable_.load(std::memory_order_relaxed); }
  const StateStore& store() const { return *options_.store; }

 private:
  struct Event {
    enum class Kind { Opened, Closed, Cooling } kind;
    std::size_t route;
    WallTime until;
  };
  void run();
  // One round: publish the queue, read the fleet's state and apply it. False on a store error.
  bool round(bool resync);
  void apply(std::size_t route, const SharedRoute& shared);
  WallTime to_wall(TimePoint t) const;
  TimePoint to_steady(WallTime w) const;
  void failed(const std::string& why);

  StateOptions options_;
  const std::vector<std::unique_ptr<RouteState>>& routes_;
  const Clock& clock_;
  spdlog::logger* logger_;
  std::vector<std::string> names_;                  // endpoint/model of each route
  std::vector<std::optional<WallTime>> seen_open_;  // the fleet's last open_until per route
  std::vector<std::optional<WallTime>> own_open_;   // the open_until this process published
  std::vector<char> refused_logged_;                // a refused value was logged for the route

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Event> queue_;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> reachable_{true};
};

}  // namespace failover::detail
