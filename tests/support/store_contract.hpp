#pragma once

// What every StateStore must do with budgets and rate-limit buckets, checked to exact values;
// run against the in-process store (state_test) and the Redis store (state_redis_test).

#include <failover/state.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace failover::testing {

// 2026-12-01 12:00:00 UTC.
inline const WallTime kNoon{std::chrono::hours(24 * 20788 + 12)};

// For a store that keeps the fleet's windows of calls (Redis; the memory store keeps none).
inline void check_window_contract(StateStore& store) {
  using std::chrono::minutes;
  using Calls = std::vector<bool>;
  store.reset_route("w/m");
  store.reset_route("x/m");
  std::optional<Calls> w = store.record_calls("w/m", {true, false}, 3, minutes(10));
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, (Calls{true, false}));
  w = store.record_calls("w/m", {true, true}, 3, minutes(10));  // the oldest goes
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, (Calls{false, true, true}));
  EXPECT_EQ(store.record_calls("x/m", {false}, 3, minutes(10)), Calls{false});  // its own
  // A trip, a recovery and an operator's reset each start the window over.
  store.route_opened("w/m", kNoon + minutes(1));
  EXPECT_EQ(store.record_calls("w/m", {true}, 3, minutes(10)), Calls{true});
  store.route_closed("w/m");
  EXPECT_EQ(store.record_calls("w/m", {false}, 3, minutes(10)), Calls{false});
  store.reset_route("w/m");
  EXPECT_EQ(store.record_calls("w/m", {}, 3, minutes(10)), Calls{});
  EXPECT_EQ(store.record_calls("x/m", {}, 3, minutes(10)), Calls{false});
  EXPECT_TRUE(store.routes({"w/m"})[0].refused.empty());
}

inline void check_spend_contract(StateStore& store) {
  using std::chrono::hours;
  using std::chrono::seconds;
  const SpendCaps caps{1000, 5000};
  const WallTime noon = kNoon;
  store.reset_spend(noon);
  EXPECT_TRUE(store.reserve_spend("h1", noon, 600, caps, noon + seconds(10)));
  EXPECT_FALSE(store.reserve_spend("h2", noon, 500, caps, noon + seconds(10)));  // 600 + 500
  EXPECT_TRUE(store.reserve_spend("h2", noon, 400, caps, noon + seconds(10)));   // exactly full
  SharedSpend s = store.spend(noon);
  EXPECT_EQ(s.day_nanos, 0);
  EXPECT_EQ(s.held_nanos, 1000);
  // h1's call cost 300 of its 600.
  store.settle_spend("h1", noon, 600, 300);
  s = store.spend(noon);
  EXPECT_EQ(s.day_nanos, 300);
  EXPECT_EQ(s.month_nanos, 300);
  EXPECT_EQ(s.held_nanos, 400);
  EXPECT_TRUE(store.reserve_spend("h1", noon, 300, caps, noon + seconds(10)));  // 300 + 700
  EXPECT_FALSE(store.reserve_spend("h1", noon, 1, caps, noon + seconds(10)));
  // h2 dies holding 400: 10 s on, its reservation is gone; h1 renewed its own.
  store.keep_holder("h1", noon + seconds(30), std::nullopt);
  const WallTime later = noon + seconds(11);
  EXPECT_EQ(store.spend(later).held_nanos, 300);
  EXPECT_TRUE(store.reserve_spend("h1", later, 400, caps, later + seconds(10)));  // 300+300+400
  // After an outage a holder says what it holds.
  store.keep_holder("h1", later + seconds(10), 0);
  EXPECT_EQ(store.spend(later).held_nanos, 0);
  // An amount that is a guess is admitted alone when nothing is held, however large; never
  // beside another reservation.
  SpendCaps guess = caps;
  guess.admit_alone = true;
  EXPECT_FALSE(store.reserve_spend("h1", later, 800, caps, later + seconds(10)));  // 300 + 800
  EXPECT_TRUE(store.reserve_spend("h1", later, 800, guess, later + seconds(10)));
  EXPECT_FALSE(store.reserve_spend("h2", later, 1, guess, later + seconds(10)));  // held: 800 + 1
  store.settle_spend("h1", later, 800, 0);
  EXPECT_EQ(store.spend(later).held_nanos, 0);
  // A spent period refuses everything, whatever is free of reservations.
  store.settle_spend("h1", later, 0, 700);
  EXPECT_EQ(store.spend(later).day_nanos, 1000);
  EXPECT_FALSE(store.reserve_spend("h3", later, 1, caps, later + seconds(10)));
  EXPECT_FALSE(store.reserve_spend("h3", later, 1, guess, later + seconds(10)));
  // The next day starts over; the month goes on.
  const WallTime tomorrow = noon + hours(24);
  s = store.spend(tomorrow);
  EXPECT_EQ(s.day_nanos, 0);
  EXPECT_EQ(s.month_nanos, 1000);
  EXPECT_TRUE(store.reserve_spend("h3", tomorrow, 1000, caps, tomorrow + seconds(10)));
  EXPECT_FALSE(store.reserve_spend("h3", tomorrow, 4001, SpendCaps{std::nullopt, 5000},
                                   tomorrow + seconds(10)));  // 1000 + 1000 held + 4001
  // An operator's reset forgets the day, the month and every reservation.
  store.reset_spend(tomorrow);
  s = store.spend(tomorrow);
  EXPECT_EQ(s.day_nanos, 0);
  EXPECT_EQ(s.month_nanos, 0);
  EXPECT_EQ(s.held_nanos, 0);
}

