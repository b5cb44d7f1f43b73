#include "policy/rate_limiter.hpp"

#include "wire/http_headers.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace failover::detail {

std::optional<Duration> parse_reset_duration(std::string_view text) {
  text = wire::trim(text);
  if (text.empty() || text.size() > 40) return std::nullopt;
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() &&
           (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (i == start) return std::nullopt;
    double value = 0;
    auto r = std::from_chars(text.data() + start, text.data() + i, value);
    if (r.ec != std::errc() || r.ptr != text.data() + i) return std::nullopt;
    std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    if (unit == "h") {
      total_ms += value * 3600e3;
    } else if (unit == "m") {
      total_ms += value * 60e3;
    } else if (unit == "s") {
      total_ms += value * 1e3;
    } else if (unit == "ms") {
      total_ms += value;
    } else {
      return std::nullopt;  // a bare number, "us", garbage
    }
  }
  if (!std::isfinite(total_ms) || total_ms > 24 * 3600e3) return std::nullopt;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(total_ms));
}

RateLimiter::RateLimiter(Limits limits, TimePoint now)
    : limits_(limits),
      last_(now),
      requests_(limits.rpm.value_or(0)),
      tokens_(limits.tpm.value_or(0)) {}

void RateLimiter::refill(TimePoint now) {
  if (now <= last_) return;
  const double minutes = std::chrono::duration<double>(now - last_).count() / 60.0;
  last_ = now;
  if (limits_.rpm) requests_ = std::min(*limits_.rpm, requests_ + *limits_.rpm * minutes);
  if (limits_.tpm) tokens_ = std::min(*limits_.tpm, tokens_ + *limits_.tpm * minutes);
}

RateLimiter::Answer RateLimiter::try_acquire(TimePoint now, double tokens) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    refill(now);
    Answer a = check_locked(now, tokens);
    if (!a.granted) return a;
    if (limits_.rpm) requests_ -= 1.0;
    if (limits_.tpm) tokens_ -= tokens;
    ++in_flight_;
    if (!fleet_) return a;
  }
  // The fleet is asked without holding up this process's other calls.
  if (std::optional<Duration> wait = fleet_->take(tokens)) {
    std::lock_guard<std::mutex> lock(mutex_);
    refill(now);
    give_back_locked(1.0, tokens);
    return Answer{false, now + *wait};
  }
  return Answer{true, std::nullopt};
}

bool RateLimiter::would_grant(TimePoint now, double tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  refill(now);
  return check_locked(now, tokens).granted;
}

RateLimiter::Answer RateLimiter::check_locked(TimePoint now, double tokens) const {
  Answer a;
  TimePoint due = now;
  if (blocked_until_ > now) due = std::max(due, blocked_until_);
  // Time until a bucket holds `need`, at its refill rate per minute.
  // Rounded up, and with a little slack against floating-point dust, so that a permit
  // promised for a time is there at that time.
  auto when = [&](double have, double need, double per_minute) {
    if (have + 1e-9 >= need) return now;
    // At most a year: a tiny rate would wait longer than a duration holds (undefined).
    const double seconds = std::min((need - have) / per_minute * 60.0, 365.0 * 24 * 3600);
    return now + std::chrono::ceil<Duration>(std::chrono::duration<double>(seconds));
  };
  if (limits_.rpm) due = std::max(due, when(requests_, 1.0, *limits_.rpm));
  if (limits_.tpm) {
    // A request larger than the whole bucket waits for a full bucket, then may go.
    due = std::max(due, when(tokens_, std::min(tokens, *limits_.tpm), *limits_.tpm));
  }
  const bool slot = !limits_.max_concurrency || in_flight_ < *limits_.max_concurrency;
  if (due > now || !slot) {
    if (due > now) a.retry_at = due;
    return a;
  }
  a.granted = true;
  return a;
}

void RateLimiter::release(TimePoint now, double estimated, std::optional<double> actual) {
  std::lock_guard<std::mutex> lock(mutex_);
  refill(now);
  if (in_flight_ > 0) --in_flight_;
  if (limits_.tpm && actual) {
    tokens_ = std::min(*limits_.tpm, tokens_ + estimated - *actual);
    if (fleet_) fleet_->give_back(0.0, estimated - *actual);
  }
}

void RateLimiter::refund(TimePoint now, double tokens) {
  std::lock_guard<std::mutex> lock(mutex_);
  refill(now);
  give_back_locked(1.0, tokens);
  if (fleet_) fleet_->give_back(1.0, tokens);
}

void RateLimiter::give_back_locked(double requests, double tokens) {
  if (in_flight_ > 0) --in_flight_;
  if (limits_.rpm) requests_ = std::min(*limits_.rpm, requests_ + requests);
  if (limits_.tpm) tokens_ = std::min(*limits_.tpm, tokens_ + tokens);
}

void RateLimiter::observe(TimePoint now, WallTime wall, const HttpHeaders& headers) {
  auto number = [&](std::string_view name) -> std::optional<double> {
    const std::string* v = wire::find_header(headers, name);
    if (!v) return std::nullopt;
    double out = 0;
    std::string_view t = wire::trim(*v);
    auto r = std::from_chars(t.data(), t.data() + t.size(), out);
    if (r.ec != std::errc() || r.ptr != t.data() + t.size()) return std::nullopt;
    return out;
  };
  // A duration (OpenAI: "6m0s") or a time (Anthropic, some relays: RFC 3339).
  auto reset = [&](std::string_view name) -> std::optional<Duration> {
    const std::string* v = wire::find_header(headers, name);
    if (!v) return std::nullopt;
    if (std::optional<Duration> d = parse_reset_duration(*v)) return d;
    const std::optional<WallTime> at = wire::parse_rfc3339(*v);
    if (!at) return std::nullopt;
    const auto left = std::chrono::duration_cast<Duration>(*at - wall);
    return std::clamp<Duration>(left, Duration::zero(), std::chrono::hours(24));
  };
  static constexpr std::pair<const char*, const char*> kPairs[] = {
      {"x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
      {"x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
      {"anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"},
      {"anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"},
      {"anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"},
      {"anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"},
  };
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto [remaining, reset_name] : kPairs) {
    std::optional<double> left = number(remaining);
    if (!left || *left > 0) continue;
    if (std::optional<Duration> wait = reset(reset_name)) {
      blocked_until_ = std::max(blocked_until_, now + *wait);
    }
  }
}

}  // namespace failover::detail
