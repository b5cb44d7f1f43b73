#include "core/probe.hpp"

#include "policy/classify.hpp"
#include "wire/dialect.hpp"

#include <map>

namespace failover::detail {

namespace {

HttpRequest base_request(const ClientCore& core, Duration timeout) {
  HttpRequest r;
  r.connect_timeout = std::min(core.options().timeouts.connect, timeout);
  r.first_byte_timeout = timeout;
  r.total_timeout = timeout;
  r.max_response_bytes = core.options().max_response_bytes;
  r.ca_bundle = core.options().ca_bundle;
  return r;
}

}  // namespace

HttpRequest models_probe(const ClientCore& core, std::size_t endpoint, Duration timeout) {
  const ResolvedEndpoint& e = core.endpoints()[endpoint];
  HttpRequest r = base_request(core, timeout);
  r.method = "GET";
  r.url = e.models_url;
  for (const auto& [k, v] : e.headers) {
    if (k != "Content-Type") r.headers.emplace_back(k, v);
  }
  return r;
}

HttpRequest chat_probe(const ClientCore& core, std::size_t route, Duration timeout) {
  const RouteState& state = *core.routes()[route];
  const ResolvedEndpoint& e = core.endpoints()[state.endpoint];
  HttpRequest r = base_request(core, timeout);
  r.method = "POST";
  r.url = state.url;
  r.headers = e.headers;
  r.body = e.api->probe_body(state.ref.model, state.model_json);
  return r;
}

RouteProbe evaluate_probe(const ClientCore& core, std::size_t route, const HttpResult& r,
                          Duration latency, bool models) {
  const RouteState& state = *core.routes()[route];
  RouteProbe rp;
  rp.route = state.ref;
  rp.latency = latency;
  rp.status = r.status;
  if (r.transport_error) {
    rp.error = r.transport_error;
    rp.message = r.error_message;
  } else if (r.status < 200 || r.status >= 300) {
    policy::Classified c =
        policy::classify_http(r.status, r.headers, r.body, core.clock().wall_now());
    policy::explain_not_found(c, models ? core.endpoints()[state.endpoint].models_url : state.url);
    rp.error = c.kind;
    rp.message = c.message;
  } else if (models) {
    if (std::optional<bool> listed = wire::lists_model(r.body, state.ref.model)) {
      rp.model_listed = *listed;
      if (!*listed) rp.message = "the endpoint does not list model " + state.ref.model;
    }
  } else {
    ChatResponse ignored;
    std::string body = r.body;
    if (auto failure = core.endpoints()[state.endpoint].api->decode(body, ignored)) {
      rp.error = ErrorKind::Protocol;
      rp.message = failure->message;
    }
  }
  rp.ok = !rp.error && rp.model_listed.value_or(true);
  // A relay may quote the key back in its answer to a probe too.
  rp.message = core.endpoints()[state.endpoint].redact(std::move(rp.message));
  return rp;
}

std::vector<RouteProbe> probe_routes(ClientCore& core, Duration timeout) {
  Clock& clock = core.clock();
  struct Probe {
    TimePoint start{};
    std::optional<HttpResult> result;
    TimePoint end{};
  };
  // What the configured probe sends: a model listing per endpoint, or a chat per route.
  const bool models = core.options().health_probe.method == ProbeMethod::Models;
  auto target_of = [&](std::size_t route) {
    return models ? core.routes()[route]->endpoint : route;
  };
  std::map<std::size_t, Probe> by_target;
  std::map<std::uint64_t, std::size_t> by_exchange;
  std::unique_ptr<TransportSession> session = core.acquire_session();
  for (std::size_t i = 0; i < core.routes().size(); ++i) {
    const std::size_t target = target_of(i);
    if (by_target.count(target)) continue;
    std::uint64_t id = core.next_exchange_id();
    by_target[target].start = clock.now();
    by_exchange[id] = target;
    session->start(
        id, models ? models_probe(core, target, timeout) : chat_probe(core, target, timeout));
  }
  TimePoint deadline = clock.now() + timeout + std::chrono::seconds(1);
  std::size_t pending = by_exchange.size();
  TransportEvents events;
  while (pending > 0 && clock.now() < deadline) {
    session->wait(deadline, events);
    for (HttpResult& r : events.completed) {
      auto it = by_exchange.find(r.id);
      if (it == by_exchange.end()) continue;
      Probe& p = by_target[it->second];
      p.end = clock.now();
      p.result = std::move(r);
      --pending;
    }
    events.clear();
  }
  for (const auto& [id, target] : by_exchange) {
    if (!by_target[target].result) session->cancel(id);
  }
  core.release_session(std::move(session));

  std::vector<RouteProbe> out;
  TimePoint now = clock.now();
  for (std::size_t i = 0; i < core.routes().size(); ++i) {
    const auto& route = core.routes()[i];
    const Probe& p = by_target[target_of(i)];
    RouteProbe rp;
    if (p.result) {
      rp = evaluate_probe(core, i, *p.result, p.end - p.start, models);
    } else {
      rp.route = route->ref;
      rp.error = ErrorKind::Timeout;
      rp.message = "no answer within the probe timeout";
      rp.latency = timeout;
    }
    rp.state = route->reported_state(now);
    out.push_back(std::move(rp));
  }
  return out;
}

}  // namespace failover::detail
