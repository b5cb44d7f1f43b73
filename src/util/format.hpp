#pragma once

// Figures as people read them in messages and reports.

#include <failover/time.hpp>

#include <chrono>
#include <cstdio>
#include <string>

namespace failover::detail {

/** A fraction as a percentage with one decimal: 0.056 -> "5.6 %". */
inline std::string percent_text(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", fraction * 100);
  return buf;
}

/** A duration in whole milliseconds: "5000 ms". */
inline std::string millis_text(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f ms", std::chrono::duration<double, std::milli>(d).count());
  return buf;
}

}  // namespace failover::detail
