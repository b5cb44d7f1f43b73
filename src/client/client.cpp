#include <failover/client.hpp>

#include "core/async_engine.hpp"
#include "core/call.hpp"
#include "core/probe.hpp"
#include "util/scope_exit.hpp"

#include <map>

namespace failover {

namespace {

Result<ChatResponse> run_on_this_thread(detail::ClientCore& core, const ChatRequest& request,
                                        const CallOptions& options, StreamHandler handler) {
  Clock& clock = core.clock();
  detail::CallMachine machine(core.call_env(), request, options, clock.now(), std::move(handler));
  if (machine.done()) return machine.take();

  std::unique_ptr<TransportSession> session = core.acquire_session();
  TransportSession* s = session.get();
  std::uint64_t subscription = options.cancel.subscribe([s] { s->wakeup(); });
  // Whatever ends this function, the cancellation source forgets the session before the
  // session goes back to the pool.
  detail::ScopeExit unsubscribe([&] { options.cancel.unsubscribe(subscription); });
  TransportEvents events;
  for (;;) {
    TimePoint now = clock.now();
    detail::Step step = machine.next(now);
    if (step.kind == detail::Step::Kind::Done) break;
    if (step.kind == detail::Step::Kind::Start) {
      s->start(step.id, *step.request);
      continue;
    }
    if (step.kind == detail::Step::Kind::Abandon) {
      s->cancel(step.id);
      continue;
    }
    if (options.cancel.cancelled()) {
      machine.cancel(now, "the call was cancelled");  // its exchanges come back as Abandon
      continue;
    }
    if (step.kind == detail::Step::Kind::InFlight && now >= step.until) {
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

}  // namespace

Client::Client(ClientOptions options)
    : core_(std::make_shared<detail::ClientCore>(std::move(options))) {
  // Active probes run on the engine thread: start it now rather than at the first async call.
  if (core_->options().health_probe.interval > Duration::zero()) core_->engine();
}

bool Client::wait_for_released_clients(std::chrono::milliseconds timeout) {
  return detail::wait_for_detached_engines(timeout);
}

Client Client::from_config_file(const std::string& path) { return Client(options_from_file(path)); }

Client::~Client() {
  if (core_) core_->shutdown();
}

Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (core_) core_->shutdown();
    core_ = std::move(other.core_);
  }
  return *this;
}

namespace {

using Done = std::function<void(Result<ChatResponse>)>;

// A completion callback that fulfils a promise, and the promise's future.
std::pair<Done, std::future<Result<ChatResponse>>> promised() {
  auto promise = std::make_shared<std::promise<Result<ChatResponse>>>();
  std::future<Result<ChatResponse>> future = promise->get_future();
  return {[promise](Result<ChatResponse> result) { promise->set_value(std::move(result)); },
          std::move(future)};
}

}  // namespace

// The call holds the core itself: a handler may release the Client while its call runs.
Result<ChatResponse> Client::chat(const ChatRequest& request, const CallOptions& options) {
  const std::shared_ptr<detail::ClientCore> core = core_;
  return run_on_this_thread(*core, request, options, nullptr);
}

Result<ChatResponse> Client::chat_stream(const ChatRequest& request, StreamHandler handler,
                                         const CallOptions& options) {
  if (!handler) return Error(ErrorKind::InvalidRequest, "chat_stream needs a stream handler");
  const std::shared_ptr<detail::ClientCore> core = core_;
  return run_on_this_thread(*core, request, options, std::move(handler));
}

std::vector<RouteProbe> Client::probe(Duration timeout) {
  detail::ClientCore& core = *core_;
  Clock& clock = core.clock();
  struct Probe {
    TimePoint start{};
    std::optional<HttpResult> result;
    TimePoint end{};
  };
  // What the configured probe sends: a model listing per endpoint, or a chat per route.
  const bool models = core.options().health_probe.method == ProbeMethod::Models;
  auto target_of = [&](std::size_t route) {
    return models ? core.routes()[route]->endpoint : route;
  };
  std::map<std::size_t, Probe> by_target;
  std::map<std::uint64_t, std::size_t> by_exchange;
  std::unique_ptr<TransportSession> session = core.acquire_session();
  for (std::size_t i = 0; i < core.routes().size(); ++i) {
    const std::size_t target = target_of(i);
    if (by_target.count(target)) continue;
    std::uint64_t id = core.next_exchange_id();
    by_target[target].start = clock.now();
    by_exchange[id] = target;
    session->start(id, models ? detail::models_probe(core, target, timeout)
                              : detail::chat_probe(core, target, timeout));
  }
  TimePoint deadline = clock.now() + timeout + std::chrono::seconds(1);
  std::size_t pending = by_exchange.size();
  TransportEvents events;
  while (pending > 0 && clock.now() < deadline) {
    session->wait(deadline, events);
    for (HttpResult& r : events.completed) {
      auto it = by_exchange.find(r.id);
      if (it == by_exchange.end()) continue;
      Probe& p = by_target[it->second];
      p.end = clock.now();
      p.result = std::move(r);
      --pending;
    }
    events.clear();
  }
  for (const auto& [id, target] : by_exchange) {
    if (!by_target[target].result) session->cancel(id);
  }
  core.release_session(std::move(session));

  std::vector<RouteProbe> out;
  TimePoint now = clock.now();
  for (std::size_t i = 0; i < core.routes().size(); ++i) {
    const auto& route = core.routes()[i];
    const Probe& p = by_target[target_of(i)];
    RouteProbe rp;
    if (p.result) {
      rp = detail::evaluate_probe(core, i, *p.result, p.end - p.start, models);
    } else {
      rp.route = route->ref;
      rp.error = ErrorKind::Timeout;
      rp.message = "no answer within the probe timeout";
      rp.latency = timeout;
    }
    rp.state = route->reported_state(now);
    out.push_back(std::move(rp));
  }
  return out;
}

void Client::chat_async(ChatRequest request, CallOptions options, Done done) {
  core_->engine().submit(std::move(request), std::move(options), nullptr, std::move(done));
}

std::future<Result<ChatResponse>> Client::chat_async(ChatRequest request, CallOptions options) {
  auto [done, future] = promised();
  chat_async(std::move(request), std::move(options), std::move(done));
  return std::move(future);
}

void Client::chat_stream_async(ChatRequest request, StreamHandler handler, CallOptions options,
                               Done done) {
  if (!handler) {
    done(Error(ErrorKind::InvalidRequest, "chat_stream_async needs a stream handler"));
    return;
  }
  core_->engine().submit(std::move(request), std::move(options), std::move(handler),
                         std::move(done));
}

std::future<Result<ChatResponse>> Client::chat_stream_async(ChatRequest request,
                                                            StreamHandler handler,
                                                            CallOptions options) {
  auto [done, future] = promised();
  chat_stream_async(std::move(request), std::move(handler), std::move(options), std::move(done));
  return std::move(future);
}

}  // namespace failover
