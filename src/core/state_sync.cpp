#include "core/state_sync.hpp"

#include "core/client_core.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include <unistd.h>

namespace failover::detail {

namespace {
// While the store is unreachable, how long between attempts to reach it again.
constexpr Duration kRetryInterval = std::chrono::seconds(1);
// The half-open probe belongs to the process whose trip the fleet holds: the others wait this
// long past the open period for its verdict (a close ends their hold, a new trip extends it)
// before they try the route themselves.
constexpr Duration kProbeWindow = std::chrono::seconds(10);

// Rate-limit leases: a tenth of a second of the limit, 50 requests at most, for a second.
constexpr double kLeaseShare = 0.1 / 60.0;
constexpr double kMaxLease = 50;
constexpr Duration kLeaseLife = std::chrono::seconds(1);

// A process's budget reservations outlive it by at most this long in the store: it renews
// them every round while it holds any.
constexpr Duration kHolderLife = std::chrono::seconds(10);

// A route's window of the fleet's calls is forgotten after this long without a call.
constexpr Duration kWindowLife = std::chrono::minutes(10);

WallTime to_ms(WallTime t) { return std::chrono::time_point_cast<std::chrono::milliseconds>(t); }

// Unique among the processes of a fleet: the host's process id and 64 random bits.
std::string new_holder_name() {
  std::random_device device;
  const std::uint64_t bits = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  char out[64];
  std::snprintf(out, sizeof out, "%ld-%016llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(bits));
  return out;
}
}  // namespace

StateSync::StateSync(StateOptions options, Parts parts, const Clock& clock, spdlog::logger* logger)
    : options_(std::move(options)),
      routes_(*parts.routes),
      spend_(parts.spend && parts.spend->enabled() ? parts.spend : nullptr),
      endpoints_(std::move(parts.endpoints)),
      holder_(new_holder_name()),
      canary_(parts.canary),
      canary_candidate_(std::move(parts.canary_candidate)),
      clock_(clock),
      logger_(logger),
      breaker_(parts.breaker),
      window_keep_(breaker_ ? static_cast<std::size_t>(
                                  std::max(breaker_->window, breaker_->consecutive_failures))
                            : 0),
      windows_(parts.breaker.has_value()) {
  for (const auto& r : routes_) names_.push_back(r->ref.endpoint + "/" + r->ref.model);
  seen_open_.resize(routes_.size());
  own_open_.resize(routes_.size());
  refused_logged_.assign(routes_.size(), 0);
  calls_.resize(routes_.size());
  give_backs_.resize(endpoints_.size());
  for (std::size_t i = 0; i < endpoints_.size(); ++i) {
    RateLimiter* limiter = parts.limiters ? (*parts.limiters)[i].get() : nullptr;
    if (!limiter || !(limiter->limits().rpm || limiter->limits().tpm)) {
      buckets_.push_back(nullptr);
      continue;
    }
    buckets_.push_back(std::make_unique<Bucket>(
        *this, i, BucketLimits{limiter->limits().rpm, limiter->limits().tpm}));
    limiter->share(buckets_.back().get());
  }
  if (spend_) spend_->share(this);
  if (canary_) {
    // A rollback or a command by hand goes out at once, not at the next round.
    canary_->set_listener([this] {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        canary_news_ = true;
      }
      wake_.notify_one();
    });
  }
}

std::optional<bool> StateSync::reserve(WallTime wall, std::int64_t nanos, const SpendCaps& caps) {
  if (!reachable()) return std::nullopt;  // the thread finds out when it is back
  try {
    return options_.store->reserve_spend(holder_, wall, nanos, caps, wall + kHolderLife);
  } catch (const StateBusy&) {  // this once, this process decides alone
    return std::nullopt;
  } catch (const StateRefused&) {
    // The fleet's spend cannot be read (the round logs why): this process decides alone, and
    // keeps asking, since the store itself answers.
    errors_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  } catch (const std::exception& e) {
    failed(e.what());
    return std::nullopt;
  }
}

void StateSync::settled(std::int64_t released, std::int64_t spent, bool now) {
  if (now && reachable()) {
    try {
      options_.store->settle_spend(holder_, clock_.wall_now(), released, spent);
      // Counted as unpublished until the next read of the fleet's spend, which holds it: a
      // read already under way may not.
      std::lock_guard<std::mutex> lock(mutex_);
      settled_directly_ += spent;
      return;
    } catch (const StateBusy&) {  // the round takes it
    } catch (const StateRefused&) {
      errors_.fetch_add(1, std::memory_order_relaxed);
    } catch (const std::exception& e) {
      failed(e.what());
    }
  }
  // Published at the next round: until then the fleet counts the reservation as held, which
  // errs on the safe side, and a call does not cost the thread a round of its own.
  std::lock_guard<std::mutex> lock(mutex_);
  unsettled_released_ += released;
  unsettled_spent_ += spent;
}

int StateSync::Bucket::lease_size(double tokens) const {
  double size = kMaxLease;
  if (limits_.rpm) size = std::min(size, *limits_.rpm * kLeaseShare);
  if (limits_.tpm && tokens > 0) size = std::min(size, *limits_.tpm * kLeaseShare / tokens);
  return std::max(1, static_cast<int>(size));
}

std::optional<Duration> StateSync::Bucket::take(double tokens) {
  std::lock_guard<std::mutex> lock(mutex_);  // one lease at a time per endpoint
  const TimePoint now = sync_.clock_.now();
  if (now < lease_ends_ && leased_requests_ >= 1 && (!limits_.tpm || leased_tokens_ >= tokens)) {
    leased_requests_ -= 1;
    leased_tokens_ -= limits_.tpm ? tokens : 0;
    return std::nullopt;
  }
  return_lease_locked();
  if (!sync_.reachable()) return std::nullopt;  // local permits only, until the store is back
  try {
    const Permits p = sync_.options_.store->take_permits(
        sync_.endpoints_[endpoint_], sync_.clock_.wall_now(), limits_, tokens, lease_size(tokens));
    if (p.granted < 1) return p.wait;
    leased_requests_ = p.granted - 1;  // the first is this call's
    leased_tokens_ = limits_.tpm ? (p.granted - 1) * tokens : 0;
    lease_ends_ = now + kLeaseLife;
    return std::nullopt;
  } catch (const StateBusy&) {  // this once, local permits only
    return std::nullopt;
  } catch (const StateRefused&) {  // the fleet's bucket cannot be read: local permits only
    sync_.errors_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  } catch (const std::exception& e) {
    sync_.failed(e.what());
    return std::nullopt;
  }
}

void StateSync::Bucket::return_lease(bool only_ended) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!only_ended || sync_.clock_.now() >= lease_ends_) return_lease_locked();
}

