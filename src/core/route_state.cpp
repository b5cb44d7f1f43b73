#include "core/route_state.hpp"

#include "core/state_sync.hpp"
#include "core/user_code.hpp"

#include <algorithm>
#include <cmath>

namespace failover::detail {

void RouteState::cool_down_until(TimePoint until, bool publish) {
  TimePoint::rep wanted = until.time_since_epoch().count();
  TimePoint::rep current = cooldown_until.load(std::memory_order_relaxed);
  while (current < wanted &&
         !cooldown_until.compare_exchange_weak(current, wanted, std::memory_order_relaxed)) {
  }
  if (sync && publish && current < wanted) sync->cooling(index, until);
}

void RouteState::release_hold(TimePoint now) {
  held_until.store(TimePoint::min().time_since_epoch().count(), std::memory_order_relaxed);
  try {
    breaker->on_probe_success(now);
  } catch (...) {  // the application's breaker: its next call will say what is wrong
  }
  observe_breaker(now);
}

std::optional<TimePoint> RouteState::own_open_until(TimePoint now) const {
  try {
    if (breaker->state(now) != BreakerState::Open) return std::nullopt;
    return breaker->reopens_at(now).value_or(now);
  } catch (...) {
    return std::nullopt;
  }
}

void RouteState::fleet_decided(TimePoint now) {
  if (auto* b = dynamic_cast<DefaultCircuitBreaker*>(breaker.get())) b->forget_calls();
  observe_breaker(now);
}

bool RouteState::own_breaker_closed(TimePoint now) const {
  try {
    return breaker->state(now) == BreakerState::Closed;
  } catch (...) {
    return false;
  }
}

void RouteState::publish_breaker(TimePoint now) {
  if (const std::optional<TimePoint> open = own_open_until(now)) {  // tripped, or again
    const TimePoint::rep until = std::max<TimePoint::rep>(open->time_since_epoch().count(), 1);
    if (published_open.exchange(until, std::memory_order_relaxed) != until) {
      sync->opened(index, *open);
    }
    return;
  }
  if (published_open.load(std::memory_order_relaxed) == 0) return;
  bool closed = false;
  try {
    closed = breaker->state(now) == BreakerState::Closed;
  } catch (...) {
  }
  // Half-open is still the last open period; closed means a probe passed.
  if (closed && published_open.exchange(0, std::memory_order_relaxed) != 0) sync->closed(index);
}

void RouteState::record_latency(Duration latency) {
  Duration::rep sample = std::max<Duration::rep>(latency.count(), 1);
  Duration::rep current = ewma_latency.load(std::memory_order_relaxed);
  Duration::rep next;
  do {
    next = current == 0 ? sample : current + (sample - current) / 5;
  } while (!ewma_latency.compare_exchange_weak(current, next, std::memory_order_relaxed));
}

void RouteState::record_output(std::int64_t tokens) {
  std::lock_guard<std::mutex> lock(outputs_mutex);
  outputs[outputs_next] = tokens;
  outputs_next = (outputs_next + 1) % outputs.size();
  outputs_kept = std::min(outputs_kept + 1, outputs.size());
}

std::optional<std::int64_t> RouteState::typical_output() const {
  std::array<std::int64_t, 64> kept{};
  std::size_t n = 0;
  {
    std::lock_guard<std::mutex> lock(outputs_mutex);
    n = outputs_kept;
    std::copy(outputs.begin(), outputs.begin() + static_cast<std::ptrdiff_t>(n), kept.begin());
  }
  if (n == 0) return std::nullopt;
  const std::size_t rank = (95 * n + 99) / 100;  // nearest rank, 1-based
  auto at = kept.begin() + static_cast<std::ptrdiff_t>(rank - 1);
  std::nth_element(kept.begin(), at, kept.begin() + static_cast<std::ptrdiff_t>(n));
  return *at;
}

// Transitions are counted against the last state this route reported, so a breaker that
// turned half-open by itself (its open period passed) is counted when it is next looked at.
void RouteState::observe_breaker(TimePoint now) {
  int current = static_cast<int>(reported_state(now));
  int last = last_state.exchange(current, std::memory_order_relaxed);
  if (current == static_cast<int>(BreakerState::Open) && last != current) {
    trips.fetch_add(1, std::memory_order_relaxed);
  }
  if (last != current) {
    stats.record_transition(static_cast<BreakerState>(last), static_cast<BreakerState>(current));
  }
}

std::optional<std::int64_t> RouteState::add_usage(const Usage& u) {
  prompt_tokens.fetch_add(u.prompt_tokens, std::memory_order_relaxed);
  cached_tokens.fetch_add(u.cached_tokens, std::memory_order_relaxed);
  completion_tokens.fetch_add(u.completion_tokens, std::memory_order_relaxed);
  if (!price) return std::nullopt;
  // Per-million-token prices: one token costs price * 1000 nano-dollars.
  const std::int64_t cached = std::clamp<std::int64_t>(u.cached_tokens, 0, u.prompt_tokens);
  const std::int64_t written =
      std::clamp<std::int64_t>(u.cache_write_tokens, 0, u.prompt_tokens - cached);
  const double nanos =
      static_cast<double>(u.prompt_tokens - cached - written) * price->input_per_mtok * 1000.0 +
      static_cast<double>(cached) * price->cached_input_per_mtok.value_or(price->input_per_mtok) *
          1000.0 +
      static_cast<double>(written) *
          price->cache_write_per_mtok.value_or(price->input_per_mtok * 1.25) * 1000.0 +
      static_cast<double>(u.completion_tokens) * price->output_per_mtok * 1000.0;
  const std::int64_t cost = std::llround(nanos);
  cost_nanos.fetch_add(cost, std::memory_order_relaxed);
  return cost;
}

void RouteState::record_probe(TimePoint at, bool ok, std::string message) {
  std::lock_guard<std::mutex> lock(probe_mutex);
  probe_at = at;
  probe_ok = ok;
  probe_message = std::move(message);
}

void RouteState::fill_probe(RouteHealth& out) const {
  std::lock_guard<std::mutex> lock(probe_mutex);
  out.last_probe_at = probe_at;
  out.last_probe_ok = probe_ok;
  out.last_probe_message = probe_message;
}

bool RouteState::try_acquire(TimePoint now) {
  if (held(now)) return false;  // the fleet's hold: the local breaker is not asked
  bool ok = invoke_user(hook_name, [&] { return breaker->try_acquire(now); });
  observe_breaker(now);
  return ok;
}

void RouteState::on_success(TimePoint now, Duration latency) {
  invoke_user(hook_name, [&] { breaker->on_success(now, latency); });
  observe_breaker(now);
  if (sync) {
    publish_breaker(now);
    sync->call_ended(index, false);
  }
}

void RouteState::on_failure(TimePoint now, ErrorKind kind) {
  invoke_user(hook_name, [&] { breaker->on_failure(now, kind); });
  observe_breaker(now);
  if (sync) {
    publish_breaker(now);
    if (DefaultCircuitBreaker::counts_as_failure(kind)) sync->call_ended(index, true);
  }
}

BreakerState RouteState::breaker_state(TimePoint now) const {
  if (held(now)) return BreakerState::Open;
  return invoke_user(hook_name, [&] { return breaker->state(now); });
}

std::optional<TimePoint> RouteState::reopens_at(TimePoint now) const {
  std::optional<TimePoint> own = invoke_user(hook_name, [&] { return breaker->reopens_at(now); });
  if (!held(now)) return own;
  const TimePoint hold{Duration{held_until.load(std::memory_order_relaxed)}};
  return own ? std::max(*own, hold) : hold;
}

bool RouteState::would_admit(TimePoint now) const {
  return !held(now) && invoke_user(hook_name, [&] { return breaker->would_admit(now); });
}

BreakerState RouteState::reported_state(TimePoint now) const noexcept {
  if (held(now)) return BreakerState::Open;
  try {
    return breaker->state(now);
  } catch (...) {
    return BreakerState::Open;  // a breaker that cannot say is not trusted with traffic
  }
}

}  // namespace failover::detail
