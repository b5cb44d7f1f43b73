#include "core/call_ending.hpp"

#include "core/call_env.hpp"
#include "core/call_report.hpp"
#include "core/user_code.hpp"

namespace failover::detail {

void CallEnding::served(TimePoint now, const Flight& f, ChatResponse&& response) {
  // First: it asks the breakers (application code), whose HookError ends the call as failed,
  // its trace intact.
  response.skipped = candidates_.skipped(now);
  recovery_.served(env_.stats(), f.continuation);
  response.served_by = f.route->ref;
  response.attempts = trace_.take();
  if (!mirror_) env_.stats().record_call("success", now - start_);
  result_.emplace(std::move(response));
}

void CallEnding::failed(TimePoint now, ErrorKind kind, std::string message, ErrorDetails details) {
  if (details.skipped.empty()) {  // first, as in `served`
    try {
      details.skipped = candidates_.skipped(now);
    } catch (const HookError&) {
      // A call already failing in application code does not fail again: the list stays empty.
      if (kind != ErrorKind::HookFailed) throw;
    }
  }
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
  if (!mirror_) env_.stats().record_call(to_string(kind), now - start_);
  result_.emplace(Error(kind, message, std::move(details)));
}

void CallEnding::broke(TimePoint now, std::string why, std::shared_ptr<const ChatResponse> shown) {
  recovery_.failed(env_.stats(), /*forget=*/true);
  ErrorDetails d;
  d.http_status = 200;
  d.attempts = trace_.all();
  d.partial = std::move(shown);
  failed(now, ErrorKind::StreamInterrupted, std::move(why), std::move(d));
}

void CallEnding::exhausted(TimePoint now, const RequestWriter& writer, bool sent, bool paused,
                           bool spent) {
  ErrorDetails d;
  d.attempts = trace_.all();
  if (candidates_.untranslatable(writer)) {
    return failed(now, ErrorKind::InvalidRequest, untranslatable_message(trace_.all()),
                  std::move(d));
  }
  Exhaustion x = candidates_.exhaustion(now);
  x.trace = &trace_.all();
  x.sent = sent;
  if (sent) d.http_status = trace_.last().status;  // entries passed over are not sent
  x.retries_paused = paused;
  x.attempts_spent = spent;
  ExhaustedError error = exhausted_error(x);
  d.available_at = error.available_at;
  failed(now, error.kind, std::move(error.message), std::move(d));
}

std::shared_ptr<const ChatResponse> CallEnding::partial(const AttemptStream* s,
                                                        std::optional<std::size_t> current) const {
  if (!feed_ || !current) return nullptr;
  if (recovery_.active() && !feed_.committed())
    return recovery_.shown();  // still on the handler's screen
  if (!s) return nullptr;
  auto p = std::make_shared<ChatResponse>(s->accumulated.build());
  p->served_by = candidates_.route(*current).ref;
  p->attempts = trace_.all();
  return p;
}

}  // namespace failover::detail
