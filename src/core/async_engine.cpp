#include "core/async_engine.hpp"

#include "core/probe.hpp"
#include "core/user_code.hpp"
#include "policy/retry_budget.hpp"

#include <spdlog/spdlog.h>

#include <set>

namespace failover::detail {

namespace {
// Engine threads whose engine was destroyed on them (their client released in a callback), and
// so detached, until they end. Never destroyed: such a thread may outlive main().
struct Detached {
  std::mutex mutex;
  std::condition_variable ended;
  int running = 0;
};
Detached& detached() {
  static auto* d = new Detached;
  return *d;
}
thread_local bool t_detached = false;  // this engine thread was detached
}  // namespace

bool wait_for_detached_engines(std::chrono::milliseconds timeout) {
  Detached& d = detached();
  std::unique_lock<std::mutex> lock(d.mutex);
  return d.ended.wait_for(lock, timeout, [&] { return d.running == 0; });
}

AsyncEngine::AsyncEngine(ClientCore& core, std::shared_ptr<ClientCore> keep_alive)
    : core_(core), session_(core.options().transport->open_session()) {
  std::lock_guard<std::mutex> lock(mutex_);  // the thread reads `thread_id_` after taking it
  thread_ = std::thread([this, keep = std::move(keep_alive)]() mutable {
    run();
    // When the client was released on this thread, this is the core's last owner: the core
    // and this engine are destroyed here, and the destructor detaches instead of joining.
    keep.reset();
    if (t_detached) {  // nothing of the engine is left: only the count
      Detached& d = detached();
      std::lock_guard<std::mutex> count(d.mutex);
      --d.running;
      d.ended.notify_all();
    }
  });
  thread_id_ = thread_.get_id();
}

AsyncEngine::~AsyncEngine() {
  stop();
  if (!thread_.joinable()) return;  // joined already
  if (on_engine_thread()) {
    thread_.detach();  // the thread's last act: it touches nothing of this engine after
  } else {
    thread_.join();
  }
}

void AsyncEngine::stop_from_callback() {
  if (!t_detached) {  // counted once, before the callback that released the client returns
    t_detached = true;
    std::lock_guard<std::mutex> lock(detached().mutex);
    ++detached().running;
  }
  stop();
}

void AsyncEngine::join() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void AsyncEngine::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  session_->wakeup();
}

void AsyncEngine::submit(ChatRequest request, CallOptions options, StreamHandler handler,
                         Callback done, bool mirror) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      incoming_.push_back(Submission{std::move(request), std::move(options), std::move(handler),
                                     std::move(done), mirror});
      done = nullptr;
    }
  }
  if (done) {
    deliver(done, Error(ErrorKind::Cancelled, "the client is shutting down"));
    return;
  }
  // From a callback on the engine thread the loop looks at the queue again before it waits
  // (see run): a wake-up there would only cost a system call and an extra turn.
  if (!on_engine_thread()) session_->wakeup();
}

void AsyncEngine::deliver(Callback& done, Result<ChatResponse> result) {
  if (!done) return;  // no callback: the application asked for nothing back
  try {
    done(std::move(result));
  } catch (const std::exception& e) {
    if (auto* log = core_.logger()) log->error("a chat_async callback threw: {}", e.what());
  } catch (...) {
    if (auto* log = core_.logger()) log->error("a chat_async callback threw");
  }
}

TimePoint AsyncEngine::after_interval(TimePoint from) {
  const HealthProbeOptions& p = core_.options().health_probe;
  double u = core_.rng().uniform() * 2.0 - 1.0;
  auto wait = std::chrono::duration_cast<Duration>(p.interval * (1.0 + p.jitter * u));
  return from + std::max(wait, Duration(std::chrono::milliseconds(1)));
}

void AsyncEngine::plan_probes(TimePoint now) {
  const HealthProbeOptions& p = core_.options().health_probe;
  if (p.interval <= Duration::zero()) return;
  std::set<std::size_t> endpoints;
  for (std::size_t i = 0; i < core_.routes().size(); ++i) {
    ProbeTarget t;
    t.route = i;
    t.endpoint = core_.routes()[i]->endpoint;
    t.models = p.method == ProbeMethod::Models;
    if (t.models && !endpoints.insert(t.endpoint).second) continue;  // one per endpoint
    // The first round is spread over one interval so targets do not probe in lockstep.
    t.due = now + std::chrono::duration_cast<Duration>(p.interval * core_.rng().uniform());
    probes_.push_back(t);
  }
}

