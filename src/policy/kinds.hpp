#pragma once

// Shared facts about error kinds, used by the default policies.

#include <failover/error.hpp>

namespace failover::detail {

/** Failures a retry of the same route might cure: 5xx, overload, conflicts, connection and TLS
 *  failures, timeouts, malformed responses and rate limits. */
bool is_transient(ErrorKind kind) noexcept;

}  // namespace failover::detail
