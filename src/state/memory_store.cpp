// The in-process StateStore: one map under a mutex, shared by the clients that hold it.

#include <failover/state.hpp>

#include "util/utc_date.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

namespace failover {

namespace {

class MemoryStore final : public StateStore {
 public:
  void route_opened(const std::string& route, WallTime until) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<WallTime>& open = routes_[route].open_until;
    open = open ? std::max(*open, until) : until;
  }
  void route_closed(const std::string& route) override {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_[route].open_until.reset();
  }
  void route_cooling(const std::string& route, WallTime until) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<WallTime>& cooldown = routes_[route].cooldown_until;
    cooldown = cooldown ? std::max(*cooldown, until) : until;
  }
  std::vector<SharedRoute> routes(const std::vector<std::string>& names) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<SharedRoute> out;
    out.reserve(names.size());
    for (const std::string& name : names) {
      auto it = routes_.find(name);
      out.push_back(it == routes_.end() ? SharedRoute{} : it->second);
    }
    return out;
  }
  void reset_route(const std::string& route) override {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_.erase(route);
  }
  std::string describe() const override { return "memory"; }

  bool reserve_spend(const std::string& holder, WallTime now, std::int64_t nanos,
                     const SpendCaps& caps, WallTime alive_until) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::int64_t held = live_held_locked(now);
    auto within = [&](const std::optional<std::int64_t>& cap, const std::string& period) {
      const std::int64_t spent = spent_[period];
      return !cap ||
             (spent < *cap && ((caps.admit_alone && held == 0) || spent + held + nanos <= *cap));
    };
    if (!within(caps.day_nanos, day_key(now)) || !within(caps.month_nanos, month_key(now))) {
      return false;
    }
    Holder& h = holders_[holder];
    h.held += nanos;
    h.alive_until = std::max(h.alive_until, alive_until);
    return true;
  }
  void settle_spend(const std::string& holder, WallTime now, std::int64_t released,
                    std::int64_t spent) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = holders_.find(holder); it != holders_.end()) {
      it->second.held = std::max<std::int64_t>(0, it->second.held - released);
    }
    spent_[day_key(now)] += spent;
    spent_[month_key(now)] += spent;
  }
  void keep_holder(const std::string& holder, WallTime alive_until,
                   std::optional<std::int64_t> held) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Holder& h = holders_[holder];
    h.alive_until = std::max(h.alive_until, alive_until);
    if (held) h.held = *held;
  }
  SharedSpend spend(WallTime now) override {
    std::lock_guard<std::mutex> lock(mutex_);
    SharedSpend s;
    s.day_nanos = spent_[day_key(now)];
    s.month_nanos = spent_[month_key(now)];
    s.held_nanos = live_held_locked(now);
    return s;
  }
  void reset_spend(WallTime now) override {
    std::lock_guard<std::mutex> lock(mutex_);
    spent_.erase(day_key(now));
    spent_.erase(month_key(now));
    holders_.clear();
  }

  SharedCanary canary(const std::string& candidate) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = canaries_.find(candidate);
    return it == canaries_.end() ? SharedCanary{} : it->second;
  }
  std::uint64_t publish_canary(const std::string& candidate, const SharedCanary& next,
                               std::optional<std::uint64_t> expected) override {
    std::lock_guard<std::mutex> lock(mutex_);
    SharedCanary& held = canaries_[candidate];
    if (expected && held.generation != *expected) return 0;
    const std::uint64_t generation = held.generation + 1;
    held = next;
    held.generation = generation;
    held.refused.clear();
    return generation;
  }

  Permits take_permits(const std::string& endpoint, WallTime now, const BucketLimits& limits,
                       double tokens, int count) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Bucket& b = refill_locked(endpoint, now, limits);
    // How many of the requests the buckets hold.
    double n = count;
    if (limits.rpm) n = std::min(n, std::floor(b.requests + 1e-9));
    if (limits.tpm && tokens >= *limits.tpm) {
      n = std::min(n, b.tokens + 1e-9 >= *limits.tpm ? 1.0 : 0.0);  // alone, on a full bucket
    } else if (limits.tpm && tokens > 0) {
      n = std::min(n, std::floor((b.tokens + 1e-9) / tokens));
    }
    if (n >= 1) {
      b.requests -= n;
      b.tokens -= n * tokens;
      return Permits{static_cast<int>(n), Duration::zero()};
    }
    // Time until a bucket holds what one request needs, rounded up to the millisecond (past
    // floating-point dust).
    auto wait = [](double have, double wanted, double per_minute) {
      if (have + 1e-9 >= wanted) return Duration::zero();
      return std::chrono::duration_cast<Duration>(std::chrono::milliseconds(
          static_cast<std::int64_t>(std::ceil((wanted - have) / per_minute * 60000.0 - 1e-6))));
    };
    Duration due = Duration::zero();
    if (limits.rpm) due = std::max(due, wait(b.requests, 1.0, *limits.rpm));
    if (limits.tpm) due = std::max(due, wait(b.tokens, std::min(tokens, *limits.tpm), *limits.tpm));
    return Permits{0, due};
  }
  void return_permit(const std::string& endpoint, WallTime now, const BucketLimits& limits,
                     double requests, double tokens) override {
    std::lock_guard<std::mutex> lock(mutex_);
    Bucket& b = refill_locked(endpoint, now, limits);
    if (limits.rpm) b.requests = std::min(*limits.rpm, b.requests + requests);
    if (limits.tpm) b.tokens = std::min(*limits.tpm, b.tokens + tokens);
  }

 private:
  struct Holder {
    std::int64_t held = 0;
    WallTime alive_until{};
  };
  struct Bucket {
    double requests = 0;
    double tokens = 0;
    WallTime at{};
  };

  static std::string day_key(WallTime t) { return "day:" + detail::day_text(t); }
  static std::string month_key(WallTime t) { return "month:" + detail::month_text(t); }

  std::int64_t live_held_locked(WallTime now) {
    std::int64_t held = 0;
    for (auto it = holders_.begin(); it != holders_.end();) {
      if (it->second.alive_until < now) {
        it = holders_.erase(it);  // a process not heard from: its reservations go
      } else {
        held += it->second.held;
        ++it;
      }
    }
    return held;
  }

  // A bucket starts full and refills continuously, a minute's worth at most.
  Bucket& refill_locked(const std::string& endpoint, WallTime now, const BucketLimits& limits) {
    auto [it, fresh] = buckets_.try_emplace(endpoint);
    Bucket& b = it->second;
    if (fresh) {
      b.requests = limits.rpm.value_or(0);
      b.tokens = limits.tpm.value_or(0);
      b.at = now;
    } else if (now > b.at) {
      const double minutes = std::chrono::duration<double>(now - b.at).count() / 60.0;
      if (limits.rpm) b.requests = std::min(*limits.rpm, b.requests + *limits.rpm * minutes);
      if (limits.tpm) b.tokens = std::min(*limits.tpm, b.tokens + *limits.tpm * minutes);
      b.at = now;
    }
    return b;
  }

  std::mutex mutex_;
  std::map<std::string, SharedRoute> routes_;
  std::map<std::string, std::int64_t> spent_;  // by period ("day:2026-12-01", "month:2026-12")
  std::map<std::string, Holder> holders_;
  std::map<std::string, Bucket> buckets_;
  std::map<std::string, SharedCanary> canaries_;
};

}  // namespace

std::shared_ptr<StateStore> make_memory_store() { return std::make_shared<MemoryStore>(); }

}  // namespace failover
