#pragma once

// `failover mock`: a fault-injecting server on 127.0.0.1 speaking Chat Completions, Anthropic
// Messages or Gemini, driven by a scenario file and deterministic for a given seed.

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace failover::tools {

/** What the mock does; every field has a default (a healthy server answering "pong"). */
struct MockScenario {
  /** The API it speaks: Chat Completions at /v1 (`openai`), Anthropic Messages at /v1
   *  (`anthropic`), or Gemini at /v1beta (`gemini`), with its own error bodies and streams. */
  std::string dialect = "openai";
  /** A tool call answered instead of `reply`: the function's name and its arguments (a JSON
   *  object as text); empty name = none. */
  std::string tool_name;
  std::string tool_arguments;
  std::uint64_t seed = 1;                         ///< Seeds every random choice.
  std::vector<std::string> models = {"gpt-4.1"};  ///< Listed by GET /v1/models.
  std::string reply = "pong";                     ///< The answer's text.
  std::vector<int> statuses;                      ///< Status of request 1, 2, ... in order,
  int then = 200;  ///< ...and of every request after them (GET /v1/models answers with it too).
  double error_rate = 0;                       ///< Chance a 200 becomes `error_status`.
  int error_status = 503;                      ///< Status of those random errors.
  std::string error_code;                      ///< error.code in error bodies.
  std::string retry_after;                     ///< Retry-After on 429 and 503 answers.
  std::optional<std::int64_t> retry_after_ms;  ///< retry-after-ms on 429 and 503 answers.
  std::map<std::string, std::string> headers;  ///< Extra headers on every answer.
  std::int64_t latency_min_ms = 0;             ///< Latency drawn uniformly from
  std::int64_t latency_max_ms = 0;             ///< [min, max] before answering.
  int stream_chunks = 0;                       ///< Pieces of a streamed reply (0 = words).
  std::int64_t stream_interval_ms = 10;        ///< Pause between streamed pieces.
  int cut_after = -1;                          ///< Drop the connection after this many pieces.
  int stall_after = -1;                        ///< Go silent after this many pieces...
  std::int64_t stall_ms = 0;                   ///< ...for this long (0 = until the client
                                               ///< leaves or the server stops), then drop it.
  /** A request whose last message is the assistant's partial answer: `Ignore` answers the whole
   *  reply as usual, `Continue` streams only what follows the partial in the reply (a server
   *  that continues prefixes), `Reject` answers 400 (one that refuses them). */
  enum class Prefill { Ignore, Continue, Reject } prefill = Prefill::Ignore;
  bool hang = false;       ///< Never answer chat requests.
  bool malformed = false;  ///< Answer 200 with a broken JSON body.
};

/** Reads a scenario; throws `std::invalid_argument` naming the bad key. */
MockScenario parse_scenario(const std::string& json_text);

class MockServer {
 public:
  explicit MockServer(MockScenario scenario);
  ~MockServer();
  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  /** Binds 127.0.0.1:`port` (0 = any free port); returns the port, or -1. */
  int bind(int port);
  /** Serves until `stop()`. */
  void run();
  /** Stops serving; a hanging request is released. Safe from any thread. */
  void stop();
  /** Writes a line per request to stderr: method, path and the status answered. */
  void log_requests();
  /** Chat requests received so far. */
  std::uint64_t requests() const { return requests_.load(); }

 private:
  void chat(const httplib::Request& req, httplib::Response& res);
  void list_models(httplib::Response& res) const;
  std::string error_body(int status) const;
  double draw(std::uint64_t n, std::uint64_t salt) const;

  MockScenario scenario_;
  httplib::Server server_;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex last_mutex_;
  std::string last_body_;  // of the latest chat request, shown by /_mock/stats
};

}  // namespace failover::tools
