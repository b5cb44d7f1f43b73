#include "core/call.hpp"

#include "core/call_report.hpp"

#include "policy/classify.hpp"
#include "util/format.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"
#include "wire/native.hpp"
#include "wire/shaping.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace failover::detail {

namespace {

// A route that answered 429 without Retry-After rests this long before other calls use it.
constexpr Duration kDefaultRateLimitCooldown = std::chrono::seconds(1);
// Longest a Retry-After may bench a route; past that the breaker's own logic takes over.
constexpr Duration kMaxCooldown = std::chrono::seconds(300);
// Grace beyond the transport's own total timeout before an exchange counts as stuck.
constexpr Duration kStuckGrace = std::chrono::seconds(1);
// Less time than this left before the deadline: do not start another attempt.
constexpr Duration kMinAttemptTime = std::chrono::milliseconds(1);
// The transport times exchanges on its own clock: an attempt cut to fit the deadline that
// times out this close to its limit ran out of the call's time, not the route's.
constexpr Duration kClockSlack = std::chrono::milliseconds(5);
// How often a call waiting for a budget's one call of unknown cost looks again.
constexpr Duration kBudgetPoll = std::chrono::milliseconds(20);

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
      call_start_(now),
      last_now_(now),
      feed_(std::move(handler)),
      reader_(env, feed_, std::max(1, request.n.value_or(1))),
      recovery_(options.stream_recovery.value_or(env.options().stream_recovery), request,
                feed_ && some_endpoint_continues(env)) {
  const ClientOptions& o = env_.options();
  Duration total = options_.timeout ? *options_.timeout : o.timeouts.total;
  // A year at most, so that now + total cannot overflow (options are checked to that too).
  total = std::clamp(total, Duration::zero(), Duration(std::chrono::hours(24 * 365)));
  deadline_ = now + total;
  if (options_.deadline) deadline_ = std::min(deadline_, *options_.deadline);

  auto invalid = [&](std::string message) {
    finish_error(ErrorKind::InvalidRequest, std::move(message), {});
  };
  if (options_.timeout && *options_.timeout <= Duration::zero()) {
    invalid("CallOptions.timeout must be positive");
    return;
  }
  try {
    validate_headers(options_.headers, "CallOptions.headers");
  } catch (const std::invalid_argument& e) {
    invalid(e.what());
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
    for (std::size_t c = 0; c < candidates_.size(); ++c) {
      const RouteState& route = candidates_.route(c);
      candidates_[c].whole = !env_.endpoints()[route.endpoint].streaming ||
                             route.answers_whole.load(std::memory_order_relaxed);
    }
    if (env_.translating()) translate_for_dialects(request);
    policy_ = invoke_user("the retry policy", [&] { return o.retry->clone(); });
    if (!policy_) throw HookError("the retry policy's clone() returned null");
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

void CallMachine::note_attempt(RouteState& route, TimePoint now, bool neutral) {
  Attempt& a = trace_.back();
  if (a.skipped_events > 0) {
    route.skipped_events.fetch_add(static_cast<std::uint64_t>(a.skipped_events),
                                   std::memory_order_relaxed);
  }
  if (!neutral) route.stats.record(now, a.latency, a.error, a.message);
  if (!mirror_ && !neutral) env_.budget().on_attempt(a.error);
}

// The trace entry of flight `f` ending at `now`: its route, latency and how it recovered a
// broken stream, if it did; the caller adds the outcome.
Attempt CallMachine::attempt_of(const Flight& f, TimePoint now) const {
  Attempt a;
  a.route = route_of(f).ref;
  a.latency = now - f.start;
  if (f.recovery) a.recovery = f.continuation ? "continue" : "restart";
  if (f.wire) a.skipped_events = f.wire->skipped_events;
  return a;
}

void CallMachine::charge_cut(Flight& f) {
  if (f.wire && f.wire->chunk_accepted) {
    charges_.stream(*f.wire, route_of(f), f.lease.take_reservation());
  }
}

std::vector<Flight>::iterator CallMachine::find_flight(std::uint64_t id) {
  return std::find_if(flights_.begin(), flights_.end(),
                      [&](const Flight& f) { return f.id == id; });
}

// Routes whose dialect translates the request get it in their own API, once per dialect and
// route shaping. A route that cannot take it (a field its API has no equivalent for) is passed
// over before any traffic, with the reason in the trace; the call goes on to the others.
void CallMachine::translate_for_dialects(const ChatRequest& request) {
  for (std::size_t k = 0; k < candidates_.size(); ++k) {
    Candidates::Candidate& c = candidates_[k];
    const RouteState& route = candidates_.route(k);
    const wire::DialectApi& api = *env_.endpoints()[route.endpoint].api;
    if (!api.translates()) continue;
    c.body = writer_.translate(request, api, candidates_.entry(k).shaping.get(), !c.whole);
    const std::optional<std::string>& problem = writer_.problem(c.body);
    if (!problem) continue;
    c.tried = true;
    Attempt a;
    a.route = route.ref;
    a.error = ErrorKind::InvalidRequest;
    a.message = std::string("not sent: the request cannot be translated for this ") + api.name() +
                " route: " + *problem;
    trace_.push_back(std::move(a));
    log_attempt(trace_.back());
  }
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

void CallMachine::on_data(TimePoint now, StreamData data) {
  try {
    take_data(now, std::move(data));
  } catch (const HookError& e) {
    hook_failed(now, e);
  }
}

void CallMachine::on_result(TimePoint now, HttpResult result) {
  try {
    take_result(now, std::move(result));
  } catch (const HookError& e) {
    hook_failed(now, e);
  }
}

void CallMachine::on_timer(TimePoint now) {
  try {
    fire_timer(now);
  } catch (const HookError& e) {
    hook_failed(now, e);
  }
}

void CallMachine::hook_failed(TimePoint now, const HookError& e) {
  last_now_ = now;
  if (state_ == State::Done) return;
  ErrorDetails d;
  d.partial = partial(flights_.empty() ? nullptr : flights_.front().wire.get());
  for (Flight& f : flights_) {
    abandon_.push_back(f.id);
    charge_cut(f);
    Attempt a = attempt_of(f, now);
    a.error = ErrorKind::Cancelled;
    a.message = e.what();
    trace_.push_back(std::move(a));
  }
  flights_.clear();  // their leases give back what they hold
  to_start_.reset();
  retry_.reset();
  d.attempts = trace_;
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
    d.attempts = trace_;
    finish_error(ErrorKind::DeadlineExceeded, "the call's deadline passed before the next attempt",
                 std::move(d));
    return step;
  }
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
  const bool wait_for_recovery = options_.when_unavailable == WhenUnavailable::WaitForRecovery;
  if (!pick && (wait_for_recovery || admission_.budget_busy())) {
    std::optional<TimePoint> back;
    if (wait_for_recovery) back = candidates_.earliest_recovery(now);
    if (retry && wait_for_recovery) {  // the retry may come back first (its permit, its breaker)
      TimePoint at =
          admission_.rate_blocked() ? admission_.rate_wait() : now + std::chrono::milliseconds(50);
      if (std::optional<TimePoint> reopen = candidates_.route(*retry).reopens_at(now)) {
        at = std::max(at, *reopen);
      }
      back = std::min(back.value_or(at), at);
    }
    // A budget with room for less than one estimate serves calls of unknown cost one at a
    // time (SpendCaps::admit_alone): the others wait for the one in flight, whatever
    // when_unavailable says, since the budget is not spent.
    if (admission_.budget_busy())
      back = std::min(back.value_or(TimePoint::max()), now + kBudgetPoll);
    if (back && *back < deadline_) {
      retry_ = retry;  // still owed: sent when it can be
      retry_slot_ = std::move(slot);
      wait_until_ = *back;
      state_ = State::Waiting;
      step.kind = Step::Kind::Wait;
      step.until = wait_until_;
      return step;
    }
  }
  if (!retry || pick != retry) slot.release();  // a budget slot is a retry's only
  if (!pick && options_.when_unavailable == WhenUnavailable::Panic) {
    // Sent without the breaker's admission (which it leaves alone) and despite a cooldown,
    // but within the client-side rate limit and the budget: those are the account's.
    pick = candidates_.least_bad(now);
    pending_ = AttemptLease(&last_now_);
    if (pick && (!admission_.take_permit(candidates_.route(*pick), pending_, now) ||
                 !admission_.reserve_spend(candidates_.route(*pick), pending_))) {
      pending_.release();
      pick.reset();
    }
  }
  if (!pick) {
    finish_exhausted(now);
    return step;
  }
  start_flight(now, *pick, /*hedge=*/false, std::move(slot));
  Duration delay = hedge_delay(route_of(flights_.back()));
  hedge_at_ = delay > Duration::zero() ? now + delay : TimePoint::max();
  return advance(now);
}

void CallMachine::start_flight(TimePoint now, std::size_t c, bool hedge, AttemptLease&& slot) {
  RouteState& route = candidates_.route(c);
  current_ = c;
  candidates_[c].tried = true;
  ++candidates_[c].attempts;
  ++attempts_;

  Flight f;
  f.candidate = c;
  f.route = &route;
  f.hedge = hedge;
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

// This attempt recovers a broken stream: it continues the answer (sent as a stream to an
// endpoint that continues, with what was shown as a prefix) or restarts it, after a notice.
void CallMachine::start_recovery(Flight& f) {
  const Candidates::Candidate& c = candidates_[f.candidate];
  f.recovery = true;
  const bool can_continue =
      f.wire && !c.prefix_refused &&
      env_.endpoints()[route_of(f).endpoint].continuation == Continuation::Prefill;
  std::string seam;
  f.continuation = recovery_.start_attempt(can_continue, c.body, writer_, seam);
  if (!f.wire) return;  // sent whole: end_unframed makes its stream, with the notice due
  f.wire->notice_due = !f.continuation;
  f.wire->seam = std::move(seam);
  if (f.continuation) f.wire->seed(*recovery_.shown());  // the answer goes on from what was shown
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

// The hedge delay after an attempt on `route` starts: its p95 when asked for and known, else
// the fixed delay; zero means no hedge.
Duration CallMachine::hedge_delay(const RouteState& route) const {
  const HedgingOptions& h = env_.options().hedging;
  if (feed_ || mirror_ || h.max_extra < 1 || hedges_started_ >= h.max_extra) {
    return Duration::zero();
  }
  if (h.use_p95) {
    RouteHealth health;
    route.stats.fill(health);
    if (health.p95 > Duration::zero()) return health.p95;
  }
  return h.delay;
}

bool CallMachine::attempts_left() const {
  const std::optional<int> limit = policy_->max_attempts();
  return !limit || attempts_ < *limit;
}

void CallMachine::try_hedge(TimePoint now) {
  hedge_at_ = TimePoint::max();
  if (deadline_ - now < kMinAttemptTime || !attempts_left()) return;
  if (!env_.budget().try_acquire()) return;  // hedges draw from the retry budget
  AttemptLease slot(&last_now_);             // given back unless the hedge starts
  slot.hold_budget_slot(&env_.budget());
  std::optional<std::size_t> pick = candidates_.pick(now, pending_);
  if (!pick) return;
  ++hedges_started_;
  env_.stats().record_hedge();
  start_flight(now, *pick, /*hedge=*/true, std::move(slot));
  Duration delay = hedge_delay(route_of(flights_.back()));
  if (delay > Duration::zero()) hedge_at_ = now + delay;
}

// Cancels every flight but `keep`: they are abandoned, listed in the trace as cancelled, and
// count neither against their breakers nor in the statistics.
void CallMachine::abandon_others(TimePoint now, std::uint64_t keep, const std::string& why) {
  for (Flight& f : flights_) {
    if (f.id == keep) continue;
    abandon_.push_back(f.id);
    charge_cut(f);  // whichever attempt won
    Attempt a = attempt_of(f, now);
    a.error = ErrorKind::Cancelled;
    a.message = why;
    trace_.push_back(std::move(a));
    log_attempt(trace_.back());
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
  p->attempts = trace_;
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
  const bool deadline_cut = cause == ErrorKind::DeadlineExceeded || now >= deadline_ ||
                            (cause == ErrorKind::Timeout && f.limits.clipped &&
                             now - f.start >= f.limits.total - kClockSlack);
  if (deadline_cut) cause = ErrorKind::DeadlineExceeded;
  // Charged before the breaker (application code that may throw) hears of the break.
  charges_.stream(*f.wire, route, f.lease.take_reservation());
  f.lease.fail(now, deadline_cut ? ErrorKind::DeadlineExceeded : ErrorKind::StreamInterrupted);
  if (f.canary && !deadline_cut)
    env_.canary_record(now, ErrorKind::StreamInterrupted, now - f.start);
  Attempt a = attempt_of(f, now);
  a.error = deadline_cut ? ErrorKind::DeadlineExceeded : ErrorKind::StreamInterrupted;
  a.status = 200;
  a.message = std::string(to_string(cause)) + ": " + message;
  a.delivered_chunks = f.wire->delivered_chunks;
  a.delivered_chars = f.wire->delivered_chars;
  trace_.push_back(a);
  note_attempt(route, now);
  log_attempt(trace_.back());
  std::shared_ptr<const ChatResponse> shown = partial(f.wire.get());
  std::string why =
      route_name(route.ref) + ": the stream broke after content was delivered (" + a.message + ")";
  if (recovery_.mode() == StreamRecovery::Fail || cause == ErrorKind::DeadlineExceeded ||
      now >= deadline_) {
    recovery_.failed(env_.stats(), /*forget=*/true);  // this break is the call's end, as it is
    ErrorDetails d;
    d.http_status = 200;
    d.attempts = trace_;
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
  for (Flight& f : flights_) {
    abandon_.push_back(f.id);
    RouteState& route = route_of(f);
    charge_cut(f);      // a stream stopped after it sent something spent tokens
    f.lease.release();  // the caller's choice: neutral for the breaker
    Attempt a = attempt_of(f, now);
    a.error = ErrorKind::Cancelled;
    a.status = status;
    a.message = why;
    trace_.push_back(std::move(a));
    note_attempt(route, now);
    log_attempt(trace_.back());
  }
  flights_.clear();
  to_start_.reset();
  d.http_status = status;
  d.attempts = trace_;
  finish_error(ErrorKind::Cancelled, why, std::move(d));
}

void CallMachine::finish_success(TimePoint now, std::uint64_t id, ChatResponse&& response) {
  auto it = find_flight(id);
  Flight f = std::move(*it);
  flights_.erase(it);
  std::optional<double> used;
  if (response.usage) used = static_cast<double>(response.usage->total_tokens);
  RouteState& route = route_of(f);
  current_ = f.candidate;
  Duration latency = now - f.start;
  // The spending reservation stays until the real cost replaces it, in one step, before the
  // breaker (application code that may throw) hears of the success: the answer's tokens were
  // spent whatever it says. A stream that reported no usage is charged an estimate.
  const std::optional<std::int64_t> cost =
      charges_.answer(response, f.wire.get(), route, f.lease.take_reservation());
  if (cost) response.cost_usd = static_cast<double>(*cost) / 1e9;
  f.lease.succeed(now, latency, used);
  route.record_latency(latency);
  if (f.canary) env_.canary_record(now, std::nullopt, latency);
  Attempt a = attempt_of(f, now);
  a.status = 200;
  trace_.push_back(std::move(a));
  note_attempt(route, now);
  log_attempt(trace_.back());
  if (!flights_.empty())
    abandon_others(now, f.id, "lost the hedge race to " + route_name(route.ref));
  recovery_.served(env_.stats(), f.continuation);
  response.served_by = route.ref;
  response.attempts = std::move(trace_);
  response.skipped = candidates_.skipped(now);
  state_ = State::Done;
  end_call();
  if (!mirror_) env_.stats().record_call("success", now - call_start_);
  result_.emplace(std::move(response));
}

void CallMachine::fail_attempt(TimePoint now, std::uint64_t id, Failure failure) {
  AttemptOutcome& outcome = failure.outcome;
  std::string& message = failure.message;
  auto it = find_flight(id);
  Flight f = std::move(*it);
  flights_.erase(it);
  const std::size_t c = f.candidate;
  RouteState& route = route_of(f);
  outcome.route = route.ref;
  if (outcome.elapsed == Duration::zero()) outcome.elapsed = now - f.start;
  // A timeout of an attempt whose limit was cut to fit the call's deadline, at that limit, is
  // the deadline's doing: neutral for the breaker, the statistics and the canary. Any other
  // timeout (connect, first byte, idle) while time remains fails over like any failure.
  const bool deadline_passed =
      now >= deadline_ || (outcome.kind == ErrorKind::Timeout && f.limits.clipped &&
                           now - f.start >= f.limits.total - kClockSlack);
  // A route that said nothing at all until the deadline ended the attempt held the request
  // silently: that counts against its breaker, so that a hung route opens like a failing one.
  const bool silent = failure.silent && outcome.kind == ErrorKind::Timeout;
  if (deadline_passed && outcome.kind == ErrorKind::Timeout) {
    outcome.kind = ErrorKind::DeadlineExceeded;
    message = "the call's deadline passed during the attempt (" + message + ")";
  }
  // A server may echo the key back ("Incorrect API key provided: sk-..."): never pass it on.
  const ResolvedEndpoint& endpoint = env_.endpoints()[route.endpoint];
  message = endpoint.redact(std::move(message));
  failure.provider_type = endpoint.redact(std::move(failure.provider_type));
  failure.param = endpoint.redact(std::move(failure.param));
  outcome.provider_code = endpoint.redact(std::move(outcome.provider_code));
  charge_cut(f);  // the tokens of an answer cut midway were spent
  const bool stream_refused = failure.stream_refused;
  if (stream_refused) {
    route.answers_whole.store(true, std::memory_order_relaxed);
    candidates_[c].whole = true;
    message += " (the route refuses streamed requests: sent whole from now on)";
  }
  // A stale kept-alive connection and a refused stream say nothing of the route: neutral for
  // its breaker, its statistics and the canary.
  const bool neutral = outcome.stale_connection || stream_refused;
  f.lease.fail(now, neutral                     ? ErrorKind::Cancelled
                    : deadline_passed && silent ? ErrorKind::Timeout
                                                : outcome.kind);
  if (f.canary && !neutral) env_.canary_record(now, outcome.kind, now - f.start);
  if (outcome.kind == ErrorKind::RateLimited ||
      (outcome.retry_after && outcome.kind == ErrorKind::Overloaded)) {
    Duration rest = outcome.retry_after ? *outcome.retry_after : kDefaultRateLimitCooldown;
    route.cool_down_until(now + std::min(rest, kMaxCooldown));
  }
  Attempt a = attempt_of(f, now);
  a.error = outcome.kind;
  a.status = outcome.http_status;
  a.message = message;
  trace_.push_back(std::move(a));
  note_attempt(route, now, neutral);
  state_ = flights_.empty() ? State::Planning : State::InFlight;
  if (stream_refused && !deadline_passed && !options_.cancel.cancelled()) {
    log_attempt(trace_.back());
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
  if (f.continuation && !deadline_passed && !options_.cancel.cancelled() && attempts_left() &&
      (outcome.kind == ErrorKind::InvalidRequest ||
       outcome.kind == ErrorKind::ContextLengthExceeded)) {
    // The route refused the partial answer as a prefix: the answer restarts there at once,
    // and the call still reports the original break if nothing serves.
    candidates_[c].prefix_refused = true;
    trace_.back().message += " (the partial answer was refused as a prefix: restarting)";
    log_attempt(trace_.back());
    retry_ = c;
    return;
  }
  after_failure(now, c, f.canary, failure, deadline_passed);
}

void CallMachine::after_failure(TimePoint now, std::size_t c, bool canary, const Failure& failure,
                                bool deadline_passed) {
  const AttemptOutcome& outcome = failure.outcome;
  const std::string& message = failure.message;
  const RouteState& route = candidates_.route(c);
  auto details = [&]() {
    ErrorDetails d;
    d.http_status = outcome.http_status;
    d.provider_code = outcome.provider_code;
    d.provider_type = failure.provider_type;
    d.param = failure.param;
    d.retry_after = outcome.retry_after;
    d.attempts = trace_;
    return d;
  };
  if (options_.cancel.cancelled()) {
    log_attempt(trace_.back());
    return cancel(now, "the call was cancelled");
  }
  if (deadline_passed) {
    log_attempt(trace_.back());
    abandon_others(now, 0, "the call's deadline passed");
    std::string why = "the call's deadline passed during an attempt on " + route_name(route.ref);
    std::string waiting;  // routes that could have served and never got an attempt
    for (std::size_t k = 0; k < candidates_.size(); ++k) {
      if (candidates_.available(k, now))
        waiting += (waiting.empty() ? "" : ", ") + route_name(candidates_.route(k).ref);
    }
    if (!waiting.empty()) {
      why += "; never tried: " + waiting +
             " (give the attempts less time than the call with timeouts.attempt_ms or "
             "timeouts.first_byte_ms, or the call more with timeouts.total_ms)";
    }
    return finish_error(ErrorKind::DeadlineExceeded, std::move(why), details());
  }

  if (mirror_) {  // a mirror makes exactly one attempt
    log_attempt(trace_.back());
    return finish_error(outcome.kind, route_name(route.ref) + ": " + message, details());
  }

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
  // A content filter is the provider's safety decision: the client's policy, not the retry
  // policy, says whether another route may be asked.
  Decision decision =
      outcome.kind != ErrorKind::ContentFiltered
          ? invoke_user("the retry policy", [&] { return policy_->decide(outcome, state); })
      : env_.options().content_filter == ContentFilterPolicy::FailOver ? Decision::failover()
                                                                       : Decision::fail();
  if (!flights_.empty() && decision.action != Decision::Action::Fail) {
    // Another attempt of this call is still in flight: wait for it. What the decision ruled
    // out stays ruled out for the attempts after it.
    if (decision.action == Decision::Action::Failover && candidates_.rule_out(c, decision)) {
      attempts_spent_ = true;
    }
    log_attempt(trace_.back());
    return;
  }
  switch (decision.action) {
    case Decision::Action::Retry: {
      Duration delay = std::max(decision.delay, Duration::zero());
      if (now + delay >= deadline_) {  // a custom policy may ask for too much
        log_attempt(trace_.back());
        return finish_exhausted(now);
      }
      if (!env_.budget().try_acquire()) {
        budget_denied_ = true;  // the route is given up, as for Failover
        break;
      }
      retry_slot_.hold_budget_slot(&env_.budget());
      trace_.back().delay = delay;
      retry_ = c;
      wait_until_ = now + delay;
      state_ = delay > Duration::zero() ? State::Waiting : State::Planning;
      break;
    }
    case Decision::Action::Failover:
      if (candidates_.rule_out(c, decision)) attempts_spent_ = true;
      break;
    case Decision::Action::Fail:
      log_attempt(trace_.back());
      abandon_others(now, 0, "the call failed on " + route_name(route.ref));
      return finish_error(outcome.kind, route_name(route.ref) + ": " + message, details());
  }
  log_attempt(trace_.back());
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
  std::string message;
  // No route's API can express the request.
  bool untranslatable = true;
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    const int body = candidates_[c].body;
    untranslatable = untranslatable && body >= 0 && writer_.problem(body);
  }
  if (untranslatable) {
    d.attempts = trace_;
    return finish_error(ErrorKind::InvalidRequest, untranslatable_message(trace_), std::move(d));
  }
  if (attempts_ > 0) d.http_status = trace_.back().status;  // entries passed over are not sent
  message = exhausted_message(trace_, attempts_ > 0);
  std::optional<TimePoint> earliest;
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    if (candidates_[c].tried) continue;
    const SkippedRoute s = candidates_.passed_over(c, now);
    message += " " + route_name(s.route) + ": " + s.message + ";";
    if (s.until && (!earliest || *s.until < *earliest)) earliest = s.until;
  }
  if (!message.empty() && message.back() == ';') message.pop_back();
  if (budget_denied_) message += " (retries of the same route paused by the client's retry budget)";
  if (attempts_spent_) {
    message += " (the call's " + std::to_string(trace_.size()) + " attempts are spent)";
  }
  d.available_at = earliest;
  d.attempts = trace_;
  if (admission_.rate_blocked() && attempts_ == 0 && !admission_.spend_blocked()) {
    d.available_at = admission_.rate_wait();
    return finish_error(ErrorKind::RateLimited,
                        "every route's endpoint is at its client-side rate limit; the next permit "
                        "is due in " +
                            format_ms(admission_.rate_wait() - now),
                        std::move(d));
  }
  if (admission_.spend_blocked() && attempts_ == 0) {
    return finish_error(
        ErrorKind::BudgetExceeded,
        budget_refusal(trace_, env_.options().state.store.get(), admission_.budget_store_down()),
        std::move(d));
  }
  if (admission_.spend_blocked())
    message += " (some routes skipped: they would exceed the spending budget)";
  finish_error(ErrorKind::AllRoutesUnavailable, std::move(message), std::move(d));
}

void CallMachine::log_attempt(const Attempt& a) const {
  spdlog::logger* log = env_.logger();
  if (!log || !log->should_log(spdlog::level::debug)) return;
  log->debug("attempt {} route={} outcome={} status={} latency_ms={:.3f} next_delay_ms={:.3f}{}{}",
             trace_.size(), route_name(a.route), a.outcome(), a.status,
             std::chrono::duration<double, std::milli>(a.latency).count(),
             std::chrono::duration<double, std::milli>(a.delay).count(),
             a.message.empty() ? "" : " message=", a.message);
}

}  // namespace failover::detail
