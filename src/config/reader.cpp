// The configuration document and its values: keys checked, numbers, durations, strings and
// `${NAME}` interpolation.

#include "config/reader.hpp"

#include "options/resolve.hpp"
#include "util/edit_distance.hpp"
#include "util/utf8.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace failover::detail::config_read {

ClientOptions Reader::read(const json& doc) {
  if (!doc.is_object()) fail("config", "must be a JSON object");
  check_keys(doc, "",
             {"endpoints", "priority", "timeouts", "retry", "retry_budget", "circuit_breaker",
              "health", "hedging", "prices", "budget", "shadow", "canary", "max_response_bytes",
              "ca_bundle", "user_agent", "content_filter", "stream_recovery", "state", "log"});
  ClientOptions o;
  const json& endpoints = member(doc, "", "endpoints");
  if (!endpoints.is_array())
    fail("endpoints", std::string("must be an array, not ") + type_name(endpoints));
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    o.endpoints.push_back(endpoint(endpoints[i], index_path("endpoints", i)));
  }
  const json& priority = member(doc, "", "priority");
  if (!priority.is_array())
    fail("priority", std::string("must be an array, not ") + type_name(priority));
  for (std::size_t i = 0; i < priority.size(); ++i) {
    o.priority.push_back(tier(priority[i], index_path("priority", i)));
  }
  if (doc.contains("timeouts")) o.timeouts = timeouts(doc["timeouts"]);
  if (doc.contains("retry")) o.retry = retry(doc["retry"]);
  if (doc.contains("retry_budget")) o.retry_budget = budget(doc["retry_budget"]);
  if (doc.contains("health")) o.health_probe = health(doc["health"]);
  if (doc.contains("hedging")) o.hedging = hedging(doc["hedging"]);
  if (doc.contains("prices")) o.prices = prices(doc["prices"]);
  if (doc.contains("budget")) o.budget = budget_limits(doc["budget"]);
  if (doc.contains("circuit_breaker")) o.circuit_breaker = breaker(doc["circuit_breaker"]);
  if (doc.contains("shadow")) o.shadow = shadow(doc["shadow"]);
  if (doc.contains("canary")) o.canary = canary(doc["canary"]);
  if (doc.contains("state")) o.state = state(doc["state"]);
  if (doc.contains("log")) o.log = log(doc["log"]);
  if (doc.contains("max_response_bytes")) {
    o.max_response_bytes =
        static_cast<std::size_t>(positive(doc["max_response_bytes"], "max_response_bytes"));
  }
  if (doc.contains("ca_bundle")) o.ca_bundle = string(doc["ca_bundle"], "ca_bundle");
  if (doc.contains("user_agent")) o.user_agent = string(doc["user_agent"], "user_agent");
  if (doc.contains("content_filter")) {
    const std::string policy = string(doc["content_filter"], "content_filter");
    if (policy == "fail") {
      o.content_filter = ContentFilterPolicy::Fail;
    } else if (policy == "fail_over") {
      o.content_filter = ContentFilterPolicy::FailOver;
    } else {
      fail("content_filter",
           "must be fail or fail_over (got \"" + wire::excerpt(policy, 40) + "\")");
    }
  }
  if (doc.contains("stream_recovery")) {
    const std::string mode = string(doc["stream_recovery"], "stream_recovery");
    if (mode == "fail") {
      o.stream_recovery = StreamRecovery::Fail;
    } else if (mode == "restart") {
      o.stream_recovery = StreamRecovery::Restart;
    } else if (mode == "continue") {
      o.stream_recovery = StreamRecovery::Continue;
    } else {
      fail("stream_recovery",
           "must be fail, restart or continue (got \"" + wire::excerpt(mode, 40) + "\")");
    }
  }
  return o;
}

void Reader::check_keys(const json& obj, const std::string& path,
                        std::initializer_list<const char*> allowed) {
  for (const auto& item : obj.items()) {
    const std::string& key = item.key();
    bool known =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; });
    if (known) continue;
    std::string best;
    std::size_t best_distance = 3;
    for (const char* a : allowed) {
      std::size_t d = detail::edit_distance(key, a);
      if (d < best_distance) {
        best_distance = d;
        best = a;
      }
    }
    std::string list;
    for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
    fail(join_path(path, key),
         "is not a known key" + (best.empty() ? std::string() : " (did you mean " + best + "?)") +
             "; known keys: " + list);
  }
}

