#pragma once

/**
 * @file state.hpp  State shared by the clients of several processes (a fleet behind one
 * provider quota), kept in a `StateStore`: what a route's breaker and rate-limit cooldown say,
 * the budget's spend, each endpoint's rpm/tpm buckets and the canary's state. Breakers,
 * cooldowns and the canary go off the call path: a client publishes what it learns and reads
 * the fleet's on a background thread. A budget reservation and a rate-limit permit must be
 * atomic across processes: the call asks the store, bounded by a short timeout. A store that
 * is slow or down never stops a call: the client serves on its own state meanwhile
 * (fail-open). See docs/scale-out.md.
 */

#include <failover/export.hpp>
#include <failover/time.hpp>
#include <failover/traffic.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace failover {

/** What the fleet knows of one route. Wall-clock times: they mean the same in every process. */
struct SharedRoute {
  /** Some process's breaker tripped: the route is skipped until then. */
  std::optional<WallTime> open_until;
  /** A 429 asked the fleet to rest the route until then. */
  std::optional<WallTime> cooldown_until;
  /** Set when the store held something for the route that is not trusted (garbage, or another
   *  version's format): what, in a few words; the fields above then ignore it. */
  std::string refused;
};

/** What the fleet has spent of its budget (`BudgetOptions`) in the UTC day and month of a
 *  time, in nano-dollars (1e-9 USD: exact sums). */
struct SharedSpend {
  std::int64_t day_nanos = 0;
  std::int64_t month_nanos = 0;
  /** Reserved by calls in flight in live processes (not yet spent). */
  std::int64_t held_nanos = 0;
};

/** A budget's limits in nano-dollars; empty = no limit for that period. */
struct SpendCaps {
  std::optional<std::int64_t> day_nanos;
  std::optional<std::int64_t> month_nanos;
  /** The amount is a guess (a request without an output cap), not a bound: when it does not
   *  fit but no reservation is live anywhere and the period is not spent, it is admitted
   *  alone. So a budget with room for less than one estimate serves one call at a time, and
   *  overspends by at most that call's error of estimate. A store that ignores this refuses
   *  such a call, which is safe. */
  bool admit_alone = false;
};

/** An endpoint's fleet-wide rate limits (`EndpointLimits::rpm` / `tpm`), token buckets that
 *  refill continuously and hold a minute's worth. */
struct BucketLimits {
  std::optional<double> rpm;
  std::optional<double> tpm;
};

/** A canary roll-out as the fleet knows it (`CanaryOptions`): one rollback anywhere stops the
 *  candidate everywhere, and the step advances for all at once. */
struct SharedCanary {
  /** Bumped by every change published; 0 when nothing was published yet. */
  std::uint64_t generation = 0;
  CanaryState state = CanaryState::Running;
  /** Index into `CanaryOptions::steps`. */
  std::size_t step = 0;
  /** Completed by a promotion by hand: serves every call. */
  bool promoted = false;
  /** Why it rolled back, paused, drained or was promoted. */
  std::string reason;
  /** Set when the store held something for the canary that is not trusted; the fields above
   *  are then the defaults. */
  std::string refused;
};

/** What `StateStore::take_permits` granted. */
struct Permits {
  /** Requests granted, from 0 to the count asked for. */
  int granted = 0;
  /** When none was granted: how long until one could be. */
  Duration wait{};
};

/** A store could not be reached or answered nonsense; the message names it, without secrets. */
class FAILOVER_EXPORT StateStoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/** The store answered, but refused the command because of what one key holds (a value that is
 *  not a number, another type): that key is refused, and the store stays in use for the
 *  others. */
class FAILOVER_EXPORT StateRefused : public StateStoreError {
 public:
  using StateStoreError::StateStoreError;
};

/** The store could not take a command within the time a call may wait for it (its
 *  connection busy with the process's other calls): that call decides on what its process
 *  knows, and the store stays in use. Not an outage. */
class FAILOVER_EXPORT StateBusy : public StateStoreError {
 public:
  using StateStoreError::StateStoreError;
};

/**
 * Where the clients of several processes keep the state they share. Routes are named
 * `endpoint/model`. Implementations must be thread-safe; a call that fails throws
 * `StateStoreError` (the client then serves on its own state and tries again later).
 */
class FAILOVER_EXPORT StateStore {
 public:
  virtual ~StateStore() = default;
  /** `route`'s breaker tripped, here or on the fleet's window of calls: it is open until
   *  `until` (a later time wins). */
  virtual void route_opened(const std::string& route, WallTime until) = 0;
  /** A probe of `route` passed: it serves again, everywhere. */
  virtual void route_closed(const std::string& route) = 0;
  /** `route` rests until `until` after a 429 (a later time wins). */
  virtual void route_cooling(const std::string& route, WallTime until) = 0;
  /** What is known of each of `routes`, in that order (an empty entry for one never seen). */
  virtual std::vector<SharedRoute> routes(const std::vector<std::string>& routes) = 0;
  /** Forgets what is known of `route` (an operator's reset), its window of calls too. */
  virtual void reset_route(const std::string& route) = 0;
  /** The fleet's window of `route`'s last calls, for breakers that count failures across
   *  processes: appends `calls` (oldest first; true = a failure the breaker counts), keeps the
   *  last `keep`, lets the window expire `ttl` after this append when nothing more comes, and
   *  returns the window as it now stands, oldest first; all in one step, atomic against every
   *  other process. A trip or a recovery (`route_opened`, `route_closed`) starts the window
   *  over. Empty: the store keeps no windows (the default, and the memory store's), and each
   *  process counts the failures of its own calls. */
  virtual std::optional<std::vector<bool>> record_calls(const std::string& route,
                                                        const std::vector<bool>& calls,
                                                        std::size_t keep, Duration ttl) {
    (void)route;
    (void)calls;
    (void)keep;
    (void)ttl;
    return std::nullopt;
  }

