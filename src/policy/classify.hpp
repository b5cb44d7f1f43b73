#pragma once

// Classification of failed exchanges into ErrorKind (docs/policies.md, "Classification"):
// one table of rules, read in order, over every signal a provider sends.

#include "wire/error_body.hpp"

#include <failover/error.hpp>
#include <failover/time.hpp>
#include <failover/transport.hpp>

#include <cstddef>
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
  /** From `retry-after-ms` / `Retry-After`, else the body's own (Google's `RetryInfo`). */
  std::optional<Duration> retry_after;
  std::optional<bool> should_retry;  ///< From `x-should-retry`.
  /** No error document of a provider's: an empty body, a page of text, or a bare "Not Found"
   *  (a server's answer for a path it does not have, not an API's error). */
  bool bare = false;
};

/** A bare 404 (see Classified::bare), most often a base_url without its `/v1` or with an
 *  operation's path, gets a message naming `url` (its query left out) and the likely fix. */
void explain_not_found(Classified& c, std::string_view url);

/** Whether a refused request was refused for being streamed: a 400 or 422 whose `param` is
 *  `stream` or `stream_options`, or whose message names the stream (a server or model that
 *  cannot stream). The same request sent whole may be served. */
bool refuses_streaming(const Classified& c);

/** Which rule of the table decided, and what. */
struct RuleMatch {
  ErrorKind kind = ErrorKind::ServerError;
  std::size_t rule = 0;  ///< Index in the table (see `rule_count`).
};

/** The rule that classifies an error body `e` that came with HTTP `status`. A 2xx status
 *  means the error came inside a successful response or stream: a numeric `code` in 400-599
 *  then stands for the status. */
RuleMatch match_rule(int status, const wire::ErrorBody& e);

/** Rows in the table. */
std::size_t rule_count();

/** Where rule `index` comes from (the comment of its row), for tests and docs. */
std::string_view rule_source(std::size_t index);

/** Classifies a non-2xx response, or a 2xx whose body is an error. */
Classified classify_http(int status, const HttpHeaders& headers, std::string_view body,
                         WallTime now);

/** Classifies an error already read from a body (an error event inside a stream). */
Classified classify_error(int status, const HttpHeaders& headers, wire::ErrorBody e, WallTime now);

}  // namespace failover::policy
