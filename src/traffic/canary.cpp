#include "traffic/canary.hpp"

#include "util/format.hpp"
#include "util/hash.hpp"
#include "util/percentile.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace failover::detail {

CanaryOutcome canary_outcome(const std::optional<ErrorKind>& error) {
  if (!error) return CanaryOutcome::Success;
  switch (*error) {
    case ErrorKind::Cancelled:
    case ErrorKind::DeadlineExceeded:  // the caller's deadline, not the candidate
    case ErrorKind::HookFailed:        // the application's code, not the candidate
    case ErrorKind::InvalidRequest:
    case ErrorKind::BudgetExceeded:
    case ErrorKind::AllRoutesUnavailable:
      return CanaryOutcome::Ignored;
    case ErrorKind::RateLimited:
    case ErrorKind::ContextLengthExceeded:
    case ErrorKind::ContentFiltered:
      return CanaryOutcome::Other;
    default:
      return CanaryOutcome::Error;
  }
}

CanaryController::CanaryController(const CanaryOptions& options, TimePoint now)
    : options_(options) {
  options_.on_rollback = nullptr;
  start_step(now, 0);
}

std::uint32_t CanaryController::bucket(const std::string& user) {
  return static_cast<std::uint32_t>(stable_hash("failover-canary:" + user) % 10000);
}

void CanaryController::start_step(TimePoint now, std::size_t step) {
  step_ = step;
  step_started_ = now;
  calls_ = successes_ = errors_ = slow_ = 0;
  recent_size_ = recent_next_ = 0;
}

double CanaryController::percent() const {
  switch (state_) {
    case CanaryState::Running:
    case CanaryState::Paused:
      return options_.steps[step_];
    case CanaryState::Completed:
      return promoted_ ? 100.0 : options_.steps.back();
    case CanaryState::RolledBack:
    case CanaryState::Drained:
      return 0;
  }
  return 0;
}

bool CanaryController::admit(TimePoint now, const std::string& user, Rng& rng) {
  std::lock_guard<std::mutex> lock(mutex_);
  advance(now);
  const double p = percent();
  if (p <= 0) return false;
  if (p >= 100) return true;
  if (user.empty()) return rng.uniform() * 100.0 < p;
  return bucket(user) < static_cast<std::uint32_t>(std::llround(p * 100.0));
}

namespace {

// "1 error", "3 errors", "1 success", "2 successes".
std::string counted(std::uint64_t n, const std::string& noun) {
  std::string out = std::to_string(n) + " " + noun;
  if (n != 1) out += noun.back() == 's' ? "es" : "s";
  return out;
}

// A rate as people write it: "10 %", "6 %", "12.5 %".
std::string rate_text(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", fraction * 100);
  std::string out = buf;
  if (out.size() > 2 && out.compare(out.size() - 2, 2, ".0") == 0) out.resize(out.size() - 2);
  return out + " %";
}

}  // namespace

// Judged as if the step had already seen `min_calls` calls: before that, a threshold counts
// as crossed only when no later call of the minimum window could bring it back.
std::optional<std::string> CanaryController::crossed() const {
  const CanaryRollback& r = options_.rollback;
  const std::uint64_t min_calls = r.min_calls;
  const std::uint64_t missing = calls_ < min_calls ? min_calls - calls_ : 0;
  const double n = static_cast<double>(calls_ + missing);
  if (calls_ == 0) return std::nullopt;
  // Each alert states its counts, the step, the rate and what the rate is taken over: this
  // step's calls, or (before the step has seen its minimum) the minimum window, which the
  // counts so far already decide whatever its remaining calls bring.
  const std::string step = "step " + std::to_string(step_ + 1);
  const std::string first = missing == 0
                                ? std::to_string(calls_) + (calls_ == 1 ? " call" : " calls")
                                : "the first " + counted(calls_, "call");
  const std::string min_window = "the step's first " + std::to_string(min_calls) + " calls";
  const double error_rate = static_cast<double>(errors_) / n;
  if (error_rate > r.error_rate) {
    return counted(errors_, "error") + " in " + first + " of " + step +
           (missing == 0 ? " (" + rate_text(error_rate) + ")"
                         : ": already " + rate_text(error_rate) + " of " + min_window) +
           ", above the " + rate_text(r.error_rate) + " limit";
  }
  const double success_rate = 1.0 - static_cast<double>(calls_ - successes_) / n;
  if (success_rate < r.min_success_rate) {
    if (missing == 0) {
      return counted(successes_, "success") + " in " + first + " of " + step + " (" +
             rate_text(success_rate) + "), below the " + rate_text(r.min_success_rate) + " minimum";
    }
    return counted(calls_ - successes_, "call") + " without success in " + first + " of " + step +
           ": at most " + rate_text(success_rate) + " of " + min_window +
           " can succeed, below the " + rate_text(r.min_success_rate) + " minimum";
  }
  // p99 (nearest rank) of m successes exceeds the limit when more than m - ceil(0.99 m) are
  // slower than it.
  const std::uint64_t m = successes_ + missing;
  const std::uint64_t allowed = m - (99 * m + 99) / 100;
  if (slow_ > allowed) {
    return std::to_string(slow_) + " of " + counted(successes_, "success") + " of " + step +
           " slower than " + millis_text(r.p99) + ": the p99 latency is above the " +
           millis_text(r.p99) + " limit";
  }
  return std::nullopt;
}

