#include "core/call.hpp"

#include "policy/classify.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

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
// After [DONE], how long to wait for the server to end the response (so the connection can be
// reused) before abandoning it.
constexpr Duration kDoneGrace = std::chrono::milliseconds(500);
// Less time than this left before the deadline: do not start another attempt.
constexpr Duration kMinAttemptTime = std::chrono::milliseconds(1);

std::string route_name(const RouteRef& r) { return r.endpoint + "/" + r.model; }

std::string format_ms(Duration d) {
  double ms = std::chrono::duration<double, std::milli>(d).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, ms < 10 ? "%.2f ms" : "%.0f ms", ms);
  return buf;
}

}  // namespace

CallMachine::CallMachine(ClientCore& core, const ChatRequest& request, const CallOptions& options,
                         TimePoint now, StreamHandler handler)
    : core_(core),
      options_(options),
      call_start_(now),
      last_now_(now),
      handler_(std::move(handler)) {
  const ClientOptions& o = core_.options();
  Duration total = options_.timeout ? *options_.timeout : o.timeouts.total;
  deadline_ = now + std::max(total, Duration::zero());
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
  if (auto problem = wire::encode_request(request, /*stream=*/handler_ != nullptr, body_)) {
    invalid("invalid request: " + *problem);
    return;
  }

  plan_candidates(now);
  if (candidates_.empty()) {
    invalid("no route serves any model in CallOptions.models");
    return;
  }
  tried_.assign(candidates_.size(), false);
  route_attempts_.assign(candidates_.size(), 0);
  policy_ = o.retry->clone();
  core_.budget().call_started();
  counted_ = true;
}

CallMachine::~CallMachine() {
  close_attempt();
  end_call();
}

void CallMachine::end_call() {
  if (retry_slot_) {
    retry_slot_ = false;
    core_.budget().release();
  }
  if (counted_) {
    counted_ = false;
    core_.budget().call_finished();
  }
}

void CallMachine::note_attempt(RouteState& route, TimePoint now) {
  const Attempt& a = trace_.back();
  route.stats.record(now, a.latency, a.error, a.message);
  core_.budget().on_attempt(a.error);
}

void CallMachine::report_failure(RouteState& route, TimePoint now, ErrorKind kind) {
  if (!panic_attempt_) route.on_failure(now, kind);
}

// When the first untried route can serve again: the end of its open period or cooldown. A
// half-open route whose probe is out has no known time: look again shortly.
std::optional<TimePoint> CallMachine::earliest_recovery(TimePoint now) const {
  std::optional<TimePoint> best;
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    if (tried_[c]) continue;
    const RouteState& route = *core_.routes()[core_.plan()[candidates_[c]].route];
    TimePoint at = now + std::chrono::milliseconds(50);
    if (std::optional<TimePoint> reopen = route.breaker->reopens_at(now)) at = *reopen;
    if (route.cooldown() > now) at = std::max(at, route.cooldown());
    if (!best || at < *best) best = at;
  }
  return best;
}

// Panic: of the untried routes, the one that would come back soonest.
std::optional<std::size_t> CallMachine::least_bad(TimePoint now) const {
  std::optional<std::size_t> pick;
  TimePoint pick_at = TimePoint::max();
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    if (tried_[c]) continue;
    const RouteState& route = *core_.routes()[core_.plan()[candidates_[c]].route];
    TimePoint at = route.breaker->reopens_at(now).value_or(now);
    at = std::max(at, route.cooldown());
    if (at < pick_at) {
      pick = c;
      pick_at = at;
    }
  }
  return pick;
}

void CallMachine::close_attempt() {
  if (!attempt_open_) return;
  attempt_open_ = false;
  if (retry_slot_) {  // the retry this slot was taken for has ended
    retry_slot_ = false;
    core_.budget().release();
  }
  core_.routes()[core_.plan()[candidates_[*current_]].route]->in_flight.fetch_sub(
      1, std::memory_order_relaxed);
}

