#pragma once

// Calendar dates in UTC, for budgets that run per day and per month.

#include <failover/time.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace failover::detail {

/** Days since 1970-01-01 (UTC). */
inline std::int64_t day_of(WallTime wall) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count();
  return seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
}

struct UtcDate {
  std::int64_t year = 1970;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
};

/** The civil date of `wall` in UTC (Howard Hinnant's days-to-civil algorithm). */
inline UtcDate utc_date(WallTime wall) {
  const std::int64_t z = day_of(wall) + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  UtcDate d;
  d.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  d.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  d.year = yoe + era * 400 + (d.month <= 2 ? 1 : 0);
  return d;
}

/** Months since January 1970. */
inline std::int64_t month_of(WallTime wall) {
  const UtcDate d = utc_date(wall);
  return d.year * 12 + (d.month - 1);
}

/** `2026-12-01` */
inline std::string day_text(WallTime wall) {
  const UtcDate d = utc_date(wall);
  char out[32];
  std::snprintf(out, sizeof out, "%04lld-%02d-%02d", static_cast<long long>(d.year), d.month,
                d.day);
  return out;
}

/** `2026-12` */
inline std::string month_text(WallTime wall) {
  const UtcDate d = utc_date(wall);
  char out[32];
  std::snprintf(out, sizeof out, "%04lld-%02d", static_cast<long long>(d.year), d.month);
  return out;
}

}  // namespace failover::detail