void StateSync::Bucket::return_lease_locked() {
  if (leased_requests_ > 0 || leased_tokens_ > 0) give_back(leased_requests_, leased_tokens_);
  leased_requests_ = leased_tokens_ = 0;
}

void StateSync::Bucket::give_back(double requests, double tokens) {
  // Published at the next round, like a settlement.
  std::lock_guard<std::mutex> lock(sync_.mutex_);
  sync_.give_backs_[endpoint_].requests += requests;
  sync_.give_backs_[endpoint_].tokens += tokens;
}

StateSync::~StateSync() {
  if (canary_) canary_->set_listener(nullptr);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (const auto& bucket : buckets_) {
    if (bucket) bucket->return_lease();
  }
  // What the last calls learnt still reaches the fleet (the next process starts from it).
  bool pending = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending = has_pending_locked();
  }
  // Even when a call found the store slow (a call's limit is short), the last round is tried:
  // a settlement left out would hold its reservation at the fleet until this holder expires.
  if (pending) round(/*resync=*/!reachable());
}

void StateSync::start() {
  round(true);
  thread_ = std::thread([this] { run(); });
}

void StateSync::opened(std::size_t route, TimePoint until) {
  push(Event{Event::Kind::Opened, route, to_wall(until)});
}

void StateSync::closed(std::size_t route) { push(Event{Event::Kind::Closed, route, WallTime{}}); }

void StateSync::cooling(std::size_t route, TimePoint until) {
  push(Event{Event::Kind::Cooling, route, to_wall(until)});
}

void StateSync::call_ended(std::size_t route, bool failure) {
  if (!windows_.load(std::memory_order_relaxed)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<bool>& calls = calls_[route];
  if (calls.size() == window_keep_) calls.erase(calls.begin());  // the window keeps no more
  calls.push_back(failure);
}

void StateSync::push(Event e) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(e);
  }
  wake_.notify_one();
}

