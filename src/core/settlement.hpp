#pragma once

// What an ended attempt does to its route and to the call's books: the attempt's lease gives
// back what it held and tells the breaker; the route's latency, cooldown and the canary hear of
// it; what it spent is charged; and the trace gets its entry.

#include "core/attempt_verdict.hpp"
#include "core/call_trace.hpp"
#include "core/charges.hpp"
#include "core/flight.hpp"

#include <string>

namespace failover::detail {

class CallEnv;

class Settlement {
 public:
  Settlement(const CallEnv& env, const Charges& charges, CallTrace& trace)
      : env_(env), charges_(charges), trace_(trace) {}

  /** Attempt `f` served `response` at `now` (whose cost it sets). */
  void served(Flight& f, TimePoint now, ChatResponse& response) const;
  /** Attempt `f` failed as `failure` says, judged `v`. A route that refused a streamed request
   *  is sent whole from now on. */
  void failed(Flight& f, TimePoint now, const Failure& failure, const Verdict& v) const;
  /** Attempt `f` broke after content reached the stream handler, of `cause` (the call's
   *  deadline's doing when `deadline_cut`); returns what the call says of the break. */
  std::string broke(Flight& f, TimePoint now, ErrorKind cause, const std::string& message,
                    bool deadline_cut) const;

  /** How a cancelled attempt is ended: listed quietly, listed and logged, or also counted in
   *  its route's statistics (the caller's cancellation; its breaker never hears of it). */
  enum class Drop { Quietly, Logged, Counted };
  /** Attempt `f` was cancelled with `why`. */
  void dropped(Flight& f, TimePoint now, const std::string& why, int status, Drop how) const;

  /** An attempt that ends without its answer: what its stream received was spent. */
  void charge_cut(Flight& f) const;

 private:
  const CallEnv& env_;
  const Charges& charges_;
  CallTrace& trace_;
};

}  // namespace failover::detail
