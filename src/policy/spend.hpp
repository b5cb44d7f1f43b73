#pragma once

// Spending against BudgetOptions: per UTC day and month, in nano-dollars. Thread-safe.

#include <failover/usage.hpp>

#include <cstdint>
#include <mutex>
#include <vector>

namespace failover::detail {

class SpendTracker {
 public:
  explicit SpendTracker(BudgetOptions options);

  bool enabled() const { return options_.usd_per_day || options_.usd_per_month; }
  /** Would spending `nanos` more at `wall` stay within every limit? */
  bool fits(WallTime wall, std::int64_t nanos);
  /** Records spending; returns the alerts it crossed (to be reported outside any lock). */
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

  BudgetOptions options_;
  std::mutex mutex_;
  Period day_;
  Period month_;
};

}  // namespace failover::detail
