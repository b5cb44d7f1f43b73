#include "wire/dialect.hpp"

#include "wire/native_parts.hpp"

#include <array>

namespace failover::wire {

void DialectApi::add_required(const std::map<std::string, std::string>&, HttpHeaders&) const {}

std::optional<std::string> DialectApi::encode(const ChatRequest& request, bool stream,
                                              const RequestShaping* shaping,
                                              std::string& body) const {
  return encode_native(id(), request, stream, shaping, body);
}

void DialectApi::put_model(std::string_view model_json, std::string_view rest,
                           std::string& out) const {
  with_model(model_json, rest, out);
}

std::string DialectApi::trim_prefix(std::string&) const { return {}; }

std::string DialectApi::probe_body(const std::string& model, std::string_view model_json) const {
  if (!translates()) {
    return nlohmann::json{{"model", model},
                          {"messages", {{{"role", "user"}, {"content", "ping"}}}},
                          {"max_tokens", 1}}
        .dump();
  }
  ChatRequest ping;
  ping.messages.push_back(Message::user("ping"));
  ping.max_tokens = 1;
  std::string rest;
  encode(ping, /*stream=*/false, nullptr, rest);  // always translatable
  std::string body;
  put_model(model_json, rest, body);
  return body;
}

namespace {

// Chat Completions, as OpenAI and every OpenAI-compatible server speak it.
class OpenAIApi final : public DialectApi {
 public:
  Dialect id() const override { return Dialect::OpenAI; }
  const char* name() const override { return "openai"; }
  RouteUrls urls(const std::string& base, const std::string& query,
                 const std::string&) const override {
    std::string url = base + "/chat/completions" + query;
    return {url, url};
  }
  void add_key(const std::string& api_key, HttpHeaders& headers) const override {
    headers.emplace_back("Authorization", "Bearer " + api_key);
  }
  bool translates() const override { return false; }
  // The Chat Completions body; a route's shaping is applied to it per route, with the model.
  std::optional<std::string> encode(const ChatRequest& request, bool stream, const RequestShaping*,
                                    std::string& body) const override {
    return encode_request(request, stream, body);
  }
  std::optional<DecodeFailure> decode(std::string& body, ChatResponse& out) const override {
    return decode_response(body, out);
  }
  bool stream_refusal_means_whole() const override { return true; }
};

const DialectApi& openai_api() {
  static const OpenAIApi api;
  return api;
}

// In enum order.
std::array<const DialectApi*, 3> all_apis() {
  return {&openai_api(), &native::anthropic_api(), &native::gemini_api()};
}

}  // namespace

const DialectApi& api_of(Dialect dialect) {
  for (const DialectApi* api : all_apis()) {
    if (api->id() == dialect) return *api;
  }
  return openai_api();
}

const DialectApi* api_named(std::string_view name) {
  for (const DialectApi* api : all_apis()) {
    if (name == api->name()) return api;
  }
  return nullptr;
}

std::string dialect_names() {
  const auto apis = all_apis();
  std::string out;
  for (std::size_t i = 0; i < apis.size(); ++i) {
    if (i > 0) out += i + 1 == apis.size() ? " or " : ", ";
    out += std::string("\"") + apis[i]->name() + "\"";
  }
  return out;
}

std::string percent_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<bool> lists_model(std::string_view body, const std::string& model) {
  auto doc = parse_json(body);
  if (!doc || !doc->is_object()) return std::nullopt;
  const bool named = doc->contains("models") && (*doc)["models"].is_array();  // `models/{id}`
  if (!named && !(doc->contains("data") && (*doc)["data"].is_array())) return std::nullopt;
  bool listed = false;
  for (const auto& m : (*doc)[named ? "models" : "data"]) {
    if (!m.is_object()) continue;
    const std::string id = m.value(named ? "name" : "id", "");
    listed =
        listed || id == model || (named && (id == "models/" + model || "models/" + id == model));
  }
  return listed;
}

}  // namespace failover::wire
