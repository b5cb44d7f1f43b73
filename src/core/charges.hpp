#pragma once

// What a call's attempts spent: their usage and cost on their routes, settled against the
// spend reservations their leases held, with the budget's alerts reported to the application.

#include "core/attempt_stream.hpp"

#include <failover/chat.hpp>

#include <cstdint>
#include <optional>

namespace failover::detail {

class Admission;
class CallEnv;
struct RouteState;

class Charges {
 public:
  Charges(const CallEnv& env, const Admission& admission) : env_(env), admission_(admission) {}

  /** A streamed attempt, however it ended: by the usage its stream reported, else an estimate
   *  (see AttemptStream::usage); settles `reserved`. The cost when the route is priced. */
  std::optional<std::int64_t> stream(const AttemptStream& s, RouteState& route,
                                     std::int64_t reserved) const;
  /** A served answer: by its usage, else its stream's (`s`, null for an answer sent whole
   *  without usage, which costs nothing known); settles `reserved` and, with a budget, keeps
   *  the output's size for the estimates of requests without a cap. */
  std::optional<std::int64_t> answer(const ChatResponse& response, const AttemptStream* s,
                                     RouteState& route, std::int64_t reserved) const;
  /** A reservation of `reserved` ends, having cost `cost`; the alerts it crossed go to the
   *  budget's callback (which may not throw: a throw is logged). */
  void settle(std::int64_t reserved, std::int64_t cost) const;

 private:
  const CallEnv& env_;
  const Admission& admission_;
};

}  // namespace failover::detail
