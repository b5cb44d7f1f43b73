// failover::Client: every member forwards to the client's core and the parts around it.

#include <failover/client.hpp>

#include "client/controls.hpp"
#include "client/reports.hpp"
#include "core/async_engine.hpp"
#include "core/call_driver.hpp"
#include "core/client_core.hpp"
#include "core/probe.hpp"

namespace failover {

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
  return detail::run_call(*core, request, options, nullptr);
}

Result<ChatResponse> Client::chat_stream(const ChatRequest& request, StreamHandler handler,
                                         const CallOptions& options) {
  if (!handler) return Error(ErrorKind::InvalidRequest, "chat_stream needs a stream handler");
  const std::shared_ptr<detail::ClientCore> core = core_;
  return detail::run_call(*core, request, options, std::move(handler));
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

std::vector<RouteProbe> Client::probe(Duration timeout) {
  return detail::probe_routes(*core_, timeout);
}

HealthSnapshot Client::health() const { return detail::health_of(*core_); }

UsageReport Client::usage_report() const { return detail::usage_of(*core_); }

std::string Client::metrics_text() const { return detail::metrics_text_of(*core_); }

std::optional<ShadowReport> Client::shadow_report() const {
  return detail::shadow_report_of(*core_);
}

bool Client::wait_for_shadow(std::chrono::milliseconds timeout) {
  return core_->wait_for_mirrors(timeout);
}

std::optional<CanaryStatus> Client::canary() const {
  return core_->canary_status(core_->clock().now());
}

bool Client::canary_pause() {
  return detail::steer_canary(*core_, "paused",
                              [](auto& c, TimePoint now) { return c.pause(now); });
}

bool Client::canary_resume() {
  return detail::steer_canary(*core_, "resumed",
                              [](auto& c, TimePoint now) { return c.resume(now); });
}

bool Client::canary_promote() {
  return detail::steer_canary(*core_, "promoted",
                              [](auto& c, TimePoint now) { return c.promote(now); });
}

bool Client::canary_rollback(const std::string& reason) {
  return detail::steer_canary(*core_, "rolled back",
                              [&](auto& c, TimePoint) { return c.rollback(reason); });
}

bool Client::canary_drain() {
  return detail::steer_canary(*core_, "drained", [](auto& c, TimePoint) { return c.drain(); });
}

}  // namespace failover
