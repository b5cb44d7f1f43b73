#include "core/call_report.hpp"

#include "core/route_state.hpp"
#include "util/format.hpp"
#include "wire/json_codec.hpp"

#include <algorithm>
#include <cstdio>

namespace failover::detail {

std::string route_name(const RouteRef& r) { return r.endpoint + "/" + r.model; }

std::string format_ms(Duration d) {
  double ms = std::chrono::duration<double, std::milli>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, ms < 10 ? "%.2f ms" : "%.0f ms", ms);
  return buf;
}

SkippedRoute passed_over(const RouteState& route, Admission::Block blocked, TimePoint rate_wait,
                         TimePoint now) {
  SkippedRoute s;
  s.route = route.ref;
  std::string why;
  switch (blocked) {
    case Admission::Block::RateLimit:
      s.reason = SkipReason::RateLimited;
      why = "at its client-side rate limit";
      if (rate_wait != TimePoint::max()) s.until = rate_wait;
      break;
    case Admission::Block::Budget:
      s.reason = SkipReason::OverBudget;
      why = "would exceed the spending budget";
      break;
    case Admission::Block::Cooling:
    case Admission::Block::Breaker:
    case Admission::Block::None:
      s.until = route.reopens_at(now);
      why = "circuit open";
      if (route.cooldown() > now) {
        s.reason = SkipReason::CoolingDown;
        s.until = std::max(s.until.value_or(route.cooldown()), route.cooldown());
        why = "cooling down after a rate limit";
      } else if (!s.until) {
        why = "circuit half-open with its probe in flight";
      }
      break;
  }
  s.message = s.until ? why + " for " + format_ms(*s.until - now) : why;
  return s;
}

std::string no_route_message(const std::vector<std::string>& asked,
                             const std::vector<std::string>& served) {
  return "no route serves any of the models asked for (" + join_names(asked) +
         "); the routes serve " + join_names(served);
}

std::string untranslatable_message(const std::vector<Attempt>& trace) {
  std::string message = "no route can take this request:";
  for (const Attempt& a : trace) message += " " + route_name(a.route) + ": " + a.message + ";";
  message.pop_back();
  return message;
}

std::string exhausted_message(const std::vector<Attempt>& trace, bool sent) {
  if (!sent) {
    std::string message = "no route is available:";
    for (const Attempt& a : trace) {  // passed over before any traffic
      message += " " + route_name(a.route) + ": " + wire::excerpt(a.message, 160) + ";";
    }
    return message;
  }
  std::string message = "all routes failed after " + std::to_string(trace.size()) +
                        (trace.size() == 1 ? " attempt" : " attempts") + ":";
  // The last failure of each route, in the order the routes were first tried.
  std::vector<const Attempt*> last_by_route;
  for (const Attempt& a : trace) {
    auto it = std::find_if(last_by_route.begin(), last_by_route.end(),
                           [&](const Attempt* x) { return x->route == a.route; });
    if (it == last_by_route.end()) {
      last_by_route.push_back(&a);
    } else {
      *it = &a;
    }
  }
  for (const Attempt* a : last_by_route) {
    message += " " + route_name(a->route) + ": " + a->outcome();
    if (a->status) message += " (HTTP " + std::to_string(a->status) + ")";
    if (!a->message.empty()) message += ": " + wire::excerpt(a->message, 160);
    message += ";";
  }
  return message;
}

std::string budget_refusal(const std::vector<Attempt>& trace, const StateStore* store,
                           bool store_down) {
  std::string why = "every route that could serve this call would exceed the spending budget";
  if (store_down) {
    why = "the spending budget cannot be checked: the shared state store " +
          (store ? store->describe() : std::string("?")) +
          " cannot be reached, and budget.fail_closed refuses priced calls until it is back";
  }
  for (const Attempt& a : trace) {  // the others were passed over before any traffic
    why += "; " + route_name(a.route) + ": " + wire::excerpt(a.message, 160);
  }
  return why;
}

std::string deadline_message(const RouteRef& route, const std::vector<RouteRef>& waiting) {
  std::string why = "the call's deadline passed during an attempt on " + route_name(route);
  if (waiting.empty()) return why;
  std::string names;
  for (const RouteRef& r : waiting) names += (names.empty() ? "" : ", ") + route_name(r);
  return why + "; never tried: " + names +
         " (give the attempts less time than the call with timeouts.attempt_ms or "
         "timeouts.first_byte_ms, or the call more with timeouts.total_ms)";
}

ExhaustedError exhausted_error(const Exhaustion& x) {
  ExhaustedError e;
  std::string message = exhausted_message(*x.trace, x.sent);
  for (const SkippedRoute& s : x.untried) {
    message += " " + route_name(s.route) + ": " + s.message + ";";
    if (s.until && (!e.available_at || *s.until < *e.available_at)) e.available_at = s.until;
  }
  if (!message.empty() && message.back() == ';') message.pop_back();
  if (x.retries_paused)
    message += " (retries of the same route paused by the client's retry budget)";
  if (x.attempts_spent) {
    message += " (the call's " + std::to_string(x.trace->size()) + " attempts are spent)";
  }
  if (x.rate_blocked && !x.sent && !x.spend_blocked) {
    e.kind = ErrorKind::RateLimited;
    e.available_at = x.rate_wait;
    e.message =
        "every route's endpoint is at its client-side rate limit; the next permit is due in " +
        format_ms(x.rate_wait - x.now);
    return e;
  }
  if (x.spend_blocked && !x.sent) {
    e.kind = ErrorKind::BudgetExceeded;
    e.message = budget_refusal(*x.trace, x.store, x.store_down);
    return e;
  }
  if (x.spend_blocked) message += " (some routes skipped: they would exceed the spending budget)";
  e.message = std::move(message);
  return e;
}

}  // namespace failover::detail