// Tiers in order; inside each, the tier's balancer orders the routes for this call. With
// CallOptions::models, only routes serving those models remain, by the list's preference.
void CallMachine::plan_candidates(TimePoint now) {
  const auto& plan = core_.plan();
  std::vector<std::size_t> balanced;
  balanced.reserve(plan.size());
  std::vector<RouteView> views;
  std::vector<std::size_t> order;
  BalanceContext context;
  context.user = options_.user;
  context.rng = &core_.rng();
  context.now = now;
  for (const TierState& tier : core_.tiers()) {
    views.clear();
    for (std::size_t i = 0; i < tier.count; ++i) {
      const RouteState& route = *core_.routes()[plan[tier.first + i].route];
      RouteView v;
      v.index = i;
      v.weight = tier.weights[i];
      v.in_flight = route.in_flight.load(std::memory_order_relaxed);
      v.ewma_latency = Duration(route.ewma_latency.load(std::memory_order_relaxed));
      views.push_back(v);
    }
    order.clear();
    tier.balancer->order(views, context, order);
    std::vector<bool> placed(tier.count, false);
    for (std::size_t i : order) {  // a custom balancer's answer is checked, never trusted
      if (i < tier.count && !placed[i]) {
        placed[i] = true;
        balanced.push_back(tier.first + i);
      }
    }
    for (std::size_t i = 0; i < tier.count; ++i) {
      if (!placed[i]) balanced.push_back(tier.first + i);
    }
  }
  if (options_.models.empty()) {
    candidates_ = std::move(balanced);
    return;
  }
  for (const std::string& model : options_.models) {
    for (std::size_t i : balanced) {
      if (core_.routes()[plan[i].route]->ref.model == model &&
          std::find(candidates_.begin(), candidates_.end(), i) == candidates_.end()) {
        candidates_.push_back(i);
      }
    }
  }
}

Result<ChatResponse> CallMachine::take() {
  Result<ChatResponse> out = std::move(*result_);
  return out;
}

Step CallMachine::next(TimePoint now) {
  last_now_ = now;
  Step step;
  if (abandon_ != 0) {
    step.kind = Step::Kind::Abandon;
    step.id = abandon_;
    abandon_ = 0;
    return step;
  }
  switch (state_) {
    case State::Done:
      return step;
    case State::InFlight:
      step.kind = Step::Kind::InFlight;
      step.id = exchange_id_;
      step.until = watchdog();
      return step;
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
    return step;
  }
  if (deadline_ - now < kMinAttemptTime) {
    ErrorDetails d;
    d.attempts = trace_;
    finish_error(ErrorKind::DeadlineExceeded, "the call's deadline passed before the next attempt",
                 std::move(d));
    return step;
  }
  std::optional<std::size_t> pick;
  if (retry_) {
    std::size_t c = *retry_;
    retry_.reset();
    // An explicit retry ignores the rate-limit cooldown (the wait already honoured it) but
    // still asks the breaker.
    if (core_.routes()[core_.plan()[candidates_[c]].route]->try_acquire(now)) pick = c;
  }
  if (!pick) pick = pick_route(now);
  panic_attempt_ = false;
  if (!pick && options_.when_unavailable == WhenUnavailable::WaitForRecovery) {
    std::optional<TimePoint> back = earliest_recovery(now);
    if (back && *back < deadline_) {
      wait_until_ = *back;
      state_ = State::Waiting;
      step.kind = Step::Kind::Wait;
      step.until = wait_until_;
      return step;
    }
  }
  if (!pick && options_.when_unavailable == WhenUnavailable::Panic) {
    pick = least_bad(now);
    panic_attempt_ = pick.has_value();
  }
  if (!pick) {
    finish_exhausted(now);
    return step;
  }
  start_attempt(now, *pick);
  step.kind = Step::Kind::Start;
  step.id = exchange_id_;
  step.request = &request_;
  return step;
}

std::optional<std::size_t> CallMachine::pick_route(TimePoint now) {
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    if (tried_[c]) continue;
    RouteState& route = *core_.routes()[core_.plan()[candidates_[c]].route];
    if (route.cooldown() > now) continue;
    if (!route.try_acquire(now)) continue;
    return c;
  }
  return std::nullopt;
}

bool CallMachine::has_alternative(TimePoint now) const {
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    if (tried_[c]) continue;
    const RouteState& route = *core_.routes()[core_.plan()[candidates_[c]].route];
    if (route.cooldown() > now) continue;
    if (route.breaker->state(now) == BreakerState::Open) continue;
    return true;
  }
  return false;
}

