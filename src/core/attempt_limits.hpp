#pragma once

// The time limits of one attempt: from the route's timeouts, the time left before the call's
// deadline, and the time the attempt leaves for a failover (docs/policies.md, "Timeouts").

#include <failover/options.hpp>
#include <failover/time.hpp>

namespace failover::detail {

struct AttemptLimits {
  Duration total{};       // the whole exchange
  Duration first_byte{};  // until the first content (a stream only)
  Duration headers{};     // until the response headers (a stream only)
  Duration connect{};
  Duration idle{};       // between chunks (a stream only)
  bool clipped = false;  // `total` is the call's deadline
};

/** The limits of an attempt under the route's timeouts `t`, starting with `remaining` time
 *  before the call's deadline. `reserve` is the time it leaves another route (see
 *  Candidates::failover_reserve): a stream keeps the whole remaining time once it shows life
 *  and has only its wait for the first content cut; an answer sent whole shows no life before
 *  its end, so its whole limit is cut. `streamed`: the attempt is sent as a stream. */
AttemptLimits attempt_limits(const Timeouts& t, Duration remaining, Duration reserve,
                             bool streamed);

/** The deadline of a call starting at `now`: its own timeout, else the client's `total`, at
 *  most a year (so that it cannot overflow), and no later than its own deadline. */
TimePoint call_deadline(const CallOptions& call, const Timeouts& t, TimePoint now);

}  // namespace failover::detail