// One request: empty when granted, else the wait.
inline std::optional<Duration> take_one(StateStore& store, const std::string& endpoint, WallTime at,
                                        const BucketLimits& limits, double tokens) {
  const Permits p = store.take_permits(endpoint, at, limits, tokens, 1);
  if (p.granted == 1) return std::nullopt;
  EXPECT_EQ(p.granted, 0);
  return p.wait;
}

inline void check_bucket_contract(StateStore& store) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  auto take = [&](const std::string& endpoint, WallTime at, const BucketLimits& limits,
                  double tokens) { return take_one(store, endpoint, at, limits, tokens); };
  const WallTime t0 = kNoon;
  const BucketLimits rpm{2.0, std::nullopt};
  EXPECT_EQ(take("r", t0, rpm, 10), std::nullopt);
  EXPECT_EQ(take("r", t0, rpm, 10), std::nullopt);
  EXPECT_EQ(take("r", t0, rpm, 10), Duration(milliseconds(30000)));  // 2 a minute
  EXPECT_EQ(take("r", t0 + seconds(10), rpm, 10), Duration(milliseconds(20000)));
  store.return_permit("r", t0 + seconds(10), rpm, 1, 0);  // a permit not used
  EXPECT_EQ(take("r", t0 + seconds(10), rpm, 10), std::nullopt);
  EXPECT_EQ(take("r", t0 + seconds(40), rpm, 10), std::nullopt);  // refilled 1

  const BucketLimits tpm{std::nullopt, 60.0};  // a token a second
  EXPECT_EQ(take("t", t0, tpm, 50), std::nullopt);
  EXPECT_EQ(take("t", t0, tpm, 20), Duration(milliseconds(10000)));
  EXPECT_EQ(take("t", t0 + seconds(10), tpm, 20), std::nullopt);  // 20 - 20
  // A request larger than the bucket waits for a full bucket.
  EXPECT_EQ(take("t", t0 + seconds(10), tpm, 100), Duration(milliseconds(60000)));
  // An answer that used 30 tokens more than its estimate takes them too.
  store.return_permit("t", t0 + seconds(10), tpm, 0, -30);
  EXPECT_EQ(take("t", t0 + seconds(10), tpm, 1), Duration(milliseconds(31000)));
  // Never above full: a minute later it holds 60, whatever was given back.
  store.return_permit("t", t0 + seconds(100), tpm, 0, 500);
  EXPECT_EQ(take("t", t0 + seconds(100), tpm, 60), std::nullopt);
  EXPECT_EQ(take("t", t0 + seconds(100), tpm, 1), Duration(milliseconds(1000)));
  // Several at once: as many as the buckets hold.
  const BucketLimits both{3.0, 100.0};
  EXPECT_EQ(store.take_permits("l", t0, both, 20, 5).granted, 3);  // 3 requests; 40 tokens left
  EXPECT_EQ(store.take_permits("l", t0, both, 20, 5).granted, 0);
  // 20 s on: one request more, and 40 + 33.3 tokens.
  EXPECT_EQ(store.take_permits("l", t0 + seconds(20), both, 20, 5).granted, 1);
  store.return_permit("l", t0 + seconds(20), both, 3, 0);  // requests full again
  EXPECT_EQ(store.take_permits("l", t0 + seconds(20), both, 20, 5).granted, 2);  // 53.3 tokens
  const Permits none = store.take_permits("l", t0 + seconds(20), both, 20, 5);
  EXPECT_EQ(none.granted, 0);
  EXPECT_EQ(none.wait, Duration(milliseconds(4000)));  // 13.3 tokens: 6.7 more at 100 a minute
  // Endpoints are apart.
  EXPECT_EQ(take("other", t0, rpm, 10), std::nullopt);
}

}  // namespace failover::testing
