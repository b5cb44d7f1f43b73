#pragma once

// One attempt in flight, and how an attempt ended as the call machine hears of it.

#include "core/attempt_lease.hpp"
#include "core/attempt_limits.hpp"
#include "core/attempt_stream.hpp"

#include <failover/chat.hpp>
#include <failover/error.hpp>
#include <failover/policy/retry.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace failover::detail {

struct RouteState;

struct Flight {
  std::uint64_t id = 0;
  std::size_t candidate = 0;
  RouteState* route = nullptr;  // the candidate's
  TimePoint start{};
  AttemptLimits limits;
  bool canary = false;        // an attempt on the canary's candidate
  bool recovery = false;      // it recovers a stream that broke after content
  bool continuation = false;  // it sends the partial answer as a prefix to continue
  int attempt = 0;            // the call's attempt number (1 for the first)
  AttemptLease lease;         // what the attempt holds (in-flight count, breaker, permit, slot)
  std::unique_ptr<AttemptStream> wire;  // sent as a stream; null when sent whole
};

/** A failed attempt: what the retry policy is asked about, and what the trace says. */
struct Failure {
  AttemptOutcome outcome;
  std::string message;
  std::string provider_type;
  std::string param;
  bool silent = false;          // nothing at all was received (a stream's silence)
  bool stream_refused = false;  // the route refused a streamed request

  /** A stream that broke after content reached the handler, `elapsed` after its attempt
   *  started, with `cause`. */
  static Failure broke(ErrorKind cause, const RouteRef& route, Duration elapsed,
                       std::string message) {
    Failure f;
    f.outcome.kind = cause;
    f.outcome.route = route;
    f.outcome.http_status = 200;
    f.outcome.elapsed = elapsed;
    f.message = std::move(message);
    return f;
  }
  /** The details of the call's error when this failure ends it; `attempts`: its trace. */
  ErrorDetails details(std::vector<Attempt> attempts) const {
    ErrorDetails d;
    d.http_status = outcome.http_status;
    d.provider_code = outcome.provider_code;
    d.provider_type = provider_type;
    d.param = param;
    d.retry_after = outcome.retry_after;
    d.attempts = std::move(attempts);
    return d;
  }
};

/** How an attempt ended. */
struct AttemptEnd {
  enum class Kind {
    Open,         ///< Not yet.
    Served,       ///< `response` holds the answer.
    Failed,       ///< `failure` says why; nothing of it reached the stream handler.
    Interrupted,  ///< It broke after content reached the handler: `cause`, `failure.message`.
    Stopped,      ///< The stream handler asked to stop; `status` is the answer's.
  };
  Kind kind = Kind::Open;
  ChatResponse response;
  Failure failure;
  ErrorKind cause = ErrorKind::ConnectionLost;
  int status = 0;
  bool abandon = false;  // its exchange is still open: the driver must cancel it

  static AttemptEnd served(ChatResponse response) {
    AttemptEnd e;
    e.kind = Kind::Served;
    e.response = std::move(response);
    return e;
  }
  static AttemptEnd failed(ErrorKind kind, int status, std::string message) {
    AttemptEnd e;
    e.kind = Kind::Failed;
    e.failure.outcome.kind = kind;
    e.failure.outcome.http_status = status;
    e.failure.message = std::move(message);
    return e;
  }
  static AttemptEnd interrupted(ErrorKind cause, std::string message) {
    AttemptEnd e;
    e.kind = Kind::Interrupted;
    e.cause = cause;
    e.failure.message = std::move(message);
    return e;
  }
  static AttemptEnd stopped(int status) {
    AttemptEnd e;
    e.kind = Kind::Stopped;
    e.status = status;
    return e;
  }
};

}  // namespace failover::detail
