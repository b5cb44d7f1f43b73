#pragma once

// Reading what came back of one attempt: its stream's bytes, its exchange's end, its watchdog.
// The reader says how the attempt ended (an AttemptEnd) and leaves what that means for the call
// (retry, fail over, recover, end) to the call machine. A stream call's chunks go to the
// handler as they come.

#include "core/flight.hpp"
#include "core/handler_feed.hpp"

#include <failover/transport.hpp>

namespace failover::detail {

class CallEnv;

class AttemptReader {
 public:
  /** `choices`: the request's `n`. */
  AttemptReader(const CallEnv& env, HandlerFeed& feed, int choices)
      : env_(env), feed_(feed), choices_(choices) {}

  /** Body bytes of streamed attempt `f` arrived at `now`. */
  AttemptEnd data(TimePoint now, Flight& f, const StreamData& data);
  /** The exchange of `f` ended with `result`. */
  AttemptEnd result(TimePoint now, Flight& f, HttpResult& result);
  /** The watchdog of `f` fired at `now`; `deadline` is the call's. Its exchange is abandoned. */
  AttemptEnd expired(TimePoint now, Flight& f, TimePoint deadline);

 private:
  void on_event(TimePoint now, Flight& f, const wire::SseEvent& event);
  void skip_event(const Flight& f, const std::string& why) const;
  AttemptEnd end_stream(TimePoint now, Flight& f);
  AttemptEnd end_unframed(TimePoint now, Flight& f, std::string body);
  AttemptEnd transport_failure(TimePoint now, const Flight& f, HttpResult& result) const;
  // An answer sent whole (a 2xx served, or in-band error) or an HTTP error.
  AttemptEnd http_answer(const Flight& f, HttpResult& result) const;
  void observe_limits(const Flight& f, TimePoint now, const HttpHeaders& headers) const;

  const CallEnv& env_;
  HandlerFeed& feed_;
  int choices_ = 1;
};

}  // namespace failover::detail
