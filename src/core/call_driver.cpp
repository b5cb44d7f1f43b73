#include "core/call_driver.hpp"

#include "core/call.hpp"
#include "core/client_core.hpp"
#include "util/scope_exit.hpp"

namespace failover::detail {

Result<ChatResponse> run_call(ClientCore& core, const ChatRequest& request,
                              const CallOptions& options, StreamHandler handler) {
  Clock& clock = core.clock();
  CallMachine machine(core.call_env(), request, options, clock.now(), std::move(handler));
  if (machine.done()) return machine.take();

  std::unique_ptr<TransportSession> session = core.acquire_session();
  TransportSession* s = session.get();
  std::uint64_t subscription = options.cancel.subscribe([s] { s->wakeup(); });
  // Whatever ends this function, the cancellation source forgets the session before the
  // session goes back to the pool.
  ScopeExit unsubscribe([&] { options.cancel.unsubscribe(subscription); });
  TransportEvents events;
  for (;;) {
    TimePoint now = clock.now();
    Step step = machine.next(now);
    if (step.kind == Step::Kind::Done) break;
    if (step.kind == Step::Kind::Start) {
      s->start(step.id, *step.request);
      continue;
    }
    if (step.kind == Step::Kind::Abandon) {
      s->cancel(step.id);
      continue;
    }
    if (options.cancel.cancelled()) {
      machine.cancel(now, "the call was cancelled");  // its exchanges come back as Abandon
      continue;
    }
    if (step.kind == Step::Kind::InFlight && now >= step.until) {
      machine.on_timer(now);
      continue;
    }
    s->wait(step.until, events);
    now = clock.now();
    for (StreamData& d : events.data) machine.on_data(now, std::move(d));
    for (HttpResult& r : events.completed) machine.on_result(now, std::move(r));
    events.clear();
  }
  unsubscribe.run();
  core.release_session(std::move(session));
  Result<ChatResponse> result = machine.take();
  core.after_call(machine, result);
  return result;
}

}  // namespace failover::detail
