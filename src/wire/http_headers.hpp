#pragma once

// HTTP header helpers: lookup, Retry-After family, x-should-retry, header validation.

#include <failover/time.hpp>
#include <failover/transport.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace failover::wire {

/** Value of the first header named `lower_name` (names in `headers` are lower case). */
const std::string* find_header(const HttpHeaders& headers, std::string_view lower_name);

/** `retry-after-ms`: a non-negative number of milliseconds (fractions allowed). */
std::optional<Duration> parse_retry_after_ms(std::string_view value);

/** `Retry-After`: delay-seconds (fractions tolerated) or an HTTP-date relative to `now`.
 *  A date in the past gives zero. Garbage gives nothing. */
std::optional<Duration> parse_retry_after(std::string_view value, WallTime now);

/** Reads `retry-after-ms` first, then `retry-after`, as the OpenAI SDKs do. */
std::optional<Duration> retry_after_from(const HttpHeaders& headers, WallTime now);

/** An HTTP-date: IMF-fixdate, obsolete RFC 850 or asctime format (RFC 9110 5.6.7). */
std::optional<WallTime> parse_http_date(std::string_view value);

/** An RFC 3339 time (`2030-01-01T00:00:30Z`, fractions and offsets allowed), as Anthropic's
 *  `anthropic-ratelimit-*-reset` headers give it. */
std::optional<WallTime> parse_rfc3339(std::string_view value);

/** `x-should-retry: true|false`; anything else gives nothing. */
std::optional<bool> should_retry_from(const HttpHeaders& headers);

/** RFC 9110 token characters only, not empty. */
bool valid_header_name(std::string_view name);
/** No CR, LF or NUL (nor other control characters except tab). */
bool valid_header_value(std::string_view value);

/** Strips ASCII whitespace from both ends. */
std::string_view trim(std::string_view s);

}  // namespace failover::wire
