#pragma once

/**
 * @file json.hpp  The results of calls as JSON, opt-in (nlohmann/json): `nlohmann::json j =
 * attempt;` works for `Attempt`, `SkippedRoute`, `ChatResponse` and `Error`, with the members
 * `failover chat --json` prints. Durations are in milliseconds; a time to come is `for_ms`
 * from when it is converted.
 */

#include <failover/chat.hpp>
#include <failover/error.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

namespace failover {

namespace detail {
inline double json_ms(Duration d) {
  return static_cast<double>(std::chrono::round<std::chrono::microseconds>(d).count()) / 1000.0;
}
}  // namespace detail

template <class Json>
void to_json(Json& j, const Attempt& a) {
  j = Json{{"endpoint", a.route.endpoint},
           {"model", a.route.model},
           {"outcome", a.outcome()},
           {"status", a.status},
           {"latency_ms", detail::json_ms(a.latency)},
           {"delay_ms", detail::json_ms(a.delay)}};
  if (!a.message.empty()) j["message"] = a.message;
  if (a.skipped_events > 0) j["skipped_events"] = a.skipped_events;
  if (a.delivered_chunks > 0) {
    j["delivered_chunks"] = a.delivered_chunks;
    j["delivered_chars"] = a.delivered_chars;
  }
  if (!a.recovery.empty()) j["recovery"] = a.recovery;
}

template <class Json>
void to_json(Json& j, const SkippedRoute& s) {
  j = Json{{"endpoint", s.route.endpoint},
           {"model", s.route.model},
           {"reason", std::string(to_string(s.reason))},
           {"message", s.message}};
  if (s.until) {
    const Duration left = *s.until - std::chrono::steady_clock::now();
    j["for_ms"] = detail::json_ms(left > Duration::zero() ? left : Duration::zero());
  } else {
    j["for_ms"] = nullptr;
  }
}

template <class Json>
void to_json(Json& j, const ChatResponse& r) {
  j = Json{{"text", r.text()},
           {"finish_reason", r.finish_reason()},
           {"served_by", Json{{"endpoint", r.served_by.endpoint}, {"model", r.served_by.model}}},
           {"attempts", r.attempts},
           {"skipped", r.skipped}};
  j["cost_usd"] = r.cost_usd ? Json(*r.cost_usd) : Json(nullptr);
  if (r.usage) {
    j["usage"] = Json{{"prompt_tokens", r.usage->prompt_tokens},
                      {"completion_tokens", r.usage->completion_tokens},
                      {"total_tokens", r.usage->total_tokens}};
  }
}

template <class Json>
void to_json(Json& j, const Error& e) {
  j = Json{{"kind", std::string(to_string(e.kind()))},
           {"message", e.message()},
           {"attempts", e.attempts()},
           {"skipped", e.skipped()}};
  j["status"] = e.http_status() ? Json(e.http_status()) : Json(nullptr);
  if (!e.provider_code().empty()) j["code"] = e.provider_code();
}

}  // namespace failover
