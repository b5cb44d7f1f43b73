#pragma once

// A call's hedges (ClientOptions::hedging; Tail at Scale, gRPC A6): when the next one is due
// after an attempt starts, up to max_extra of them. Streamed calls and shadow calls do not
// hedge.

#include <failover/options.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <optional>

namespace failover::detail {

class AttemptLease;
class Candidates;
struct RouteState;

class Hedging {
 public:
  /** `allowed`: a call that may hedge (an answer sent whole, not a mirror). */
  Hedging(const HedgingOptions& options, bool allowed) : options_(options), allowed_(allowed) {}

  /** An attempt on `route` started at `now`: when a hedge is due, after the route's p95 when
   *  asked for and known, else the fixed delay; TimePoint::max() when none is. */
  TimePoint due_after(const RouteState& route, TimePoint now) const;
  /** A hedge started. */
  void started() { ++started_; }
  /** A hedge is due at `now`: the candidate it goes to, granted into `lease`, holding a slot
   *  of the retry budget (which hedges draw from) in `slot`; started and counted. Nothing when
   *  the budget or every candidate refuses. */
  std::optional<std::size_t> pick(TimePoint now, Candidates& candidates, AttemptLease& lease,
                                  AttemptLease& slot);

 private:
  const HedgingOptions& options_;
  bool allowed_ = false;
  int started_ = 0;
};

}  // namespace failover::detail
