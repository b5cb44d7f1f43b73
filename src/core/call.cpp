#include "core/call.hpp"

#include "core/attempt_verdict.hpp"
#include "core/call_report.hpp"

#include "util/format.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace failover::detail {

namespace {

// Grace beyond the transport's own total timeout before an exchange counts as stuck.
constexpr Duration kStuckGrace = std::chrono::seconds(1);
// Less time than this left before the deadline: do not start another attempt.
constexpr Duration kMinAttemptTime = std::chrono::milliseconds(1);

// Whether some endpoint can continue a partial answer (Continuation::Prefill).
bool some_endpoint_continues(const CallEnv& env) {
  return std::any_of(env.endpoints().begin(), env.endpoints().end(), [](const ResolvedEndpoint& e) {
    return e.continuation == Continuation::Prefill;
  });
}

}  // namespace

CallMachine::CallMachine(const CallEnv& env, const ChatRequest& request, const CallOptions& options,
                         TimePoint now, StreamHandler handler, bool mirror)
    : env_(env),
      options_(options),
      mirror_(mirror),
      hedging_(env.options().hedging, /*allowed=*/!mirror && handler == nullptr),
      trace_(env, mirror),
      call_start_(now),
      last_now_(now),
      feed_(std::move(handler)),
      reader_(env, feed_, std::max(1, request.n.value_or(1))),
      recovery_(options.stream_recovery.value_or(env.options().stream_recovery), request,
                feed_ && some_endpoint_continues(env)) {
  const ClientOptions& o = env_.options();
  deadline_ = call_deadline(options_, o.timeouts, now);
  auto invalid = [&](std::string message) {
    finish_error(ErrorKind::InvalidRequest, std::move(message), {});
  };
  if (std::optional<std::string> problem = check_call_options(options_)) {
    invalid(*problem);
    return;
  }
  // Streamed on the wire, also for a whole answer (its liveness, see Timeouts::headers), with
  // usage asked for then; a route that answers whole gets the same body without the stream.
  if (auto problem = writer_.encode(request, /*usage=*/!feed_)) {
    invalid("invalid request: " + *problem);
    return;
  }

  try {
    admission_.estimate(request);  // for spending budgets and rate limits
    if (mirror_) {
      candidates_.plan_mirror();
    } else {
      candidates_.plan(now, options_);
      if (candidates_.empty()) {
        invalid("no route serves any of the models asked for (" + join_names(options_.models) +
                "); the routes serve " + join_names(models_served(env_)));
        return;
      }
      if (env_.shadow() && o.shadow.sample > 0 && env_.rng().uniform() < o.shadow.sample) {
        shadow_request_ = std::make_unique<ChatRequest>(request);
      }
    }
    candidates_.prepare(request, writer_, trace_);
    std::unique_ptr<RetryPolicy> policy =
        invoke_user("the retry policy", [&] { return o.retry->clone(); });
    if (!policy) throw HookError("the retry policy's clone() returned null");
    retries_.use(std::move(policy));
  } catch (const HookError& e) {
    finish_error(ErrorKind::HookFailed, e.what(), {});
    return;
  }
  flights_.reserve(static_cast<std::size_t>(2 + std::max(0, o.hedging.max_extra)));
  if (mirror_) return;  // outside the retry budget's calls in flight
  env_.budget().call_started();
  counted_ = true;
}

CallMachine::~CallMachine() {
  flights_.clear();  // their leases give back what they hold
  end_call();
}

void CallMachine::end_call() {
  retry_slot_.release();
  pending_.release();
  if (counted_) {
    counted_ = false;
    env_.budget().call_finished();
  }
}

std::vector<Flight>::iterator CallMachine::find_flight(std::uint64_t id) {
  return std::find_if(flights_.begin(), flights_.end(),
                      [&](const Flight& f) { return f.id == id; });
}

std::optional<ChatRequest> CallMachine::take_shadow() {
  if (attempts_ == 0 || !shadow_request_) return std::nullopt;
  std::optional<ChatRequest> out(std::move(*shadow_request_));
  shadow_request_.reset();
  return out;
}

Result<ChatResponse> CallMachine::take() {
  Result<ChatResponse> out = std::move(*result_);
  return out;
}

