#include "policy/spend.hpp"

#include <algorithm>
#include <cmath>

namespace failover::detail {

namespace {

std::int64_t to_nanos(double usd) { return std::llround(usd * 1e9); }

// Days since 1970-01-01 (UTC) and months since January 1970.
std::int64_t day_of(WallTime wall) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count();
  return seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
}

std::int64_t month_of(WallTime wall) {
  // Civil date from days (Howard Hinnant's algorithm), reduced to year * 12 + month.
  std::int64_t z = day_of(wall) + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return year * 12 + (month - 1);
}

}  // namespace

SpendTracker::SpendTracker(BudgetOptions options) : options_(std::move(options)) {}

void SpendTracker::roll(WallTime wall) {
  std::int64_t d = day_of(wall), m = month_of(wall);
  if (day_.key != d) day_ = Period{d, 0, false, false};
  if (month_.key != m) month_ = Period{m, 0, false, false};
}

bool SpendTracker::fits_locked(std::int64_t nanos) const {
  auto within = [&](const std::optional<double>& limit, const Period& p) {
    if (!limit) return true;
    std::int64_t cap = to_nanos(*limit);
    return p.spent < cap && p.spent + reserved_ + nanos <= cap;
  };
  return within(options_.usd_per_day, day_) && within(options_.usd_per_month, month_);
}

bool SpendTracker::fits(WallTime wall, std::int64_t nanos) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
  return fits_locked(nanos);
}

bool SpendTracker::reserve(WallTime wall, std::int64_t nanos) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
  if (!fits_locked(nanos)) return false;
  reserved_ += nanos;
  return true;
}

std::vector<BudgetAlert> SpendTracker::settle(WallTime wall, std::int64_t reserved,
                                              std::int64_t spent) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
  reserved_ = std::max<std::int64_t>(0, reserved_ - reserved);
  if (spent == 0) return {};
  return spend_locked(spent);
}

void SpendTracker::release(std::int64_t reserved) {
  std::lock_guard<std::mutex> lock(mutex_);
  reserved_ = std::max<std::int64_t>(0, reserved_ - reserved);
}

std::vector<BudgetAlert> SpendTracker::spend(WallTime wall, std::int64_t nanos) {
  std::lock_guard<std::mutex> lock(mutex_);
  roll(wall);
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
