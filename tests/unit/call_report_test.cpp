// What a call says when it ends without an answer, to exact texts.

#include "core/call_report.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace failover {
namespace {

using detail::Exhaustion;
using std::chrono::milliseconds;
using std::chrono::seconds;

Attempt failed(const char* endpoint, int status, const char* message) {
  Attempt a;
  a.route = RouteRef{endpoint, "m"};
  a.error = ErrorKind::ServerError;
  a.status = status;
  a.message = message;
  return a;
}

SkippedRoute skipped(const char* endpoint, const char* message, std::optional<TimePoint> until) {
  SkippedRoute s;
  s.route = RouteRef{endpoint, "m"};
  s.message = message;
  s.until = until;
  return s;
}

TEST(CallReport, ADeadlineNamesTheRoutesThatNeverGotAnAttempt) {
  EXPECT_EQ(detail::deadline_message(RouteRef{"a", "m"}, {}),
            "the call's deadline passed during an attempt on a/m");
  EXPECT_EQ(detail::deadline_message(RouteRef{"a", "m"}, {RouteRef{"b", "m"}, RouteRef{"c", "n"}}),
            "the call's deadline passed during an attempt on a/m; never tried: b/m, c/n (give the "
            "attempts less time than the call with timeouts.attempt_ms or timeouts.first_byte_ms, "
            "or the call more with timeouts.total_ms)");
}

TEST(CallReport, ACallNoRouteServedSaysEachRoutesLastWordAndWhenOneComesBack) {
  const TimePoint now{};
  std::vector<Attempt> trace = {failed("a", 503, "busy"), failed("a", 502, "bad gateway")};
  Exhaustion x;
  x.trace = &trace;
  x.sent = true;
  x.untried = {skipped("b", "circuit open", now + seconds(30)),
               skipped("c", "cooling down", now + seconds(5))};
  x.retries_paused = true;
  x.attempts_spent = true;
  x.now = now;
  detail::ExhaustedError e = detail::exhausted_error(x);
  EXPECT_EQ(e.kind, ErrorKind::AllRoutesUnavailable);
  EXPECT_EQ(e.message,
            "all routes failed after 2 attempts: a/m: server_error (HTTP 502): bad gateway; b/m: "
            "circuit open; c/m: cooling down (retries of the same route paused by the client's "
            "retry budget) (the call's 2 attempts are spent)");
  EXPECT_EQ(e.available_at, now + seconds(5));
}

TEST(CallReport, NothingSentForARateLimitOrABudgetSaysSo) {
  const TimePoint now{};
  std::vector<Attempt> none;
  Exhaustion x;
  x.trace = &none;
  x.rate_blocked = true;
  x.rate_wait = now + milliseconds(250);
  x.now = now;
  detail::ExhaustedError limited = detail::exhausted_error(x);
  EXPECT_EQ(limited.kind, ErrorKind::RateLimited);
  EXPECT_EQ(limited.available_at, now + milliseconds(250));
  EXPECT_EQ(limited.message,
            "every route's endpoint is at its client-side rate limit; the next permit is due in "
            "250 ms");
  x.spend_blocked = true;
  EXPECT_EQ(detail::exhausted_error(x).kind, ErrorKind::BudgetExceeded);
  x.sent = true;
  std::vector<Attempt> one = {failed("a", 500, "oops")};
  x.trace = &one;
  detail::ExhaustedError partly = detail::exhausted_error(x);
  EXPECT_EQ(partly.kind, ErrorKind::AllRoutesUnavailable);
  EXPECT_NE(partly.message.find("(some routes skipped: they would exceed the spending budget)"),
            std::string::npos)
      << partly.message;
}

TEST(CallReport, ACallNamingNoServedModelSaysWhatIsServed) {
  EXPECT_EQ(detail::no_route_message({"x", "y"}, {"m", "n"}),
            "no route serves any of the models asked for (x, y); the routes serve m, n");
}

}  // namespace
}  // namespace failover