  // Budget. A process (`holder`) reserves a call's estimated cost before the call and settles
  // it after; reservations of a holder not heard from since `alive_until` are dropped, so a
  // process that dies leaves no phantom reservation behind.

  /** Reserves `nanos` for `holder` if the spend of the UTC day and month of `now`, plus every
   *  live reservation, plus `nanos`, stays within `caps` (and the period is not spent already),
   *  or, with `caps.admit_alone`, if no reservation is live and the period is not spent; false
   *  leaves everything as it was. Atomic against every other process. */
  virtual bool reserve_spend(const std::string& holder, WallTime now, std::int64_t nanos,
                             const SpendCaps& caps, WallTime alive_until) = 0;
  /** `holder`'s reservations shrink by `released`, and the day and month of `now` are charged
   *  `spent`. */
  virtual void settle_spend(const std::string& holder, WallTime now, std::int64_t released,
                            std::int64_t spent) = 0;
  /** `holder` lives on until `alive_until`; with `held`, its reservations are set to that
   *  (after an outage, when the store may have lost them). */
  virtual void keep_holder(const std::string& holder, WallTime alive_until,
                           std::optional<std::int64_t> held) = 0;
  /** The spend of the UTC day and month of `now`, and the live reservations. */
  virtual SharedSpend spend(WallTime now) = 0;
  /** Forgets the spend of the UTC day and month of `now`, and every reservation (an
   *  operator's reset). */
  virtual void reset_spend(WallTime now) = 0;

  // The canary, per candidate route (`endpoint/model`).

  /** What the fleet knows of the canary of `candidate`. */
  virtual SharedCanary canary(const std::string& candidate) = 0;
  /** Publishes `next` (its generation is ignored) when the store still holds generation
   *  `*expected`, or whatever it holds when `expected` is empty (a rollback, an operator's
   *  command: they win over a concurrent step). Returns the new generation, or 0 when
   *  `expected` no longer held and nothing changed. */
  virtual std::uint64_t publish_canary(const std::string& candidate, const SharedCanary& next,
                                       std::optional<std::uint64_t> expected) = 0;

  // Rate limits, per endpoint name.

  /** Takes up to `count` requests of `tokens` tokens each from `endpoint`'s buckets at `now`,
   *  as many as they hold (a client takes several at once to spare calls a round trip). When
   *  none is granted, `wait` says how long until one could be. A request larger than the whole
   *  token bucket waits for a full one, and is granted alone. */
  virtual Permits take_permits(const std::string& endpoint, WallTime now,
                               const BucketLimits& limits, double tokens, int count) = 0;
  /** Puts `requests` and `tokens` back into `endpoint`'s buckets (never above full); negative
   *  amounts take more (an answer that used more tokens than its estimate). */
  virtual void return_permit(const std::string& endpoint, WallTime now, const BucketLimits& limits,
                             double requests, double tokens) = 0;
  /** Where the store is, for logs and reports, without secrets (e.g. `redis://127.0.0.1:6379/0`).
   */
  virtual std::string describe() const = 0;
};

/** A store inside this process: shares state between the clients of one process (and serves
 *  tests); nothing survives the process. */
FAILOVER_EXPORT std::shared_ptr<StateStore> make_memory_store();

/** Settings of the Redis store. */
struct RedisStoreOptions {
  /** `redis://[:password@]host[:port][/db]` (port 6379 and db 0 by default). TLS (`rediss://`)
   *  needs hiredis 1.0's SSL support; the hiredis this build uses has none, so it is refused. */
  std::string url;
  /** Prefix of every key; keys are versioned after it (`failover:v1:...`). */
  std::string prefix = "failover:";
  /** Limit of connecting and of each command off the call path (publishing, reading the
   *  fleet's state, operators' commands). */
  Duration timeout = std::chrono::milliseconds(200);
  /** Limit of connecting and of each command a call waits for (reserving budget, taking a
   *  shared rate-limit permit): past it the call goes on with this process's own state. When
   *  Redis did not answer in time, the client stops asking until the store answers its
   *  background thread again; when the connection was only busy with the process's other
   *  calls (`StateBusy`), the next call asks again. */
  Duration call_timeout = std::chrono::milliseconds(10);
};

/** A store on Redis (hiredis). Connects on first use, and again after a failure. Throws
 *  `std::invalid_argument` naming what is wrong with `options`. */
FAILOVER_EXPORT std::shared_ptr<StateStore> make_redis_store(RedisStoreOptions options);

/** How a client shares state (`ClientOptions::state`; config `"state"`). */
struct StateOptions {
  /** The store; null = nothing is shared (each process on its own). */
  std::shared_ptr<StateStore> store;
  /** How often the client reads the fleet's state (and the longest a trip elsewhere goes
   *  unnoticed here); what this client learns is published at once. */
  Duration sync_interval = std::chrono::milliseconds(200);
  /** What `store` was made from, when the configuration made it (config `"state"`); written
   *  back by `options_to_json`. */
  std::optional<RedisStoreOptions> redis;
};

}  // namespace failover
