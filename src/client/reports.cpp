// A client's reports: health, usage, and the metrics text (Prometheus text exposition format
// 0.0.4).

#include "client/reports.hpp"

#include "core/client_core.hpp"
#include "core/state_sync.hpp"
#include "core/user_code.hpp"

#include <charconv>
#include <cstdio>
#include <sstream>

namespace failover::detail {

HealthSnapshot health_of(const ClientCore& core) {
  HealthSnapshot out;
  out.at = core.clock().now();
  for (const auto& route : core.routes()) {
    RouteHealth h;
    h.route = route->ref;
    h.state = route->reported_state(out.at);
    h.in_flight = route->in_flight.load(std::memory_order_relaxed);
    h.ewma = Duration(route->ewma_latency.load(std::memory_order_relaxed));
    try {
      h.reopens_at = route->reopens_at(out.at);
    } catch (const HookError&) {
      h.reopens_at.reset();  // the application's breaker threw: its state reads as open
    }
    if (route->cooldown() > out.at) h.cooldown_until = route->cooldown();
    route->stats.fill(h);
    route->fill_probe(h);
    out.routes.push_back(std::move(h));
  }
  out.canary = core.canary_status(out.at);
  return out;
}

UsageReport usage_of(const ClientCore& core) {
  UsageReport out;
  out.since = core.started();
  out.at = core.clock().now();
  for (const auto& route : core.routes()) {
    RouteUsage u;
    u.route = route->ref;
    route->stats.fill(u);
    u.prompt_tokens = route->prompt_tokens.load(std::memory_order_relaxed);
    u.cached_tokens = route->cached_tokens.load(std::memory_order_relaxed);
    u.completion_tokens = route->completion_tokens.load(std::memory_order_relaxed);
    u.cost_usd = static_cast<double>(route->cost_nanos.load(std::memory_order_relaxed)) / 1e9;
    u.priced = route->price != nullptr;
    out.calls += u.calls;
    out.cost_usd += u.cost_usd;
    out.routes.push_back(std::move(u));
  }
  return out;
}

namespace {

// Label values escape backslash, double quote and newline.
std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The shortest text that reads back as `v` ("0.1", not "0.10000000000000001"), as other
// exporters write bucket bounds, so that `{le="0.1"}` selects the bucket.
std::string number(double v) {
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  return std::string(buf, end);
}

std::string route_labels(const RouteRef& r) {
  return "endpoint=\"" + escape(r.endpoint) + "\",model=\"" + escape(r.model) + "\"";
}

void family(std::ostringstream& os, const char* name, const char* type, const char* help) {
  os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void histogram(std::ostringstream& os, const char* name, const std::string& labels,
               const Histogram& h) {
  std::uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    cumulative += h.counts[i];
    os << name << "_bucket{" << labels << sep << "le=\"" << number(kLatencyBuckets[i]) << "\"} "
       << cumulative << '\n';
  }
  cumulative += h.counts.back();
  os << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << cumulative << '\n';
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  os << name << "_sum" << braces << ' ' << number(h.sum_seconds) << '\n';
  os << name << "_count" << braces << ' ' << h.count << '\n';
}

// The client's own counters: calls, retries, hedges, state store errors, recoveries.
void client_metrics(std::ostringstream& os, const ClientCore& core) {
  family(os, "failover_calls_total", "counter", "Calls finished, by result.");
  for (const auto& [result, count] : core.stats().calls()) {
    os << "failover_calls_total{result=\"" << escape(result) << "\"} " << count << '\n';
  }
  family(os, "failover_retries_total", "counter", "Retries of the same route after a failure.");
  os << "failover_retries_total " << core.stats().retries() << '\n';
  family(os, "failover_hedges_total", "counter", "Hedged attempts started.");
  os << "failover_hedges_total " << core.stats().hedges() << '\n';

  family(os, "failover_state_store_errors_total", "counter",
         "Calls to the shared state store that failed (the client served on its own state).");
  os << "failover_state_store_errors_total " << (core.sync() ? core.sync()->errors() : 0) << '\n';
  family(os, "failover_stream_recoveries_total", "counter",
         "Streamed calls that broke after content and were recovered, by how (restart or "
         "continue) and how that ended (served or failed).");
  for (int mode = 0; mode < 2; ++mode) {
    for (int outcome = 0; outcome < 2; ++outcome) {
      os << "failover_stream_recoveries_total{mode=\"" << (mode ? "continue" : "restart")
         << "\",outcome=\"" << (outcome ? "failed" : "served") << "\"} "
         << core.stats().recoveries(mode, outcome) << '\n';
    }
  }
}

// The families by route.
void route_metrics(std::ostringstream& os, const ClientCore& core, TimePoint now) {
  std::vector<RouteStats::Counters> counters;
  for (const auto& route : core.routes()) counters.push_back(route->stats.counters());

  family(os, "failover_attempts_total", "counter", "Attempts by route and outcome.");
  for (std::size_t i = 0; i < core.routes().size(); ++i) {
    for (const auto& [outcome, count] : counters[i].attempts_by_outcome) {
      os << "failover_attempts_total{" << route_labels(core.routes()[i]->ref) << ",outcome=\""
         << escape(outcome) << "\"} " << count << '\n';
    }
  }
  family(os, "failover_breaker_transitions_total", "counter",
         "Circuit breaker state changes by route.");
  for (std::size_t i = 0; i < core.routes().size(); ++i) {
    for (const auto& [change, count] : counters[i].transitions) {
      os << "failover_breaker_transitions_total{" << route_labels(core.routes()[i]->ref)
         << ",from=\"" << to_string(change.first) << "\",to=\"" << to_string(change.second)
         << "\"} " << count << '\n';
    }
  }
  family(os, "failover_in_flight", "gauge", "Attempts in flight by route.");
  for (const auto& route : core.routes()) {
    os << "failover_in_flight{" << route_labels(route->ref) << "} "
       << route->in_flight.load(std::memory_order_relaxed) << '\n';
  }
  family(os, "failover_breaker_state", "gauge",
         "Circuit breaker state by route: 1 for the current state, 0 for the others.");
  for (const auto& route : core.routes()) {
    BreakerState state = route->reported_state(now);
    for (BreakerState s : {BreakerState::Closed, BreakerState::HalfOpen, BreakerState::Open}) {
      os << "failover_breaker_state{" << route_labels(route->ref) << ",state=\"" << to_string(s)
         << "\"} " << (s == state ? 1 : 0) << '\n';
    }
  }
  family(os, "failover_tokens_total", "counter",
         "Tokens reported by providers, by route and type.");
  for (const auto& route : core.routes()) {
    const std::pair<const char*, std::int64_t> kinds[] = {
        {"prompt", route->prompt_tokens.load(std::memory_order_relaxed)},
        {"cached", route->cached_tokens.load(std::memory_order_relaxed)},
        {"completion", route->completion_tokens.load(std::memory_order_relaxed)}};
    for (const auto& [type, count] : kinds) {
      os << "failover_tokens_total{" << route_labels(route->ref) << ",type=\"" << type << "\"} "
         << count << '\n';
    }
  }
  family(os, "failover_cost_usd_total", "counter", "Cost in US dollars by route (priced models).");
  for (const auto& route : core.routes()) {
    os << "failover_cost_usd_total{" << route_labels(route->ref) << "} "
       << number(static_cast<double>(route->cost_nanos.load(std::memory_order_relaxed)) / 1e9)
       << '\n';
  }
  family(os, "failover_stream_events_skipped_total", "counter",
         "Malformed stream events skipped (the stream went on), by route.");
  for (const auto& route : core.routes()) {
    os << "failover_stream_events_skipped_total{" << route_labels(route->ref) << "} "
       << route->skipped_events.load(std::memory_order_relaxed) << '\n';
  }
  family(os, "failover_attempt_duration_seconds", "histogram", "Attempt latency by route.");
  for (std::size_t i = 0; i < core.routes().size(); ++i) {
    histogram(os, "failover_attempt_duration_seconds", route_labels(core.routes()[i]->ref),
              counters[i].latency);
  }
}

void canary_metrics(std::ostringstream& os, const CanaryStatus& c) {
  const std::string labels = route_labels(c.candidate);
  family(os, "failover_canary_percent", "gauge", "Share of calls sent to the canary, in %.");
  os << "failover_canary_percent{" << labels << "} " << number(c.percent) << '\n';
  family(os, "failover_canary_state", "gauge",
         "Canary state: 1 for the current state, 0 for the others.");
  for (CanaryState s : {CanaryState::Running, CanaryState::Paused, CanaryState::RolledBack,
                        CanaryState::Drained, CanaryState::Completed}) {
    os << "failover_canary_state{" << labels << ",state=\"" << to_string(s) << "\"} "
       << (s == c.state ? 1 : 0) << '\n';
  }
  family(os, "failover_canary_step", "gauge", "Index of the canary's current step.");
  os << "failover_canary_step{" << labels << "} " << c.step << '\n';
  family(os, "failover_canary_window_calls", "gauge",
         "Calls in the canary step's window, by outcome.");
  const std::pair<const char*, std::uint64_t> outcomes[] = {
      {"success", c.window.successes},
      {"error", c.window.errors},
      {"other", c.window.calls - c.window.successes - c.window.errors}};
  for (const auto& [outcome, n] : outcomes) {
    os << "failover_canary_window_calls{" << labels << ",outcome=\"" << outcome << "\"} " << n
       << '\n';
  }
  family(os, "failover_canary_rollbacks_total", "counter", "Canary rollbacks.");
  os << "failover_canary_rollbacks_total{" << labels << "} " << c.rollbacks << '\n';
}

void shadow_metrics(std::ostringstream& os, const ClientCore& core) {
  const ShadowReport r = core.shadow()->report();
  const std::string labels =
      route_labels(core.routes()[core.plan()[*core.shadow_plan()].route]->ref);
  family(os, "failover_shadow_mirrors_total", "counter",
         "Calls sampled for shadow traffic, by what became of the mirror.");
  const std::pair<const char*, std::uint64_t> results[] = {
      {"compared", r.pairs}, {"dropped", r.dropped}, {"skipped", r.skipped}};
  for (const auto& [result, n] : results) {
    os << "failover_shadow_mirrors_total{" << labels << ",result=\"" << result << "\"} " << n
       << '\n';
  }
  family(os, "failover_shadow_candidate_success_rate", "gauge",
         "Share of compared mirrors the candidate answered.");
  os << "failover_shadow_candidate_success_rate{" << labels << "} "
     << number(r.candidate_success_rate) << '\n';
  family(os, "failover_shadow_similarity_mean", "gauge",
         "Mean similarity of the pairs where both sides answered.");
  os << "failover_shadow_similarity_mean{" << labels << "} " << number(r.mean_similarity) << '\n';
}

}  // namespace

std::string metrics_text_of(const ClientCore& core) {
  const TimePoint now = core.clock().now();
  std::ostringstream os;
  client_metrics(os, core);
  route_metrics(os, core, now);
  family(os, "failover_call_duration_seconds", "histogram",
         "Call latency, from start to result, every attempt and wait included.");
  histogram(os, "failover_call_duration_seconds", "", core.stats().call_latency());
  if (std::optional<CanaryStatus> c = core.canary_status(now)) canary_metrics(os, *c);
  if (core.shadow()) shadow_metrics(os, core);
  return os.str();
}

}  // namespace failover::detail
