#pragma once

// Header and query parameter names that carry secrets (Azure's `api-key`, Google's `key`,
// `x-goog-api-key`, `Authorization`, signed-URL `signature`s, tokens): their values are
// redacted wherever the SDK shows options, traces, logs or errors.

#include "util/ascii.hpp"

#include <string_view>

namespace failover::detail {

/** Whether a header or query parameter named `name` (any case) carries a secret. */
inline bool is_secret_name(std::string_view name) {
  const std::string lower = ascii_lower(name);
  for (std::string_view word :
       {"key", "token", "secret", "authorization", "signature", "password", "credential"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

}  // namespace failover::detail
