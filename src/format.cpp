#include <failover/format.hpp>

#include "util/format.hpp"

#include <string>

namespace failover {

namespace {

std::string route_text(const RouteRef& r) { return r.endpoint + "/" + r.model; }

// The trace's lines, each on its own line and indented.
std::string trace_lines(const std::vector<Attempt>& attempts,
                        const std::vector<SkippedRoute>& skipped) {
  std::string out;
  for (const Attempt& a : attempts) out += "\n  " + describe(a);
  for (const SkippedRoute& s : skipped) out += "\n  " + describe(s);
  return out;
}

}  // namespace

std::string describe(const Attempt& a) {
  std::string out = route_text(a.route) + ": " + a.outcome();
  if (a.status) out += " (HTTP " + std::to_string(a.status) + ")";
  out += " in " + detail::millis_text(a.latency);
  if (!a.message.empty()) out += ": " + a.message;
  if (!a.recovery.empty()) out += " (recovered by " + a.recovery + ")";
  if (a.delay > Duration::zero()) out += "; next attempt after " + detail::millis_text(a.delay);
  return out;
}

std::string describe(const SkippedRoute& s) {
  return route_text(s.route) + ": passed over, " + std::string(to_string(s.reason)) + ": " +
         s.message;
}

std::string describe(const ChatResponse& r) {
  const std::size_t n = r.attempts.size();
  return "served by " + route_text(r.served_by) + " after " + std::to_string(n) +
         (n == 1 ? " attempt" : " attempts") + trace_lines(r.attempts, r.skipped);
}

std::string describe(const Error& e) {
  return std::string(to_string(e.kind())) + ": " + e.message() +
         trace_lines(e.attempts(), e.skipped());
}

}  // namespace failover
