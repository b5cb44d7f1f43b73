#include "core/request_writer.hpp"

#include "wire/json_codec.hpp"
#include "wire/shaping.hpp"

#include <algorithm>
#include <charconv>

namespace failover::detail {

std::optional<std::string> RequestWriter::encode(const ChatRequest& request, bool usage) {
  wire::StreamForm form;
  form.usage = usage;
  auto problem = wire::encode_request(request, /*stream=*/true, body_rest_, &form);
  whole_at_ = form.at;
  return problem;
}

int RequestWriter::translate(const ChatRequest& request, const wire::DialectApi& api,
                             const wire::RequestShaping* shaping, bool stream) {
  auto same = std::find_if(translated_.begin(), translated_.end(), [&](const Translated& b) {
    return b.api == &api && b.shaping == shaping && b.stream == stream;
  });
  if (same == translated_.end()) {
    Translated b;
    b.api = &api;
    b.shaping = shaping;
    b.stream = stream;
    b.problem = api.encode(request, stream, shaping, b.body);
    same = translated_.insert(translated_.end(), std::move(b));
  }
  return static_cast<int>(same - translated_.begin());
}

bool RequestWriter::continue_with(const ChatRequest& request) {
  continue_body_.clear();
  return !wire::encode_request(request, /*stream=*/true, continue_body_);
}

std::optional<std::string> RequestWriter::continue_translated(int i, ChatRequest& request,
                                                              std::string prefix) {
  const Translated& b = translated_[index(i)];
  std::string seam = b.api->trim_prefix(prefix);
  if (prefix.empty()) return std::nullopt;
  request.messages.push_back(Message::assistant(std::move(prefix)));
  const bool encoded = !b.api->encode(request, /*stream=*/true, b.shaping, continue_translated_);
  request.messages.pop_back();
  if (!encoded) return std::nullopt;
  return seam;
}

const HttpRequest& RequestWriter::write(const Attempt& a) const {
  thread_local HttpRequest r;
  const RouteState& route = *a.route;
  const ResolvedEndpoint& endpoint = *a.endpoint;
  if (r.method != "POST") r.method = "POST";
  const std::string& url = a.streamed ? route.stream_url : route.url;
  if (r.url != url) r.url = url;
  // Written into the entries already there, which mostly hold these very strings from the
  // thread's last request: comparing is cheaper than copying.
  r.headers.resize(endpoint.headers.size() + a.call_headers->size() + 1);
  auto header = r.headers.begin();
  auto put = [&](std::string_view name, std::string_view value) {
    if (header->first != name) header->first = name;
    if (header->second != value) header->second = value;
    ++header;
  };
  for (const auto& [k, v] : endpoint.headers) put(k, v);
  for (const auto& [k, v] : *a.call_headers) put(k, v);
  char attempt[12];
  auto written = std::to_chars(attempt, attempt + sizeof attempt, a.number);
  put("X-Failover-Attempt", std::string_view(attempt, written.ptr - attempt));
  // The body was encoded once, without the model: each attempt puts its route's model in front
  // (or leaves it to the URL, as its dialect says). A translated body is shaped already.
  const Translated* t = a.body >= 0 ? &translated_[index(a.body)] : nullptr;
  const std::string& rest = t ? (a.continuation ? continue_translated_ : t->body)
                              : (a.continuation ? continue_body_ : body_rest_);
  endpoint.api->put_model(route.model_json, rest, r.body);
  if (!t && !a.streamed) {  // the same body without its stream members, which come last
    r.body.erase(whole_at_ + (r.body.size() - rest.size()), std::string::npos);
    r.body += '}';
  }
  if (a.shaping && !t) wire::shape(*a.shaping, r.body);  // params, drop_params, model rules
  r.total_timeout = a.total;
  r.connect_timeout = a.connect;
  // A streamed answer's headers come at once from a healthy route; an answer sent whole sends
  // them only when its generation ends: its attempt limit bounds it.
  r.first_byte_timeout = a.streamed ? a.headers : Duration::zero();
  r.max_response_bytes = a.max_response_bytes;
  if (r.ca_bundle != *a.ca_bundle) r.ca_bundle = *a.ca_bundle;
  r.stream = a.streamed;
  r.success_headers = a.success_headers;
  return r;
}

}  // namespace failover::detail