TimePoint AsyncEngine::next_probe_due() const {
  TimePoint due = TimePoint::max();
  for (const ProbeTarget& t : probes_) {
    if (t.exchange == 0) due = std::min(due, t.due);
  }
  return due;
}

void AsyncEngine::start_due_probes(TimePoint now) {
  const HealthProbeOptions& p = core_.options().health_probe;
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    ProbeTarget& t = probes_[i];
    if (t.exchange != 0 || t.due > now) continue;
    t.exchange = core_.next_exchange_id();
    t.started = now;
    probe_exchanges_[t.exchange] = i;
    session_->start(t.exchange, t.models ? models_probe(core_, t.endpoint, p.timeout)
                                         : chat_probe(core_, t.route, p.timeout));
  }
}

// A passing probe closes a half-open breaker (taking its probe slot); a transient failure
// counts against a breaker that is not open. Probes do not enter the traffic statistics.
void AsyncEngine::finish_probe(TimePoint now, std::size_t index, const HttpResult& result) {
  ProbeTarget& t = probes_[index];
  const Duration latency = now - t.started;
  t.exchange = 0;
  t.due = after_interval(now);
  for (std::size_t i = 0; i < core_.routes().size(); ++i) {
    RouteState& route = *core_.routes()[i];
    if (t.models ? route.endpoint != t.endpoint : i != t.route) continue;
    RouteProbe rp = evaluate_probe(core_, i, result, latency, t.models);
    route.record_probe(
        now, rp.ok,
        rp.message.empty() && rp.error ? std::string(to_string(*rp.error)) : rp.message);
    try {
      BreakerState state = route.breaker_state(now);
      if (rp.ok && state == BreakerState::Open) {
        // The route answers again: end the open period.
        invoke_user(route.hook_name, [&] { route.breaker->on_probe_success(now); });
        route.observe_breaker(now);
      } else if (rp.ok && state == BreakerState::HalfOpen) {
        if (route.try_acquire(now)) route.on_success(now, latency);
      } else if (!rp.ok && rp.error && is_transient(*rp.error) &&
                 *rp.error != ErrorKind::RateLimited && state != BreakerState::Open) {
        if (route.try_acquire(now)) route.on_failure(now, *rp.error);
      }
    } catch (const HookError& e) {
      if (auto* log = core_.logger()) log->error("a health probe's result was lost: {}", e.what());
    }
    if (auto* log = core_.logger(); log && log->should_log(spdlog::level::debug)) {
      log->debug("probe route={}/{} ok={} status={} latency_ms={:.3f}", route.ref.endpoint,
                 route.ref.model, rp.ok, rp.status,
                 std::chrono::duration<double, std::milli>(latency).count());
    }
  }
}

void AsyncEngine::run() {
  TransportEvents events;
  std::vector<Submission> incoming;
  std::vector<std::uint64_t> cancels;
  plan_probes(core_.clock().now());
  for (;;) {
    // Both buffers keep their capacity across turns: swapped with the queues, then cleared.
    incoming.clear();
    cancels.clear();
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      incoming.swap(incoming_);
      cancels.swap(cancel_requests_);
      stopping = stopping_;
    }
    if (stopping) return cancel_all(incoming);
    for (Submission& s : incoming) admit(s);
    for (std::uint64_t id : cancels) {
      auto it = calls_.find(id);
      if (it == calls_.end()) continue;
      it->second.machine->cancel(core_.clock().now(), "the call was cancelled");
      drive(id);  // abandons its exchanges and completes it
    }
    TimePoint now = core_.clock().now();
    fire_timers(now);
    start_due_probes(now);
    TimePoint until = timers_.empty() ? TimePoint::max() : timers_.begin()->first;
    until = std::min(until, next_probe_due());
    {
      // A callback or handler run above may have submitted a call or stopped the engine, which
      // skips the wake-up on this thread: then the wait only collects what is ready.
      std::lock_guard<std::mutex> lock(mutex_);
      if (!incoming_.empty() || !cancel_requests_.empty() || stopping_) until = now;
    }
    session_->wait(until, events);
    hand_over(core_.clock().now(), events);
    events.clear();
  }
}

// Shutting down: every call in flight or waiting to be admitted ends as cancelled.
void AsyncEngine::cancel_all(std::vector<Submission>& incoming) {
  TimePoint now = core_.clock().now();
  std::vector<std::uint64_t> ids;
  for (const auto& [id, call] : calls_) ids.push_back(id);
  for (std::uint64_t id : ids) {
    calls_.at(id).machine->cancel(now, "the client is shutting down");
    drive(id);  // abandons its exchanges and completes it
  }
  for (Submission& s : incoming) {
    deliver(s.done, Error(ErrorKind::Cancelled, "the client is shutting down"));
  }
}

