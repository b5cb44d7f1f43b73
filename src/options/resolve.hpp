#pragma once

// Options checked and resolved into what a client's state is built from: the endpoints with
// their URLs and headers, the distinct routes, and the plan (the priority list). Nothing here
// holds state of a running client.

#include <failover/options.hpp>
#include <failover/transport.hpp>

#include "wire/dialect.hpp"
#include "wire/shaping.hpp"

#include <spdlog/fwd.h>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace failover::detail {

/** An endpoint ready for requests: full URL and the headers every request carries. */
struct ResolvedEndpoint {
  std::string name;
  const wire::DialectApi* api = &wire::api_of(Dialect::OpenAI);  // the API it speaks
  std::string base;        // the base URL, checked, without a trailing slash
  std::string query;       // `?k=v&...`, or empty
  std::string models_url;  // .../models?query
  HttpHeaders headers;     // content type, accept, user agent, auth, endpoint headers
  /** The API key and the values of headers and query parameters that carry secrets (see
   *  util/secret_names.hpp), to redact wherever a server echoes one back. */
  std::vector<std::string> secrets;
  Continuation continuation = Continuation::None;
  bool streaming = true;  // Endpoint::streaming

  /** `text` with every occurrence of a secret replaced by `[redacted]`. */
  std::string redact(std::string text) const;
};

/** One entry of the priority list, in order. */
struct PlanEntry {
  std::size_t route = 0;  // index into ClientCore::routes
  std::size_t tier = 0;
  Timeouts timeouts;  // the client's, with the tier's and the route's overrides applied
  std::shared_ptr<const wire::RequestShaping> shaping;  // null: the body goes as encoded
};

/** Options checked and resolved, before any client state exists. */
struct ResolvedOptions {
  std::vector<ResolvedEndpoint> endpoints;
  std::vector<std::pair<RouteRef, std::size_t>> routes;  // distinct routes, with endpoint index
  std::vector<PlanEntry> plan;             // the priority list, then the candidates below
  std::optional<std::size_t> canary_plan;  // plan entry of the canary's candidate
  std::optional<std::size_t> shadow_plan;  // plan entry of the shadow's candidate
};

/** Validates `options` (trimming keys) and resolves URLs, headers and the plan; throws
 *  `ConfigError` naming the field. No side effects beyond `options`. */
ResolvedOptions resolve_options(ClientOptions& options);

/** What is wrong with a call's own options (`timeout`, `headers`), naming the field. */
std::optional<std::string> check_call_options(const CallOptions& call);

/** Validates header names and values; throws `std::invalid_argument` naming `field`. */
void validate_headers(const std::map<std::string, std::string>& headers, std::string_view field);

/** The logger `log` asks for: named "failover", at its level, to its file or to stderr. */
std::shared_ptr<spdlog::logger> make_logger(const LogOptions& log);

}  // namespace failover::detail
