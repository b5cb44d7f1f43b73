#include "policy/spend.hpp"

#include "util/utc_date.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace failover::detail {

namespace {

std::int64_t to_nanos(double usd) { return std::llround(usd * 1e9); }

}  // namespace

SpendTracker::SpendTracker(BudgetOptions options) : options_(std::move(options)) {}

void SpendTracker::roll(WallTime wall) {
  std::int64_t d = day_of(wall), m = month_of(wall);
  if (day_.key != d) day_ = Period{d, 0, false, false};
  if (month_.key != m) month_ = Period{m, 0, false, false};
}

bool SpendTracker::fits_locked(std::int64_t nanos, bool alone) const {
  auto within = [&](const std::optional<double>& limit, const Period& p) {
    if (!limit) return true;
    std::int64_t cap = to_nanos(*limit);
    return p.spent < cap && ((alone && reserved_ == 0) || p.spent + reserved_ + nanos <= cap);
  };
  return within(options_.usd_per_day, day_) && within(options_.usd_per_month, month_);
}

bool SpendTracker::fits(WallTime wall, std::int64_t nanos, bool alone) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
  return fits_locked(nanos, alone);
}

bool SpendTracker::exhausted(WallTime wall) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
  auto spent = [&](const std::optional<double>& limit, const Period& p) {
    return limit && p.spent >= to_nanos(*limit);
  };
  return spent(options_.usd_per_day, day_) || spent(options_.usd_per_month, month_);
}

bool SpendTracker::reserve(WallTime wall, std::int64_t nanos, bool alone, bool* fleet_down) {
  std::unique_lock<std::mutex> lock(mutex_);
  roll(wall);
  if (!fits_locked(nanos, alone)) return false;  // what is known already refuses it
  alone = alone && !fits_locked(nanos, false);   // admitted only because it is alone
  if (fleet_) {
    // This process's own reservation counts as held: the fleet hears of it before it answers.
    SpendCaps c = caps();
    c.admit_alone = alone;
    lock.unlock();  // the fleet is asked without holding up this process's other calls
    const std::optional<bool> fleet = fleet_->reserve(wall, nanos, c);
    lock.lock();
    if (fleet && !*fleet) return false;
    // The fleet cannot be asked: refuse (fail closed), or decide on what this process knows.
    if (!fleet && options_.fail_closed) {
      if (fleet_down) *fleet_down = true;
      return false;
    }
    // Either way, what this process knows must allow it too: a fleet's yes has not heard of
    // what this process admitted on its own (its store was busy) or spent since.
    roll(wall);
    if (!fits_locked(nanos, alone)) {
      if (fleet) {  // the fleet's reservation is given back
        lock.unlock();
        fleet_->settled(nanos, 0, alone);
      }
      return false;
    }
  }
  reserved_ += nanos;
  alone_ = alone_ || alone;
  return true;
}

void SpendTracker::observe_fleet(WallTime wall, std::int64_t day_nanos, std::int64_t month_nanos) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
  day_.spent = day_nanos + unpublished_;
  month_.spent = month_nanos + unpublished_;
}

void SpendTracker::published(std::int64_t nanos) {
  std::lock_guard<std::mutex> lock(mutex_);
  unpublished_ = std::max<std::int64_t>(0, unpublished_ - nanos);
}

std::int64_t SpendTracker::reserved() {
  std::lock_guard<std::mutex> lock(mutex_);
  return reserved_;
}

SpendCaps SpendTracker::caps() const {
  SpendCaps c;
  if (options_.usd_per_day) c.day_nanos = to_nanos(*options_.usd_per_day);
  if (options_.usd_per_month) c.month_nanos = to_nanos(*options_.usd_per_month);
  return c;
}

bool SpendTracker::end_reservation_locked(std::int64_t reserved) {
  reserved_ = std::max<std::int64_t>(0, reserved_ - reserved);
  return std::exchange(alone_, alone_ && reserved_ > 0);
}

std::vector<BudgetAlert> SpendTracker::settle(WallTime wall, std::int64_t reserved,
                                              std::int64_t spent) {
  std::vector<BudgetAlert> alerts;
  bool now = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    roll(wall);
    now = end_reservation_locked(reserved);
    if (spent != 0) alerts = spend_locked(spent);
    if (fleet_) unpublished_ += spent;
  }
  if (fleet_) fleet_->settled(reserved, spent, now);  // outside the lock: it may block
  return alerts;
}

void SpendTracker::release(std::int64_t reserved) {
  bool now = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    now = end_reservation_locked(reserved);
  }
  if (fleet_) fleet_->settled(reserved, 0, now);
}

std::vector<BudgetAlert> SpendTracker::spend(WallTime wall, std::int64_t nanos) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
  if (fleet_) {
    fleet_->settled(0, nanos, false);
    unpublished_ += nanos;
  }
  return spend_locked(nanos);
}

std::vector<BudgetAlert> SpendTracker::spend_locked(std::int64_t nanos) {
  std::vector<BudgetAlert> alerts;
  auto account = [&](const std::optional<double>& limit, Period& p, BudgetAlert::Period which) {
    p.spent += nanos;
    if (!limit) return;
    const std::int64_t cap = to_nanos(*limit);
    auto alert = [&](double threshold) {
      alerts.push_back(BudgetAlert{which, threshold, static_cast<double>(p.spent) / 1e9, *limit});
    };
    if (!p.warned && p.spent * 10 >= cap * 8) {
      p.warned = true;
      alert(0.8);
    }
    if (!p.exhausted && p.spent >= cap) {
      p.exhausted = true;
      alert(1.0);
    }
  };
  account(options_.usd_per_day, day_, BudgetAlert::Period::Day);
  account(options_.usd_per_month, month_, BudgetAlert::Period::Month);
  return alerts;
}

}  // namespace failover::detail
