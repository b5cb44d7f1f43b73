#pragma once

// Request writing for one call: the request encoded once as Chat Completions (which validates
// it), once per (dialect, shaping, stream) for routes whose dialect translates it, and the
// bodies of a continuation; then each attempt's HTTP request, written from them.

#include "core/route_state.hpp"
#include "options/resolve.hpp"
#include "wire/dialect.hpp"

#include <failover/chat.hpp>
#include <failover/transport.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace failover::detail {

class RequestWriter {
 public:
  /** Validates and encodes `request` as Chat Completions, streamed (a route that answers whole
   *  gets the same body without the stream members); `usage` asks the stream for usage. On
   *  failure returns what is wrong with the request. */
  std::optional<std::string> encode(const ChatRequest& request, bool usage);

  /** The index of `request`'s body in `api` (which translates), with `shaping`, `stream`ed or
   *  not: translated on the first ask, then shared. */
  int translate(const ChatRequest& request, const wire::DialectApi& api,
                const wire::RequestShaping* shaping, bool stream);
  /** Why body `i` could not be translated, if it could not. */
  const std::optional<std::string>& problem(int i) const { return translated_[index(i)].problem; }

  /** The bodies that continue an answer: `request` ends with the assistant's prefix. For the
   *  Chat Completions routes; whether it could be encoded. */
  bool continue_with(const ChatRequest& request);
  /** The same for routes of translated body `i`, whose prefix the dialect may trim (see
   *  DialectApi::trim_prefix): `request` without the prefix, which goes last. Returns the
   *  trimmed end (the seam), or nothing when the prefix cannot be sent. */
  std::optional<std::string> continue_translated(int i, ChatRequest& request, std::string prefix);

  /** What one attempt sends. */
  struct Attempt {
    const RouteState* route = nullptr;
    const ResolvedEndpoint* endpoint = nullptr;
    const wire::RequestShaping* shaping = nullptr;  // the route's, for a Chat Completions body
    const std::map<std::string, std::string>* call_headers = nullptr;
    int body = -1;  // a translated body's index, or -1
    bool streamed = false;
    bool continuation = false;
    int number = 1;  // the call's attempt number
    Duration total{}, connect{}, headers{};
    std::size_t max_response_bytes = 0;
    const std::string* ca_bundle = nullptr;
    bool success_headers = false;  // an endpoint's rate limiter reads a success's headers
  };
  /** The request of attempt `a`, written into this thread's request buffer: the driver hands it
   *  to the transport, which copies what it needs, before it asks this thread's machines for
   *  anything else. Reusing one buffer keeps its strings' and header list's capacity from call
   *  to call, so writing a request allocates nothing once the buffer has grown. */
  const HttpRequest& write(const Attempt& a) const;

 private:
  struct Translated {
    const wire::DialectApi* api = nullptr;
    const wire::RequestShaping* shaping = nullptr;
    bool stream = false;
    std::string body;                    // without the model (DialectApi::put_model)
    std::optional<std::string> problem;  // why the request cannot be translated
  };
  static std::size_t index(int i) { return static_cast<std::size_t>(i); }

  // The Chat Completions body without the model, streamed (see wire::StreamForm): an attempt
  // sent whole leaves out what follows whole_at_.
  std::string body_rest_;
  std::size_t whole_at_ = 0;
  std::vector<Translated> translated_;
  std::string continue_body_;        // body_rest_ plus the prefix
  std::string continue_translated_;  // the same in a translating dialect
};

}  // namespace failover::detail
