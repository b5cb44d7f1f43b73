#pragma once

/**
 * @file format.hpp  Text for the results of calls, opt-in: `describe()`, `operator<<` and fmt
 * formatters (so `spdlog::info("{}", result.error())` works) for `Attempt`, `SkippedRoute`,
 * `ChatResponse` and `Error`. The lines read as the `failover` tool prints them.
 */

#include <failover/chat.hpp>
#include <failover/error.hpp>
#include <failover/export.hpp>

#include <fmt/format.h>

#include <ostream>
#include <string>
#include <string_view>

namespace failover {

/** `primary/gpt-4.1: overloaded (HTTP 503) in 12 ms: upstream busy; next attempt after 500 ms` */
FAILOVER_EXPORT std::string describe(const Attempt& attempt);
/** `backup/gpt-4.1: passed over, cooling_down: cooling down after a rate limit for 27980 ms` */
FAILOVER_EXPORT std::string describe(const SkippedRoute& skipped);
/** `served by backup/gpt-4.1 after 2 attempts`, then a line per attempt and per route passed
 *  over, each indented by two spaces. */
FAILOVER_EXPORT std::string describe(const ChatResponse& response);
/** `all_routes_unavailable: <message>`, then the same lines as for a response. */
FAILOVER_EXPORT std::string describe(const Error& error);

inline std::ostream& operator<<(std::ostream& os, const Attempt& a) { return os << describe(a); }
inline std::ostream& operator<<(std::ostream& os, const SkippedRoute& s) {
  return os << describe(s);
}
inline std::ostream& operator<<(std::ostream& os, const ChatResponse& r) {
  return os << describe(r);
}
inline std::ostream& operator<<(std::ostream& os, const Error& e) { return os << describe(e); }

namespace detail {
/** fmt's formatter of a type that `describe()` turns into text. */
template <class T>
struct DescribedFormatter : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const T& value, FormatContext& ctx) const -> decltype(ctx.out()) {
    const std::string text = describe(value);
    return fmt::formatter<std::string_view>::format(std::string_view(text), ctx);
  }
};
}  // namespace detail

}  // namespace failover

template <>
struct fmt::formatter<failover::Attempt> : failover::detail::DescribedFormatter<failover::Attempt> {
};
template <>
struct fmt::formatter<failover::SkippedRoute>
    : failover::detail::DescribedFormatter<failover::SkippedRoute> {};
template <>
struct fmt::formatter<failover::ChatResponse>
    : failover::detail::DescribedFormatter<failover::ChatResponse> {};
template <>
struct fmt::formatter<failover::Error> : failover::detail::DescribedFormatter<failover::Error> {};
