#pragma once

// Nearest-rank percentiles over a sorted sample.

#include <algorithm>
#include <cstddef>
#include <vector>

namespace failover::detail {

/** The nearest-rank `p` percentile (0 < p <= 1) of `sorted` (ascending, not empty): the
 *  smallest value with at least p of the sample at or below it. */
template <typename T>
T nearest_rank(const std::vector<T>& sorted, double p) {
  auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace failover::detail
