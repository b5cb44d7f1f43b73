#include "observe/probe.hpp"

#include "policy/classify.hpp"
#include "wire/json_codec.hpp"

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
  r.url = e.url;
  r.headers = e.headers;
  r.body = nlohmann::json{
      {"model", state.ref.model},
      {"messages", {{{"role", "user"}, {"content", "ping"}}}},
      {"max_tokens",
       1}}.dump();
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
    rp.error = c.kind;
    rp.message = c.message;
  } else if (models) {
    auto doc = wire::parse_json(r.body);
    if (doc && doc->is_object() && doc->contains("data") && (*doc)["data"].is_array()) {
      bool listed = false;
      for (const auto& m : (*doc)["data"]) {
        listed = listed || (m.is_object() && m.value("id", "") == state.ref.model);
      }
      rp.model_listed = listed;
      if (!listed) rp.message = "the endpoint does not list model " + state.ref.model;
    }
  } else {
    ChatResponse ignored;
    std::string body = r.body;
    if (auto failure = wire::decode_response(body, ignored)) {
      rp.error = ErrorKind::Protocol;
      rp.message = failure->message;
    }
  }
  rp.ok = !rp.error && rp.model_listed.value_or(true);
  // A relay may quote the key back in its answer to a probe too.
  rp.message = core.endpoints()[state.endpoint].redact(std::move(rp.message));
  return rp;
}

}  // namespace failover::detail
