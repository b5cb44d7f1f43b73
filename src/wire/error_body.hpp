#pragma once

// Error bodies as providers really send them: OpenAI's `ErrorResponse` and the many shapes
// around it (Google, Anthropic, FastAPI/vLLM, relays, HTML pages from proxies and edges).

#include <failover/time.hpp>

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace failover::wire {

/** The fields of an error body, leniently read from any JSON shape. */
struct ErrorBody {
  bool found = false;   ///< An error object (or message) was present.
  std::string message;  ///< `error.message` (or a short, markup-free excerpt of a non-JSON body).
  std::string type;     ///< `error.type` (also Anthropic's, FastAPI's `type`, Azure's `type_`).
  std::string code;     ///< `error.code` (numbers are turned into text).
  std::string param;    ///< `error.param`.
  std::string status;   ///< Google's `error.status` (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`, ...).
  /** Further machine-readable reasons: Google's `details[].reason` (`API_KEY_INVALID`),
   *  OpenRouter's `metadata.error_type`. */
  std::vector<std::string> reasons;
  /** Google's `details[]` `RetryInfo.retryDelay` (`"34.4s"`): the body's own Retry-After. */
  std::optional<Duration> retry_delay;
};

/**
 * Reads an error body of any of these shapes: `{"error":{...}}`, `{"error":"text"}`,
 * `[{"error":{...}}]`, `{"detail":"..."}`, `{"detail":{...}}`, FastAPI's `{"detail":[{"msg":
 * ...}]}`, a flat `{"message":...,"type":...}` (vLLM's `{"object":"error",...}` too), Anthropic's
 * `{"type":"error","error":{...}}`, Google's `status` and `details`, an `error.message` or an
 * OpenRouter `metadata.raw` that is itself a JSON error document (the inner error wins). A body
 * that is not JSON gives a short excerpt as the message: an HTML page its `<title>` or its text
 * without markup.
 */
ErrorBody decode_error_body(std::string_view body);

/** Reads an already parsed document, as `decode_error_body` does. */
ErrorBody error_from_json(const nlohmann::json& doc);

/** Plain text of an HTML page for a message: its `<title>`, or its text without tags, with
 *  whitespace collapsed; text that is not HTML comes back with whitespace collapsed. At most
 *  `max` bytes. */
std::string plain_excerpt(std::string_view body, std::size_t max = 200);

}  // namespace failover::wire
