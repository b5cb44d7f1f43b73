// Fuzzes what a server controls in an answer's headers and error body: the Retry-After family
// (seconds, HTTP dates, retry-after-ms), x-ratelimit reset durations, x-should-retry, and the
// classification of any status and body. Nothing may crash or hit undefined behaviour, every
// wait must be finite and non-negative (at most a day), and a message stays short.

#include "policy/classify.hpp"
#include "policy/rate_limiter.hpp"
#include "wire/error_body.hpp"
#include "wire/http_headers.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using failover::Duration;

void check_wait(const std::optional<Duration>& d) {
  if (d && (*d < Duration::zero() || *d > std::chrono::hours(24))) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  // A "now" from the input's first bytes, anywhere from 1970 to beyond 2100.
  std::uint64_t seed = 0;
  for (std::size_t i = 0; i < std::min<std::size_t>(size, 5); ++i) seed = seed * 256 + bytes[i];
  const failover::WallTime now{
      std::chrono::seconds(static_cast<std::int64_t>(seed % 5000000000ULL))};
  check_wait(failover::wire::parse_retry_after(text, now));
  check_wait(failover::wire::parse_retry_after_ms(text));
  check_wait(failover::detail::parse_reset_duration(text));
  (void)failover::wire::parse_http_date(text);
  const failover::HttpHeaders headers = {{"retry-after", std::string(text)},
                                         {"retry-after-ms", std::string(text)},
                                         {"x-should-retry", std::string(text)}};
  check_wait(failover::wire::retry_after_from(headers, now));
  (void)failover::wire::should_retry_from(headers);
  // Any status with this body: a kind, a bounded message, a finite wait.
  const int status = size > 0 ? 100 + bytes[0] * 2 : 500;
  failover::policy::Classified c = failover::policy::classify_http(status, headers, text, now);
  if (c.message.size() > 4096) std::abort();
  check_wait(c.retry_after);
  if (failover::wire::plain_excerpt(text, 200).size() > 203) std::abort();
  return 0;
}
