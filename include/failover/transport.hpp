#pragma once

/**
 * @file transport.hpp  The HTTP transport seam. The SDK's call state machine produces
 * `HttpRequest`s and consumes `HttpResult`s; a `TransportSession` moves them. The default
 * transport is libcurl's multi interface; tests install a fake that answers from a script.
 */

#include <failover/error.hpp>
#include <failover/export.hpp>
#include <failover/time.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace failover {

/** HTTP header list in order: (name, value). */
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/** One HTTP exchange to perform. Zero durations mean "no limit". */
struct HttpRequest {
  std::string method = "POST";         ///< `POST` or `GET`.
  std::string url;                     ///< Full URL.
  HttpHeaders headers;                 ///< Request headers (already validated: no CR/LF).
  std::string body;                    ///< Request body.
  Duration connect_timeout{};          ///< Limit to establish the connection.
  Duration first_byte_timeout{};       ///< Limit from the start until the first response byte.
  Duration total_timeout{};            ///< Limit for the whole exchange.
  std::size_t max_response_bytes = 0;  ///< Body cap; 0 = none. Past it: `ResponseTooLarge`.
  std::string ca_bundle;  ///< CA bundle file for TLS peer verification (empty = system).
  /** Deliver a 2xx body as it arrives (`TransportEvents::data`) instead of in the result.
   *  Other statuses are still buffered whole into `HttpResult::body`. */
  bool stream = false;
  /** Whether the caller reads a 2xx response's headers. When false, a transport may leave
   *  them out of the result (and of the stream data), sparing their copies; the headers of
   *  any other status are always delivered. */
  bool success_headers = true;
};

/** The end of one exchange. */
struct HttpResult {
  std::uint64_t id = 0;                      ///< The id given to `start`.
  std::optional<ErrorKind> transport_error;  ///< Set when no complete response arrived.
  std::string error_message;                 ///< Description of the transport error.
  int status = 0;                            ///< HTTP status of the response.
  HttpHeaders headers;                       ///< Response headers, names in lower case.
  std::string body;                          ///< Response body.
  /** The request went out on a kept-alive connection that closed before any response byte.
   *  The transport did not send it again by itself (the server may have received it): the
   *  call's retry policy decides. */
  bool reused_connection_died = false;
};

/** Body bytes of a streaming 2xx exchange, delivered as they arrive. */
struct StreamData {
  std::uint64_t id = 0;  ///< The exchange.
  int status = 0;        ///< HTTP status of the response.
  HttpHeaders headers;   ///< Response headers (names in lower case), on the first piece only.
  std::string bytes;     ///< The new bytes.
};

/** What one `wait` brought: stream data first, then completed exchanges. For one exchange,
 *  all its data precedes its completion. */
struct TransportEvents {
  std::vector<StreamData> data;       ///< Bytes of streaming exchanges.
  std::vector<HttpResult> completed;  ///< Exchanges that ended.
  /** Nothing happened. */
  bool empty() const { return data.empty() && completed.empty(); }
  /** Forgets everything (keeps capacity). */
  void clear() {
    data.clear();
    completed.clear();
  }
};

/**
 * Moves exchanges for one thread at a time. `wakeup()` alone may be called from any thread.
 * A session's timeouts and `wait` deadlines follow the clock the transport was made with.
 */
class FAILOVER_EXPORT TransportSession {
 public:
  virtual ~TransportSession() = default;
  /** Starts an exchange; its end is reported by `wait` with the same id. The transport copies
   *  what it needs of `request` before it returns: the caller reuses the object for its next
   *  request (so its buffers are not allocated anew for each exchange). */
  virtual void start(std::uint64_t id, const HttpRequest& request) = 0;
  /** Abandons an exchange (its connection is closed); no result is reported for it. */
  virtual void cancel(std::uint64_t id) = 0;
  /** Waits until something happens to an exchange (appended to `events`: stream data or an
   *  end), `until` passes, or `wakeup()` is called, whichever comes first. */
  virtual void wait(TimePoint until, TransportEvents& events) = 0;
  /** Makes a concurrent or the next `wait` return early. Thread-safe. */
  virtual void wakeup() = 0;
};

/** Opens sessions. Thread-safe. */
class FAILOVER_EXPORT Transport {
 public:
  virtual ~Transport() = default;
  /** A new session; each keeps its own connection pool. */
  virtual std::unique_ptr<TransportSession> open_session() = 0;
};

/**
 * The libcurl transport: connection reuse, HTTP/2 where offered, TLS peer verification always
 * on, redirects never followed, protocols limited to http and https. Uses the steady clock.
 */
FAILOVER_EXPORT std::shared_ptr<Transport> make_curl_transport();

}  // namespace failover