// The calls whose timer is due at `now`. Each call has at most one entry (arm and complete
// erase the one it replaces), so the map holds no stale entries, however often a stream
// re-arms its idle watchdog.
void AsyncEngine::fire_timers(TimePoint now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    const std::uint64_t id = timers_.begin()->second;
    timer_nodes_.erase(timers_, timers_.begin());
    auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    it->second.timer = TimePoint::max();
    drive(id);
  }
}

// What a wait brought, to the calls and probes it belongs to.
void AsyncEngine::hand_over(TimePoint now, TransportEvents& events) {
  for (StreamData& d : events.data) {
    auto ex = exchanges_.find(d.id);
    if (ex == exchanges_.end()) continue;
    std::uint64_t call_id = ex->second;
    auto it = calls_.find(call_id);
    if (it == calls_.end()) continue;
    it->second.machine->on_data(now, std::move(d));
    drive(call_id);
  }
  for (HttpResult& r : events.completed) {
    if (auto probe = probe_exchanges_.find(r.id); probe != probe_exchanges_.end()) {
      std::size_t index = probe->second;
      probe_exchanges_.erase(probe);
      finish_probe(now, index, r);
      continue;
    }
    auto ex = exchanges_.find(r.id);
    if (ex == exchanges_.end()) continue;
    std::uint64_t call_id = ex->second;
    exchange_nodes_.erase(exchanges_, ex);
    auto it = calls_.find(call_id);
    if (it == calls_.end()) continue;
    it->second.machine->on_result(now, std::move(r));
    drive(call_id);
  }
}

void AsyncEngine::admit(Submission& s) {
  std::uint64_t id = next_call_id_++;
  Calls::iterator it = call_nodes_.acquire(calls_, id);  // a finished call's node, emptied
  Call& call = it->second;
  call.id = id;
  call.machine.emplace(core_.call_env(), s.request, s.options, core_.clock().now(),
                       std::move(s.handler), s.mirror);
  call.options = std::move(s.options);
  call.done = std::move(s.done);
  if (it->second.options.cancel.can_be_cancelled()) {
    it->second.subscription = it->second.options.cancel.subscribe([this, id] {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        cancel_requests_.push_back(id);
      }
      session_->wakeup();
    });
  }
  drive(id);
}

void AsyncEngine::drive(std::uint64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  CallMachine& m = *it->second.machine;
  // One reading of the clock for the whole drive: its steps follow each other at once (as
  // they do on a manual clock), and each reading costs as much as a small step.
  const TimePoint now = core_.clock().now();
  for (;;) {
    Step step = m.next(now);
    switch (step.kind) {
      case Step::Kind::Start:
        exchange_nodes_.insert(exchanges_, step.id, call_id);
        session_->start(step.id, *step.request);
        continue;
      case Step::Kind::Abandon:
        session_->cancel(step.id);
        if (auto ex = exchanges_.find(step.id); ex != exchanges_.end()) {
          exchange_nodes_.erase(exchanges_, ex);
        }
        continue;
      case Step::Kind::InFlight:
        if (now >= step.until) {
          m.on_timer(now);
          continue;
        }
        arm(it->second, step.until);
        return;
      case Step::Kind::Wait:
        arm(it->second, step.until);
        return;
      case Step::Kind::Done:
        complete(it);
        return;
    }
  }
}

void AsyncEngine::arm(Call& call, TimePoint until) {
  if (call.timer == until) return;
  if (call.timer != TimePoint::max()) timer_nodes_.erase(timers_, call.timer_entry);
  call.timer = until;
  call.timer_entry = timer_nodes_.insert(timers_, until, call.id);
}

void AsyncEngine::complete(Calls::iterator it) {
  Call& call = it->second;
  if (call.subscription) call.options.cancel.unsubscribe(call.subscription);
  if (call.timer != TimePoint::max()) timer_nodes_.erase(timers_, call.timer_entry);
  Result<ChatResponse> result = call.machine->take();
  core_.after_call(*call.machine, result);  // before `done`: a waiter then sees the mirror queued
  Callback done = std::move(call.done);
  // The node is emptied and kept before `done` runs, so that a call the callback submits can
  // reuse it.
  call.machine.reset();
  call.options = CallOptions{};
  call.done = nullptr;
  call.subscription = 0;
  call.timer = TimePoint::max();
  call_nodes_.erase(calls_, it);
  deliver(done, std::move(result));
}

}  // namespace failover::detail
