#include "core/attempt_reader.hpp"

#include "core/call_env.hpp"
#include "core/call_report.hpp"

#include "policy/classify.hpp"
#include "wire/json_codec.hpp"

#include <spdlog/spdlog.h>

namespace failover::detail {

namespace {

std::string ms_text(Duration d) { return std::to_string(to_millis(d)) + " ms"; }

// A failure classified from an error the provider sent: its kind, code and Retry-After.
AttemptEnd classified_failure(policy::Classified&& c, int status, std::string message) {
  AttemptEnd e = AttemptEnd::failed(c.kind, status, std::move(message));
  e.failure.outcome.provider_code = std::move(c.code);
  e.failure.outcome.retry_after = c.retry_after;
  e.failure.provider_type = std::move(c.type);
  e.failure.param = std::move(c.param);
  return e;
}

}  // namespace

void AttemptReader::observe_limits(const Flight& f, TimePoint now,
                                   const HttpHeaders& headers) const {
  if (headers.empty()) return;
  if (RateLimiter* limiter = env_.limiter(f.route->endpoint)) {
    limiter->observe(now, env_.clock().wall_now(), headers);
  }
}

AttemptEnd AttemptReader::data(TimePoint now, Flight& f, const StreamData& data) {
  AttemptStream& s = *f.wire;
  observe_limits(f, now, data.headers);
  s.feed(data.bytes, env_.options().max_response_bytes,
         [&](const wire::SseEvent& e) { on_event(now, f, e); });
  if (feed_.stopped()) {
    feed_.rethrow();
    return AttemptEnd::stopped(data.status);
  }
  if (!s.error) return {};
  AttemptEnd e;
  if (feed_.committed()) {
    e = AttemptEnd::interrupted(s.error->kind, s.error_message);
  } else {
    e.kind = AttemptEnd::Kind::Failed;
    e.failure.outcome = std::move(*s.error);
    e.failure.outcome.http_status = data.status;
    e.failure.message = s.error_message;
  }
  s.error.reset();
  e.abandon = true;
  return e;
}

void AttemptReader::on_event(TimePoint now, Flight& f, const wire::SseEvent& e) {
  AttemptStream& s = *f.wire;
  if (feed_.stopped()) return s.frame();
  AttemptStream::Read r = s.read(now, e, choices_);
  if (r.event == AttemptStream::Event::Error) {
    policy::Classified c =
        policy::classify_error(200, {}, std::move(r.error_body), env_.clock().wall_now());
    AttemptOutcome outcome;
    outcome.kind = c.kind;
    outcome.provider_code = std::move(c.code);
    outcome.retry_after = c.retry_after;
    s.error_message = "error event in the stream: " + c.message;
    s.error = std::move(outcome);
    return;
  }
  if (r.event == AttemptStream::Event::Malformed) return skip_event(f, r.why);
  // A whole answer is assembled, shown to no one before its end.
  if (r.event == AttemptStream::Event::Chunk && feed_) feed_.show(s, std::move(r.chunk));
}

// A malformed event in an otherwise good stream: clients skip it and read on (a relay's bad
// frame must not cost the answer). Counted for the trace and the metrics; a stream made of
// nothing else fails as a protocol error when it ends.
void AttemptReader::skip_event(const Flight& f, const std::string& why) const {
  spdlog::logger* log = env_.logger();
  if (log && log->should_log(spdlog::level::warn)) {
    log->warn("route={} skipped a malformed stream event ({}): {}", route_name(f.route->ref),
              f.wire->skipped_events,
              wire::excerpt(env_.endpoints()[f.route->endpoint].redact(why), 160));
  }
}

AttemptEnd AttemptReader::result(TimePoint now, Flight& f, HttpResult& result) {
  observe_limits(f, now, result.headers);
  const bool success = !result.transport_error && result.status >= 200 && result.status < 300;
  if (AttemptStream* s = f.wire.get()) {
    // A transport that does not stream hands the whole body over in the result.
    if (success && !result.body.empty() && !s->heard()) {
      return end_unframed(now, f, std::move(result.body));
    }
    if (success) return end_stream(now, f);
    if (result.transport_error && s->finished()) return end_stream(now, f);  // it is whole
    if (result.transport_error && feed_.committed()) {
      return AttemptEnd::interrupted(*result.transport_error, result.error_message);
    }
  } else if (success && feed_) {
    return end_unframed(now, f, std::move(result.body));  // a route that answers whole
  }
  if (result.transport_error) return transport_failure(now, f, result);
  return http_answer(f, result);
}

AttemptEnd AttemptReader::transport_failure(TimePoint now, const Flight& f,
                                            HttpResult& result) const {
  AttemptEnd e = AttemptEnd::failed(*result.transport_error, 0, std::move(result.error_message));
  // Only a stream's silence says something: an answer sent whole sends nothing before its end
  // however healthy the route.
  e.failure.silent = f.wire && result.status == 0 && result.headers.empty() && !f.wire->heard();
  if (result.reused_connection_died) {
    // Within a moment of reuse: the stale keep-alive race, the server never saw the request.
    // After a silence: the route held the request and said nothing, like a timeout.
    AttemptOutcome& o = e.failure.outcome;
    o.elapsed = now - f.start;
    if (o.came_back_fast()) {
      o.stale_connection = true;
    } else {
      o.kind = ErrorKind::Timeout;
      e.failure.message = "the reused connection closed after " + format_ms(o.elapsed) +
                          " without a response; the request was not sent again";
    }
  }
  return e;
}

AttemptEnd AttemptReader::http_answer(const Flight& f, HttpResult& result) const {
  AttemptEnd e;  // an answer is decoded in place: every path returns `e`, never a copy
  std::optional<wire::ErrorBody> in_band;
  if (result.status >= 200 && result.status < 300) {
    auto failure = env_.endpoints()[f.route->endpoint].api->decode(result.body, e.response);
    if (!failure) {
      e.kind = AttemptEnd::Kind::Served;
      return e;
    }
    if (!failure->in_band_error) {
      e = AttemptEnd::failed(ErrorKind::Protocol, result.status, std::move(failure->message));
      return e;
    }
    // An error inside a 2xx: a failure, classified as the error it says it is.
    in_band = std::move(failure->in_band_error);
  }
  const WallTime wall = env_.clock().wall_now();
  policy::Classified c =
      in_band ? policy::classify_error(result.status, result.headers, std::move(*in_band), wall)
              : policy::classify_http(result.status, result.headers, result.body, wall);
  // A route that refuses streamed requests is sent them whole from now on; this one too, at
  // once (its refusal says nothing of its health).
  const bool refused = f.wire && !in_band &&
                       env_.endpoints()[f.route->endpoint].api->stream_refusal_means_whole() &&
                       policy::refuses_streaming(c);
  policy::explain_not_found(c, f.wire ? f.route->stream_url : f.route->url);
  const int status = c.status;
  const std::optional<bool> should_retry = c.should_retry;
  std::string message = std::move(c.message);
  e = classified_failure(std::move(c), status, std::move(message));
  e.failure.outcome.should_retry = should_retry;
  e.failure.stream_refused = refused;
  return e;
}

AttemptEnd AttemptReader::expired(TimePoint now, Flight& f, TimePoint deadline) {
  AttemptEnd e;
  const AttemptStream* s = f.wire.get();
  if (s && s->finished()) {
    e = end_stream(now, f);  // the server lingered
  } else if (feed_.committed()) {
    e = now >= deadline ? AttemptEnd::interrupted(ErrorKind::DeadlineExceeded,
                                                  "the call's deadline passed mid-stream")
                        : AttemptEnd::interrupted(ErrorKind::Timeout,
                                                  "no stream chunk within the idle timeout of " +
                                                      ms_text(f.limits.idle));
  } else {
    std::string why = "the exchange did not end within its time limit";
    if (s && now < f.start + f.limits.total) {
      why = s->progressed
                ? "no stream chunk within the idle timeout of " + ms_text(f.limits.idle)
                : "no content within the first-token timeout of " + ms_text(f.limits.first_byte);
    }
    e = AttemptEnd::failed(ErrorKind::Timeout, 0, std::move(why));
    e.failure.silent = s && !s->heard();
  }
  e.abandon = true;
  return e;
}

AttemptEnd AttemptReader::end_stream(TimePoint now, Flight& f) {
  AttemptStream& s = *f.wire;
  if (s.unframed_body()) return end_unframed(now, f, std::move(s.unframed));
  if (!s.chunk_accepted && s.skipped_events > 0) {
    return AttemptEnd::failed(ErrorKind::Protocol, 200,
                              "every event of the stream was malformed (" +
                                  std::to_string(s.skipped_events) + " skipped)");
  }
  if (s.finished()) {
    ChatResponse response = s.accumulated.build();
    if (response.choices.empty()) {  // [DONE] and nothing else: no answer, and no error either
      return AttemptEnd::failed(ErrorKind::Protocol, 200, "the stream ended without any choice");
    }
    if (feed_ && !feed_.committed()) feed_.commit(s);  // no content: hand over what there is
    return AttemptEnd::served(std::move(response));
  }
  const std::string why = "the stream ended without [DONE] or a finish_reason";
  if (feed_.committed()) return AttemptEnd::interrupted(ErrorKind::ConnectionLost, why);
  return AttemptEnd::failed(
      ErrorKind::ConnectionLost, 200,
      why + (s.chunk_accepted ? " (the answer was cut)" : " before any content"));
}

// An answer sent whole, to a streamed request (a server that does not stream) or by a route
// that answers whole: read as a response would be read. An error in it fails over as that
// error; a whole completion is served, and handed to a stream handler as one chunk.
AttemptEnd AttemptReader::end_unframed(TimePoint now, Flight& f, std::string body) {
  ChatResponse response;
  const wire::DialectApi& api = *env_.endpoints()[f.route->endpoint].api;
  std::optional<wire::DecodeFailure> failure = api.decode(body, response);
  if (!failure && !response.choices.empty()) {
    // It does not stream: later calls send it whole (the same answer, read in one piece).
    if (f.wire) f.route->answers_whole.store(true, std::memory_order_relaxed);
    if (!feed_) return AttemptEnd::served(std::move(response));
    if (!f.wire) f.wire = std::make_unique<AttemptStream>(api, now, /*whole=*/false, f.recovery);
    f.wire->accumulated.add(wire::chunk_of(response));
    f.wire->chunk_accepted = true;  // charged like any stream if the handler stops it now
    feed_.commit(*f.wire);
    feed_.deliver(*f.wire, wire::chunk_of(response));
    if (feed_.stopped()) {
      feed_.rethrow();
      return AttemptEnd::stopped(200);
    }
    return AttemptEnd::served(std::move(response));
  }
  if (failure && failure->in_band_error) {
    policy::Classified c = policy::classify_error(200, {}, std::move(*failure->in_band_error),
                                                  env_.clock().wall_now());
    // A whole-answer call did not ask for a stream: the error is said as it came.
    std::string message = feed_ ? "the stream request was answered with an error: " + c.message
                                : std::move(c.message);
    return classified_failure(std::move(c), 200, std::move(message));
  }
  std::string why = failure ? std::move(failure->message) : std::string("no choice");
  if (feed_) why = "the stream request was answered with neither SSE nor a completion: " + why;
  return AttemptEnd::failed(ErrorKind::Protocol, 200, std::move(why));
}

}  // namespace failover::detail
