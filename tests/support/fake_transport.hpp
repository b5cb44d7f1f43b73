#pragma once

// A scripted transport on a manual clock: each URL answers from a handler after a scripted
// latency, and waiting advances the clock, so tests see exact times.

#include <failover/failover.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace failover::testing {

/** One scripted answer. */
struct Reply {
  Duration latency = std::chrono::milliseconds(10);
  int status = 200;
  HttpHeaders headers;
  std::string body;
  std::optional<ErrorKind> error;  // a transport error instead of a response
  std::string error_message;
  /** A streamed body: (delay after the previous part, bytes). With parts, `latency` is unused:
   *  the response ends right after the last part, as `end` says. */
  std::vector<std::pair<Duration, std::string>> parts;
  enum class End { Complete, Cut, Hang } end = End::Complete;
  /** The request died on a reused connection before any response (HttpResult's flag). */
  bool reused_connection_died = false;
};

/** An SSE stream replying with `pieces` as content deltas, each `gap` apart, then `[DONE]`. */
Reply sse(const std::vector<std::string>& pieces, Duration gap = std::chrono::milliseconds(10),
          bool done = true);
/** The SSE event for one content delta. */
std::string sse_content(const std::string& piece);
/** The SSE event of the first chunk: the assistant role and empty content. */
std::string sse_role();
/** The SSE event ending a choice with `reason`, followed by `data: [DONE]`. */
std::string sse_finish_and_done(const std::string& reason = "stop");

/** A valid chat completion body answering `text`. */
std::string completion_body(const std::string& text, const std::string& model = "gpt-4.1");
/** A 200 answer with `text`. */
Reply ok(const std::string& text, Duration latency = std::chrono::milliseconds(10));
/** An error answer with an OpenAI-style error body. */
Reply status(int code, const std::string& error_code = "", HttpHeaders headers = {},
             Duration latency = std::chrono::milliseconds(10));
/** A transport failure. */
Reply failure(ErrorKind kind, Duration latency = std::chrono::milliseconds(10));

/** A request as the fake saw it. */
struct Seen {
  TimePoint at;
  HttpRequest request;
};

class FakeTransport final : public Transport {
 public:
  using Handler = std::function<Reply(const HttpRequest&)>;

  explicit FakeTransport(std::shared_ptr<ManualClock> clock) : clock_(std::move(clock)) {}

  /** Requests to `url` answer from `handler`. */
  void on(const std::string& url, Handler handler);
  /** Requests to `url` answer with `replies` in order, then repeat the last one. */
  void sequence(const std::string& url, std::vector<Reply> replies);
  /** Every request seen, in order. */
  std::vector<Seen> seen() const;
  /** Requests seen for `url`. */
  int count(const std::string& url) const;

  std::unique_ptr<TransportSession> open_session() override;

 private:
  friend class FakeSession;
  Reply answer(const HttpRequest& request);

  std::shared_ptr<ManualClock> clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Handler> handlers_;
  std::vector<Seen> seen_;
};

/** The URL the SDK posts to for a base URL. */
inline std::string chat_url(const std::string& base) { return base + "/chat/completions"; }

}  // namespace failover::testing
