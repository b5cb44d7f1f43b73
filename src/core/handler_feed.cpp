#include "core/handler_feed.hpp"

#include "core/user_code.hpp"
#include "wire/stream.hpp"

namespace failover::detail {

void HandlerFeed::show(AttemptStream& s, ChatChunk chunk) {
  if (!committed_) {
    if (!wire::has_content(chunk)) return s.hold(std::move(chunk));
    commit(s);
  }
  deliver(s, chunk);
}

void HandlerFeed::commit(AttemptStream& s) {
  committed_ = true;
  if (s.notice_due) {  // a recovery restarts the answer: what the handler shows goes first
    s.notice_due = false;
    ChatChunk notice;
    notice.restart = true;
    deliver(s, notice);
  }
  for (const ChatChunk& h : s.held) deliver(s, h);
  s.held.clear();
}

void HandlerFeed::deliver(AttemptStream& s, const ChatChunk& chunk) {
  if (stopped_) return;
  s.count_delivered(chunk);
  try {
    if (!invoke_user("the stream handler", [&] { return handler_(chunk); })) stopped_ = true;
  } catch (const HookError& e) {  // raised once the parser is done with this piece
    stopped_ = true;
    error_ = e.what();
  }
}

void HandlerFeed::rethrow() const {
  if (!error_.empty()) throw HookError(error_);
}

}  // namespace failover::detail