WallTime StateSync::to_wall(TimePoint t) const {
  return clock_.wall_now() + std::chrono::duration_cast<WallTime::duration>(t - clock_.now());
}

TimePoint StateSync::to_steady(WallTime w) const {
  return clock_.now() + std::chrono::duration_cast<Duration>(w - clock_.wall_now());
}

void StateSync::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    const bool up = reachable();
    // While the store is down, new events wait for the next attempt instead of each forcing one.
    wake_.wait_for(lock,
                   up ? options_.sync_interval : std::max(options_.sync_interval, kRetryInterval),
                   [&] { return stopping_ || (up && has_news_locked()); });
    if (stopping_) break;
    lock.unlock();
    round(/*resync=*/!up);
    lock.lock();
  }
}

bool StateSync::round(bool resync) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    events.swap(queue_);
    canary_news_ = false;
  }
  StateStore& store = *options_.store;
  const TimePoint now = clock_.now();
  // A key the store refuses (StateRefused: garbage, another type) costs only what it holds;
  // any other failure ends the round, and the store is unreachable until a round succeeds.
  try {
    if (resync) {  // first contact, or back after an outage: the fleet learns what we know
      for (std::size_t i = 0; i < routes_.size(); ++i) {
        RouteState& r = *routes_[i];
        if (std::optional<TimePoint> until = r.own_open_until(now)) {
          own_open_[i] = to_ms(to_wall(*until));
          guarded(Part::Routes, [&] { store.route_opened(names_[i], *own_open_[i]); });
        }
        if (r.cooldown() > now) {
          guarded(Part::Routes, [&] { store.route_cooling(names_[i], to_wall(r.cooldown())); });
        }
      }
    }
    // Calls first: a trip among the events below starts the window over after them.
    publish_calls(store);
    for (const Event& e : events) {
      guarded(Part::Routes, [&] {
        switch (e.kind) {
          case Event::Kind::Opened:
            own_open_[e.route] = to_ms(e.until);
            store.route_opened(names_[e.route], *own_open_[e.route]);
            break;
          case Event::Kind::Closed:
            store.route_closed(names_[e.route]);
            break;
          case Event::Kind::Cooling:
            store.route_cooling(names_[e.route], e.until);
            break;
        }
      });
    }
    std::vector<SharedRoute> shared = store.routes(names_);
    if (shared.size() != routes_.size()) {
      throw StateStoreError("the store answered for " + std::to_string(shared.size()) +
                            " routes, not " + std::to_string(routes_.size()));
    }
    for (std::size_t i = 0; i < shared.size(); ++i) apply(i, shared[i]);
    guarded(Part::Spend, [&] { publish_spend(store, resync); });
    guarded(Part::Permits, [&] { publish_permits(store); });
    guarded(Part::Canary, [&] { share_canary(store); });
  } catch (const std::exception& e) {  // StateStoreError, or what an application's store throws
    failed(e.what());
    return false;
  }
  if (!reachable_.exchange(true, std::memory_order_relaxed) && logger_) {
    logger_->info("the shared state store {} is reachable again; state resynced", store.describe());
  }
  return true;
}

template <class F>
void StateSync::guarded(Part part, F&& fn) {
  const auto index = static_cast<std::size_t>(part);
  try {
    fn();
    refused_parts_[index] = 0;
  } catch (const StateRefused& e) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (!refused_parts_[index] && logger_) {
      static constexpr const char* kNames[] = {"route state", "budget spend", "rate-limit permits",
                                               "canary"};
      logger_->warn("shared {} refused by the store (the rest is still shared): {}", kNames[index],
                    e.what());
    }
    refused_parts_[index] = 1;
  }
}

bool StateSync::has_news_locked() const { return !queue_.empty() || canary_news_; }

bool StateSync::has_pending_locked() const {
  if (has_news_locked() || unsettled_released_ != 0 || unsettled_spent_ != 0) return true;
  if (std::any_of(calls_.begin(), calls_.end(), [](const auto& c) { return !c.empty(); })) {
    return true;
  }
  return std::any_of(give_backs_.begin(), give_backs_.end(),
                     [](const GiveBack& g) { return g.requests != 0 || g.tokens != 0; });
}

