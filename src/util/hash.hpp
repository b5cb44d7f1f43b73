#pragma once

// A stable 64-bit string hash: the same on every platform and in every release, so sticky
// assignments (hash ring owners, canary users) survive restarts and upgrades.

#include <cstdint>
#include <string_view>

namespace failover::detail {

/** FNV-1a over the bytes, finalised with splitmix64 so that similar keys land far apart. */
inline std::uint64_t stable_hash(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBULL;
  return h ^ (h >> 31);
}

}  // namespace failover::detail
