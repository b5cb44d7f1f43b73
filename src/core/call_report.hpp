#pragma once

// What a call says of itself: the names and times in its messages, why it passed a route
// over, and its error when no route served it.

#include <failover/error.hpp>
#include <failover/state.hpp>
#include <failover/time.hpp>

#include "core/admission.hpp"

#include <string>
#include <vector>

namespace failover::detail {

struct RouteState;

/** "endpoint/model". */
std::string route_name(const RouteRef& r);
/** "0.25 ms", "12 ms". */
std::string format_ms(Duration d);

/** Why `route` was passed over without an attempt (`blocked`), and until when; `rate_wait` is
 *  when the first rate-limit permit is due, if known. */
SkippedRoute passed_over(const RouteState& route, Admission::Block blocked, TimePoint rate_wait,
                         TimePoint now);

/** No route's API can express the request: each route's reason, from `trace`. */
std::string untranslatable_message(const std::vector<Attempt>& trace);
/** The start of the error of a call no route served: with attempts sent, the last failure of
 *  each route in the order they were first tried; else why each was passed over. Ends in ';'
 *  when it names a route. */
std::string exhausted_message(const std::vector<Attempt>& trace, bool sent);
/** Every route that could serve would exceed the spending budget, or (`store` set) the budget
 *  cannot be checked because that store is out of reach; with what `trace` says of each. */
std::string budget_refusal(const std::vector<Attempt>& trace, const StateStore* store,
                           bool store_down);

}  // namespace failover::detail