// Settlements go out (kept for the next round if the store fails), the reservations of calls
// still in flight are renewed (after an outage, set: the store may have lost them), and the
// fleet's spend becomes what this process knows.
void StateSync::publish_spend(StateStore& store, bool resync) {
  if (!spend_) return;
  const WallTime wall = clock_.wall_now();
  std::int64_t released = 0, spent = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released = unsettled_released_;
    spent = unsettled_spent_;
  }
  if (released != 0 || spent != 0) {
    store.settle_spend(holder_, wall, released, spent);
    spend_->published(spent);
    std::lock_guard<std::mutex> lock(mutex_);
    unsettled_released_ -= released;
    unsettled_spent_ -= spent;
  }
  const std::int64_t held = spend_->reserved();
  if (resync || held > 0) {
    store.keep_holder(holder_, wall + kHolderLife,
                      resync ? std::optional<std::int64_t>(held) : std::nullopt);
  }
  std::int64_t direct = 0;  // settled with the store before this read: the read holds it
  {
    std::lock_guard<std::mutex> lock(mutex_);
    direct = settled_directly_;
  }
  const SharedSpend fleet = store.spend(wall);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    settled_directly_ -= direct;
  }
  spend_->published(direct);
  spend_->observe_fleet(wall, fleet.day_nanos, fleet.month_nanos);
}

// The calls each route served or failed go to the fleet's window of its calls (one round trip
// per route with news), which trips the route for the fleet past the breaker's thresholds: so
// processes too short-lived to reach them alone (CLI runs, recycled workers) reach them
// together. The fleet's breaker mirrors the default one: no window while the route is open for
// the fleet; after the open period, the next call decides: a failure re-opens it for twice the
// first period (capped), a success closes it. A route whose own breaker is not closed is left
// to it (its trips and recoveries are published as they happen).
void StateSync::publish_calls(StateStore& store) {
  if (!windows_.load(std::memory_order_relaxed)) return;
  std::vector<std::vector<bool>> calls(routes_.size());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    calls.swap(calls_);
    calls_.resize(routes_.size());
  }
  const TimePoint now = clock_.now();
  const WallTime wall = clock_.wall_now();
  const CircuitBreakerOptions& b = *breaker_;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (calls[i].empty() || !routes_[i]->own_breaker_closed(now)) continue;
    const bool half_open = seen_open_[i] && *seen_open_[i] <= wall;
    if (seen_open_[i] && !half_open) continue;  // admitted before the fleet's trip: stale
    guarded(Part::Routes, [&] {
      const std::optional<std::vector<bool>> window =
          store.record_calls(names_[i], calls[i], window_keep_, kWindowLife);
      if (!window) {  // the store keeps no windows: each process counts its own
        windows_.store(false, std::memory_order_relaxed);
        return;
      }
      if (half_open) {
        if (std::find(calls[i].begin(), calls[i].end(), true) != calls[i].end()) {
          fleet_trip(store, i, std::min(b.open_duration * 2, b.max_open_duration),
                     "a call failed after its open period");
        } else {
          store.route_closed(names_[i]);  // the fleet sees it at this round's read
        }
        return;
      }
      const auto failed_in_a_row =
          static_cast<int>(std::find(window->rbegin(), window->rend(), false) - window->rbegin());
      const auto last = std::min(window->size(), static_cast<std::size_t>(b.window));
      const auto failures =
          std::count(window->end() - static_cast<std::ptrdiff_t>(last), window->end(), true);
      if (failed_in_a_row >= b.consecutive_failures) {
        fleet_trip(store, i, b.open_duration,
                   std::to_string(failed_in_a_row) + " calls in a row failed");
      } else if (static_cast<int>(last) >= b.min_calls &&
                 static_cast<double>(failures) >= b.failure_rate * static_cast<double>(last)) {
        fleet_trip(
            store, i, b.open_duration,
            std::to_string(failures) + " of the last " + std::to_string(last) + " calls failed");
      }
    });
    if (!windows_.load(std::memory_order_relaxed)) return;
  }
}

