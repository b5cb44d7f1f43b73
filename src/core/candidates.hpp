#pragma once

// The plan of one call's candidates and the choice of the next one: the routes it may try, in
// order (tiers in priority order, each ordered by its balancer; a canary's candidate first;
// only the models the call names), which of them is available now, and why the others were
// passed over.

#include "core/admission.hpp"
#include "core/attempt_lease.hpp"
#include "core/call_report.hpp"
#include "core/call_trace.hpp"
#include "core/flight.hpp"
#include "core/request_writer.hpp"

#include <failover/chat.hpp>
#include <failover/policy/retry.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace failover::detail {

class CallEnv;
struct PlanEntry;
struct RouteState;

class Candidates {
 public:
  /** A route this call may try. */
  struct Candidate {
    std::size_t plan = 0;  // its plan entry
    bool tried = false;
    bool prefix_refused = false;  // refused the partial answer as a prefix (a 400)
    int attempts = 0;
    int body = -1;       // its translated body (RequestWriter), for a dialect that translates
    bool whole = false;  // its requests go whole, not streamed (RouteState::answers_whole)
    // Why the call last passed it over without an attempt (for the error when none serves).
    Admission::Block blocked = Admission::Block::None;
  };

  Candidates(const CallEnv& env, Admission& admission) : env_(env), admission_(admission) {}

  /** The call's candidates at `now`: every tier's routes in its balancer's order, the canary's
   *  candidate first when the canary admits the call, and with `options.models` only the routes
   *  of those models, by the list's preference. May throw a HookError (a custom balancer). */
  void plan(TimePoint now, const CallOptions& options);
  /** A shadow call's one candidate. */
  void plan_mirror();
  /** How each candidate's requests go for `request`: whole to a route that does not stream,
   *  and in their own API to routes whose dialect translates it (once per dialect and shaping,
   *  by `writer`). A route whose API cannot take the request (a field it has no equivalent
   *  for) is passed over before any traffic, with the reason in `trace`. */
  void prepare(const ChatRequest& request, RequestWriter& writer, CallTrace& trace);

  const CallEnv& env() const { return env_; }
  std::size_t size() const { return list_.size(); }
  bool empty() const { return list_.empty(); }
  Candidate& operator[](std::size_t c) { return list_[c]; }
  const Candidate& operator[](std::size_t c) const { return list_[c]; }
  /** The route and the plan entry of candidate `c`. */
  RouteState& route(std::size_t c) const;
  const PlanEntry& entry(std::size_t c) const;

  /** The first untried candidate that is not cooling down and that `Admission` grants now
   *  (into `lease`); each one passed over notes why. */
  std::optional<std::size_t> pick(TimePoint now, AttemptLease& lease);
  /** The `retry` the call owes, when Admission grants it now (into `lease`; its cooldown aside,
   *  since the call's wait honoured it), else `pick`. */
  std::optional<std::size_t> pick(TimePoint now, AttemptLease& lease,
                                  std::optional<std::size_t> retry);
  /** What `pick` would say of candidate `c`, taking nothing. */
  bool available(std::size_t c, TimePoint now) const;
  /** Whether another untried route can serve now: of tier `tier` only, or of any tier. */
  bool has_alternative(TimePoint now, std::optional<std::size_t> tier = std::nullopt) const;
  /** When the first untried route can serve again: the end of its open period or cooldown,
   *  or soon for a half-open route whose probe is out; a client-side rate limit's permit. */
  std::optional<TimePoint> earliest_recovery(TimePoint now) const;
  /** Panic: of the untried routes within the budget, the one that would come back soonest. */
  std::optional<std::size_t> least_bad(TimePoint now);
  /** Panic's pick: the least bad route, sent without its breaker's admission and despite a
   *  cooldown but within the client-side rate limit and the budget (the account's), whose
   *  permit and reservation go into `lease`. */
  std::optional<std::size_t> panic(TimePoint now, AttemptLease& lease);
  /** When a call that found no route now looks again: when the first untried route comes back
   *  (`for_recovery`, see WhenUnavailable::WaitForRecovery), or the route of the `retry` it
   *  owes; and soon while the budget serves calls of unknown cost one at a time (see
   *  SpendCaps::admit_alone), since that budget is not spent. Nothing: it does not wait. */
  std::optional<TimePoint> look_again_at(TimePoint now, std::optional<std::size_t> retry,
                                         bool for_recovery) const;
  /** How much of the `remaining` time an attempt starting now leaves for a failover: nothing
   *  when no other untried route can serve; else twice the best such route's latency (at least
   *  a second), at most half of what remains, and half when no latency is known yet. */
  Duration failover_reserve(TimePoint now, Duration remaining) const;
  /** A Failover decision on candidate `c`: its `stop` (no further attempt; returns true) and
   *  `skip_tier` (not the rest of `c`'s tier). */
  bool rule_out(std::size_t c, const Decision& decision);

  /** Attempt number `attempt` of the call, on candidate `c`, starts at `now`: the flight
   *  without its lease, limits and id; sent as a stream unless the route answers whole
   *  (`whole`: an answer the application takes whole). */
  Flight start(std::size_t c, TimePoint now, int attempt, bool whole);
  /** Whether an attempt on candidate `c` can continue a broken answer: its endpoint continues
   *  one (Continuation::Prefill) and it did not refuse the prefix. */
  bool can_continue(std::size_t c) const;
  /** What the retry policy is told of the call after a failed attempt on candidate `c`, the
   *  call's `attempts`-th, with the call's `deadline`. */
  CallState call_state(TimePoint now, std::size_t c, bool canary, int attempts,
                       TimePoint deadline) const;
  /** What attempt `f` sends (see RequestWriter::write), with the call's `options`. */
  RequestWriter::Attempt attempt_of(const Flight& f, const CallOptions& options) const;
  /** Whether no candidate's API can express the request (`writer` could translate none). */
  bool untranslatable(const RequestWriter& writer) const;
  /** What the call knows of its candidates and their admission when none served it at `now`;
   *  the caller adds what it knows of its attempts. */
  Exhaustion exhaustion(TimePoint now) const;

  /** Why untried candidate `c` was passed over at the last pick, and until when. */
  SkippedRoute passed_over(std::size_t c, TimePoint now) const;
  /** The routes passed over before any traffic: untried, and ruled out at a pick. */
  std::vector<SkippedRoute> skipped(TimePoint now) const;
  /** Every untried route, and why it was passed over. */
  std::vector<SkippedRoute> untried(TimePoint now) const;
  /** The untried routes that could serve now. */
  std::vector<RouteRef> available_routes(TimePoint now) const;

 private:
  const CallEnv& env_;
  Admission& admission_;
  std::vector<Candidate> list_;
};

/** The models the client's routes serve, each once, in order. */
std::vector<std::string> models_served(const CallEnv& env);

}  // namespace failover::detail