// The entry points: application code the machine calls throws HookErrors (see user_code.hpp),
// caught here, where the call ends with HookFailed and its leases give everything back.
Step CallMachine::next(TimePoint now) {
  try {
    return advance(now);
  } catch (const HookError& e) {
    hook_failed(now, e);
    return advance(now);  // the abandoned exchanges, then Done
  }
}

template <class Body>
void CallMachine::guarded(TimePoint now, Body&& body) {
  try {
    body();
  } catch (const HookError& e) {
    hook_failed(now, e);
  }
}

void CallMachine::on_data(TimePoint now, StreamData data) {
  guarded(now, [&] { take_data(now, std::move(data)); });
}

void CallMachine::on_result(TimePoint now, HttpResult result) {
  guarded(now, [&] { take_result(now, std::move(result)); });
}

void CallMachine::on_timer(TimePoint now) {
  guarded(now, [&] { fire_timer(now); });
}

void CallMachine::hook_failed(TimePoint now, const HookError& e) {
  last_now_ = now;
  if (state_ == State::Done) return;
  ErrorDetails d;
  d.partial = partial(flights_.empty() ? nullptr : flights_.front().wire.get());
  drop_flights(now, 0, e.what(), 0, Settlement::Drop::Quietly);
  to_start_.reset();
  retry_.reset();
  d.attempts = trace_.all();
  if (auto* log = env_.logger()) log->error("a call failed in application code: {}", e.what());
  finish_error(ErrorKind::HookFailed, e.what(), std::move(d));
}

Step CallMachine::advance(TimePoint now) {
  last_now_ = now;
  Step step;
  if (!abandon_.empty()) {
    step.kind = Step::Kind::Abandon;
    step.id = abandon_.back();
    abandon_.pop_back();
    return step;
  }
  if (to_start_) {
    Flight& f = flights_[*to_start_];
    to_start_.reset();
    step.kind = Step::Kind::Start;
    step.id = f.id;
    step.request = &write_request(f);
    return step;
  }
  switch (state_) {
    case State::Done:
      return step;
    case State::InFlight: {
      step.kind = Step::Kind::InFlight;
      TimePoint until = hedge_at_;
      for (const Flight& f : flights_) until = std::min(until, watchdog(f));
      step.until = until;
      return step;
    }
    case State::Waiting:
      if (now < wait_until_) {
        step.kind = Step::Kind::Wait;
        step.until = wait_until_;
        return step;
      }
      state_ = State::Planning;
      break;
    case State::Planning:
      break;
  }
  if (options_.cancel.cancelled()) {
    cancel(now, "the call was cancelled");
    return advance(now);
  }
  if (deadline_ - now < kMinAttemptTime) {
    ErrorDetails d;
    d.attempts = trace_.all();
    finish_error(ErrorKind::DeadlineExceeded, "the call's deadline passed before the next attempt",
                 std::move(d));
    return step;
  }
  if (plan_attempt(now)) return advance(now);  // it started an attempt, or ended the call
  step.kind = Step::Kind::Wait;
  step.until = wait_until_;
  return step;
}

// Chooses the next attempt at `now` and starts it, or ends the call; false when the call is to
// wait until wait_until_ for a route to come back.
bool CallMachine::plan_attempt(TimePoint now) {
  std::optional<std::size_t> pick;
  admission_.start_round();
  AttemptLease slot = std::move(retry_slot_);  // the pending retry's budget slot, if any
  const std::optional<std::size_t> retry = std::exchange(retry_, std::nullopt);
  // An explicit retry ignores the rate-limit cooldown (the wait already honoured it) but still
  // asks the limiter and the breaker.
  if (retry &&
      admission_.admit(candidates_.route(*retry), now, pending_) == Admission::Block::None) {
    pick = retry;
    env_.stats().record_retry();  // counted when it is sent
  }
  if (!pick) pick = candidates_.pick(now, pending_);
  if (!pick) {
    const std::optional<TimePoint> back = candidates_.look_again_at(
        now, retry, options_.when_unavailable == WhenUnavailable::WaitForRecovery);
    if (back && *back < deadline_) {
      retry_ = retry;  // still owed: sent when it can be
      retry_slot_ = std::move(slot);
      wait_until_ = *back;
      state_ = State::Waiting;
      return false;
    }
  }
  if (!retry || pick != retry) slot.release();  // a budget slot is a retry's only
  if (!pick && options_.when_unavailable == WhenUnavailable::Panic) {
    pending_ = AttemptLease(&last_now_);
    pick = candidates_.panic(now, pending_);
  }
  if (!pick) {
    finish_exhausted(now);
    return true;
  }
  start_flight(now, *pick, std::move(slot));
  hedge_at_ = hedging_.due_after(route_of(flights_.back()), now);
  return true;
}

