#include "core/call_trace.hpp"

#include "core/call_env.hpp"
#include "core/call_report.hpp"

#include <spdlog/spdlog.h>

namespace failover::detail {

Attempt& CallTrace::open(const Flight& f, TimePoint now) {
  Attempt& a = entries_.emplace_back();
  a.route = f.route->ref;
  a.latency = now - f.start;
  if (f.recovery) a.recovery = f.continuation ? "continue" : "restart";
  if (f.wire) a.skipped_events = f.wire->skipped_events;
  return a;
}

void CallTrace::record(RouteState& route, TimePoint now, bool neutral) {
  const Attempt& added = entries_.back();
  if (added.skipped_events > 0) {
    route.skipped_events.fetch_add(static_cast<std::uint64_t>(added.skipped_events),
                                   std::memory_order_relaxed);
  }
  if (neutral) return;
  route.stats.record(now, added.latency, added.error, added.message);
  if (!mirror_) env_.budget().on_attempt(added.error);
}

void CallTrace::log_last() const {
  spdlog::logger* log = env_.logger();
  if (!log || !log->should_log(spdlog::level::debug)) return;
  const Attempt& a = entries_.back();
  log->debug("attempt {} route={} outcome={} status={} latency_ms={:.3f} next_delay_ms={:.3f}{}{}",
             entries_.size(), route_name(a.route), a.outcome(), a.status,
             std::chrono::duration<double, std::milli>(a.latency).count(),
             std::chrono::duration<double, std::milli>(a.delay).count(),
             a.message.empty() ? "" : " message=", a.message);
}

}  // namespace failover::detail
