// A call's attempts in flight, on their own: the Start and Abandon steps owed to the driver,
// each once, flights taken and dropped, and when their watchdogs fire, to exact times.

#include "core/flights.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

namespace failover {
namespace {

using detail::Flight;
using detail::Flights;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct FlightsTest : ::testing::Test {
  TimePoint t0 = TimePoint{} + seconds(100);
  TimePoint deadline = t0 + seconds(60);

  Flight flight(std::uint64_t id, Duration total, bool streamed = false) {
    Flight f;
    f.id = id;
    f.start = t0;
    f.limits.total = total;
    f.limits.first_byte = seconds(5);
    f.limits.idle = seconds(2);
    if (streamed) {
      f.wire = std::make_unique<detail::AttemptStream>(wire::api_of(Dialect::OpenAI), t0, true);
    }
    return f;
  }
};

TEST_F(FlightsTest, AStartIsOwedOnceAndAbandonsAreOwedEachOnce) {
  Flights flights;
  EXPECT_EQ(flights.owed_start(), nullptr);
  flights.start(flight(7, seconds(10)));
  Flight* f = flights.owed_start();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->id, 7u);
  EXPECT_EQ(flights.owed_start(), nullptr);  // handed over
  flights.start(flight(8, seconds(10)));
  flights.forget_start();  // the call ended before the driver heard of it
  EXPECT_EQ(flights.owed_start(), nullptr);

  EXPECT_EQ(flights.owed_abandon(), std::nullopt);
  flights.abandon(7);
  flights.abandon(8);
  std::vector<std::uint64_t> owed;
  while (auto id = flights.owed_abandon()) owed.push_back(*id);
  EXPECT_EQ(owed.size(), 2u);
  EXPECT_EQ(flights.owed_abandon(), std::nullopt);
}

TEST_F(FlightsTest, FlightsAreFoundTakenAndDroppedButTheOneKept) {
  Flights flights;
  flights.start(flight(1, seconds(10)));
  flights.start(flight(2, seconds(10)));
  flights.start(flight(3, seconds(10)));
  EXPECT_EQ(flights.find(4), nullptr);
  ASSERT_NE(flights.find(2), nullptr);
  EXPECT_EQ(flights.take(2).id, 2u);
  EXPECT_EQ(flights.find(2), nullptr);
  EXPECT_EQ(flights.front().id, 1u);
  EXPECT_EQ(flights.back().id, 3u);

  std::vector<std::uint64_t> dropped;
  flights.drop_all_but(3, [&](Flight& f) { dropped.push_back(f.id); });
  EXPECT_EQ(dropped, std::vector<std::uint64_t>{1});
  EXPECT_EQ(flights.owed_abandon(), 1u);  // the driver cancels what was dropped
  ASSERT_NE(flights.find(3), nullptr);
  flights.drop_all_but(0, [&](Flight& f) { dropped.push_back(f.id); });
  EXPECT_EQ(dropped, (std::vector<std::uint64_t>{1, 3}));
  EXPECT_TRUE(flights.empty());
}

TEST_F(FlightsTest, AWholeAnswersWatchdogIsAGraceAfterItsTotalAndTheEarliestWins) {
  Flights flights;
  flights.start(flight(1, seconds(10)));
  flights.start(flight(2, seconds(4)));
  EXPECT_EQ(Flights::watchdog(*flights.find(1), deadline), t0 + seconds(11));
  EXPECT_EQ(flights.next_timer(TimePoint::max(), deadline), t0 + seconds(5));
  EXPECT_EQ(flights.next_timer(t0 + seconds(3), deadline), t0 + seconds(3));  // a hedge first
  EXPECT_TRUE(flights.expired(t0 + seconds(5) - milliseconds(1), deadline).empty());
  EXPECT_EQ(flights.expired(t0 + seconds(5), deadline), std::vector<std::uint64_t>{2});
  EXPECT_EQ(flights.expired(t0 + seconds(11), deadline), (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(FlightsTest, AStreamsWatchdogWaitsForItsFirstContent) {
  Flights flights;
  flights.start(flight(1, seconds(30), /*streamed=*/true));
  EXPECT_EQ(Flights::watchdog(*flights.find(1), deadline), t0 + seconds(5));         // first_byte
  EXPECT_EQ(Flights::watchdog(*flights.find(1), t0 + seconds(3)), t0 + seconds(3));  // deadline
}

}  // namespace
}  // namespace failover
