#include "core/call.hpp"

#include "core/attempt_verdict.hpp"
#include "core/call_report.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace failover::detail {

namespace {

// Less time than this left before the deadline: do not start another attempt.
constexpr Duration kMinAttemptTime = std::chrono::milliseconds(1);

}  // namespace

CallMachine::CallMachine(const CallEnv& env, const ChatRequest& request, const CallOptions& options,
                         TimePoint now, StreamHandler handler, bool mirror)
    : env_(env),
      options_(options),
      mirror_(mirror),
      hedging_(env.options().hedging, /*allowed=*/!mirror && handler == nullptr),
      trace_(env, mirror),
      last_now_(now),
      feed_(std::move(handler)),
      reader_(env, feed_, std::max(1, request.n.value_or(1))),
      recovery_(options.stream_recovery.value_or(env.options().stream_recovery), request,
                feed_ && env.continuing()),
      ending_(env, candidates_, trace_, recovery_, feed_, mirror, now) {
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
        invalid(no_route_message(options_.models, models_served(env_)));
        return;
      }
      if (env_.shadow() && o.shadow.sample > 0 && env_.rng().uniform() < o.shadow.sample) {
        shadow_request_ = std::make_unique<ChatRequest>(request);
      }
    }
    candidates_.prepare(request, writer_, trace_);
    retries_.use_clone_of(*o.retry);
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
  flights_ = Flights();  // their leases give back what they hold
  end_call();
}

void CallMachine::end_call() {
  state_ = State::Done;
  retry_slot_.release();
  pending_.release();
  if (counted_) {
    counted_ = false;
    env_.budget().call_finished();
  }
}

std::optional<ChatRequest> CallMachine::take_shadow() {
  if (attempts_ == 0 || !shadow_request_) return std::nullopt;
  std::optional<ChatRequest> out(std::move(*shadow_request_));
  shadow_request_.reset();
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
  auto* log = env_.logger();
  if (log && state_ != State::Done) log->error("a call failed in application code: {}", e.what());
  stop(now, ErrorKind::HookFailed, e.what(), 0, Settlement::Drop::Quietly);
}

void CallMachine::cancel(TimePoint now, const std::string& why, int status) {
  guarded(now, [&] { stop(now, ErrorKind::Cancelled, why, status, Settlement::Drop::Counted); });
}

// The call ends as `kind` says, with every exchange in flight dropped `how` (see
// Settlement::dropped); `status`: the latest answer's.
void CallMachine::stop(TimePoint now, ErrorKind kind, const std::string& why, int status,
                       Settlement::Drop how) {
  last_now_ = now;
  if (state_ == State::Done) return;
  ErrorDetails d;
  d.partial = partial(flights_.empty() ? nullptr : flights_.front().wire.get());
  drop_flights(now, 0, why, status, how);
  flights_.forget_start();
  retry_.reset();
  d.http_status = status;
  d.attempts = trace_.all();
  finish_error(kind, why, std::move(d));
}