// `route` opens for the fleet for `period`, this process being the one whose verdict the
// others wait for (its next call after the period).
void StateSync::fleet_trip(StateStore& store, std::size_t route, Duration period,
                           const std::string& why) {
  const WallTime until = to_ms(clock_.wall_now() + period);
  own_open_[route] = until;
  store.route_opened(names_[route], until);
  routes_[route]->hold_until(to_steady(until));
  routes_[route]->fleet_decided(clock_.now());
  if (logger_) {
    logger_->info("route {} opened for the fleet for {} ms: across its processes, {}",
                  names_[route],
                  std::chrono::duration_cast<std::chrono::milliseconds>(period).count(), why);
  }
}

// What calls gave back to the fleet's buckets. Lost if the store fails: a bucket the store
// lost or never charged (the call went on local permits) must not be credited.
void StateSync::publish_permits(StateStore& store) {
  for (const auto& bucket : buckets_) {
    if (bucket) bucket->return_lease(/*only_ended=*/true);
  }
  std::vector<GiveBack> gives;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gives.swap(give_backs_);
    give_backs_.resize(endpoints_.size());
  }
  const WallTime wall = clock_.wall_now();
  for (std::size_t i = 0; i < gives.size(); ++i) {
    if (!buckets_[i] || (gives[i].requests == 0 && gives[i].tokens == 0)) continue;
    store.return_permit(endpoints_[i], wall, buckets_[i]->limits(), gives[i].requests,
                        gives[i].tokens);
  }
}

// What this process's canary decided goes out (a rollback or a command by hand wins; an
// advance only if no other process moved first), then the fleet's state comes in.
void StateSync::share_canary(StateStore& store) {
  if (!canary_) return;
  const TimePoint now = clock_.now();
  const CanaryController::Change change = canary_->last_change(now);
  if (change.changes != canary_published_) {
    const std::uint64_t generation = store.publish_canary(
        canary_candidate_, change.shared,
        change.force ? std::nullopt : std::optional<std::uint64_t>(canary_generation_));
    canary_published_ = change.changes;
    if (generation != 0) {
      canary_generation_ = generation;
      return;
    }
  }
  const SharedCanary fleet = store.canary(canary_candidate_);
  if (!fleet.refused.empty()) {
    if (!canary_refused_logged_ && logger_) {
      logger_->warn("shared state of the canary {} refused: {}", canary_candidate_, fleet.refused);
    }
    canary_refused_logged_ = true;
    return;
  }
  if (fleet.generation == 0 || fleet.generation == canary_generation_) return;
  if (!canary_->adopt(now, canary_published_, fleet)) return;  // news of its own go first
  canary_generation_ = fleet.generation;
  if (logger_) {
    logger_->info("canary {}: {} at step {} as the fleet decided{}{}", canary_candidate_,
                  to_string(fleet.state), fleet.step, fleet.reason.empty() ? "" : ": ",
                  fleet.reason);
  }
}

void StateSync::apply(std::size_t i, const SharedRoute& shared) {
  RouteState& r = *routes_[i];
  if (!shared.refused.empty()) {
    if (!refused_logged_[i] && logger_) {
      logger_->warn("shared state of route {} refused: {}", names_[i], shared.refused);
    }
    refused_logged_[i] = 1;
  }
  const TimePoint now = clock_.now();
  if (shared.open_until) {
    // This process's own trip: its breaker probes when the period ends. Another's: wait for
    // that process's probe.
    const bool own = own_open_[i] && to_ms(*own_open_[i]) == to_ms(*shared.open_until);
    const TimePoint until = to_steady(*shared.open_until) + (own ? Duration::zero() : kProbeWindow);
    if (until > now) r.hold_until(until);
    const bool news = seen_open_[i] != shared.open_until;
    seen_open_[i] = shared.open_until;
    if (news && windows_.load(std::memory_order_relaxed)) r.fleet_decided(now);
  } else if (seen_open_[i]) {  // it was open and is no more: a probe passed somewhere
    seen_open_[i].reset();
    r.release_hold(now);
    if (windows_.load(std::memory_order_relaxed)) r.fleet_decided(now);
  }
  if (shared.cooldown_until) {
    const TimePoint until = to_steady(*shared.cooldown_until);
    if (until > now) r.cool_down_until(until, /*publish=*/false);
  }
}

void StateSync::failed(const std::string& why) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  if (reachable_.exchange(false, std::memory_order_relaxed) && logger_) {
    logger_->warn(
        "the shared state store {} is unreachable ({}); serving on this process's own state "
        "until it returns",
        options_.store->describe(), why);
  }
}

}  // namespace failover::detail
