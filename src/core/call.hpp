#pragma once

// The sans-I/O call state machine shared by the synchronous and asynchronous drivers.
// It reads no clock and touches no socket: drivers pass `now` and exchange results in and
// carry out the steps it returns.

#include "core/admission.hpp"
#include "core/attempt_lease.hpp"
#include "core/call_env.hpp"
#include "core/user_code.hpp"
#include "wire/dialect.hpp"
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

  bool done() const { return result_.has_value(); }
  /** The result; only when `done()`. */
  Result<ChatResponse> take();
  /** The call's deadline. */
  TimePoint deadline() const { return deadline_; }
  /** Time from the start of the call to the latest event. */
  Duration elapsed() const { return last_now_ - call_start_; }
  /** The request, once, when the call was sampled for shadow traffic and made an attempt. */
  std::optional<ChatRequest> take_shadow();

 private:
  enum class State { Planning, InFlight, Waiting, Done };

  // What arrived of an attempt sent as a stream (SSE) and where it stands: a stream call's
  // attempt, and a whole-answer call's attempt on a route that streams (assembled here).
  struct WireStream {
    // `whole`: assembled for a caller who sees only the whole answer (its raw_json keeps the
    // chunks' members this SDK does not model).
    WireStream(const wire::DialectApi& api, TimePoint now, bool whole)
        : accumulated(whole && !api.translates()), native(api.id()), last_chunk(now) {}
    wire::SseParser parser;
    wire::StreamAccumulator accumulated;
    wire::NativeStream native;  // the dialect's events as chunks
    bool done_seen = false;
    TimePoint done_at{};
    // Every choice finished: the answer is whole, whatever becomes of the connection (a break
    // or a server that lingers then ends it as a success, after a short grace for usage or
    // [DONE]).
    bool answer_finished = false;
    // Until the first SSE event: the bytes as they came, for a server that answered the
    // stream request with a plain JSON body (an error, or a whole completion).
    bool framed = false;
    std::string unframed;
    TimePoint last_chunk{};
    bool progressed = false;         // content, tool-call or reasoning text arrived (watchdogs)
    bool chunk_accepted = false;     // some event decoded as a chunk
    int skipped_events = 0;          // malformed events skipped
    std::size_t received_chars = 0;  // content, reasoning and tool-call text received
    std::optional<AttemptOutcome> error;  // an error event or a malformed chunk
    std::string error_message;
    // Whether any byte of the body arrived.
    bool heard() const { return framed || !unframed.empty(); }
  };

  // One attempt in flight.
  struct Flight {
    std::uint64_t id = 0;
    std::size_t candidate = 0;
    TimePoint start{};
    Duration total_timeout{};
    Duration first_byte_timeout{};  // sent as a stream only
    Duration headers_timeout{};     // sent as a stream only
    Duration connect_timeout{};
    Duration idle_timeout{};  // sent as a stream only
    bool clipped = false;     // the attempt's limit is the call's deadline
    bool hedge = false;
    bool canary = false;        // an attempt on the canary's candidate
    bool recovery = false;      // it recovers a stream that broke after content
    bool continuation = false;  // it sends the partial answer as a prefix to continue
    int attempt = 0;            // the call's attempt number (1 for the first)
    AttemptLease lease;         // what the attempt holds (in-flight count, breaker, permit, slot)
    std::unique_ptr<WireStream> wire;  // sent as a stream; null when sent whole
  };
  // The bodies of next, on_data, on_result and on_timer (which catch HookErrors).
  Step advance(TimePoint now);
  void take_data(TimePoint now, StreamData data);
  void take_result(TimePoint now, HttpResult result);
  void fire_timer(TimePoint now);
  void hook_failed(TimePoint now, const HookError& e);
  std::vector<Flight>::iterator find_flight(std::uint64_t id);
  Attempt attempt_of(const Flight& f, TimePoint now) const;
  RouteState& route_of(const Flight& f) const { return candidate_route(f.candidate); }
  /** The route of candidate `c` (an index into `candidates_`). */
  RouteState& candidate_route(std::size_t c) const;
  void start_flight(TimePoint now, std::size_t candidate, bool hedge, AttemptLease&& slot);
  const HttpRequest& write_request(const Flight& f);
  void abandon_others(TimePoint now, std::uint64_t keep, const std::string& why);
  void try_hedge(TimePoint now);
  bool attempts_left() const;  // below the retry policy's max_attempts, if it has one
  Duration failover_reserve(TimePoint now, Duration remaining) const;
  bool silent_ = false;  // the attempt fail_attempt is about to end received nothing at all
  void rule_out(std::size_t c, const Decision& decision);  // a Failover's stop and skip_tier
  Duration hedge_delay(const RouteState& route) const;

  std::optional<std::size_t> pick_route(TimePoint now);
  bool available(std::size_t c, TimePoint now) const;
  bool has_alternative(TimePoint now, std::optional<std::size_t> tier = std::nullopt) const;
  void finish_success(TimePoint now, std::uint64_t id, ChatResponse&& response);
  void fail_attempt(TimePoint now, std::uint64_t id, AttemptOutcome outcome, std::string message,
                    std::string provider_type, std::string param);
  // After a failed attempt on candidate `c` was recorded: retry, fail over or end the call.
  void after_failure(TimePoint now, std::size_t c, bool canary, const AttemptOutcome& outcome,
                     const std::string& message, const std::string& provider_type,
                     const std::string& param, bool deadline_passed);
  void settle_spend(std::int64_t reserved, std::int64_t cost);
  void finish_error(ErrorKind kind, std::string message, ErrorDetails details);
  void finish_exhausted(TimePoint now);
  void log_attempt(const Attempt& a) const;
  void end_call();  // the call ended: give back its budget slots
  // The route's statistics and the retry throttle hear of trace_.back() (unless `neutral`).
  void note_attempt(RouteState& route, TimePoint now, bool neutral = false);
  std::optional<TimePoint> earliest_recovery(TimePoint now) const;
  std::optional<std::size_t> least_bad(TimePoint now);
  void observe_limits(std::uint64_t id, TimePoint now, const HttpHeaders& headers);
  void plan_candidates(TimePoint now);
  void on_event(TimePoint now, Flight& f, const wire::SseEvent& event);
  void deliver(const ChatChunk& chunk);
  void commit();  // the first content: hand over the held chunks (after a restart notice)
  void end_stream(TimePoint now, Flight& f);
  void expire(TimePoint now, Flight& f);  // its watchdog fired
  void interrupt(TimePoint now, ErrorKind kind, std::string message);
  // What the stream handler was shown, for an error's details (`s`: the latest attempt's).
  std::shared_ptr<const ChatResponse> partial(const WireStream* s) const;
  TimePoint watchdog(const Flight& f) const;

  const CallEnv& env_;
  Admission admission_{env_};  // permits, spend and breakers: whether a route may be tried
  CallOptions options_;
  bool mirror_ = false;                          // a shadow call (see the constructor)
  std::unique_ptr<ChatRequest> shadow_request_;  // sampled for shadow traffic (rare: not inline)
  std::unique_ptr<RetryPolicy> policy_;
  // The encoded body without the model, streamed (see wire::StreamForm): a flight sent whole
  // leaves out what follows whole_at_.
  std::string body_rest_;
  std::size_t whole_at_ = 0;
  bool stream_refused_ = false;  // the attempt fail_attempt is about to end refused the stream
  // A route this call may try: its plan index, in call order (one vector, one allocation).
  struct Candidate {
    std::size_t plan = 0;
    bool tried = false;
    bool prefix_refused = false;  // refused the partial answer as a prefix (a 400)
    int attempts = 0;
    int native = -1;     // its body in native_bodies_, for a route of a native dialect
    bool whole = false;  // its requests go whole, not streamed (RouteState::answers_whole)
    // Why the call last passed it over without an attempt (for the error when none serves).
    using Block = Admission::Block;
    Block blocked = Block::None;
  };
  SkippedRoute passed_over(std::size_t c, TimePoint now) const;
  std::vector<SkippedRoute> skipped_routes(TimePoint now) const;
  std::vector<Candidate> candidates_;
  // The request in a native dialect's API, once per (dialect, route shaping) of the candidates.
  struct NativeBody {
    const wire::DialectApi* api = nullptr;
    const wire::RequestShaping* shaping = nullptr;
    bool stream = false;
    std::string body;                    // without the model (DialectApi::put_model)
    std::optional<std::string> problem;  // why the request cannot be translated
  };
  std::vector<NativeBody> native_bodies_;
  void translate_for_native_routes(const ChatRequest& request);
  TimePoint deadline_{};
  State state_ = State::Planning;
  std::optional<std::size_t> current_;   // candidate index of the latest attempt
  std::optional<std::size_t> retry_;     // candidate index to retry after the wait
  AttemptLease retry_slot_{&last_now_};  // the pending retry's retry-budget slot
  AttemptLease pending_{&last_now_};     // what admit() took for the flight about to start
  std::vector<Flight> flights_;          // attempts in flight (a stream: at most one)
  std::optional<std::size_t> to_start_;  // a flight not yet handed to the driver
  std::vector<std::uint64_t> abandon_;   // exchanges the driver must cancel
  TimePoint hedge_at_ = TimePoint::max();
  int hedges_started_ = 0;
  TimePoint wait_until_{};
  int attempts_ = 0;
  std::vector<Attempt> trace_;
  std::optional<Result<ChatResponse>> result_;
  bool counted_ = false;         // counted in the retry budget's calls in flight
  bool budget_denied_ = false;   // a retry was refused by the budget
  bool attempts_spent_ = false;  // the policy stopped the call: its attempts are spent
  TimePoint call_start_{};
  TimePoint last_now_{};  // the latest time a driver passed in (for call accounting)

  // Streaming. `committed_` holds for the whole call; the rest is per attempt.
  StreamHandler handler_;
  bool committed_ = false;
  bool handler_stopped_ = false;
  std::string handler_error_;
  std::vector<ChatChunk> held_;  // chunks before the first content, handed over at commit
  int choices_ = 1;              // the request's `n`
  // The answer sent whole to a streamed request (or to a stream call on a route that answers
  // whole): read as a response would be, and for a stream call handed over as one chunk.
  void end_unframed(TimePoint now, Flight& f, std::string body);
  void skip_event(const Flight& f, const std::string& why);
  int delivered_chunks_ = 0;         // handed to the handler by this attempt
  std::size_t delivered_chars_ = 0;  // content and reasoning bytes among them

  // Stream recovery (see StreamRecovery): once a stream broke after content and the call went
  // on to recover it, what the call reports if no recovery serves.
  struct Interruption {
    std::string message;                        // the break
    std::shared_ptr<const ChatResponse> shown;  // what the handler was shown
    bool continuable = false;                   // `shown` can be sent as a prefix to continue
    bool continued = false;                     // the latest recovery attempt continued it
    int attempts = 0;                           // recovery attempts started
  };
  StreamRecovery recovery_ = StreamRecovery::Fail;
  std::unique_ptr<Interruption> interruption_;  // rare: not inline
  std::unique_ptr<ChatRequest> request_;        // with Continue: the request, to add a prefix to
  std::string continue_body_;                   // body_rest_ plus the prefix
  std::string continue_native_;                 // the same in a native dialect
  std::string seam_;  // trimmed off the prefix (DialectApi::trim_prefix), not shown twice
  void skip_seam(ChatChunk& chunk);
  bool notice_due_ = false;  // this attempt's commit first hands the handler a restart notice
  void prepare_continuation();
  /** Charges a streamed attempt (by the usage it reported, else an estimate) and settles its
   *  reservation; the cost when the route is priced. */
  std::optional<std::int64_t> charge_stream(const WireStream& s, RouteState& route,
                                            std::int64_t reserved);
  /** What a streamed attempt spent: the usage it reported, else an estimate (the prompt, and
   *  the text it sent at about four characters a token). */
  Usage stream_usage(const WireStream& s) const;
};

}  // namespace failover::detail
