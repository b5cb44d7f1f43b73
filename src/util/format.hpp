#pragma once

// Figures as people read them in messages and reports.

#include <failover/time.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace failover::detail {

/** A fraction as a percentage with one decimal: 0.056 -> "5.6 %". */
inline std::string percent_text(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", fraction * 100);
  return buf;
}

/** Names as a list: "a, b, c". */
inline std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

/** A duration in whole milliseconds: "5000 ms". */
inline std::string millis_text(Duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f ms", std::chrono::duration<double, std::milli>(d).count());
  return buf;
}

}  // namespace failover::detail
