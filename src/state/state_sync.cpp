#include "state/state_sync.hpp"

#include "core/client_core.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace failover::detail {

namespace {
// While the store is unreachable, how long between attempts to reach it again.
constexpr Duration kRetryInterval = std::chrono::seconds(1);
// The half-open probe belongs to the process whose trip the fleet holds: the others wait this
// long past the open period for its verdict (a close ends their hold, a new trip extends it)
// before they try the route themselves.
constexpr Duration kProbeWindow = std::chrono::seconds(10);

WallTime to_ms(WallTime t) { return std::chrono::time_point_cast<std::chrono::milliseconds>(t); }
}  // namespace

StateSync::StateSync(StateOptions options, const std::vector<std::unique_ptr<RouteState>>& routes,
                     const Clock& clock, spdlog::logger* logger)
    : options_(std::move(options)), routes_(routes), clock_(clock), logger_(logger) {
  for (const auto& r : routes_) names_.push_back(r->ref.endpoint + "/" + r->ref.model);
  seen_open_.resize(routes_.size());
  own_open_.resize(routes_.size());
  refused_logged_.assign(routes_.size(), 0);
}

StateSync::~StateSync() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // What the last calls learnt still reaches the fleet (the next process starts from it).
  bool pending = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    pending = !queue_.empty();
  }
  if (pending && reachable()) round(false);
}

void StateSync::start() {
  round(true);
  thread_ = std::thread([this] { run(); });
}

void StateSync::opened(std::size_t route, TimePoint until) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Event{Event::Kind::Opened, route, to_wall(until)});
  }
  wake_.notify_one();
}

void StateSync::closed(std::size_t route) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Event{Event::Kind::Closed, route, WallTime{}});
  }
  wake_.notify_one();
}

void StateSync::cooling(std::size_t route, TimePoint until) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(Event{Event::Kind::Cooling, route, to_wall(until)});
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
                   [&] { return stopping_ || (up && !queue_.empty()); });
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
  }
  StateStore& store = *options_.store;
  const TimePoint now = clock_.now();
  try {
    if (resync) {  // first contact, or back after an outage: the fleet learns what we know
      for (std::size_t i = 0; i < routes_.size(); ++i) {
        RouteState& r = *routes_[i];
        if (std::optional<TimePoint> until = r.own_open_until(now)) {
          own_open_[i] = to_ms(to_wall(*until));
          store.route_opened(names_[i], *own_open_[i]);
        }
        if (r.cooldown() > now) store.route_cooling(names_[i], to_wall(r.cooldown()));
      }
    }
    for (const Event& e : events) {
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
    }
    std::vector<SharedRoute> shared = store.routes(names_);
    if (shared.size() != routes_.size()) {
      throw StateStoreError("the store answered for " + std::to_string(shared.size()) +
                            " routes, not " + std::to_string(routes_.size()));
    }
    for (std::size_t i = 0; i < shared.size(); ++i) apply(i, shared[i]);
  } catch (const std::exception& e) {  // StateStoreError, or what an application's store throws
    failed(e.what());
    return false;
  }
  if (!reachable_.exchange(true, std::memory_order_relaxed) && logger_) {
    logger_->info("the shared state store {} is reachable again; state resynced", store.describe());
  }
  return true;
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
    seen_open_[i] = shared.open_until;
  } else if (seen_open_[i]) {  // it was open and is no more: a probe passed somewhere
    seen_open_[i].reset();
    r.release_hold(now);
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
