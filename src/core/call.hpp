#pragma once

// The sans-I/O call state machine shared by the synchronous and asynchronous drivers.
// It reads no clock and touches no socket: drivers pass `now` and exchange results in and
// carry out the steps it returns.

#include "core/admission.hpp"
#include "core/attempt_lease.hpp"
#include "core/attempt_reader.hpp"
#include "core/call_ending.hpp"
#include "core/call_env.hpp"
#include "core/call_trace.hpp"
#include "core/candidates.hpp"
#include "core/charges.hpp"
#include "core/flight.hpp"
#include "core/flights.hpp"
#include "core/handler_feed.hpp"
#include "core/hedging.hpp"
#include "core/recovery.hpp"
#include "core/request_writer.hpp"
#include "core/retry_state.hpp"
#include "core/settlement.hpp"
#include "core/user_code.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace failover::detail {

/** What the driver must do next. */
struct Step {
  enum class Kind {
    Start,     ///< Start exchange `id` with `request` (the transport copies it).
    InFlight,  ///< Wait for the exchanges in flight; at `until` call `on_timer`.
    Wait,      ///< Nothing in flight; call `next` again at `until`.
    Abandon,   ///< Cancel exchange `id` in the transport (no result is expected), then `next`.
    Done,      ///< `take()` returns the result.
  };
  Kind kind = Kind::Done;
  std::uint64_t id = 0;
  const HttpRequest* request = nullptr;  ///< Valid until the driver's next call into the machine.
  TimePoint until{};
};

class CallMachine {
 public:
  /** A call; with a `handler` the answer is streamed to it. A `mirror` is a shadow call: one
   *  attempt on the shadow candidate, outside the client's call statistics and retry budget. */
  CallMachine(const CallEnv& env, const ChatRequest& request, const CallOptions& options,
              TimePoint now, StreamHandler handler = nullptr, bool mirror = false);
  ~CallMachine();
  CallMachine(const CallMachine&) = delete;
  CallMachine& operator=(const CallMachine&) = delete;

  /** The next step at `now`. */
  Step next(TimePoint now);
  /** Body bytes of a streaming exchange arrived (the stream handler runs from here). */
  void on_data(TimePoint now, StreamData data);
  /** Exchange `result.id` ended. */
  void on_result(TimePoint now, HttpResult result);
  /** The `until` of an InFlight step has come: a watchdog fired or a hedge is due. Exchanges
   *  to cancel come back as Abandon steps. */
  void on_timer(TimePoint now);
  /** Cancels the call; its exchanges in flight come back as Abandon steps. */
  void cancel(TimePoint now, const std::string& why, int status = 0);

  bool done() const { return ending_.done(); }
  /** The result; only when `done()`. */
  Result<ChatResponse> take() { return ending_.take(); }
  /** The call's deadline. */
  TimePoint deadline() const { return deadline_; }
  /** Time from the start of the call to the latest event. */
  Duration elapsed() const { return last_now_ - ending_.started(); }
  /** The request, once, when the call was sampled for shadow traffic and made an attempt. */
  std::optional<ChatRequest> take_shadow();

 private:
  enum class State { Planning, InFlight, Waiting, Done };

  // The bodies of next, on_data, on_result and on_timer (which catch HookErrors).
  Step advance(TimePoint now);
  bool plan_attempt(TimePoint now);
  void take_data(TimePoint now, StreamData data);
  void take_result(TimePoint now, HttpResult result);
  void fire_timer(TimePoint now);
  void hook_failed(TimePoint now, const HookError& e);
  void stop(TimePoint now, ErrorKind kind, const std::string& why, int status,
            Settlement::Drop how);
  // Runs `body`, where a HookError ends the call (hook_failed).
  template <class Body>
  void guarded(TimePoint now, Body&& body);
  RouteState& route_of(const Flight& f) const { return *f.route; }
  void start_flight(TimePoint now, std::size_t candidate, AttemptLease&& slot);
  // Ends every flight but `keep` (0: none) as cancelled with `why` (see Settlement::dropped):
  // by default abandoned and listed in the trace, counting neither against their breakers nor
  // in the statistics.
  void drop_flights(TimePoint now, std::uint64_t keep, const std::string& why, int status = 0,
                    Settlement::Drop how = Settlement::Drop::Logged);
  void try_hedge(TimePoint now);
  // Below the retry policy's max_attempts, if it has one.
  bool attempts_left() const { return retries_.attempts_left(attempts_); }

  void finish_success(TimePoint now, std::uint64_t id, ChatResponse&& response);
  // Attempt `f` ended as `end` says (see AttemptReader).
  void conclude(TimePoint now, Flight& f, AttemptEnd end);
  void fail_attempt(TimePoint now, std::uint64_t id, Failure failure);
  // After a failed attempt on candidate `c` was recorded: retry, fail over or end the call.
  void after_failure(TimePoint now, std::size_t c, bool canary, const Failure& failure,
                     bool deadline_passed);
  void finish_error(ErrorKind kind, std::string message, ErrorDetails details);
  void finish_exhausted(TimePoint now);
  void end_call();  // the call ended: give back its budget slots
  void interrupt(TimePoint now, ErrorKind kind, std::string message);
  // What the stream handler was shown, for an error's details (`s`: the latest attempt's).
  std::shared_ptr<const ChatResponse> partial(const AttemptStream* s) const;

  const CallEnv& env_;
  Admission admission_{env_};  // permits, spend and breakers: whether a route may be tried
  Candidates candidates_{env_, admission_};  // the routes it may try, in order
  RequestWriter writer_;                     // the request's bodies, and each attempt's request
  Charges charges_{env_, admission_};        // what its attempts spent
  CallOptions options_;
  bool mirror_ = false;                          // a shadow call (see the constructor)
  std::unique_ptr<ChatRequest> shadow_request_;  // sampled for shadow traffic (rare: not inline)
  RetryState retries_{env_};                     // what follows a failed attempt
  TimePoint deadline_{};
  State state_ = State::Planning;
  std::optional<std::size_t> current_;     // candidate index of the latest attempt
  std::optional<std::size_t> retry_;       // candidate index to retry after the wait
  AttemptLease retry_slot_{&last_now_};    // the pending retry's retry-budget slot
  AttemptLease pending_{&last_now_};       // what admit() took for the flight about to start
  Flights flights_;                        // attempts in flight, and the driver's steps owed
  TimePoint hedge_at_ = TimePoint::max();  // when the next hedge is due
  Hedging hedging_;
  TimePoint wait_until_{};
  int attempts_ = 0;
  CallTrace trace_;  // its attempts and the routes passed over, in order
  Settlement settlement_{env_, charges_, trace_};  // what an ended attempt does to the books
  bool counted_ = false;                           // counted in the retry budget's calls in flight
  bool budget_denied_ = false;                     // a retry was refused by the budget
  bool attempts_spent_ = false;  // the policy stopped the call: its attempts are spent
  TimePoint last_now_{};         // the latest time a driver passed in (for call accounting)

  HandlerFeed feed_;      // what a stream call shows its handler (per attempt: its AttemptStream)
  AttemptReader reader_;  // what came back of an attempt, and how it ended
  Recovery recovery_;     // a stream that broke after content, and how it is recovered
  CallEnding ending_;     // the result, and what the call reports of itself
};

}  // namespace failover::detail
