#pragma once

// The canary roll-out as a sans-I/O policy: it is told the time and what happened, and
// answers which calls go to the candidate and when to advance or roll back.

#include <failover/state.hpp>
#include <failover/traffic.hpp>

#include <array>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace failover::detail {

/** How an attempt on the candidate counts in the canary's window. */
enum class CanaryOutcome {
  Success,  ///< Answered.
  Error,    ///< Failed by the candidate's fault.
  Other,    ///< Not a success, not the candidate's fault alone (rate limit, context length,
            ///< content filter): counts against the success rate only.
  Ignored,  ///< Says nothing about the candidate (cancelled, invalid request).
};

/** How an attempt that ended with `error` (empty: success) counts. */
CanaryOutcome canary_outcome(const std::optional<ErrorKind>& error);

class CanaryController {
 public:
  /** Validated options (see `resolve_options`); the canary starts at its first step. */
  CanaryController(const CanaryOptions& options, TimePoint now);

  /** Whether a call by `user` (empty: anonymous, drawn from `rng`) tries the candidate first. */
  bool admit(TimePoint now, const std::string& user, Rng& rng);
  /** An attempt of an admitted call on the candidate ended. Returns the alert to deliver when
   *  this attempt rolled the canary back. */
  std::optional<CanaryAlert> record(TimePoint now, CanaryOutcome outcome, Duration latency);
  /** The state as of `now` (advancing a step that has held). */
  CanaryStatus status(TimePoint now, int in_flight);

  // Manual control; each returns false when the canary is in a state the command cannot leave.
  bool pause(TimePoint now);
  bool resume(TimePoint now);
  bool promote(TimePoint now);
  bool rollback(const std::string& reason);
  bool drain();

  // Sharing with a fleet (StateSync): the state it publishes and adopts, as the store keeps it
  // (the controller leaves `generation` and `refused` to the caller).

  /** What this controller decided by itself, and when: `changes` counts its own decisions;
   *  `force` says the last must win over the fleet's (a rollback, a command by hand), where an
   *  advance applies only if no other process moved first. */
  struct Change {
    std::uint64_t changes = 0;
    bool force = false;
    SharedCanary shared;
  };
  Change last_change(TimePoint now);
  /** Called (under the controller's lock: it must only signal) after each decision that must
   *  win over the fleet's; null to stop. */
  void set_listener(std::function<void()> listener);
  /** Takes the fleet's state (its step starts over here when it is another), unless this
   *  controller decided something since its `changes` were `seen` (the fleet hears of that
   *  first). Returns whether it was taken; not counted as a change of this controller's. */
  bool adopt(TimePoint now, std::uint64_t seen, const SharedCanary& fleet);

  /** The share of users (in 1/10000) a user's hash falls in: stable across processes. */
  static std::uint32_t bucket(const std::string& user);

 private:
  void start_step(TimePoint now, std::size_t step);
  void changed(bool force) {  // locked
    ++changes_;
    force_ = force;
    if (force && listener_) listener_();
  }
  void advance(TimePoint now);                 // locked
  std::optional<std::string> crossed() const;  // locked
  double percent() const;                      // locked
  CanaryWindow window() const;                 // locked

  CanaryOptions options_;  // on_rollback unused here: the caller delivers alerts
  mutable std::mutex mutex_;
  CanaryState state_ = CanaryState::Running;
  bool promoted_ = false;  // Completed by promote(): serves every call
  std::size_t step_ = 0;
  TimePoint step_started_{};
  std::uint64_t calls_ = 0;
  std::uint64_t successes_ = 0;
  std::uint64_t errors_ = 0;
  std::uint64_t slow_ = 0;
  std::array<Duration, 1024> recent_{};  // the window's latest success latencies
  std::size_t recent_size_ = 0;
  std::size_t recent_next_ = 0;
  std::uint64_t rollbacks_ = 0;
  std::string reason_;
  std::uint64_t changes_ = 0;  // decisions of this controller's own (see last_change)
  bool force_ = false;
  std::function<void()> listener_;
};

}  // namespace failover::detail
