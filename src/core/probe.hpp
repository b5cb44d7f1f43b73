#pragma once

// Health probes: the request for a route or endpoint, and what its answer says.

#include "core/client_core.hpp"

namespace failover::detail {

/** A GET /models request for `endpoint` (no Content-Type). */
HttpRequest models_probe(const ClientCore& core, std::size_t endpoint, Duration timeout);
/** A one-token chat completion for `route`. */
HttpRequest chat_probe(const ClientCore& core, std::size_t route, Duration timeout);

/** What a probe's result means for `route`. `models` says whether it was a /models probe. */
RouteProbe evaluate_probe(const ClientCore& core, std::size_t route, const HttpResult& result,
                          Duration latency, bool models);

/** Probes every route at once, as health.probe says (a model listing per endpoint, or a chat
 *  per route), and waits at most `timeout` (plus a second) for the answers. */
std::vector<RouteProbe> probe_routes(ClientCore& core, Duration timeout);

}  // namespace failover::detail