void CallMachine::start_attempt(TimePoint now, std::size_t c) {
  const ClientOptions& o = core_.options();
  const RouteState& route = *core_.routes()[core_.plan()[candidates_[c]].route];
  const ResolvedEndpoint& endpoint = core_.endpoints()[route.endpoint];
  current_ = c;
  tried_[c] = true;
  ++route_attempts_[c];
  ++attempts_;

  if (body_model_ != route.ref.model || body_text_.empty()) {
    body_["model"] = route.ref.model;
    body_text_ = body_.dump();
    body_model_ = route.ref.model;
  }
  request_ = HttpRequest{};
  request_.method = "POST";
  request_.url = endpoint.url;
  request_.headers = endpoint.headers;
  for (const auto& [k, v] : options_.headers) request_.headers.emplace_back(k, v);
  request_.headers.emplace_back("X-Failover-Attempt", std::to_string(attempts_));
  request_.body = body_text_;
  Duration remaining = deadline_ - now;
  clipped_by_deadline_ = remaining < o.timeouts.attempt;
  request_.total_timeout = std::min(o.timeouts.attempt, remaining);
  request_.connect_timeout = std::min(o.timeouts.connect, request_.total_timeout);
  request_.first_byte_timeout = std::min(o.timeouts.first_byte, request_.total_timeout);
  request_.max_response_bytes = o.max_response_bytes;
  request_.ca_bundle = o.ca_bundle;
  request_.stream = handler_ != nullptr;
  if (request_.stream) {
    parser_ = wire::SseParser{};
    accumulated_ = wire::StreamAccumulator{};
    held_.clear();
    done_seen_ = false;
    stream_error_.reset();
    stream_error_message_.clear();
    last_chunk_ = now;
  }

  exchange_id_ = core_.next_exchange_id();
  attempt_start_ = now;
  state_ = State::InFlight;
  core_.routes()[core_.plan()[candidates_[c]].route]->in_flight.fetch_add(
      1, std::memory_order_relaxed);
  attempt_open_ = true;
}

void CallMachine::on_result(TimePoint now, HttpResult result) {
  last_now_ = now;
  if (state_ != State::InFlight || result.id != exchange_id_) return;
  if (handler_ && (committed_ || done_seen_) && result.transport_error) {
    if (done_seen_) return end_stream(now);
    return interrupt(now, *result.transport_error, result.error_message);
  }
  if (handler_ && !result.transport_error && result.status >= 200 && result.status < 300) {
    return end_stream(now);
  }
  if (result.transport_error) {
    AttemptOutcome outcome;
    outcome.kind = *result.transport_error;
    return fail_attempt(now, std::move(outcome), std::move(result.error_message), {}, {});
  }
  if (result.status >= 200 && result.status < 300) {
    ChatResponse response;
    auto failure = wire::decode_response(result.body, response);
    if (!failure) return finish_success(now, std::move(response));
    if (!failure->in_band_error) {
      AttemptOutcome outcome;
      outcome.kind = ErrorKind::Protocol;
      outcome.http_status = result.status;
      return fail_attempt(now, std::move(outcome), std::move(failure->message), {}, {});
    }
    // An error object inside a 2xx: classify it as the error it says it is.
  }
  policy::Classified c =
      policy::classify_http(result.status, result.headers, result.body, core_.clock().wall_now());
  AttemptOutcome outcome;
  outcome.kind = c.kind;
  outcome.http_status = c.status;
  outcome.provider_code = std::move(c.code);
  outcome.retry_after = c.retry_after;
  outcome.should_retry = c.should_retry;
  fail_attempt(now, std::move(outcome), std::move(c.message), std::move(c.type),
               std::move(c.param));
}

void CallMachine::on_stuck(TimePoint now) {
  last_now_ = now;
  if (state_ != State::InFlight) return;
  const Timeouts& t = core_.options().timeouts;
  AttemptOutcome outcome;
  outcome.kind = ErrorKind::Timeout;
  if (handler_ && done_seen_) return end_stream(now);  // [DONE] came; the server lingered
  if (handler_ && committed_) {
    if (now >= deadline_) {
      return interrupt(now, ErrorKind::DeadlineExceeded, "the call's deadline passed mid-stream");
    }
    return interrupt(
        now, ErrorKind::Timeout,
        "no stream chunk within the idle timeout of " + std::to_string(to_millis(t.idle)) + " ms");
  }
  if (handler_ && now < attempt_start_ + request_.total_timeout) {
    return fail_attempt(now, std::move(outcome),
                        "no content within the first-token timeout of " +
                            std::to_string(to_millis(request_.first_byte_timeout)) + " ms",
                        {}, {});
  }
  fail_attempt(now, std::move(outcome), "the exchange did not end within its time limit", {}, {});
}

