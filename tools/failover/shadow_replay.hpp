#pragma once

// `failover shadow`: replays recorded requests against a primary and a candidate route and
// reports how the candidate compares.

#include <failover/failover.hpp>

#include <nlohmann/json.hpp>

#include <iosfwd>
#include <string>
#include <vector>

#include "cli_common.hpp"

namespace failover::tools {

struct ShadowArgs {
  std::string config;
  LogArgs log;
  std::string requests;  // JSONL: one CreateChatCompletionRequest per line
  std::string primary;   // endpoint/model
  std::string candidate;
  bool as_json = false;
  std::string report;  // HTML output path
  int concurrency = 4;
};

/** Thrown for bad input to the replay (exit code 2): the message names what was wrong. */
struct ReplayInputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/** Reads one JSONL line (a `CreateChatCompletionRequest`) into a request; fields the SDK does
 *  not model travel in `extra_json`, `model` and `stream` are ignored. Throws
 *  `ReplayInputError` naming the field. */
ChatRequest request_from_json(const nlohmann::json& doc);

/** Reads every request of a JSONL file; throws `ReplayInputError` naming the line. */
std::vector<ChatRequest> read_requests(const std::string& path);

/** "endpoint/model" split at the first slash (models may contain slashes). */
RouteRef parse_route(const std::string& text);

/** The report as JSON (the `--json` output). */
nlohmann::json report_json(const ShadowReport& report, const RouteRef& primary,
                           const RouteRef& candidate);

/** A self-contained HTML page: summary, latency distributions (inline SVG), worst pairs. */
std::string report_html(const ShadowReport& report, const RouteRef& primary,
                        const RouteRef& candidate);

/** Runs the command; returns the exit code. */
int run_shadow(const ShadowArgs& args);

}  // namespace failover::tools
