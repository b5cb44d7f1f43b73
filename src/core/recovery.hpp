#pragma once

// Stream recovery (see StreamRecovery): once a stream broke after content reached the handler
// and the call went on to recover it, what the handler was shown, what the call reports if no
// recovery serves, and how each recovering attempt picks the answer up: restarting it, or
// continuing it from what was shown, sent as an assistant prefix.

#include "core/flight.hpp"
#include "core/request_writer.hpp"

#include <failover/chat.hpp>
#include <failover/options.hpp>

#include <memory>
#include <string>

namespace failover::detail {

class ClientStats;

class Recovery {
 public:
  /** `mode` for the call. With Continue, `keep` keeps `request` to add a prefix to (some
   *  endpoint can continue an answer). */
  Recovery(StreamRecovery mode, const ChatRequest& request, bool keep);

  StreamRecovery mode() const { return mode_; }
  /** A broken stream is being recovered. */
  bool active() const { return interruption_ != nullptr; }
  /** What the handler was shown when the stream broke; only while active. */
  const std::shared_ptr<const ChatResponse>& shown() const { return interruption_->shown; }

  /** The stream broke after content: `why` says so, `shown` is what the handler was shown.
   *  With Continue, prepares the body that continues it in Chat Completions. */
  void begin(std::string why, std::shared_ptr<const ChatResponse> shown, RequestWriter& writer);
  /** An attempt that recovers starts: whether it continues the answer (else it restarts it).
   *  `can_continue`: it is streamed to an endpoint that continues, which did not refuse the
   *  prefix; `body` is its translated body's index, or -1. For a translated body, `seam` gets
   *  the prefix's end its dialect trimmed off. */
  bool start_attempt(bool can_continue, int body, RequestWriter& writer, std::string& seam);
  /** Attempt `f` recovers the broken stream (see start_attempt): a stream of it restarts the
   *  answer after a notice, or continues it from what was shown, its seam not shown twice. */
  void start(Flight& f, bool can_continue, int body, RequestWriter& writer);

  /** The call was served by an attempt that `continued` the answer, or restarted it. */
  void served(ClientStats& stats, bool continued) const;
  /** The call ends without a recovery that served: counted, and forgotten with `forget`. */
  void failed(ClientStats& stats, bool forget);
  /** The message of a call that ends with `message` while recovering: the break first. */
  std::string message(const std::string& message) const;

 private:
  struct Interruption {
    std::string message;                        // the break
    std::shared_ptr<const ChatResponse> shown;  // what the handler was shown
    bool continuable = false;                   // `shown` can be sent as a prefix to continue
    bool continued = false;                     // the latest recovery attempt continued it
    int attempts = 0;                           // recovery attempts started
  };
  StreamRecovery mode_;
  std::unique_ptr<Interruption> interruption_;  // rare: not inline
  std::unique_ptr<ChatRequest> request_;        // with Continue: the request, to add a prefix to
};

}  // namespace failover::detail