void CallMachine::start_flight(TimePoint now, std::size_t c, AttemptLease&& slot) {
  RouteState& route = candidates_.route(c);
  current_ = c;
  candidates_[c].tried = true;
  ++candidates_[c].attempts;
  ++attempts_;

  Flight f;
  f.candidate = c;
  f.route = &route;
  f.canary = env_.canary_plan() == candidates_[c].plan;
  f.lease = std::move(pending_);
  f.lease.merge(std::move(slot));
  f.lease.start(route);
  f.start = now;
  f.attempt = attempts_;
  if (!candidates_[c].whole) {
    f.wire = std::make_unique<AttemptStream>(*env_.endpoints()[route.endpoint].api, now,
                                             /*whole=*/!feed_);
  }
  // Time left for failover: when the deadline would be what ends a silent attempt and another
  // route could still serve, the attempt leaves that route time to answer (a mirror makes one
  // attempt).
  const Duration remaining = deadline_ - now;
  const Duration reserve =
      mirror_ || !attempts_left() ? Duration::zero() : candidates_.failover_reserve(now, remaining);
  f.limits = attempt_limits(candidates_.entry(c).timeouts, remaining, reserve, f.wire != nullptr);
  if (feed_ && recovery_.active()) start_recovery(f);
  f.id = env_.next_exchange_id();
  flights_.push_back(std::move(f));
  to_start_ = flights_.size() - 1;
  state_ = State::InFlight;
}

// This attempt recovers a broken stream: it continues the answer where its endpoint continues
// one and did not refuse the prefix, or restarts it (see Recovery::start).
void CallMachine::start_recovery(Flight& f) {
  const Candidates::Candidate& c = candidates_[f.candidate];
  const bool can_continue =
      !c.prefix_refused &&
      env_.endpoints()[route_of(f).endpoint].continuation == Continuation::Prefill;
  recovery_.start(f, can_continue, c.body, writer_);
}

// The request of flight `f` (see RequestWriter::write).
const HttpRequest& CallMachine::write_request(const Flight& f) {
  const ClientOptions& o = env_.options();
  const RouteState& route = route_of(f);
  RequestWriter::Attempt a;
  a.route = &route;
  a.endpoint = &env_.endpoints()[route.endpoint];
  a.shaping = candidates_.entry(f.candidate).shaping.get();
  a.call_headers = &options_.headers;
  a.body = candidates_[f.candidate].body;
  a.streamed = f.wire != nullptr;
  a.continuation = f.continuation;
  a.number = f.attempt;
  a.total = f.limits.total;
  a.connect = f.limits.connect;
  a.headers = f.limits.headers;
  a.max_response_bytes = o.max_response_bytes;
  a.ca_bundle = &o.ca_bundle;
  // Only an endpoint's rate limiter reads a successful answer's headers (see observe_limits).
  a.success_headers = env_.limiter(route.endpoint) != nullptr;
  return writer_.write(a);
}

bool CallMachine::attempts_left() const { return retries_.attempts_left(attempts_); }

void CallMachine::try_hedge(TimePoint now) {
  hedge_at_ = TimePoint::max();
  if (deadline_ - now < kMinAttemptTime || !attempts_left()) return;
  if (!env_.budget().try_acquire()) return;  // hedges draw from the retry budget
  AttemptLease slot(&last_now_);             // given back unless the hedge starts
  slot.hold_budget_slot(&env_.budget());
  std::optional<std::size_t> pick = candidates_.pick(now, pending_);
  if (!pick) return;
  hedging_.started();
  env_.stats().record_hedge();
  start_flight(now, *pick, std::move(slot));
  hedge_at_ = hedging_.due_after(route_of(flights_.back()), now);
}

// Cancels every flight but `keep`: they are abandoned, listed in the trace as cancelled, and
// count neither against their breakers nor in the statistics.
void CallMachine::abandon_others(TimePoint now, std::uint64_t keep, const std::string& why) {
  drop_flights(now, keep, why, 0, Settlement::Drop::Logged);
}

