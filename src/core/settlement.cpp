#include "core/settlement.hpp"

#include "core/call_env.hpp"
#include "core/call_report.hpp"

namespace failover::detail {

void Settlement::served(Flight& f, TimePoint now, ChatResponse& response) const {
  RouteState& route = *f.route;
  std::optional<double> used;
  if (response.usage) used = static_cast<double>(response.usage->total_tokens);
  const Duration latency = now - f.start;
  // The spending reservation stays until the real cost replaces it, in one step, before the
  // breaker (application code that may throw) hears of the success: the answer's tokens were
  // spent whatever it says. A stream that reported no usage is charged an estimate.
  const std::optional<std::int64_t> cost =
      charges_.answer(response, f.wire.get(), route, f.lease.take_reservation());
  if (cost) response.cost_usd = static_cast<double>(*cost) / 1e9;
  f.lease.succeed(now, latency, used);
  route.record_latency(latency);
  if (f.canary) env_.canary_record(now, std::nullopt, latency);
  trace_.open(f, now).status = 200;
  trace_.record(route, now);
  trace_.log_last();
}

void Settlement::failed(Flight& f, TimePoint now, const Failure& failure, const Verdict& v) const {
  RouteState& route = *f.route;
  const AttemptOutcome& outcome = failure.outcome;
  charge_cut(f);  // the tokens of an answer cut midway were spent
  if (failure.stream_refused) route.answers_whole.store(true, std::memory_order_relaxed);
  f.lease.fail(now, v.breaker);
  if (f.canary && !v.neutral) env_.canary_record(now, outcome.kind, now - f.start);
  if (v.rest_until) route.cool_down_until(*v.rest_until);
  Attempt& a = trace_.open(f, now);
  a.error = outcome.kind;
  a.status = outcome.http_status;
  a.message = failure.message;
  trace_.record(route, now, v.neutral);
}

std::string Settlement::broke(Flight& f, TimePoint now, ErrorKind cause, const std::string& message,
                              bool deadline_cut) const {
  RouteState& route = *f.route;
  // Charged before the breaker (application code that may throw) hears of the break.
  charges_.stream(*f.wire, route, f.lease.take_reservation());
  f.lease.fail(now, deadline_cut ? ErrorKind::DeadlineExceeded : ErrorKind::StreamInterrupted);
  if (f.canary && !deadline_cut) {
    env_.canary_record(now, ErrorKind::StreamInterrupted, now - f.start);
  }
  Attempt& a = trace_.open(f, now);
  a.error = deadline_cut ? ErrorKind::DeadlineExceeded : ErrorKind::StreamInterrupted;
  a.status = 200;
  a.message = std::string(to_string(cause)) + ": " + message;
  a.delivered_chunks = f.wire->delivered_chunks;
  a.delivered_chars = f.wire->delivered_chars;
  std::string why =
      route_name(route.ref) + ": the stream broke after content was delivered (" + a.message + ")";
  trace_.record(route, now);
  trace_.log_last();
  return why;
}

void Settlement::dropped(Flight& f, TimePoint now, const std::string& why, int status,
                         Drop how) const {
  charge_cut(f);  // whichever attempt won, or whoever stopped it
  if (how == Drop::Counted) f.lease.release();
  Attempt& a = trace_.open(f, now);
  a.error = ErrorKind::Cancelled;
  a.status = status;
  a.message = why;
  if (how == Drop::Counted) trace_.record(*f.route, now);
  if (how != Drop::Quietly) trace_.log_last();
}

void Settlement::charge_cut(Flight& f) const {
  if (f.wire && f.wire->chunk_accepted) {
    charges_.stream(*f.wire, *f.route, f.lease.take_reservation());
  }
}

}  // namespace failover::detail
