#pragma once

// Loopback servers for integration tests. Everything binds 127.0.0.1 only.

#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace failover::testing {

/** A cpp-httplib server on 127.0.0.1 with a free port, counting requests and connections. */
class LoopbackServer {
 public:
  LoopbackServer();
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  /** The server, to install handlers before `start()`. */
  httplib::Server& http() { return server_; }
  /** Answers POST /v1/chat/completions with `handler`, and the native dialects' chat paths
   *  (`/v1/messages`, `/v1/models/{model}:generateContent` and `:streamGenerateContent`);
   *  requests are recorded. */
  void on_chat(httplib::Server::Handler handler);
  /** Binds and starts serving; returns once it accepts connections. */
  void start();
  /** Stops serving (idempotent). */
  void stop();

  int port() const { return port_; }
  /** `http://127.0.0.1:PORT/v1`. */
  std::string base_url() const;

  /** Chat requests received. */
  int requests() const { return requests_.load(); }
  /** Distinct client connections seen by the chat handler. */
  std::size_t connections() const;
  /** Values of `name` in the chat requests received, in order. */
  std::vector<std::string> header_values(const std::string& name) const;

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::set<std::pair<std::string, int>> peers_;
  std::vector<httplib::Headers> headers_;
};

/** How a loopback SSE answer ends. */
enum class StreamEnd {
  Done,   ///< finish_reason and [DONE], then a clean end.
  Close,  ///< A clean end with neither finish_reason nor [DONE].
  Cut,    ///< The connection is dropped mid-response.
  Stall,  ///< Nothing more is sent until the client goes away (at most `stall_limit`).
};

/** Answers with an SSE stream: the role chunk, one content delta per piece `gap` apart, then as
 *  `end` says. */
void stream_sse(httplib::Response& res, std::vector<std::string> pieces,
                std::chrono::milliseconds gap, StreamEnd end,
                std::chrono::milliseconds stall_limit = std::chrono::milliseconds(5000));

/** A provider's answer to replay: a status, headers, and a body sent in timed parts. */
struct RecordedAnswer {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  ///< `content-type` included.
  std::vector<std::pair<std::chrono::milliseconds, std::string>> parts;
  bool stream = false;  ///< A 2xx is sent part by part as `text/event-stream`.
};

/** A whole answer. */
RecordedAnswer recorded(int status, std::string body);
/** An SSE answer: `events` one after another, `gap` apart. */
RecordedAnswer recorded_sse(std::vector<std::string> events,
                            std::chrono::milliseconds gap = std::chrono::milliseconds(1));
/** `data: <payload>` and the blank line ending the event. */
std::string sse_data(const std::string& payload);

/** Answers every chat request with one recorded answer; started by the constructor. */
class ReplayServer : public LoopbackServer {
 public:
  explicit ReplayServer(RecordedAnswer answer);
};

/** Answers every chat request with "fallback", streamed when the request asks for a stream;
 *  started by the constructor. */
class HealthyServer : public LoopbackServer {
 public:
  HealthyServer();
};

/** A valid chat completion body. */
std::string completion_json(const std::string& text, const std::string& model = "gpt-4.1");

/** A listening socket on 127.0.0.1 that never answers: it either never accepts or accepts and
 *  holds the connection silently. */
class SilentServer {
 public:
  enum class Mode { NeverAccept, AcceptAndHold };
  explicit SilentServer(Mode mode);
  ~SilentServer();
  int port() const { return port_; }
  std::string base_url() const;
  /** Connections accepted so far (AcceptAndHold). */
  int accepted() const { return accepted_.load(); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<int> held_;
  std::thread thread_;
};

/**
 * An HTTP/1.1 server on 127.0.0.1 that answers the first request of its first connection and
 * keeps that connection alive, then reads the second request on it and closes it without a
 * byte: the reused connection a client finds dead. Later connections are answered. Counts the
 * requests that reached it.
 */
class DroppingServer {
 public:
  /** `silence`: how long it holds the second request before it closes the connection. */
  explicit DroppingServer(std::chrono::milliseconds silence = std::chrono::milliseconds(0));
  ~DroppingServer();
  std::string base_url() const;
  int requests() const { return requests_.load(); }

 private:
  std::chrono::milliseconds silence_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

/** An HTTP server on 127.0.0.1 that answers every request with `raw` exactly as given (status
 *  line, headers and body, as no library would write them), then closes the connection. */
class RawServer {
 public:
  explicit RawServer(std::string raw);
  ~RawServer();
  std::string base_url() const;
  int requests() const { return requests_.load(); }

 private:
  std::string raw_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

/** Raises the accept backlog of the listening socket on `port` (cpp-httplib uses 5). */
void widen_backlog(int port);

/** A port on 127.0.0.1 where nothing listens (connections are refused). */
int refused_port();

}  // namespace failover::testing