// Ends every flight but `keep` (0: none) as cancelled with `why` (see Settlement::dropped).
void CallMachine::drop_flights(TimePoint now, std::uint64_t keep, const std::string& why,
                               int status, Settlement::Drop how) {
  for (Flight& f : flights_) {
    if (f.id == keep) continue;
    abandon_.push_back(f.id);
    settlement_.dropped(f, now, why, status, how);
  }
  flights_.erase(std::remove_if(flights_.begin(), flights_.end(),
                                [&](const Flight& f) { return f.id != keep; }),
                 flights_.end());
}

void CallMachine::take_result(TimePoint now, HttpResult result) {
  last_now_ = now;
  auto it = find_flight(result.id);
  if (state_ != State::InFlight || it == flights_.end()) return;
  conclude(now, *it, reader_.result(now, *it, result));
}

void CallMachine::conclude(TimePoint now, Flight& f, AttemptEnd end) {
  if (end.abandon) abandon_.push_back(f.id);
  switch (end.kind) {
    case AttemptEnd::Kind::Open:
      return;
    case AttemptEnd::Kind::Served:
      return finish_success(now, f.id, std::move(end.response));
    case AttemptEnd::Kind::Failed:
      return fail_attempt(now, f.id, std::move(end.failure));
    case AttemptEnd::Kind::Interrupted:
      return interrupt(now, end.cause, std::move(end.failure.message));
    case AttemptEnd::Kind::Stopped:
      return cancel(now, "the stream handler asked to stop", end.status);
  }
}

void CallMachine::fire_timer(TimePoint now) {
  last_now_ = now;
  if (state_ != State::InFlight) return;
  std::vector<std::uint64_t> stuck;
  for (const Flight& f : flights_) {
    if (watchdog(f) <= now) stuck.push_back(f.id);
  }
  for (std::uint64_t id : stuck) {
    if (state_ != State::InFlight) break;
    auto it = find_flight(id);
    if (it == flights_.end()) continue;
    conclude(now, *it, reader_.expired(now, *it, deadline_));
  }
  if (state_ == State::InFlight && hedge_at_ <= now) try_hedge(now);
}

TimePoint CallMachine::watchdog(const Flight& f) const {
  const TimePoint hard = f.start + f.limits.total + kStuckGrace;
  if (!f.wire) return hard;
  return f.wire->watchdog(f.start, f.limits.first_byte, f.limits.idle, hard, deadline_);
}

void CallMachine::take_data(TimePoint now, StreamData data) {
  last_now_ = now;
  if (state_ != State::InFlight) return;
  auto it = find_flight(data.id);
  if (it == flights_.end() || !it->wire) return;
  conclude(now, *it, reader_.data(now, *it, data));
}

std::shared_ptr<const ChatResponse> CallMachine::partial(const AttemptStream* s) const {
  if (!feed_ || !current_) return nullptr;
  if (recovery_.active() && !feed_.committed())
    return recovery_.shown();  // still on the handler's screen
  if (!s) return nullptr;
  auto p = std::make_shared<ChatResponse>(s->accumulated.build());
  p->served_by = candidates_.route(*current_).ref;
  p->attempts = trace_.all();
  return p;
}

// The stream broke after content reached the handler: the attempt is charged and recorded
// with what it delivered; then, by the recovery policy, the call ends with StreamInterrupted or
// goes on to the attempt the retry policy allows, restarting or continuing the answer there.
void CallMachine::interrupt(TimePoint now, ErrorKind cause, std::string message) {
  Flight f = std::move(flights_.front());
  flights_.clear();
  RouteState& route = route_of(f);
  message = env_.endpoints()[route.endpoint].redact(std::move(message));
  // Cut by the call's deadline (or by an attempt limit clipped to it): the deadline's doing,
  // neutral for the breaker, the statistics and the canary, as in fail_attempt.
  const bool deadline_cut =
      cause == ErrorKind::DeadlineExceeded || cut_by_deadline(cause, f, now, deadline_);
  if (deadline_cut) cause = ErrorKind::DeadlineExceeded;
  std::string why = settlement_.broke(f, now, cause, message, deadline_cut);
  std::shared_ptr<const ChatResponse> shown = partial(f.wire.get());
  if (recovery_.mode() == StreamRecovery::Fail || cause == ErrorKind::DeadlineExceeded ||
      now >= deadline_) {
    recovery_.failed(env_.stats(), /*forget=*/true);  // this break is the call's end, as it is
    ErrorDetails d;
    d.http_status = 200;
    d.attempts = trace_.all();
    d.partial = std::move(shown);
    return finish_error(ErrorKind::StreamInterrupted, std::move(why), std::move(d));
  }
  recovery_.begin(std::move(why), std::move(shown), writer_);
  feed_.uncommit();  // the next attempt fails over unseen until its first content
  state_ = State::Planning;
  Failure failure;
  failure.outcome.kind = cause;
  failure.outcome.route = route.ref;
  failure.outcome.http_status = 200;
  failure.outcome.elapsed = now - f.start;
  failure.message = std::move(message);
  after_failure(now, f.candidate, f.canary, failure, false);
}

