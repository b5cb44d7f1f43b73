#pragma once

// Shares state with the fleet through a StateStore. Route state goes off the call path: calls
// queue what their routes learn (a breaker trip, a recovery, a 429 cooldown), and one
// background thread publishes it at once and reads the fleet's state every `sync_interval`,
// applying it as holds on the local routes. With the default breaker, the calls each route
// served or failed go to the fleet's window of its calls at the next round, and a window past
// the breaker's thresholds trips the route for the fleet. Budget reservations and rate-limit
// permits must be atomic across processes, so a call asks the store for them itself (one round
// trip, bounded by the store's call timeout); what gives them back is queued for the thread. A
// store that fails is retried on the next round; meanwhile the client serves on its own state
// (fail-open), logs once per outage and counts the errors.

#include <failover/policy/circuit_breaker.hpp>
#include <failover/state.hpp>

#include "policy/rate_limiter.hpp"
#include "policy/spend.hpp"
#include "traffic/canary.hpp"

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
class RateLimiter;

class StateSync final : public FleetSpend {
 public:
  /** What the client shares: its routes' breakers and cooldowns, its budget (when `spend` has
   *  limits) and the rpm/tpm of its endpoints (`limiters[i]` of `endpoints[i]`, null when it
   *  has no limits). */
  struct Parts {
    const std::vector<std::unique_ptr<RouteState>>* routes = nullptr;
    SpendTracker* spend = nullptr;
    const std::vector<std::unique_ptr<RateLimiter>>* limiters = nullptr;
    std::vector<std::string> endpoints;
    CanaryController* canary = nullptr;  // with the name of its candidate, endpoint/model
    std::string canary_candidate;
    /** The thresholds of the routes' breakers when they are the default one: their failures
     *  are then counted for the fleet too, on the store's windows of calls. */
    std::optional<CircuitBreakerOptions> breaker;
  };
  StateSync(StateOptions options, Parts parts, const Clock& clock, spdlog::logger* logger);
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
  /** An attempt on `route` its breaker heard of ended: a success, or a failure it counts.
   *  Queued for the next round, which adds it to the fleet's window. */
  void call_ended(std::size_t route, bool failure);

  // FleetSpend, from the call path: a reservation asks the store at once (bounded by its call
  // timeout); a settlement is queued, unless the fleet waits on it (`now`).
  std::optional<bool> reserve(WallTime wall, std::int64_t nanos, const SpendCaps& caps) override;
  void settled(std::int64_t released, std::int64_t spent, bool now) override;

  /** This process's name among the holders of budget reservations. */
  const std::string& holder() const { return holder_; }

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
  // An endpoint's fleet-wide buckets, as its RateLimiter sees them. Permits come from the
  // store a lease at a time: about a tenth of a second of the limit (1 to 50 requests, so a
  // small limit is taken one request at a time, exactly), kept here for a second at most and
  // then given back; a call served from the lease pays no round trip.
  class Bucket final : public FleetBucket {
   public:
    Bucket(StateSync& sync, std::size_t endpoint, BucketLimits limits)
        : sync_(sync), endpoint_(endpoint), limits_(limits) {}
    std::optional<Duration> take(double tokens) override;
    void give_back(double requests, double tokens) override;
    const BucketLimits& limits() const { return limits_; }
    /** Ends the lease (when it has run out its time, with `only_ended`): what is left of it
     *  goes back to the fleet at the next round. */
    void return_lease(bool only_ended = false);

   private:
    int lease_size(double tokens) const;
    void return_lease_locked();

    StateSync& sync_;
    std::size_t endpoint_;
    BucketLimits limits_;
    std::mutex mutex_;
    double leased_requests_ = 0;  // the lease: what is left of it, and until when
    double leased_tokens_ = 0;
    TimePoint lease_ends_{};
  };
  struct GiveBack {
    double requests = 0;
    double tokens = 0;
  };

  void push(Event e);  // queued for the thread, which wakes at once
  void run();
  bool has_news_locked() const;                        // what wakes the thread at once
  bool has_pending_locked() const;                     // anything not yet published
  void publish_spend(StateStore& store, bool resync);  // in a round
  void publish_permits(StateStore& store);             // in a round
  void share_canary(StateStore& store);                // in a round
  void publish_calls(StateStore& store);               // in a round
  void fleet_trip(StateStore& store, std::size_t route, Duration period, const std::string& why);
  // One round: publish the queue, read the fleet's state and apply it. False on a store error.
  bool round(bool resync);
  // The parts of a round that a refused key may cost, each on its own.
  enum class Part { Routes, Spend, Permits, Canary };
  template <class F>
  void guarded(Part part, F&& fn);        // runs `fn`; a StateRefused is counted and logged once
  char refused_parts_[4] = {0, 0, 0, 0};  // a refusal was logged for the part
  void apply(std::size_t route, const SharedRoute& shared);
  WallTime to_wall(TimePoint t) const;
  TimePoint to_steady(WallTime w) const;
  void failed(const std::string& why);

  StateOptions options_;
  const std::vector<std::unique_ptr<RouteState>>& routes_;
  SpendTracker* spend_;  // null when the client has no budget
  std::vector<std::string> endpoints_;
  std::vector<std::unique_ptr<Bucket>> buckets_;  // per endpoint; null without rpm/tpm
  std::string holder_;
  CanaryController* canary_;
  std::string canary_candidate_;
  std::uint64_t canary_published_ = 0;   // the controller's changes the fleet has heard of
  std::uint64_t canary_generation_ = 0;  // the store's generation this process is at
  bool canary_refused_logged_ = false;
  const Clock& clock_;
  spdlog::logger* logger_;
  std::vector<std::string> names_;                  // endpoint/model of each route
  std::vector<std::optional<WallTime>> seen_open_;  // the fleet's last open_until per route
  std::vector<std::optional<WallTime>> own_open_;   // the open_until this process published
  std::vector<char> refused_logged_;                // a refused value was logged for the route
  std::optional<CircuitBreakerOptions> breaker_;    // Parts::breaker
  std::size_t window_keep_ = 0;       // calls a route's fleet window keeps (with breaker_)
  std::atomic<bool> windows_{false};  // the fleet's windows are kept and used

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Event> queue_;
  std::int64_t unsettled_released_ = 0;  // settlements not yet published
  std::int64_t unsettled_spent_ = 0;
  std::int64_t settled_directly_ = 0;     // by calls, since the last read of the fleet's spend
  std::vector<GiveBack> give_backs_;      // per endpoint, not yet published
  std::vector<std::vector<bool>> calls_;  // per route: calls that ended, not yet published
  bool canary_news_ = false;              // the canary decided something that must go out
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> reachable_{true};
};

}  // namespace failover::detail
