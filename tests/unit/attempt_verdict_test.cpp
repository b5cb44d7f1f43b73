// What a failed attempt says of its route, to exact values: the deadline's doing or the
// route's, neutral failures, what the breaker hears, how long a route rests, and secrets taken
// out of what a provider said. Then the trace that records it.

#include "core/attempt_verdict.hpp"
#include "core/call_env.hpp"
#include "core/call_trace.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace failover {
namespace {

using detail::Failure;
using detail::Flight;
using detail::Verdict;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct AttemptVerdictTest : testing::FakeClientTest {
  std::shared_ptr<detail::ClientCore> core;
  TimePoint t0{};
  void SetUp() override {
    core = std::make_shared<detail::ClientCore>(
        fake_options({{"a", "http://a.test/v1", "sk-secret-1"}}, {Tier::of("m", {"a"})}));
    t0 = clock->now();
  }
  void TearDown() override { core->shutdown(); }
  // An attempt started at t0 whose limit is `total`, the deadline's when `clipped`.
  Flight flight(Duration total, bool clipped) {
    Flight f;
    f.route = core->routes()[0].get();
    f.start = t0;
    f.limits.total = total;
    f.limits.clipped = clipped;
    return f;
  }
  static Failure failure(ErrorKind kind, std::string message = "it failed") {
    Failure x;
    x.outcome.kind = kind;
    x.message = std::move(message);
    return x;
  }
  Verdict judge(Failure& x, const Flight& f, TimePoint now, TimePoint deadline) {
    return detail::judge(x, f, core->endpoints()[0], now, deadline);
  }
};

TEST_F(AttemptVerdictTest, ATimeoutAtALimitThatWasTheDeadlineIsTheDeadlines) {
  const Flight f = flight(seconds(8), /*clipped=*/true);
  EXPECT_TRUE(detail::cut_by_deadline(ErrorKind::Timeout, f, t0 + seconds(8) - milliseconds(4),
                                      t0 + seconds(100)));
  EXPECT_FALSE(detail::cut_by_deadline(ErrorKind::Timeout, f, t0 + seconds(8) - milliseconds(6),
                                       t0 + seconds(100)));
  EXPECT_FALSE(
      detail::cut_by_deadline(ErrorKind::ServerError, f, t0 + seconds(8), t0 + seconds(100)));
  EXPECT_TRUE(detail::cut_by_deadline(ErrorKind::ServerError, f, t0 + seconds(8), t0 + seconds(8)));
  EXPECT_FALSE(detail::cut_by_deadline(ErrorKind::Timeout, flight(seconds(8), false),
                                       t0 + seconds(8), t0 + seconds(100)));

  Failure x = failure(ErrorKind::Timeout, "no content within 8000 ms");
  Verdict v = judge(x, f, t0 + seconds(8), t0 + seconds(8));
  EXPECT_TRUE(v.deadline_passed);
  EXPECT_FALSE(v.neutral);
  EXPECT_EQ(x.outcome.kind, ErrorKind::DeadlineExceeded);
  EXPECT_EQ(x.message, "the call's deadline passed during the attempt (no content within 8000 ms)");
  EXPECT_EQ(v.breaker, ErrorKind::DeadlineExceeded);
  EXPECT_EQ(x.outcome.route.endpoint, "a");
  EXPECT_EQ(x.outcome.elapsed, seconds(8));
}

TEST_F(AttemptVerdictTest, ARouteSilentUntilTheDeadlineCountsAgainstItsBreaker) {
  Failure x = failure(ErrorKind::Timeout);
  x.silent = true;
  Verdict v = judge(x, flight(seconds(8), true), t0 + seconds(8), t0 + seconds(8));
  EXPECT_TRUE(v.deadline_passed);
  EXPECT_EQ(x.outcome.kind, ErrorKind::DeadlineExceeded);
  EXPECT_EQ(v.breaker, ErrorKind::Timeout);
}

TEST_F(AttemptVerdictTest, AStaleConnectionAndARefusedStreamSayNothingOfTheRoute) {
  Failure stale = failure(ErrorKind::ConnectionLost);
  stale.outcome.stale_connection = true;
  Verdict v = judge(stale, flight(seconds(600), false), t0 + milliseconds(50), t0 + seconds(900));
  EXPECT_TRUE(v.neutral);
  EXPECT_EQ(v.breaker, ErrorKind::Cancelled);
  Failure refused = failure(ErrorKind::InvalidRequest, "stream not supported");
  refused.stream_refused = true;
  v = judge(refused, flight(seconds(600), false), t0 + milliseconds(50), t0 + seconds(900));
  EXPECT_TRUE(v.neutral);
  EXPECT_EQ(refused.message,
            "stream not supported (the route refuses streamed requests: sent whole from now on)");
}

TEST_F(AttemptVerdictTest, ARateLimitRestsTheRouteForItsRetryAfterWithinFiveMinutes) {
  const Flight f = flight(seconds(600), false);
  const TimePoint now = t0 + seconds(1);
  Failure plain = failure(ErrorKind::RateLimited);
  EXPECT_EQ(judge(plain, f, now, t0 + seconds(900)).rest_until, now + seconds(1));
  Failure long_wait = failure(ErrorKind::RateLimited);
  long_wait.outcome.retry_after = seconds(1000);
  EXPECT_EQ(judge(long_wait, f, now, t0 + seconds(900)).rest_until, now + seconds(300));
  Failure overloaded = failure(ErrorKind::Overloaded);
  EXPECT_EQ(judge(overloaded, f, now, t0 + seconds(900)).rest_until, std::nullopt);
  overloaded.outcome.retry_after = seconds(7);
  EXPECT_EQ(judge(overloaded, f, now, t0 + seconds(900)).rest_until, now + seconds(7));
  Failure server = failure(ErrorKind::ServerError);
  Verdict v = judge(server, f, now, t0 + seconds(900));
  EXPECT_EQ(v.rest_until, std::nullopt);
  EXPECT_EQ(v.breaker, ErrorKind::ServerError);
}

TEST_F(AttemptVerdictTest, AKeyAProviderEchoesIsTakenOut) {
  Failure x = failure(ErrorKind::Authentication, "Incorrect API key provided: sk-secret-1");
  x.provider_type = "sk-secret-1";
  x.param = "key sk-secret-1";
  x.outcome.provider_code = "sk-secret-1";
  judge(x, flight(seconds(600), false), t0, t0 + seconds(900));
  for (const std::string& s : {x.message, x.provider_type, x.param, x.outcome.provider_code}) {
    EXPECT_EQ(s.find("sk-secret-1"), std::string::npos) << s;
    EXPECT_NE(s.find("[redacted]"), std::string::npos) << s;
  }
}

TEST_F(AttemptVerdictTest, TheTraceCountsWhatItsRouteShouldHearOf) {
  detail::CallTrace trace(core->call_env(), /*mirror=*/false);
  detail::RouteState& route = *core->routes()[0];
  Flight f = flight(seconds(600), false);
  f.recovery = true;
  f.continuation = true;
  Attempt& a = trace.open(f, t0 + milliseconds(250));
  EXPECT_EQ(a.route.endpoint, "a");
  EXPECT_EQ(a.latency, milliseconds(250));
  EXPECT_EQ(a.recovery, "continue");
  a.error = ErrorKind::ServerError;
  a.skipped_events = 2;
  const Attempt entry = a;
  trace.record(route, t0);
  trace.add(entry);
  trace.record(route, t0, /*neutral=*/true);
  trace.add(entry);  // passed over: nothing of the route hears of it
  EXPECT_EQ(trace.size(), 3u);
  RouteHealth health;
  route.stats.fill(health);
  EXPECT_EQ(health.failures, 1u);
  EXPECT_EQ(route.skipped_events.load(), 4u);
  trace.last().delay = seconds(1);
  trace.log_last();  // no logger: nothing to write
  EXPECT_EQ(trace.take().size(), 3u);
}

}  // namespace
}  // namespace failover
