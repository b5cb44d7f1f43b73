#include <failover/client.hpp>

#include "core/call.hpp"
#include "engine/async_engine.hpp"

namespace failover {

namespace {

Result<ChatResponse> run_on_this_thread(detail::ClientCore& core, const ChatRequest& request,
                                        const CallOptions& options) {
  Clock& clock = core.clock();
  detail::CallMachine machine(core, request, options, clock.now());
  if (machine.done()) return machine.take();

  std::unique_ptr<TransportSession> session = core.acquire_session();
  TransportSession* s = session.get();
  std::uint64_t subscription = options.cancel.subscribe([s] { s->wakeup(); });
  std::vector<HttpResult> completed;
  for (;;) {
    TimePoint now = clock.now();
    detail::Step step = machine.next(now);
    if (step.kind == detail::Step::Kind::Done) break;
    if (step.kind == detail::Step::Kind::Start) {
      s->start(step.id, std::move(*step.request));
      continue;
    }
    if (options.cancel.cancelled()) {
      if (std::uint64_t id = machine.in_flight()) s->cancel(id);
      machine.cancel(now, "the call was cancelled");
      break;
    }
    if (step.kind == detail::Step::Kind::InFlight && now >= step.until) {
      s->cancel(step.id);
      machine.on_stuck(now);
      continue;
    }
    s->wait(step.until, completed);
    now = clock.now();
    for (HttpResult& r : completed) machine.on_result(now, std::move(r));
    completed.clear();
  }
  options.cancel.unsubscribe(subscription);
  core.release_session(std::move(session));
  return machine.take();
}

}  // namespace

Client::Client(ClientOptions options)
    : core_(std::make_shared<detail::ClientCore>(std::move(options))) {}

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

Result<ChatResponse> Client::chat(const ChatRequest& request, const CallOptions& options) {
  return run_on_this_thread(*core_, request, options);
}

void Client::chat_async(ChatRequest request, CallOptions options,
                        std::function<void(Result<ChatResponse>)> done) {
  core_->engine().submit(std::move(request), std::move(options), std::move(done));
}

std::future<Result<ChatResponse>> Client::chat_async(ChatRequest request, CallOptions options) {
  auto promise = std::make_shared<std::promise<Result<ChatResponse>>>();
  std::future<Result<ChatResponse>> future = promise->get_future();
  chat_async(std::move(request), std::move(options),
             [promise](Result<ChatResponse> result) { promise->set_value(std::move(result)); });
  return future;
}

}  // namespace failover
