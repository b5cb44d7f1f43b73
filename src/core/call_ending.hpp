#pragma once

// How a call ends: its result, with what it reports of itself (the route that served it, its
// trace, the routes passed over, what the stream handler was shown, the break a recovery did
// not mend, why no route served), and its place in the client's call statistics.

#include "core/call_trace.hpp"
#include "core/candidates.hpp"
#include "core/flight.hpp"
#include "core/handler_feed.hpp"
#include "core/recovery.hpp"
#include "core/request_writer.hpp"

#include <failover/chat.hpp>
#include <failover/error.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace failover::detail {

class CallEnv;

class CallEnding {
 public:
  /** A call started at `start`; a `mirror` stays out of the call statistics. */
  CallEnding(const CallEnv& env, const Candidates& candidates, CallTrace& trace, Recovery& recovery,
             const HandlerFeed& feed, bool mirror, TimePoint start)
      : env_(env),
        candidates_(candidates),
        trace_(trace),
        recovery_(recovery),
        feed_(feed),
        mirror_(mirror),
        start_(start) {}

  /** When the call started. */
  TimePoint started() const { return start_; }
  bool done() const { return result_.has_value(); }
  /** The result; only when `done()`. */
  Result<ChatResponse> take() { return std::move(*result_); }

  /** Attempt `f` served `response` at `now`. */
  void served(TimePoint now, const Flight& f, ChatResponse&& response);
  /** The call fails at `now`. While a recovery is active the error is the break it did not
   *  mend, with what the handler was shown (but for a cancelled call or a failed hook). */
  void failed(TimePoint now, ErrorKind kind, std::string message, ErrorDetails details);
  /** The call ends at `now` with the break of a stream after content reached the handler:
   *  `why`, and what the handler was `shown`; no recovery is tried. */
  void broke(TimePoint now, std::string why, std::shared_ptr<const ChatResponse> shown);
  /** No route served at `now` (see exhausted_error): `sent` some attempt, the retry budget
   *  `paused` a retry, the retry policy `spent` the attempts. InvalidRequest when no route's API
   *  can express the request (`writer` translated it for none). */
  void exhausted(TimePoint now, const RequestWriter& writer, bool sent, bool paused, bool spent);

  /** What the stream handler was shown, for an error's details: `s` is the latest attempt's
   *  stream, on candidate `current`. */
  std::shared_ptr<const ChatResponse> partial(const AttemptStream* s,
                                              std::optional<std::size_t> current) const;

 private:
  const CallEnv& env_;
  const Candidates& candidates_;
  CallTrace& trace_;
  Recovery& recovery_;
  const HandlerFeed& feed_;
  bool mirror_ = false;
  TimePoint start_{};
  std::optional<Result<ChatResponse>> result_;
};

}  // namespace failover::detail
