#pragma once

// The call's trace: one entry per attempt and per route passed over before any traffic, in
// order. Adding an attempt's entry is also where its route's statistics and the client's retry
// throttle hear of it; an entry is logged (debug) once the call has decided what follows it.

#include "core/flight.hpp"

#include <failover/error.hpp>

#include <cstddef>
#include <vector>

namespace failover::detail {

class CallEnv;
struct RouteState;

class CallTrace {
 public:
  /** A `mirror`'s attempts stay outside the retry throttle. */
  CallTrace(const CallEnv& env, bool mirror) : env_(env), mirror_(mirror) {}

  /** Adds the entry of attempt `f` ending at `now`: its route, latency, how it recovered a
   *  broken stream and the events it skipped. The caller adds the outcome; nothing of the
   *  route hears of it before `record`. */
  Attempt& open(const Flight& f, TimePoint now);
  /** The latest entry is for `route`: its skipped events are counted, and unless `neutral` its
   *  statistics and the retry throttle hear of its outcome. */
  void record(RouteState& route, TimePoint now, bool neutral = false);
  /** Adds `a`, which nothing of the route hears of (see record). */
  void add(Attempt a) { entries_.push_back(std::move(a)); }
  /** Logs the latest entry (debug level). */
  void log_last() const;

  Attempt& last() { return entries_.back(); }
  const std::vector<Attempt>& all() const { return entries_; }
  std::size_t size() const { return entries_.size(); }
  /** The entries, for the call's result. */
  std::vector<Attempt> take() { return std::move(entries_); }

 private:
  const CallEnv& env_;
  bool mirror_ = false;
  std::vector<Attempt> entries_;
};

}  // namespace failover::detail