void CallMachine::cancel(TimePoint now, const std::string& why, int status) {
  last_now_ = now;
  if (state_ == State::Done) return;
  ErrorDetails d;
  d.partial = partial(flights_.empty() ? nullptr : flights_.front().wire.get());
  drop_flights(now, 0, why, status, Settlement::Drop::Counted);
  to_start_.reset();
  d.http_status = status;
  d.attempts = trace_.all();
  finish_error(ErrorKind::Cancelled, why, std::move(d));
}

void CallMachine::finish_success(TimePoint now, std::uint64_t id, ChatResponse&& response) {
  auto it = find_flight(id);
  Flight f = std::move(*it);
  flights_.erase(it);
  current_ = f.candidate;
  settlement_.served(f, now, response);
  const RouteRef& served_by = route_of(f).ref;
  if (!flights_.empty())
    abandon_others(now, f.id, "lost the hedge race to " + route_name(served_by));
  recovery_.served(env_.stats(), f.continuation);
  response.served_by = served_by;
  response.attempts = trace_.take();
  response.skipped = candidates_.skipped(now);
  state_ = State::Done;
  end_call();
  if (!mirror_) env_.stats().record_call("success", now - call_start_);
  result_.emplace(std::move(response));
}

void CallMachine::fail_attempt(TimePoint now, std::uint64_t id, Failure failure) {
  auto it = find_flight(id);
  Flight f = std::move(*it);
  flights_.erase(it);
  const std::size_t c = f.candidate;
  RouteState& route = route_of(f);
  const Verdict v = judge(failure, f, env_.endpoints()[route.endpoint], now, deadline_);
  const AttemptOutcome& outcome = failure.outcome;
  if (failure.stream_refused) candidates_[c].whole = true;
  settlement_.failed(f, now, failure, v);
  state_ = flights_.empty() ? State::Planning : State::InFlight;
  const bool go_on = !v.deadline_passed && !options_.cancel.cancelled();
  if (failure.stream_refused && go_on) {
    trace_.log_last();
    if (attempts_left()) {
      retry_ = c;  // at once, whole
      return;
    }
    // No attempt left to send it whole: the route could not serve this call, which says
    // nothing of the request; an attempt still in flight may yet answer.
    attempts_spent_ = true;
    if (state_ == State::Planning) finish_exhausted(now);
    return;
  }
  if (f.continuation && go_on && attempts_left() &&
      (outcome.kind == ErrorKind::InvalidRequest ||
       outcome.kind == ErrorKind::ContextLengthExceeded)) {
    // The route refused the partial answer as a prefix: the answer restarts there at once,
    // and the call still reports the original break if nothing serves.
    candidates_[c].prefix_refused = true;
    trace_.last().message += " (the partial answer was refused as a prefix: restarting)";
    trace_.log_last();
    retry_ = c;
    return;
  }
  after_failure(now, c, f.canary, failure, v.deadline_passed);
}