TimePoint CallMachine::watchdog() const {
  TimePoint hard = attempt_start_ + request_.total_timeout + kStuckGrace;
  if (!handler_) return hard;
  if (done_seen_) return std::min(hard, done_at_ + kDoneGrace);
  TimePoint soft = committed_ ? last_chunk_ + core_.options().timeouts.idle
                              : attempt_start_ + request_.first_byte_timeout;
  return std::min(hard, std::min(soft, deadline_));
}

void CallMachine::on_data(TimePoint now, StreamData data) {
  last_now_ = now;
  if (state_ != State::InFlight || data.id != exchange_id_ || !handler_) return;
  parser_.feed(data.bytes, [&](const wire::SseEvent& e) { on_event(now, e); });
  if (handler_stopped_) {
    abandon_ = exchange_id_;
    close_attempt();
    RouteState& route = *core_.routes()[core_.plan()[candidates_[*current_]].route];
    report_failure(route, now, ErrorKind::Cancelled);
    Attempt a;
    a.route = route.ref;
    a.error = ErrorKind::Cancelled;
    a.status = data.status;
    a.latency = now - attempt_start_;
    a.message = handler_error_.empty() ? "the stream handler asked to stop" : handler_error_;
    trace_.push_back(a);
    note_attempt(route, now);
    log_attempt(trace_.back());
    ErrorDetails d;
    d.http_status = data.status;
    d.attempts = trace_;
    d.partial = partial();
    return finish_error(ErrorKind::Cancelled, a.message, std::move(d));
  }
  if (stream_error_) {
    abandon_ = exchange_id_;
    AttemptOutcome outcome = std::move(*stream_error_);
    stream_error_.reset();
    if (committed_) return interrupt(now, outcome.kind, stream_error_message_);
    outcome.http_status = data.status;
    return fail_attempt(now, std::move(outcome), stream_error_message_, {}, {});
  }
}

void CallMachine::on_event(TimePoint now, const wire::SseEvent& e) {
  if (handler_stopped_ || stream_error_ || done_seen_) return;
  if (e.data == "[DONE]") {
    done_seen_ = true;
    done_at_ = now;
    return;
  }
  ChatChunk chunk;
  auto failure = wire::decode_chunk(e.data, chunk);
  if (failure || e.event == "error") {
    AttemptOutcome outcome;
    if (failure && !failure->in_band_error) {
      outcome.kind = ErrorKind::Protocol;
      stream_error_message_ = failure->message;
    } else {
      policy::Classified c = policy::classify_http(200, {}, e.data, core_.clock().wall_now());
      outcome.kind = c.kind;
      outcome.provider_code = c.code;
      stream_error_message_ = "error event in the stream: " + c.message;
    }
    stream_error_ = std::move(outcome);
    return;
  }
  last_chunk_ = now;
  accumulated_.add(chunk);
  if (!committed_) {
    if (!wire::has_content(chunk)) {
      held_.push_back(std::move(chunk));
      return;
    }
    committed_ = true;
    for (const ChatChunk& h : held_) deliver(h);
    held_.clear();
  }
  deliver(chunk);
}

void CallMachine::deliver(const ChatChunk& chunk) {
  if (handler_stopped_) return;
  try {
    if (!handler_(chunk)) handler_stopped_ = true;
  } catch (const std::exception& e) {
    handler_stopped_ = true;
    handler_error_ = std::string("the stream handler threw: ") + e.what();
  } catch (...) {
    handler_stopped_ = true;
    handler_error_ = "the stream handler threw";
  }
}

void CallMachine::end_stream(TimePoint now) {
  if (done_seen_ || accumulated_.finished()) {
    if (!committed_) {  // an answer with no content at all: hand over what there is
      committed_ = true;
      for (const ChatChunk& h : held_) deliver(h);
      held_.clear();
    }
    return finish_success(now, accumulated_.build());
  }
  const std::string why = "the stream ended without [DONE] or a finish_reason";
  if (committed_) return interrupt(now, ErrorKind::ConnectionLost, why);
  AttemptOutcome outcome;
  outcome.kind = ErrorKind::ConnectionLost;
  fail_attempt(now, std::move(outcome), why + " before any content", {}, {});
}

std::shared_ptr<const ChatResponse> CallMachine::partial() const {
  if (!handler_) return nullptr;
  auto p = std::make_shared<ChatResponse>(accumulated_.build());
  p->served_by = core_.routes()[core_.plan()[candidates_[*current_]].route]->ref;
  p->attempts = trace_;
  return p;
}

