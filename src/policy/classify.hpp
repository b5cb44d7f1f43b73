#pragma once

// Classification of attempt outcomes into ErrorKind (DESIGN.md "Defaults: Classification").

#include <failover/error.hpp>
#include <failover/time.hpp>
#include <failover/transport.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace failover::policy {

/** A failed exchange, classified. */
struct Classified {
  ErrorKind kind = ErrorKind::ServerError;  ///< What went wrong.
  int status = 0;                           ///< HTTP status (0 for transport errors).
  std::string message;                      ///< Provider message or transport description.
  std::string code;                         ///< `error.code`.
  std::string type;                         ///< `error.type`.
  std::string param;                        ///< `error.param`.
  std::optional<Duration> retry_after;      ///< From `retry-after-ms` / `Retry-After`.
  std::optional<bool> should_retry;         ///< From `x-should-retry`.
};

/** The kind for an HTTP status and the provider's error code, type and message. */
ErrorKind kind_for_status(int status, std::string_view code, std::string_view type,
                          std::string_view message);

/** Classifies a non-2xx response (or a 2xx whose body is an error object: pass `in_band`). */
Classified classify_http(int status, const HttpHeaders& headers, std::string_view body,
                         WallTime now);

}  // namespace failover::policy