Step CallMachine::advance(TimePoint now) {
  last_now_ = now;
  Step step;
  if (std::optional<std::uint64_t> id = flights_.owed_abandon()) {
    step.kind = Step::Kind::Abandon;
    step.id = *id;
    return step;
  }
  if (const Flight* f = flights_.owed_start()) {
    step.kind = Step::Kind::Start;
    step.id = f->id;
    step.request = &writer_.write(candidates_.attempt_of(*f, options_));
    return step;
  }
  switch (state_) {
    case State::Done:
      return step;
    case State::InFlight: {
      step.kind = Step::Kind::InFlight;
      step.until = flights_.next_timer(hedge_at_, deadline_);
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
  admission_.start_round();
  AttemptLease slot = std::move(retry_slot_);  // the pending retry's budget slot, if any
  const std::optional<std::size_t> retry = std::exchange(retry_, std::nullopt);
  std::optional<std::size_t> pick = candidates_.pick(now, pending_, retry);
  if (retry && pick == retry) env_.stats().record_retry();  // counted when it is sent
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
  return true;
}

void CallMachine::start_flight(TimePoint now, std::size_t c, AttemptLease&& slot) {
  current_ = c;
  Flight f = candidates_.start(c, now, ++attempts_, /*whole=*/!feed_);
  f.lease = std::move(pending_);
  f.lease.merge(std::move(slot));
  f.lease.start(*f.route);
  // Time left for failover: when the deadline would be what ends a silent attempt and another
  // route could still serve, the attempt leaves that route time to answer (a mirror makes one
  // attempt).
  const Duration remaining = deadline_ - now;
  const Duration reserve =
      mirror_ || !attempts_left() ? Duration::zero() : candidates_.failover_reserve(now, remaining);
  f.limits = attempt_limits(candidates_.entry(c).timeouts, remaining, reserve, f.wire != nullptr);
  // It recovers a broken stream: it continues the answer where it can, or restarts it.
  if (feed_ && recovery_.active())
    recovery_.start(f, candidates_.can_continue(c), candidates_[c].body, writer_);
  f.id = env_.next_exchange_id();
  hedge_at_ = hedging_.due_after(*f.route, now);
  flights_.start(std::move(f));
  state_ = State::InFlight;
}

void CallMachine::try_hedge(TimePoint now) {
  hedge_at_ = TimePoint::max();
  if (deadline_ - now < kMinAttemptTime || !attempts_left()) return;
  AttemptLease slot(&last_now_);  // given back unless the hedge starts
  if (auto pick = hedging_.pick(now, candidates_, pending_, slot))
    start_flight(now, *pick, std::move(slot));
}

void CallMachine::drop_flights(TimePoint now, std::uint64_t keep, const std::string& why,
                               int status, Settlement::Drop how) {
  flights_.drop_all_but(keep, [&](Flight& f) { settlement_.dropped(f, now, why, status, how); });
}

void CallMachine::take_result(TimePoint now, HttpResult result) {
  last_now_ = now;
  Flight* f = flights_.find(result.id);
  if (state_ != State::InFlight || !f) return;
  conclude(now, *f, reader_.result(now, *f, result));
}

void CallMachine::conclude(TimePoint now, Flight& f, AttemptEnd end) {
  if (end.abandon) flights_.abandon(f.id);
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
  for (std::uint64_t id : flights_.expired(now, deadline_)) {
    if (state_ != State::InFlight) break;
    if (Flight* f = flights_.find(id)) conclude(now, *f, reader_.expired(now, *f, deadline_));
  }
  if (state_ == State::InFlight && hedge_at_ <= now) try_hedge(now);
}

void CallMachine::take_data(TimePoint now, StreamData data) {
  last_now_ = now;
  if (state_ != State::InFlight) return;
  Flight* f = flights_.find(data.id);
  if (!f || !f->wire) return;
  conclude(now, *f, reader_.data(now, *f, data));
}

std::shared_ptr<const ChatResponse> CallMachine::partial(const AttemptStream* s) const {
  return ending_.partial(s, current_);
}

// The stream broke after content reached the handler: the attempt is charged and recorded
// with what it delivered; then, by the recovery policy, the call ends with StreamInterrupted or
// goes on to the attempt the retry policy allows, restarting or continuing the answer there.
void CallMachine::interrupt(TimePoint now, ErrorKind cause, std::string message) {
  Flight f = flights_.take(flights_.front().id);  // a stream's only one
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
    ending_.broke(now, std::move(why), std::move(shown));  // the call's end, as it is
    return end_call();
  }
  recovery_.begin(std::move(why), std::move(shown), writer_);
  feed_.uncommit();  // the next attempt fails over unseen until its first content
  state_ = State::Planning;
  after_failure(now, f.candidate, f.canary,
                Failure::broke(cause, route.ref, now - f.start, std::move(message)), false);
}

void CallMachine::finish_success(TimePoint now, std::uint64_t id, ChatResponse&& response) {
  Flight f = flights_.take(id);
  current_ = f.candidate;
  settlement_.served(f, now, response);
  if (!flights_.empty())
    drop_flights(now, f.id, "lost the hedge race to " + route_name(route_of(f).ref));
  ending_.served(now, f, std::move(response));
  end_call();
}

void CallMachine::fail_attempt(TimePoint now, std::uint64_t id, Failure failure) {
  Flight f = flights_.take(id);
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
    finish_error(kind, std::move(message), failure.details(trace_.all()));
  };
  if (options_.cancel.cancelled()) {
    trace_.log_last();
    return cancel(now, "the call was cancelled");
  }
  if (deadline_passed) {
    trace_.log_last();
    drop_flights(now, 0, "the call's deadline passed");
    return fail(ErrorKind::DeadlineExceeded,
                deadline_message(route.ref, candidates_.available_routes(now)));
  }
  if (mirror_) {  // a mirror makes exactly one attempt
    trace_.log_last();
    return fail(outcome.kind, route_name(route.ref) + ": " + failure.message);
  }
  const NextMove m =
      retries_.after(outcome, candidates_.call_state(now, c, canary, attempts_, deadline_),
                     !flights_.empty(), retry_slot_);
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
      drop_flights(now, 0, "the call failed on " + route_name(route.ref));
      return fail(outcome.kind, route_name(route.ref) + ": " + failure.message);
  }
  trace_.log_last();
}

void CallMachine::finish_error(ErrorKind kind, std::string message, ErrorDetails details) {
  ending_.failed(last_now_, kind, std::move(message), std::move(details));
  end_call();
}

void CallMachine::finish_exhausted(TimePoint now) {
  ending_.exhausted(now, writer_, attempts_ > 0, budget_denied_, attempts_spent_);
  end_call();
}

}  // namespace failover::detail