void CallMachine::interrupt(TimePoint now, ErrorKind cause, std::string message) {
  close_attempt();
  RouteState& route = *core_.routes()[core_.plan()[candidates_[*current_]].route];
  report_failure(route, now,
                 cause == ErrorKind::DeadlineExceeded ? cause : ErrorKind::StreamInterrupted);
  Attempt a;
  a.route = route.ref;
  a.error = ErrorKind::StreamInterrupted;
  a.status = 200;
  a.latency = now - attempt_start_;
  a.message = std::string(to_string(cause)) + ": " + message;
  trace_.push_back(a);
  note_attempt(route, now);
  log_attempt(trace_.back());
  ErrorDetails d;
  d.http_status = 200;
  d.attempts = trace_;
  d.partial = partial();
  finish_error(
      ErrorKind::StreamInterrupted,
      route_name(route.ref) + ": the stream broke after content was delivered (" + a.message + ")",
      std::move(d));
}

void CallMachine::cancel(TimePoint now, const std::string& why) {
  last_now_ = now;
  if (state_ == State::Done) return;
  if (state_ == State::InFlight) {
    close_attempt();
    RouteState& route = *core_.routes()[core_.plan()[candidates_[*current_]].route];
    report_failure(route, now, ErrorKind::Cancelled);
    Attempt a;
    a.route = route.ref;
    a.error = ErrorKind::Cancelled;
    a.latency = now - attempt_start_;
    a.message = why;
    trace_.push_back(std::move(a));
    note_attempt(route, now);
  }
  ErrorDetails d;
  d.attempts = trace_;
  if (handler_ && current_) d.partial = partial();
  finish_error(ErrorKind::Cancelled, why, std::move(d));
}

void CallMachine::finish_success(TimePoint now, ChatResponse response) {
  close_attempt();
  RouteState& route = *core_.routes()[core_.plan()[candidates_[*current_]].route];
  Duration latency = now - attempt_start_;
  if (!panic_attempt_) route.on_success(now, latency);
  route.record_latency(latency);
  Attempt a;
  a.route = route.ref;
  a.status = 200;
  a.latency = latency;
  trace_.push_back(a);
  note_attempt(route, now);
  log_attempt(trace_.back());
  response.served_by = route.ref;
  response.attempts = std::move(trace_);
  state_ = State::Done;
  end_call();
  core_.stats().record_call("success", now - call_start_);
  result_.emplace(std::move(response));
}

void CallMachine::fail_attempt(TimePoint now, AttemptOutcome outcome, std::string message,
                               std::string provider_type, std::string param) {
  close_attempt();
  const std::size_t c = *current_;
  RouteState& route = *core_.routes()[core_.plan()[candidates_[c]].route];
  outcome.route = route.ref;
  report_failure(route, now, outcome.kind);
  if (outcome.kind == ErrorKind::RateLimited ||
      (outcome.retry_after && outcome.kind == ErrorKind::Overloaded)) {
    Duration rest = outcome.retry_after ? *outcome.retry_after : kDefaultRateLimitCooldown;
    route.cool_down_until(now + std::min(rest, kMaxCooldown));
  }
  Attempt a;
  a.route = route.ref;
  a.error = outcome.kind;
  a.status = outcome.http_status;
  a.latency = now - attempt_start_;
  a.message = message;
  trace_.push_back(std::move(a));
  note_attempt(route, now);
  state_ = State::Planning;

  auto details = [&]() {
    ErrorDetails d;
    d.http_status = outcome.http_status;
    d.provider_code = outcome.provider_code;
    d.provider_type = provider_type;
    d.param = param;
    d.retry_after = outcome.retry_after;
    d.attempts = trace_;
    return d;
  };
  if (options_.cancel.cancelled()) {
    log_attempt(trace_.back());
    return cancel(now, "the call was cancelled");
  }
  if (now >= deadline_ || (outcome.kind == ErrorKind::Timeout && clipped_by_deadline_)) {
    log_attempt(trace_.back());
    return finish_error(ErrorKind::DeadlineExceeded,
                        "the call's deadline passed during an attempt on " + route_name(route.ref),
                        details());
  }

  CallState state;
  state.attempts = attempts_;
  state.route_attempts = route_attempts_[c];
  state.has_alternative = has_alternative(now);
  state.now = now;
  state.deadline = deadline_;
  state.rng = &core_.rng();
  Decision decision = policy_->decide(outcome, state);
  switch (decision.action) {
    case Decision::Action::Retry: {
      Duration delay = std::max(decision.delay, Duration::zero());
      if (now + delay >= deadline_) {  // a custom policy may ask for too much
        log_attempt(trace_.back());
        return finish_exhausted(now);
      }
      if (!core_.budget().try_acquire()) {
        budget_denied_ = true;  // the route is given up, as for Failover
        break;
      }
      retry_slot_ = true;
      trace_.back().delay = delay;
      core_.stats().record_retry();
      retry_ = c;
      wait_until_ = now + delay;
      state_ = delay > Duration::zero() ? State::Waiting : State::Planning;
      break;
    }
    case Decision::Action::Failover:
      if (decision.skip_tier) {
        std::size_t tier = core_.plan()[candidates_[c]].tier;
        for (std::size_t i = 0; i < candidates_.size(); ++i) {
          if (core_.plan()[candidates_[i]].tier == tier) tried_[i] = true;
        }
      }
      break;
    case Decision::Action::Fail:
      log_attempt(trace_.back());
      return finish_error(outcome.kind, route_name(route.ref) + ": " + message, details());
  }
  log_attempt(trace_.back());
}

