#pragma once

// What a call says of itself: the names and times in its messages, why it passed a route
// over, and its error when no route served it.

#include <failover/error.hpp>
#include <failover/state.hpp>
#include <failover/time.hpp>

#include "core/admission.hpp"

#include <optional>
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

/** No route serves any of the models `asked` for; the routes serve `served`. */
std::string no_route_message(const std::vector<std::string>& asked,
                             const std::vector<std::string>& served);
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

/** The call's deadline passed during an attempt on `route`; `waiting` could have served and
 *  never got an attempt (the message then says which setting to change). */
std::string deadline_message(const RouteRef& route, const std::vector<RouteRef>& waiting);

/** What a call no route served knows when it ends. */
struct Exhaustion {
  const std::vector<Attempt>* trace = nullptr;
  bool sent = false;                  // some attempt was sent
  std::vector<SkippedRoute> untried;  // the routes never tried, and why each was passed over
  bool retries_paused = false;        // the retry budget refused a retry
  bool attempts_spent = false;        // the retry policy stopped the call
  bool rate_blocked = false;          // a route was refused a client-side rate-limit permit
  TimePoint rate_wait{};              // when the first permit is due
  bool spend_blocked = false;         // a route was passed over for the spending budget
  bool store_down = false;            // because the fleet's spend could not be checked
  const StateStore* store = nullptr;
  TimePoint now{};
};
/** The error of such a call: its kind, message and when a route may serve again. */
struct ExhaustedError {
  ErrorKind kind = ErrorKind::AllRoutesUnavailable;
  std::string message;
  std::optional<TimePoint> available_at;
};
ExhaustedError exhausted_error(const Exhaustion& x);

}  // namespace failover::detail