void CanaryController::advance(TimePoint now) {
  if (state_ != CanaryState::Running) return;
  if (now - step_started_ < options_.step || calls_ < options_.rollback.min_calls) return;
  if (crossed()) return;
  changed(/*force=*/false);
  if (step_ + 1 < options_.steps.size()) {
    start_step(now, step_ + 1);
    return;
  }
  state_ = CanaryState::Completed;
  step_started_ = now;
}

CanaryController::Change CanaryController::last_change(TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  advance(now);
  Change c{changes_, force_, {}};
  c.shared.state = state_;
  c.shared.step = step_;
  c.shared.promoted = promoted_;
  c.shared.reason = reason_;
  return c;
}

void CanaryController::set_listener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  listener_ = std::move(listener);
}

bool CanaryController::adopt(TimePoint now, std::uint64_t seen, const SharedCanary& fleet) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (changes_ != seen) return false;
  if (fleet.step >= options_.steps.size()) return false;
  const bool moved = fleet.state != state_ || fleet.step != step_;
  if (fleet.state == CanaryState::RolledBack && state_ != CanaryState::RolledBack) ++rollbacks_;
  if (moved) start_step(now, fleet.step);
  state_ = fleet.state;
  promoted_ = fleet.promoted;
  reason_ = fleet.reason;
  return true;
}

std::optional<CanaryAlert> CanaryController::record(TimePoint now, CanaryOutcome outcome,
                                                    Duration latency) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (outcome == CanaryOutcome::Ignored) return std::nullopt;
  if (state_ != CanaryState::Running && state_ != CanaryState::Paused) return std::nullopt;
  ++calls_;
  if (outcome == CanaryOutcome::Success) {
    ++successes_;
    if (latency > options_.rollback.p99) ++slow_;
    recent_[recent_next_] = latency;
    recent_next_ = (recent_next_ + 1) % recent_.size();
    recent_size_ = std::min(recent_size_ + 1, recent_.size());
  } else if (outcome == CanaryOutcome::Error) {
    ++errors_;
  }
  std::optional<std::string> why = crossed();
  if (!why) {
    advance(now);
    return std::nullopt;
  }
  CanaryAlert alert;
  alert.percent = percent();
  alert.step = step_;
  alert.reason = std::move(*why);
  alert.window = window();
  alert.at = now;
  state_ = CanaryState::RolledBack;
  ++rollbacks_;
  reason_ = alert.reason;
  changed(/*force=*/true);
  return alert;
}

CanaryWindow CanaryController::window() const {
  CanaryWindow w;
  w.calls = calls_;
  w.successes = successes_;
  w.errors = errors_;
  w.slow = slow_;
  if (calls_ > 0) {
    w.error_rate = static_cast<double>(errors_) / static_cast<double>(calls_);
    w.success_rate = static_cast<double>(successes_) / static_cast<double>(calls_);
  }
  if (recent_size_ > 0) {
    std::vector<Duration> sorted(recent_.begin(),
                                 recent_.begin() + static_cast<std::ptrdiff_t>(recent_size_));
    std::sort(sorted.begin(), sorted.end());
    w.p99 = nearest_rank(sorted, 0.99);
  }
  return w;
}

CanaryStatus CanaryController::status(TimePoint now, int in_flight) {
  std::lock_guard<std::mutex> lock(mutex_);
  advance(now);
  CanaryStatus s;
  s.candidate = *options_.candidate;
  s.state = state_;
  s.percent = percent();
  s.step = step_;
  s.steps = options_.steps;
  s.step_started = step_started_;
  s.window = window();
  s.in_flight = in_flight;
  s.rollbacks = rollbacks_;
  s.reason = reason_;
  return s;
}

bool CanaryController::pause(TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  advance(now);
  if (state_ != CanaryState::Running) return false;
  state_ = CanaryState::Paused;
  reason_ = "paused by hand";
  changed(/*force=*/true);
  return true;
}

bool CanaryController::resume(TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  switch (state_) {
    case CanaryState::Paused:
      start_step(now, step_);  // the step starts over: its hold time and window
      break;
    case CanaryState::RolledBack:
    case CanaryState::Drained:
      start_step(now, 0);
      break;
    case CanaryState::Running:
    case CanaryState::Completed:
      return false;
  }
  state_ = CanaryState::Running;
  reason_.clear();
  changed(/*force=*/true);
  return true;
}

bool CanaryController::promote(TimePoint now) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == CanaryState::Completed && promoted_) return false;
  state_ = CanaryState::Completed;
  promoted_ = true;
  step_started_ = now;
  reason_ = "promoted by hand";
  changed(/*force=*/true);
  return true;
}

bool CanaryController::rollback(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == CanaryState::RolledBack) return false;
  state_ = CanaryState::RolledBack;
  promoted_ = false;
  ++rollbacks_;
  reason_ = reason.empty() ? "rolled back by hand" : reason;
  changed(/*force=*/true);
  return true;
}

bool CanaryController::drain() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_ == CanaryState::Drained || state_ == CanaryState::RolledBack) return false;
  state_ = CanaryState::Drained;
  promoted_ = false;
  reason_ = "drained by hand";
  changed(/*force=*/true);
  return true;
}

}  // namespace failover::detail

namespace failover {

std::string_view to_string(CanaryState state) noexcept {
  switch (state) {
    case CanaryState::Running:
      return "running";
    case CanaryState::Paused:
      return "paused";
    case CanaryState::RolledBack:
      return "rolled_back";
    case CanaryState::Drained:
      return "drained";
    case CanaryState::Completed:
      return "completed";
  }
  return "unknown";
}

}  // namespace failover
