#pragma once

// The APIs a route may speak, each behind one interface. A dialect says where a route's
// requests go and with which headers, how a request is written, how an answer and a stream's
// events are read, and what a continuation's prefix must look like. The core asks the dialect
// and never branches on which one it is: adding one is an implementation of `DialectApi`, an
// enum value, its entry in `api_of` and `api_named`, mock support and docs.

#include "wire/json_codec.hpp"
#include "wire/native.hpp"
#include "wire/shaping.hpp"

#include <failover/chat.hpp>
#include <failover/options.hpp>
#include <failover/transport.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace failover::wire {

/** Where a route's requests go: answered whole, and streamed. */
struct RouteUrls {
  std::string whole;
  std::string stream;
};

class DialectApi {
 public:
  virtual ~DialectApi() = default;

  virtual Dialect id() const = 0;
  /** The name configs and messages use (`openai`, `anthropic`, `gemini`). */
  virtual const char* name() const = 0;

  // ---- Where requests go --------------------------------------------------------------------

  /** The URLs of `model`'s requests, from the endpoint's base URL (checked, no trailing slash)
   *  and its query (`?k=v&...`, or empty). */
  virtual RouteUrls urls(const std::string& base, const std::string& query,
                         const std::string& model) const = 0;
  /** Adds the header that carries `api_key` in this API's own form (the endpoint's auth style
   *  is Bearer, the default). */
  virtual void add_key(const std::string& api_key, HttpHeaders& headers) const = 0;
  /** Adds the headers this API requires that the endpoint's `own` headers do not set. */
  virtual void add_required(const std::map<std::string, std::string>& own,
                            HttpHeaders& headers) const;

  // ---- Requests -----------------------------------------------------------------------------

  /** Whether requests are translated into a body of this API's own (`encode`). If not, the
   *  Chat Completions body of `encode_request` is sent, the route's shaping applied to it. */
  virtual bool translates() const = 0;
  /** Writes `request` in this API (see `encode_native`); only where `translates()`. */
  virtual std::optional<std::string> encode(const ChatRequest& request, bool stream,
                                            const RequestShaping* shaping, std::string& body) const;
  /** Writes into `out` the body `rest` (encoded without a model) for a route whose model is
   *  `model_json` (a JSON string): in front, or left out where the URL names the model. */
  virtual void put_model(std::string_view model_json, std::string_view rest,
                         std::string& out) const;
  /** A partial answer sent as an assistant prefix to continue: cuts off `prefix`'s end that the
   *  API refuses there and returns it (the continuation may repeat it: shown once). */
  virtual std::string trim_prefix(std::string& prefix) const;
  /** The body of a health probe of `model`: "ping", one token. */
  std::string probe_body(const std::string& model, std::string_view model_json) const;

  // ---- Answers ------------------------------------------------------------------------------

  /** Decodes a 2xx answer (see `decode_response` and `decode_native_response`). */
  virtual std::optional<DecodeFailure> decode(std::string& body, ChatResponse& out) const = 0;
  /** Whether an error that says the request was refused for being streamed
   *  (policy::refuses_streaming) means the route answers only whole: servers of the Chat
   *  Completions API say so; a native API's error naming the stream is about the request. */
  virtual bool stream_refusal_means_whole() const { return false; }
};

/** The implementation of `dialect` (one object each, for the life of the program). */
const DialectApi& api_of(Dialect dialect);

/** The dialect configs call `name`; null for an unknown name. */
const DialectApi* api_named(std::string_view name);

/** The names of every dialect, in enum order, quoted and joined: `"openai", "anthropic" or
 *  "gemini"`, for messages. */
std::string dialect_names();

/** `s` percent-encoded for a URL's path or query (unreserved characters kept). */
std::string percent_encode(std::string_view s);

/** Whether a `/models` listing `doc` (OpenAI's and Anthropic's `data[].id`, Gemini's
 *  `models[].name` as `models/{id}`) lists `model`; nothing when it is neither shape. */
std::optional<bool> lists_model(std::string_view body, const std::string& model);

}  // namespace failover::wire