void CallMachine::finish_error(ErrorKind kind, std::string message, ErrorDetails details) {
  state_ = State::Done;
  end_call();
  core_.stats().record_call(std::string(to_string(kind)), last_now_ - call_start_);
  result_.emplace(Error(kind, message, std::move(details)));
}

void CallMachine::finish_exhausted(TimePoint now) {
  ErrorDetails d;
  std::string message;
  if (!trace_.empty()) {
    const Attempt& last = trace_.back();
    d.http_status = last.status;
    message = "all routes failed after " + std::to_string(trace_.size()) +
              (trace_.size() == 1 ? " attempt" : " attempts") + ":";
    // The last failure of each route, in the order the routes were first tried.
    std::vector<const Attempt*> last_by_route;
    for (const Attempt& a : trace_) {
      auto it = std::find_if(last_by_route.begin(), last_by_route.end(),
                             [&](const Attempt* x) { return x->route == a.route; });
      if (it == last_by_route.end()) {
        last_by_route.push_back(&a);
      } else {
        *it = &a;
      }
    }
    for (const Attempt* a : last_by_route) {
      message += " " + route_name(a->route) + ": " + a->outcome();
      if (a->status) message += " (HTTP " + std::to_string(a->status) + ")";
      if (!a->message.empty()) message += ": " + wire::excerpt(a->message, 160);
      message += ";";
    }
  } else {
    message = "no route is available:";
  }
  std::optional<TimePoint> earliest;
  for (std::size_t c = 0; c < candidates_.size(); ++c) {
    if (tried_[c]) continue;
    const RouteState& route = *core_.routes()[core_.plan()[candidates_[c]].route];
    std::optional<TimePoint> at = route.breaker->reopens_at(now);
    std::string why = "circuit open";
    if (route.cooldown() > now) {
      at = std::max(at.value_or(route.cooldown()), route.cooldown());
      why = "cooling down after a rate limit";
    } else if (!at) {
      why = "circuit half-open with its probe in flight";
    }
    message += " " + route_name(route.ref) + ": " + why;
    if (at) message += " for " + format_ms(*at - now);
    message += ";";
    if (at && (!earliest || *at < *earliest)) earliest = at;
  }
  if (!message.empty() && message.back() == ';') message.pop_back();
  if (budget_denied_) message += " (retries of the same route paused by the client's retry budget)";
  d.available_at = earliest;
  d.attempts = trace_;
  finish_error(ErrorKind::AllRoutesUnavailable, std::move(message), std::move(d));
}

void CallMachine::log_attempt(const Attempt& a) const {
  spdlog::logger* log = core_.logger();
  if (!log || !log->should_log(spdlog::level::debug)) return;
  log->debug("attempt {} route={} outcome={} status={} latency_ms={:.3f} next_delay_ms={:.3f}{}{}",
             trace_.size(), route_name(a.route), a.outcome(), a.status,
             std::chrono::duration<double, std::milli>(a.latency).count(),
             std::chrono::duration<double, std::milli>(a.delay).count(),
             a.message.empty() ? "" : " message=", a.message);
}

}  // namespace failover::detail
