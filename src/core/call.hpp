#pragma once

// The sans-I/O call state machine shared by the synchronous and asynchronous drivers.
// It reads no clock and touches no socket: drivers pass `now` and exchange results in and
// carry out the steps it returns.

#include "core/client_core.hpp"
#include "wire/sse.hpp"
#include "wire/stream.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace failover::detail {

/** What the driver must do next. */
struct Step {
  enum class Kind {
    Start,     ///< Start exchange `id` with `request` (moved out by the driver).
    InFlight,  ///< Wait for exchange `id`; if it has not ended by `until`, abandon it and
               ///< report `on_stuck`.
    Wait,      ///< Nothing in flight; call `next` again at `until`.
    Abandon,   ///< Cancel exchange `id` in the transport (no result is expected), then `next`.
    Done,      ///< `take()` returns the result.
  };
  Kind kind = Kind::Done;
  std::uint64_t id = 0;
  HttpRequest* request = nullptr;
  TimePoint until{};
};

class CallMachine {
 public:
  /** A call; with a `handler` the answer is streamed to it. */
  CallMachine(ClientCore& core, const ChatRequest& request, const CallOptions& options,
              TimePoint now, StreamHandler handler = nullptr);
  ~CallMachine();
  CallMachine(const CallMachine&) = delete;
  CallMachine& operator=(const CallMachine&) = delete;

  /** The next step at `now`. */
  Step next(TimePoint now);
  /** Body bytes of a streaming exchange arrived (the stream handler runs from here). */
  void on_data(TimePoint now, StreamData data);
  /** Exchange `result.id` ended. */
  void on_result(TimePoint now, HttpResult result);
  /** The in-flight exchange passed its limit (`Step::until`: the hard limit, or for streams
   *  the first-token or idle watchdog); the driver has abandoned it. */
  void on_stuck(TimePoint now);
  /** The call was cancelled; the driver has abandoned any in-flight exchange. */
  void cancel(TimePoint now, const std::string& why);

  bool done() const { return result_.has_value(); }
  /** The in-flight exchange id, or 0. */
  std::uint64_t in_flight() const { return state_ == State::InFlight ? exchange_id_ : 0; }
  /** The result; only when `done()`. */
  Result<ChatResponse> take();
  /** The call's deadline. */
  TimePoint deadline() const { return deadline_; }

 private:
  enum class State { Planning, InFlight, Waiting, Done };

  std::optional<std::size_t> pick_route(TimePoint now);
  bool has_alternative(TimePoint now) const;
  void start_attempt(TimePoint now, std::size_t plan_index);
  void finish_success(TimePoint now, ChatResponse response);
  void fail_attempt(TimePoint now, AttemptOutcome outcome, std::string message,
                    std::string provider_type, std::string param);
  void finish_error(ErrorKind kind, std::string message, ErrorDetails details);
  void finish_exhausted(TimePoint now);
  void log_attempt(const Attempt& a) const;
  void close_attempt();  // the in-flight attempt ended: give back its in-flight count
  void end_call();       // the call ended: give back its budget slots
  void note_attempt(RouteState& route, TimePoint now);  // stats and throttle, from trace_.back()
  void report_failure(RouteState& route, TimePoint now, ErrorKind kind);
  std::optional<TimePoint> earliest_recovery(TimePoint now) const;
  std::optional<std::size_t> least_bad(TimePoint now) const;
  void plan_candidates(TimePoint now);
  void on_event(TimePoint now, const wire::SseEvent& event);
  void deliver(const ChatChunk& chunk);
  void end_stream(TimePoint now);
  void interrupt(TimePoint now, ErrorKind kind, std::string message);
  std::shared_ptr<const ChatResponse> partial() const;
  TimePoint watchdog() const;

  ClientCore& core_;
  CallOptions options_;
  std::unique_ptr<RetryPolicy> policy_;
  nlohmann::json body_;
  std::string body_model_;  // model of the cached body text
  std::string body_text_;
  std::vector<std::size_t> candidates_;  // plan indices, in call order
  std::vector<bool> tried_;              // per candidate
  std::vector<int> route_attempts_;      // per candidate
  TimePoint deadline_{};
  State state_ = State::Planning;
  std::optional<std::size_t> current_;  // candidate index of the current/last attempt
  std::optional<std::size_t> retry_;    // candidate index to retry after the wait
  std::uint64_t exchange_id_ = 0;
  HttpRequest request_;
  TimePoint attempt_start_{};
  TimePoint wait_until_{};
  bool clipped_by_deadline_ = false;
  int attempts_ = 0;
  std::vector<Attempt> trace_;
  std::optional<Result<ChatResponse>> result_;
  std::uint64_t abandon_ = 0;  // exchange the driver must cancel before anything else
  bool attempt_open_ = false;  // counted in its route's in_flight
  bool counted_ = false;       // counted in the retry budget's calls in flight
  bool retry_slot_ = false;    // holds a retry-budget slot (from the decision to the attempt's end)
  bool budget_denied_ = false;  // a retry was refused by the budget
  bool panic_attempt_ = false;  // this attempt went to an unavailable route (panic mode)
  TimePoint call_start_{};
  TimePoint last_now_{};  // the latest time a driver passed in (for call accounting)

  // Streaming. `committed_` holds for the whole call; the rest is per attempt.
  StreamHandler handler_;
  bool committed_ = false;
  bool handler_stopped_ = false;
  std::string handler_error_;
  wire::SseParser parser_;
  wire::StreamAccumulator accumulated_;
  std::vector<ChatChunk> held_;  // chunks before the first content, handed over at commit
  bool done_seen_ = false;
  TimePoint done_at_{};
  TimePoint last_chunk_{};
  std::optional<AttemptOutcome> stream_error_;  // an error event or a malformed chunk
  std::string stream_error_message_;
};

}  // namespace failover::detail