const json& Reader::member(const json& obj, const std::string& path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(join_path(path, key), "is missing");
  return *it;
}

std::string Reader::string(const json& v, const std::string& path) {
  if (!v.is_string()) fail(path, std::string("must be a string, not ") + type_name(v));
  return interpolate(v.get<std::string>(), path);
}

std::int64_t Reader::positive(const json& v, const std::string& path) {
  if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) {
    fail(path, "must be a positive whole number (got " + wire::excerpt(v.dump(), 40) + ")");
  }
  return v.get<std::int64_t>();
}

std::int64_t Reader::non_negative(const json& v, const std::string& path) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0) {
    fail(path, "must be a whole number of at least 0 (got " + wire::excerpt(v.dump(), 40) + ")");
  }
  return v.get<std::int64_t>();
}

int Reader::positive_int(const json& v, const std::string& path) {
  return as_int(positive(v, path), path);
}

int Reader::non_negative_int(const json& v, const std::string& path) {
  return as_int(non_negative(v, path), path);
}

int Reader::as_int(std::int64_t n, const std::string& path) {
  constexpr std::int64_t kMax = std::numeric_limits<int>::max();
  if (n > kMax) {
    fail(path, "must be at most " + std::to_string(kMax) + " (got " + std::to_string(n) + ")");
  }
  return static_cast<int>(n);
}

bool Reader::boolean(const json& v, const std::string& path) {
  if (!v.is_boolean()) fail(path, std::string("must be true or false, not ") + type_name(v));
  return v.get<bool>();
}

Duration Reader::millis(const json& v, const std::string& path) {
  return std::chrono::milliseconds(at_most_a_year(positive(v, path), path));
}

std::int64_t Reader::at_most_a_year(std::int64_t ms, const std::string& path) {
  if (ms > kMaxMillis) {
    fail(path, "must be at most " + std::to_string(kMaxMillis) + " ms (a year; got " +
                   std::to_string(ms) + ")");
  }
  return ms;
}

std::map<std::string, std::string> Reader::string_map(const json& v, const std::string& path) {
  if (!v.is_object()) fail(path, std::string("must be an object of strings, not ") + type_name(v));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) out[key] = string(value, join_path(path, key));
  return out;
}

std::string Reader::interpolate(const std::string& s, const std::string& path) {
  if (s.find("${") == std::string::npos) return s;
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (s.compare(i, 2, "${") != 0) {
      out += s[i++];
      continue;
    }
    const std::size_t open = i;
    std::size_t close = s.find('}', open);
    if (close == std::string::npos) fail(path, "has a ${ without its closing }");
    std::string inside = s.substr(open + 2, close - open - 2);
    std::optional<std::string> fallback;
    if (std::size_t sep = inside.find(":-"); sep != std::string::npos) {
      fallback = inside.substr(sep + 2);
      inside.resize(sep);
    }
    bool valid = !inside.empty() && !std::isdigit(static_cast<unsigned char>(inside[0]));
    for (char c : inside)
      valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!valid) fail(path, "has a malformed reference ${" + wire::excerpt(inside, 40) + "}");
    std::optional<std::string> value = lookup(inside);
    if (!value || value->empty()) {
      if (!fallback) fail(path, "refers to ${" + inside + "}, which is not set in the environment");
      value = fallback;
    } else if (detail::valid_utf8(*value) != *value) {
      fail(path, "refers to ${" + inside + "}, whose value is not valid UTF-8");
    }
    out += *value;
    i = close + 1;
  }
  return out;
}

json Reader::interpolated(const json& v, const std::string& path) {
  if (v.is_string()) return interpolate(v.get<std::string>(), path);
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [key, item] : v.items()) out[key] = interpolated(item, join_path(path, key));
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (std::size_t k = 0; k < v.size(); ++k)
      out.push_back(interpolated(v[k], index_path(path, k)));
    return out;
  }
  return v;
}

std::optional<std::string> Reader::lookup(const std::string& name) {
  if (env_) return env_(name);
  if (const char* v = std::getenv(name.c_str())) return std::string(v);
  return std::nullopt;
}

}  // namespace failover::detail::config_read
