#pragma once

// Spending against BudgetOptions: per UTC day and month, in nano-dollars. Thread-safe.

#include <failover/state.hpp>
#include <failover/usage.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace failover::detail {

/** The fleet's side of a budget, when processes share one (StateSync implements it). */
class FleetSpend {
 public:
  virtual ~FleetSpend() = default;
  /** The fleet's answer to a reservation, or empty when it cannot be asked now (the tracker
   *  then decides on what it knows). */
  virtual std::optional<bool> reserve(WallTime wall, std::int64_t nanos, const SpendCaps& caps) = 0;
  /** A reservation of `released` ended, having cost `spent`. With `now`, the fleet hears of it
   *  before this returns (calls elsewhere wait on it); else it never blocks. */
  virtual void settled(std::int64_t released, std::int64_t spent, bool now) = 0;
};

class SpendTracker {
 public:
  explicit SpendTracker(BudgetOptions options);

  /** Reservations go to `fleet` first from now on (set before the first call). */
  void share(FleetSpend* fleet) { fleet_ = fleet; }
  /** What the fleet has spent in the periods of `wall`, plus what this process spent that the
   *  fleet has not heard of yet, replaces what this tracker knew. */
  void observe_fleet(WallTime wall, std::int64_t day_nanos, std::int64_t month_nanos);
  /** `nanos` of this process's spend reached the fleet (until then, a read of the fleet's spend
   *  leaves it counted). */
  void published(std::int64_t nanos);
  /** Reserved by this process's attempts in flight. */
  std::int64_t reserved();
  SpendCaps caps() const;

  bool enabled() const { return options_.usd_per_day || options_.usd_per_month; }
  /** Would spending `nanos` more at `wall`, beside what calls in flight reserved, stay within
   *  every limit? With `alone` (`nanos` is a guess, see SpendCaps::admit_alone): or is nothing
   *  reserved, and the period not spent? */
  bool fits(WallTime wall, std::int64_t nanos, bool alone = false);
  /** Whether a limit's period is spent already (nothing more fits until it ends). */
  bool exhausted(WallTime wall);
  /** Reserves `nanos` for an attempt in flight when `fits` says so (atomically: concurrent
   *  calls cannot all take the last dollar). With `fail_closed`, a fleet that cannot be asked
   *  refuses it, and `fleet_down` (if given) is set. */
  bool reserve(WallTime wall, std::int64_t nanos, bool alone = false, bool* fleet_down = nullptr);
  /** A reservation of `reserved` ends, having cost `spent` (its reported usage, 0 for a failed
   *  attempt); returns the alerts that crossed (to be reported outside any lock). */
  std::vector<BudgetAlert> settle(WallTime wall, std::int64_t reserved, std::int64_t spent);
  /** A reservation of `reserved` ends without cost or alerts. */
  void release(std::int64_t reserved);
  /** Records spending with no reservation; returns the alerts it crossed. */
  std::vector<BudgetAlert> spend(WallTime wall, std::int64_t nanos);
  const BudgetOptions& options() const { return options_; }

 private:
  struct Period {
    std::int64_t key = -1;  // day or month number; a new key starts the period over
    std::int64_t spent = 0;
    bool warned = false;     // 80 % reported
    bool exhausted = false;  // 100 % reported
  };
  void roll(WallTime wall);
  bool fits_locked(std::int64_t nanos, bool alone) const;
  std::vector<BudgetAlert> spend_locked(std::int64_t nanos);
  // Ends a reservation of `reserved` locally; whether the fleet must hear of it at once.
  bool end_reservation_locked(std::int64_t reserved);

  BudgetOptions options_;
  FleetSpend* fleet_ = nullptr;
  std::mutex mutex_;
  Period day_;
  Period month_;
  std::int64_t reserved_ = 0;  // by attempts in flight, whatever their period
  // The one reservation in flight was admitted alone (SpendCaps::admit_alone): every other
  // call waits for it, so its end goes to the fleet at once.
  bool alone_ = false;
  // Spent here and not yet published to the fleet (its settlements wait for a round): a read of
  // the fleet's spend does not include it.
  std::int64_t unpublished_ = 0;
};

}  // namespace failover::detail
