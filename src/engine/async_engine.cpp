#include "engine/async_engine.hpp"

#include <spdlog/spdlog.h>

namespace failover::detail {

AsyncEngine::AsyncEngine(ClientCore& core)
    : core_(core), session_(core.options().transport->open_session()) {
  thread_ = std::thread([this] { run(); });
}

AsyncEngine::~AsyncEngine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  session_->wakeup();
  thread_.join();
}

void AsyncEngine::submit(ChatRequest request, CallOptions options, StreamHandler handler,
                         Callback done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      incoming_.push_back(
          Submission{std::move(request), std::move(options), std::move(handler), std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(Error(ErrorKind::Cancelled, "the client is shutting down"));
    return;
  }
  session_->wakeup();
}

void AsyncEngine::run() {
  TransportEvents events;
  for (;;) {
    std::vector<Submission> incoming;
    std::vector<std::uint64_t> cancels;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      incoming.swap(incoming_);
      cancels.swap(cancel_requests_);
      stopping = stopping_;
    }
    if (stopping) {
      TimePoint now = core_.clock().now();
      for (auto it = calls_.begin(); it != calls_.end();) {
        auto next = std::next(it);
        if (std::uint64_t ex = it->second.machine->in_flight()) session_->cancel(ex);
        it->second.machine->cancel(now, "the client is shutting down");
        complete(it);
        it = next;
      }
      for (Submission& s : incoming) {
        s.done(Error(ErrorKind::Cancelled, "the client is shutting down"));
      }
      return;
    }
    for (Submission& s : incoming) admit(std::move(s));
    for (std::uint64_t id : cancels) {
      auto it = calls_.find(id);
      if (it == calls_.end()) continue;
      if (std::uint64_t ex = it->second.machine->in_flight()) {
        session_->cancel(ex);
        exchanges_.erase(ex);
      }
      it->second.machine->cancel(core_.clock().now(), "the call was cancelled");
      complete(it);
    }
    TimePoint now = core_.clock().now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto [at, id] = *timers_.begin();
      timers_.erase(timers_.begin());
      auto it = calls_.find(id);
      if (it == calls_.end() || it->second.timer != at) continue;  // stale
      it->second.timer = TimePoint::max();
      drive(id);
    }
    TimePoint until = timers_.empty() ? TimePoint::max() : timers_.begin()->first;
    session_->wait(until, events);
    now = core_.clock().now();
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
      auto ex = exchanges_.find(r.id);
      if (ex == exchanges_.end()) continue;
      std::uint64_t call_id = ex->second;
      exchanges_.erase(ex);
      auto it = calls_.find(call_id);
      if (it == calls_.end()) continue;
      it->second.machine->on_result(now, std::move(r));
      drive(call_id);
    }
    events.clear();
  }
}

void AsyncEngine::admit(Submission s) {
  std::uint64_t id = next_call_id_++;
  Call call;
  call.id = id;
  call.machine = std::make_unique<CallMachine>(core_, s.request, s.options, core_.clock().now(),
                                               std::move(s.handler));
  call.options = std::move(s.options);
  call.done = std::move(s.done);
  auto [it, inserted] = calls_.emplace(id, std::move(call));
  (void)inserted;
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
  for (;;) {
    TimePoint now = core_.clock().now();
    Step step = m.next(now);
    switch (step.kind) {
      case Step::Kind::Start:
        exchanges_[step.id] = call_id;
        session_->start(step.id, std::move(*step.request));
        continue;
      case Step::Kind::Abandon:
        session_->cancel(step.id);
        exchanges_.erase(step.id);
        continue;
      case Step::Kind::InFlight:
        if (now >= step.until) {
          session_->cancel(step.id);
          exchanges_.erase(step.id);
          m.on_stuck(now);
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
  call.timer = until;  // an earlier entry for this call becomes stale and is skipped
  timers_.emplace(until, call.id);
}

void AsyncEngine::complete(std::unordered_map<std::uint64_t, Call>::iterator it) {
  Call call = std::move(it->second);
  calls_.erase(it);
  if (call.subscription) call.options.cancel.unsubscribe(call.subscription);
  // Its timer entries are dropped lazily: run() skips ids it no longer knows.
  try {
    call.done(call.machine->take());
  } catch (const std::exception& e) {
    if (auto* log = core_.logger()) log->error("a chat_async callback threw: {}", e.what());
  } catch (...) {
    if (auto* log = core_.logger()) log->error("a chat_async callback threw");
  }
}

}  // namespace failover::detail
