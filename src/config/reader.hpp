#pragma once

// Reading a JSON configuration into ClientOptions (internal to config/): every value checked
// by its section's reader, every error a ConfigError naming its JSON path. reader.cpp has the
// document and the values; reader_sections.cpp the sections.

#include <failover/config.hpp>
#include <failover/options.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace failover::detail::config_read {

using nlohmann::json;

/** Throws the ConfigError of `path`. */
[[noreturn]] void fail(const std::string& path, const std::string& what);
/** `base[i]`. */
std::string index_path(const std::string& base, std::size_t i);
/** `base.key`, the key quoted when it holds more than a name's characters. */
std::string join_path(const std::string& base, const std::string& key);
/** "a string", "an array", ... */
const char* type_name(const json& v);

inline constexpr BalanceStrategy kStrategies[] = {
    BalanceStrategy::Ordered,        BalanceStrategy::Weighted,
    BalanceStrategy::RoundRobin,     BalanceStrategy::LeastOutstanding,
    BalanceStrategy::ConsistentHash, BalanceStrategy::LatencyAware};

class Reader {
 public:
  explicit Reader(const EnvLookup& env) : env_(env) {}

  ClientOptions read(const json& doc);

 private:
  void check_keys(const json& obj, const std::string& path,
                  std::initializer_list<const char*> allowed);

  const json& member(const json& obj, const std::string& path, const char* key);

  std::string string(const json& v, const std::string& path);

  std::int64_t positive(const json& v, const std::string& path);

  std::int64_t non_negative(const json& v, const std::string& path);

  // A count held in an int: a larger value is refused, never wrapped.
  int positive_int(const json& v, const std::string& path);
  int non_negative_int(const json& v, const std::string& path);
  static int as_int(std::int64_t n, const std::string& path);

  bool boolean(const json& v, const std::string& path);

  // Durations in milliseconds, at most a year: the SDK counts time in nanoseconds, and a larger
  // value would overflow (found by fuzz_config: total_ms 555555555555600000).
  static constexpr std::int64_t kMaxMillis = 365LL * 24 * 3600 * 1000;

  Duration millis(const json& v, const std::string& path);

  std::int64_t at_most_a_year(std::int64_t ms, const std::string& path);

  std::map<std::string, std::string> string_map(const json& v, const std::string& path);

  // `${NAME}` and `${NAME:-fallback}` replaced; `$${` is a literal `${`. A value from the
  // environment is taken as it is (never expanded again) and must be valid UTF-8.
  std::string interpolate(const std::string& s, const std::string& path);

  // A JSON value with `${...}` replaced in every string in it (route params).
  json interpolated(const json& v, const std::string& path);

  std::optional<std::string> lookup(const std::string& name);

  Endpoint endpoint(const json& v, const std::string& path);

  Tier tier(const json& v, const std::string& path);

  StateOptions state(const json& v);

  Timeouts timeouts(const json& v);

  // A tier's or a route's own limits: every timeout but the call's total.
  TimeoutOverrides timeout_overrides(const json& v, const std::string& path);

  std::shared_ptr<const RetryPolicy> retry(const json& v);

  double fraction_or_more(const json& v, const std::string& path, double max);

  std::map<std::string, ModelPrice> prices(const json& v);

  BudgetOptions budget_limits(const json& v);

  RouteRef route_ref(const json& v, const std::string& path);

  ShadowOptions shadow(const json& v);

  CanaryOptions canary(const json& v);

  HedgingOptions hedging(const json& v);

  LogOptions log(const json& v);

  HealthProbeOptions health(const json& v);

  RetryBudgetOptions budget(const json& v);

  CircuitBreakerFactory breaker(const json& v);

  const EnvLookup& env_;
};

}  // namespace failover::detail::config_read
