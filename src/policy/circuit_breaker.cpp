#include <failover/policy/circuit_breaker.hpp>

#include "policy/kinds.hpp"

#include <algorithm>
#include <stdexcept>

namespace failover {

DefaultCircuitBreaker::DefaultCircuitBreaker(CircuitBreakerOptions options) : options_(options) {
  if (options_.consecutive_failures < 1) {
    throw std::invalid_argument("circuit_breaker.consecutive_failures must be at least 1");
  }
  if (!(options_.failure_rate > 0.0 && options_.failure_rate <= 1.0)) {
    throw std::invalid_argument("circuit_breaker.failure_rate must be in (0, 1]");
  }
  if (options_.window < 1) throw std::invalid_argument("circuit_breaker.window must be at least 1");
  if (options_.min_calls < 1 || options_.min_calls > options_.window) {
    throw std::invalid_argument("circuit_breaker.min_calls must be between 1 and window");
  }
  if (options_.open_duration <= Duration::zero()) {
    throw std::invalid_argument("circuit_breaker.open_duration must be positive");
  }
  if (options_.max_open_duration < options_.open_duration) {
    throw std::invalid_argument("circuit_breaker.max_open_duration must be at least open_duration");
  }
  if (options_.half_open_probes < 1) {
    throw std::invalid_argument("circuit_breaker.half_open_probes must be at least 1");
  }
  window_.assign(static_cast<std::size_t>(options_.window), 0);
}

bool DefaultCircuitBreaker::counts_as_failure(ErrorKind kind) noexcept {
  if (kind == ErrorKind::RateLimited) return false;  // the route cools down instead
  if (detail::is_transient(kind)) return true;
  switch (kind) {
    case ErrorKind::ResponseTooLarge:
    case ErrorKind::Authentication:
    case ErrorKind::PermissionDenied:
    case ErrorKind::NotFound:
    case ErrorKind::QuotaExhausted:
    case ErrorKind::StreamInterrupted:
      return true;
    default:
      return false;
  }
}

std::unique_ptr<CircuitBreaker> DefaultCircuitBreakerFactory::operator()(const RouteRef&) const {
  return std::make_unique<DefaultCircuitBreaker>(options);
}

CircuitBreakerFactory DefaultCircuitBreaker::factory(CircuitBreakerOptions options) {
  DefaultCircuitBreaker validate(options);  // throws now, not at the first call
  (void)validate;
  return DefaultCircuitBreakerFactory{options};
}

bool DefaultCircuitBreaker::try_acquire(TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == BreakerState::Closed) return true;
  if (state_ == BreakerState::Open) {
    if (now < open_until_) return false;
    state_ = BreakerState::HalfOpen;
    probes_in_flight_ = 0;
  }
  if (probes_in_flight_ >= options_.half_open_probes) return false;
  ++probes_in_flight_;
  return true;
}

void DefaultCircuitBreaker::on_success(TimePoint now, Duration latency) {
  (void)now;
  (void)latency;
  std::lock_guard<std::mutex> lock(mutex_);
  switch (state_) {
    case BreakerState::Closed:
      consecutive_ = 0;
      record_locked(false);
      break;
    case BreakerState::HalfOpen:
      close_locked();
      break;
    case BreakerState::Open:
      break;  // an attempt admitted before the breaker opened; the open period stands
  }
}

void DefaultCircuitBreaker::on_failure(TimePoint now, ErrorKind kind) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool counts = counts_as_failure(kind);
  switch (state_) {
    case BreakerState::Closed:
      if (!counts) return;
      ++consecutive_;
      record_locked(true);
      if (consecutive_ >= options_.consecutive_failures ||
          (window_size_ >= options_.min_calls &&
           static_cast<double>(window_failures_) >=
               options_.failure_rate * static_cast<double>(window_size_))) {
        open_locked(now);
      }
      break;
    case BreakerState::HalfOpen:
      if (probes_in_flight_ > 0) --probes_in_flight_;
      if (counts) open_locked(now);
      break;
    case BreakerState::Open:
      break;
  }
}

BreakerState DefaultCircuitBreaker::state(TimePoint now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == BreakerState::Open && now >= open_until_) return BreakerState::HalfOpen;
  return state_;
}

std::optional<TimePoint> DefaultCircuitBreaker::reopens_at(TimePoint now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == BreakerState::Open && now < open_until_) return open_until_;
  return std::nullopt;
}

bool DefaultCircuitBreaker::would_admit(TimePoint now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  switch (state_) {
    case BreakerState::Closed:
      return true;
    case BreakerState::Open:
      return now >= open_until_;  // it turns half-open with every slot free
    case BreakerState::HalfOpen:
      return probes_in_flight_ < options_.half_open_probes;
  }
  return false;
}

void DefaultCircuitBreaker::on_probe_success(TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == BreakerState::Open && now < open_until_) open_until_ = now;
}

void DefaultCircuitBreaker::forget_calls() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == BreakerState::Closed) close_locked();
}

void DefaultCircuitBreaker::open_locked(TimePoint now) {
  Duration period = options_.open_duration;
  for (int i = 0; i < reopen_count_ && period < options_.max_open_duration; ++i) period *= 2;
  period = std::min(period, options_.max_open_duration);
  ++reopen_count_;
  state_ = BreakerState::Open;
  open_until_ = now + period;
  probes_in_flight_ = 0;
}

void DefaultCircuitBreaker::close_locked() {
  state_ = BreakerState::Closed;
  reopen_count_ = 0;
  consecutive_ = 0;
  probes_in_flight_ = 0;
  std::fill(window_.begin(), window_.end(), 0);
  window_next_ = 0;
  window_size_ = 0;
  window_failures_ = 0;
}

void DefaultCircuitBreaker::record_locked(bool failure) {
  auto slot = static_cast<std::size_t>(window_next_);
  if (window_size_ == options_.window) {
    window_failures_ -= window_[slot];
  } else {
    ++window_size_;
  }
  window_[slot] = failure ? 1 : 0;
  window_failures_ += failure ? 1 : 0;
  window_next_ = (window_next_ + 1) % options_.window;
}

}  // namespace failover
