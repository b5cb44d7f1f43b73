#pragma once

// Everything one attempt holds that must be given back, owned in one place (gRPC's retry call
// data, abseil's Cleanup): its route's in-flight count, its breaker admission (every admitted
// attempt ends in exactly one on_success or on_failure, so a half-open probe slot is never
// lost), its rate-limit permit and its retry-budget slot. Move-only; whatever it still holds
// when it is dropped is given back, the breaker hearing a neutral cancellation: every exit
// path releases, an exception from application code included.

#include <failover/error.hpp>
#include <failover/time.hpp>

#include <cstdint>
#include <optional>
#include <utility>

namespace failover::detail {

class RateLimiter;
class RetryBudget;
class SpendTracker;
struct RouteState;

class AttemptLease {
 public:
  /** An empty lease; `now` is where its owner keeps the latest time (read when the lease is
   *  dropped with something still held). */
  explicit AttemptLease(const TimePoint* now = nullptr) : now_(now) {}
  AttemptLease(AttemptLease&& other) noexcept
      : now_(other.now_),
        route_(std::exchange(other.route_, nullptr)),
        breaker_(std::exchange(other.breaker_, nullptr)),
        closed_admission_(other.closed_admission_),
        trips_(other.trips_),
        limiter_(std::exchange(other.limiter_, nullptr)),
        permit_tokens_(other.permit_tokens_),
        budget_(std::exchange(other.budget_, nullptr)),
        spend_(std::exchange(other.spend_, nullptr)),
        reserved_nanos_(other.reserved_nanos_) {}
  AttemptLease& operator=(AttemptLease&& other) noexcept {
    if (this != &other) {
      release();
      now_ = other.now_;
      route_ = std::exchange(other.route_, nullptr);
      breaker_ = std::exchange(other.breaker_, nullptr);
      closed_admission_ = other.closed_admission_;
      trips_ = other.trips_;
      limiter_ = std::exchange(other.limiter_, nullptr);
      permit_tokens_ = other.permit_tokens_;
      budget_ = std::exchange(other.budget_, nullptr);
      spend_ = std::exchange(other.spend_, nullptr);
      reserved_nanos_ = other.reserved_nanos_;
    }
    return *this;
  }
  AttemptLease(const AttemptLease&) = delete;
  AttemptLease& operator=(const AttemptLease&) = delete;
  ~AttemptLease() { release(); }

  /** Where the owner keeps the latest time (as given to the constructor). */
  const TimePoint* clock() const { return now_; }

  /** Holds a permit of `tokens` the caller took from `limiter`. */
  void hold_permit(RateLimiter* limiter, double tokens) {
    limiter_ = limiter;
    permit_tokens_ = tokens;
  }
  /** Holds the admission `route`'s breaker gave (`RouteState::try_acquire` said yes). An
   *  admission of a closed breaker that opened before the attempt ended is stale: its result
   *  is not reported, lest it be taken for a half-open probe's. */
  void hold_breaker(RouteState* route);
  /** Holds a slot the caller took from the retry budget. */
  void hold_budget_slot(RetryBudget* budget) { budget_ = budget; }
  /** Holds `nanos` the caller reserved from the spending budget. */
  void hold_reservation(SpendTracker* spend, std::int64_t nanos) {
    spend_ = spend;
    reserved_nanos_ = nanos;
  }
  /** Hands the spending reservation over to the caller (to settle with the real cost). */
  std::int64_t take_reservation() {
    if (!spend_) return 0;
    spend_ = nullptr;
    return std::exchange(reserved_nanos_, 0);
  }
  /** Takes over what `other` holds and this lease does not (a budget slot taken before the
   *  route was chosen); `other` is left empty, what both hold stays with `other` and is given
   *  back. */
  void merge(AttemptLease&& other) {
    if (!other.empty()) merge_held(other);
  }
  /** The attempt starts on `route`: it counts among the route's attempts in flight. */
  void start(RouteState& route);

  /** The attempt succeeded: the permit is reconciled with the `used` tokens when known, the
   *  breaker hears the success. A breaker that throws does so after all else is given back. */
  void succeed(TimePoint now, Duration latency, std::optional<double> used);
  /** The attempt failed with `kind` (`Cancelled` for one abandoned): everything is given back
   *  and the breaker hears it. */
  void fail(TimePoint now, ErrorKind kind);
  /** Gives back whatever is still held, the breaker hearing a cancellation; never throws. */
  void release() noexcept {
    if (!empty()) release_held();
  }

  /** Whether it holds something. */
  bool empty() const { return !limiter_ && !breaker_ && !budget_ && !route_ && !spend_; }

 private:
  void give_back_resources(TimePoint now, std::optional<double> used) noexcept;
  void release_held() noexcept;
  void merge_held(AttemptLease& other);

  const TimePoint* now_ = nullptr;
  RouteState* route_ = nullptr;    // counted in its in-flight number (started)
  RouteState* breaker_ = nullptr;  // admitted by its breaker, not yet told how it ended
  bool closed_admission_ = false;  // admitted while the breaker was closed (not a probe)
  std::uint64_t trips_ = 0;        // the route's trips when it was admitted
  RouteState* breaker_to_tell();   // breaker_, taken; null when the admission is stale
  RateLimiter* limiter_ = nullptr;
  double permit_tokens_ = 0;
  RetryBudget* budget_ = nullptr;
  SpendTracker* spend_ = nullptr;
  std::int64_t reserved_nanos_ = 0;
};

}  // namespace failover::detail
