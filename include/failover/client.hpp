#pragma once

/** @file client.hpp  The client: one entry point that walks the priority list. */

#include <failover/chat.hpp>
#include <failover/config.hpp>
#include <failover/export.hpp>
#include <failover/health.hpp>
#include <failover/options.hpp>
#include <failover/result.hpp>
#include <failover/traffic.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <memory>

namespace failover {

namespace detail {
class ClientCore;
}

/**
 * Receives the chunks of a streamed completion; returns `false` to cancel the call. Chunks
 * arrive only from the route that serves the call: nothing is handed over before the first
 * content, so a failover before it is invisible. With `StreamRecovery::Restart`, a stream that
 * broke after content is followed by a chunk with `restart == true` (discard what was shown)
 * and the whole answer from the next route; with `Continue`, by only the rest of the answer.
 */
using StreamHandler = std::function<bool(const ChatChunk&)>;

/** What probing one route found (`Client::probe`). */
struct RouteProbe {
  RouteRef route;                    ///< The route.
  bool ok = false;                   ///< The endpoint answered 2xx and lists the model if it
                                     ///< lists models at all.
  int status = 0;                    ///< HTTP status (0 when no response arrived).
  Duration latency{};                ///< Time to the end of the answer.
  std::optional<ErrorKind> error;    ///< What went wrong, when something did.
  std::string message;               ///< Short description of the failure.
  std::optional<bool> model_listed;  ///< Whether `/models` lists the route's model, when the
                                     ///< endpoint answered with a model list.
  /** Its breaker, now (the same name and meaning as `RouteHealth::state`). */
  BreakerState state = BreakerState::Closed;
};

/**
 * Sends chat completions through the model-priority list, retrying, failing over and breaking
 * circuits by its policies. Thread-safe: one client is meant to be shared by a whole process.
 * Destroying it cancels the asynchronous calls still in flight (they complete with `Cancelled`)
 * and waits for its engine thread; synchronous calls still running on other threads finish
 * first, each holding the client's state until it returns (see docs/policies.md, "Application
 * code the SDK calls").
 */
class FAILOVER_EXPORT Client {
 public:
  /** Waits until every client released inside its own callback or handler (whose teardown
   *  then runs on its engine thread, after the callback) is gone, at most `timeout`; true when
   *  none is left. Call it before the process exits if you release clients that way. */
  static bool wait_for_released_clients(std::chrono::milliseconds timeout);

  /** Validates `options`; throws `ConfigError` (a `std::invalid_argument`) naming the bad
   *  field. */
  explicit Client(ClientOptions options);

  /** A client from a JSON configuration file (see `options_from_file`); throws `ConfigError`
   *  naming the JSON path of any problem. */
  static Client from_config_file(const std::string& path);
  ~Client();
  /** Moves the client; the moved-from client may only be destroyed or assigned. */
  Client(Client&&) noexcept;
  /** Moves the client; the moved-from client may only be destroyed or assigned. */
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /**
   * Runs the call on the calling thread (its own connections, reused across calls) and returns
   * the response or a typed error; both carry the attempt trace.
   */
  Result<ChatResponse> chat(const ChatRequest& request, const CallOptions& options = {});

  /**
   * Streams the answer: `handler` runs on the calling thread for each chunk. Returns the
   * response assembled from the chunks (content, tool calls with their arguments joined,
   * finish_reason, usage), with `served_by` and the trace. Before the first content chunk any
   * failure fails over as usual; after it, the stream recovery policy decides (by default the
   * call ends with `StreamInterrupted` carrying the partial response, `Error::partial()`; see
   * `StreamRecovery`). A handler returning `false` ends the call with `Cancelled` and closes
   * the connection.
   */
  Result<ChatResponse> chat_stream(const ChatRequest& request, StreamHandler handler,
                                   const CallOptions& options = {});

  /**
   * Streams on the client's engine thread: `handler` and then `done` run on that thread (the
   * one that drives every asynchronous call), so neither may block.
   */
  void chat_stream_async(ChatRequest request, StreamHandler handler, CallOptions options,
                         std::function<void(Result<ChatResponse>)> done);

  /** Streams on the engine thread (`handler` runs there); the future completes with the
   *  assembled response or the error. */
  std::future<Result<ChatResponse>> chat_stream_async(ChatRequest request, StreamHandler handler,
                                                      CallOptions options = {});

  /**
   * Probes every route now, as `health.probe` says: one `GET {base_url}/models` per endpoint
   * (the default; costs no tokens), or a one-token chat per route (`ProbeMethod::Chat`); all at
   * once, on the calling thread, each limited to `timeout`. Changes no breaker.
   */
  std::vector<RouteProbe> probe(Duration timeout = std::chrono::seconds(10));

  /** Health of every route from real traffic: breaker state, calls in flight, success rate,
   *  latency percentiles and EWMA, the last error, reopen and cooldown times. */
  HealthSnapshot health() const;

  /** Calls, tokens, cost, latency and error rate per route since the client started. */
  UsageReport usage_report() const;

  /** Prometheus text exposition: calls, attempts by route and outcome, retries, hedges, stream
   * recoveries and breaker transitions (counters); calls in flight and breaker state (gauges);
   * attempt and call latency (histograms). */
  std::string metrics_text() const;

  /** Shadow traffic's report so far (see `ShadowOptions`); empty when shadow traffic is off. */
  std::optional<ShadowReport> shadow_report() const;

  /** Waits until no shadow mirror is queued or in flight (before reading a final report or
   *  exiting); false when `timeout` passed first. True at once when shadow traffic is off. */
  bool wait_for_shadow(std::chrono::milliseconds timeout = std::chrono::seconds(60));

  /** The canary roll-out's state (see `CanaryOptions`); empty when no canary is configured. */
  std::optional<CanaryStatus> canary() const;
  /** Holds the canary at its current share (rollback stays armed). False when there is no
   *  canary or it is not running. */
  bool canary_pause();
  /** Restarts the current step of a paused canary, or the first step of one that was rolled
   *  back or drained. False when there is no canary or it is running or completed. */
  bool canary_resume();
  /** Sends every call to the candidate from now on (state `Completed`). False when there is no
   *  canary or it was already promoted. */
  bool canary_promote();
  /** Sends no more calls to the candidate (state `RolledBack`); no alert is raised for a rollback
   *  by hand. False when there is no canary or it is already rolled back. */
  bool canary_rollback(const std::string& reason = {});
  /** Sends no new calls to the candidate without judging it (state `Drained`); attempts in
   *  flight finish (`CanaryStatus::in_flight`). False when there is no canary or it serves
   *  nothing already. */
  bool canary_drain();

  /** Runs the call on the client's engine thread; the future completes with the result. */
  std::future<Result<ChatResponse>> chat_async(ChatRequest request, CallOptions options = {});

  /**
   * Runs the call on the client's engine thread and calls `done` there with the result.
   * `done` must not block: it runs on the thread that drives every asynchronous call.
   */
  void chat_async(ChatRequest request, CallOptions options,
                  std::function<void(Result<ChatResponse>)> done);

 private:
  std::shared_ptr<detail::ClientCore> core_;
};

}  // namespace failover
