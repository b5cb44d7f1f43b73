#include "core/recovery.hpp"

#include "core/client_core.hpp"

namespace failover::detail {

Recovery::Recovery(StreamRecovery mode, const ChatRequest& request, bool keep) : mode_(mode) {
  if (keep && mode_ == StreamRecovery::Continue) request_ = std::make_unique<ChatRequest>(request);
}

void Recovery::begin(std::string why, std::shared_ptr<const ChatResponse> shown,
                     RequestWriter& writer) {
  if (!interruption_) interruption_ = std::make_unique<Interruption>();
  Interruption& i = *interruption_;
  i.message = std::move(why);
  i.shown = std::move(shown);
  i.continued = false;
  i.continuable = false;
  if (mode_ != StreamRecovery::Continue) return;
  // What the handler was shown can be sent as an assistant prefix: one choice of plain text.
  if (!request_ || i.shown->choices.size() != 1) return;
  const Message& m = i.shown->choices[0].message;
  if (!m.tool_calls.empty() || m.refusal || !m.content || m.content->empty()) return;
  request_->messages.push_back(Message::assistant(*m.content));
  i.continuable = writer.continue_with(*request_);
  request_->messages.pop_back();
}

bool Recovery::start_attempt(bool can_continue, int body, RequestWriter& writer,
                             std::string& seam) {
  Interruption& i = *interruption_;
  bool continues = can_continue && i.continuable;
  if (continues && body >= 0) {  // the prefix in the route's API
    std::optional<std::string> trimmed =
        writer.continue_translated(body, *request_, i.shown->text());
    continues = trimmed.has_value();
    if (trimmed) seam = std::move(*trimmed);
  }
  i.continued = continues;
  ++i.attempts;
  return continues;
}

void Recovery::start(Flight& f, bool can_continue, int body, RequestWriter& writer) {
  f.recovery = true;
  std::string seam;
  f.continuation = start_attempt(can_continue && f.wire, body, writer, seam);
  if (!f.wire) return;  // sent whole: its stream is made at its end, with the notice due
  f.wire->notice_due = !f.continuation;
  f.wire->seam = std::move(seam);
  if (f.continuation) f.wire->seed(*shown());  // the answer goes on from what was shown
}

void Recovery::served(ClientStats& stats, bool continued) const {
  if (interruption_) stats.record_recovery(continued, true);
}

void Recovery::failed(ClientStats& stats, bool forget) {
  if (interruption_) stats.record_recovery(interruption_->continued, false);
  if (forget) interruption_.reset();
}

std::string Recovery::message(const std::string& message) const {
  if (interruption_->attempts == 0) return interruption_->message;
  return interruption_->message + "; recovering by " +
         (mode_ == StreamRecovery::Continue ? "continue" : "restart") +
         " did not succeed: " + message;
}

}  // namespace failover::detail