void CallMachine::after_failure(TimePoint now, std::size_t c, bool canary, const Failure& failure,
                                bool deadline_passed) {
  const AttemptOutcome& outcome = failure.outcome;
  const RouteState& route = candidates_.route(c);
  auto fail = [&](ErrorKind kind, std::string message) {
    ErrorDetails d;
    d.http_status = outcome.http_status;
    d.provider_code = outcome.provider_code;
    d.provider_type = failure.provider_type;
    d.param = failure.param;
    d.retry_after = outcome.retry_after;
    d.attempts = trace_.all();
    finish_error(kind, std::move(message), std::move(d));
  };
  if (options_.cancel.cancelled()) {
    trace_.log_last();
    return cancel(now, "the call was cancelled");
  }
  if (deadline_passed) {
    trace_.log_last();
    abandon_others(now, 0, "the call's deadline passed");
    return fail(ErrorKind::DeadlineExceeded,
                deadline_message(route.ref, candidates_.available_routes(now)));
  }
  if (mirror_) {  // a mirror makes exactly one attempt
    trace_.log_last();
    return fail(outcome.kind, route_name(route.ref) + ": " + failure.message);
  }
  const NextMove m =
      retries_.after(outcome, call_state(now, c, canary), !flights_.empty(), retry_slot_);
  if (m.decision.action == Decision::Action::Failover && candidates_.rule_out(c, m.decision)) {
    attempts_spent_ = true;
  }
  budget_denied_ = budget_denied_ || m.budget_denied;
  switch (m.kind) {
    case NextMove::Kind::Wait:
    case NextMove::Kind::Failover:
      break;
    case NextMove::Kind::Retry:
      trace_.last().delay = m.delay;
      retry_ = c;
      wait_until_ = now + m.delay;
      state_ = m.delay > Duration::zero() ? State::Waiting : State::Planning;
      break;
    case NextMove::Kind::Exhausted:
      trace_.log_last();
      return finish_exhausted(now);
    case NextMove::Kind::Fail:
      trace_.log_last();
      abandon_others(now, 0, "the call failed on " + route_name(route.ref));
      return fail(outcome.kind, route_name(route.ref) + ": " + failure.message);
  }
  trace_.log_last();
}

// What the retry policy is told of the call after a failure on candidate `c`.
CallState CallMachine::call_state(TimePoint now, std::size_t c, bool canary) const {
  CallState state;
  state.attempts = attempts_;
  state.route_attempts = candidates_[c].attempts;
  state.has_alternative = candidates_.has_alternative(now);
  // From a canary's candidate the priority list is the stable version, not a downgrade.
  state.tier_alternative = state.has_alternative &&
                           (canary || candidates_.has_alternative(now, candidates_.entry(c).tier));
  state.now = now;
  state.deadline = deadline_;
  state.rng = &env_.rng();
  return state;
}

void CallMachine::finish_error(ErrorKind kind, std::string message, ErrorDetails details) {
  if (recovery_.active()) {  // a recovery did not serve: the call reports the break it recovered
    recovery_.failed(env_.stats(), /*forget=*/false);
    if (kind != ErrorKind::Cancelled && kind != ErrorKind::HookFailed) {
      message = recovery_.message(message);
      kind = ErrorKind::StreamInterrupted;
      ErrorDetails d;
      d.http_status = 200;
      d.available_at = details.available_at;
      d.attempts = std::move(details.attempts);
      d.partial = recovery_.shown();
      details = std::move(d);
    }
  }
  if (details.skipped.empty()) details.skipped = candidates_.skipped(last_now_);
  state_ = State::Done;
  end_call();
  if (!mirror_) env_.stats().record_call(to_string(kind), last_now_ - call_start_);
  result_.emplace(Error(kind, message, std::move(details)));
}

void CallMachine::finish_exhausted(TimePoint now) {
  ErrorDetails d;
  d.attempts = trace_.all();
  bool untranslatable = true;  // no route's API can express the request
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    const int body = candidates_[c].body;
    untranslatable = untranslatable && body >= 0 && writer_.problem(body);
  }
  if (untranslatable) {
    return finish_error(ErrorKind::InvalidRequest, untranslatable_message(trace_.all()),
                        std::move(d));
  }
  Exhaustion x;
  x.trace = &trace_.all();
  x.sent = attempts_ > 0;
  if (x.sent) d.http_status = trace_.last().status;  // entries passed over are not sent
  x.untried = candidates_.untried(now);
  x.retries_paused = budget_denied_;
  x.attempts_spent = attempts_spent_;
  x.rate_blocked = admission_.rate_blocked();
  x.rate_wait = admission_.rate_wait();
  x.spend_blocked = admission_.spend_blocked();
  x.store_down = admission_.budget_store_down();
  x.store = env_.options().state.store.get();
  x.now = now;
  ExhaustedError error = exhausted_error(x);
  d.available_at = error.available_at;
  finish_error(error.kind, std::move(error.message), std::move(d));
}

}  // namespace failover::detail
