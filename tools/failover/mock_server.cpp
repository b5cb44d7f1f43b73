#include "mock_server.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace failover::tools {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw std::invalid_argument("scenario." + key + " " + what);
}

std::int64_t whole(const json& v, const std::string& key, std::int64_t min) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < min) {
    bad(key, "must be a whole number of at least " + std::to_string(min));
  }
  return v.get<std::int64_t>();
}

int http_status(const json& v, const std::string& key) {
  auto s = whole(v, key, 100);
  if (s > 599) bad(key, "must be an HTTP status (100-599)");
  return static_cast<int>(s);
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::vector<std::string> split_reply(const std::string& reply, int pieces) {
  std::vector<std::string> out;
  if (pieces <= 0) {  // by words, keeping the spaces
    std::string current;
    for (char c : reply) {
      current += c;
      if (c == ' ') {
        out.push_back(current);
        current.clear();
      }
    }
    if (!current.empty()) out.push_back(current);
  } else {
    std::size_t n = static_cast<std::size_t>(pieces);
    std::size_t size = (reply.size() + n - 1) / n;
    for (std::size_t i = 0; i < reply.size(); i += std::max<std::size_t>(size, 1)) {
      out.push_back(reply.substr(i, size));
    }
  }
  if (out.empty()) out.push_back("");
  return out;
}

}  // namespace

MockScenario parse_scenario(const std::string& text) {
  json doc = json::parse(text, nullptr, false, true);
  if (doc.is_discarded() || !doc.is_object()) {
    throw std::invalid_argument("scenario is not a JSON object");
  }
  MockScenario s;
  for (const auto& [key, v] : doc.items()) {
    if (key == "seed") {
      s.seed = static_cast<std::uint64_t>(whole(v, key, 0));
    } else if (key == "models") {
      if (!v.is_array() || v.empty()) bad(key, "must be a non-empty array of model names");
      s.models.clear();
      for (const auto& m : v) {
        if (!m.is_string()) bad(key, "must hold strings");
        s.models.push_back(m.get<std::string>());
      }
    } else if (key == "reply") {
      if (!v.is_string()) bad(key, "must be a string");
      s.reply = v.get<std::string>();
    } else if (key == "statuses") {
      if (!v.is_array()) bad(key, "must be an array of HTTP statuses");
      for (const auto& st : v) s.statuses.push_back(http_status(st, key));
    } else if (key == "then") {
      s.then = http_status(v, key);
    } else if (key == "error_rate") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
        bad(key, "must be a number from 0 to 1");
      }
      s.error_rate = v.get<double>();
    } else if (key == "error_status") {
      s.error_status = http_status(v, key);
    } else if (key == "error_code") {
      if (!v.is_string()) bad(key, "must be a string");
      s.error_code = v.get<std::string>();
    } else if (key == "retry_after") {
      if (!v.is_string()) bad(key, "must be a string (seconds or an HTTP date)");
      s.retry_after = v.get<std::string>();
    } else if (key == "retry_after_ms") {
      s.retry_after_ms = whole(v, key, 0);
    } else if (key == "headers") {
      if (!v.is_object()) bad(key, "must be an object of strings");
      for (const auto& [name, value] : v.items()) {
        if (!value.is_string()) bad(key + "." + name, "must be a string");
        s.headers[name] = value.get<std::string>();
      }
    } else if (key == "latency_ms") {
      if (v.is_number_integer()) {
        s.latency_min_ms = s.latency_max_ms = whole(v, key, 0);
      } else if (v.is_object()) {
        for (const auto& [k, x] : v.items()) {
          if (k == "min") {
            s.latency_min_ms = whole(x, key + ".min", 0);
          } else if (k == "max") {
            s.latency_max_ms = whole(x, key + ".max", 0);
          } else {
            bad(key + "." + k, "is not a known key (known: min, max)");
          }
        }
        if (s.latency_max_ms < s.latency_min_ms) bad(key, "max must be at least min");
      } else {
        bad(key, "must be a whole number of ms or {\"min\": ..., \"max\": ...}");
      }
    } else if (key == "stream") {
      if (!v.is_object()) bad(key, "must be an object");
      for (const auto& [k, x] : v.items()) {
        if (k == "chunks") {
          s.stream_chunks = static_cast<int>(whole(x, key + ".chunks", 1));
        } else if (k == "interval_ms") {
          s.stream_interval_ms = whole(x, key + ".interval_ms", 0);
        } else if (k == "cut_after") {
          s.cut_after = static_cast<int>(whole(x, key + ".cut_after", 0));
        } else if (k == "stall_after") {
          s.stall_after = static_cast<int>(whole(x, key + ".stall_after", 0));
        } else if (k == "stall_ms") {
          s.stall_ms = whole(x, key + ".stall_ms", 0);
        } else {
          bad(key + "." + k,
              "is not a known key (known: chunks, interval_ms, cut_after, stall_after, stall_ms)");
        }
      }
    } else if (key == "dialect") {
      const std::string d = v.is_string() ? v.get<std::string>() : std::string();
      if (d != "openai" && d != "anthropic" && d != "gemini") {
        bad(key, "must be \"openai\", \"anthropic\" or \"gemini\"");
      }
      s.dialect = d;
    } else if (key == "tool_call") {
      if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
          v["name"].get<std::string>().empty()) {
        bad(key, "must be {\"name\": \"...\", \"arguments\": {...}}");
      }
      s.tool_name = v["name"].get<std::string>();
      const json args = v.value("arguments", json::object());
      if (!args.is_object()) bad(key + ".arguments", "must be a JSON object");
      s.tool_arguments = args.dump();
    } else if (key == "hang") {
      if (!v.is_boolean()) bad(key, "must be true or false");
      s.hang = v.get<bool>();
    } else if (key == "malformed") {
      if (!v.is_boolean()) bad(key, "must be true or false");
      s.malformed = v.get<bool>();
    } else if (key == "prefill") {
      const std::string mode = v.is_string() ? v.get<std::string>() : std::string();
      if (mode == "ignore") {
        s.prefill = MockScenario::Prefill::Ignore;
      } else if (mode == "continue") {
        s.prefill = MockScenario::Prefill::Continue;
      } else if (mode == "reject") {
        s.prefill = MockScenario::Prefill::Reject;
      } else {
        bad(key, "must be \"ignore\", \"continue\" or \"reject\"");
      }
    } else {
      bad(key,
          "is not a known key (known: seed, models, reply, statuses, then, error_rate, "
          "error_status, error_code, retry_after, retry_after_ms, headers, latency_ms, "
          "stream, hang, malformed, prefill, dialect, tool_call)");
    }
  }
  return s;
}

MockServer::MockServer(MockScenario scenario) : scenario_(std::move(scenario)) {
  server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
  server_.set_tcp_nodelay(true);
  server_.set_keep_alive_max_count(100000);
  auto chat = [this](const httplib::Request& req, httplib::Response& res) { this->chat(req, res); };
  auto models = [this](const httplib::Request&, httplib::Response& res) { list_models(res); };
  if (scenario_.dialect == "gemini") {
    server_.Post(R"(/v1beta/models/([^/:]+):(generateContent|streamGenerateContent))", chat);
    server_.Get("/v1beta/models", models);
  } else {
    server_.Post(scenario_.dialect == "anthropic" ? "/v1/messages" : "/v1/chat/completions", chat);
    server_.Get("/v1/models", models);
  }
  server_.Get("/_mock/stats", [this](const httplib::Request&, httplib::Response& res) {
    json stats = {{"requests", requests_.load()}, {"last_request", nullptr}};
    {
      std::lock_guard<std::mutex> lock(last_mutex_);
      json last = json::parse(last_body_, nullptr, false);
      if (!last.is_discarded()) stats["last_request"] = std::move(last);
    }
    res.set_content(stats.dump(), "application/json");
  });
}

MockServer::~MockServer() { stop(); }

int MockServer::bind(int port) {
  if (port == 0) return server_.bind_to_any_port("127.0.0.1");
  return server_.bind_to_port("127.0.0.1", port) ? port : -1;
}

void MockServer::run() { server_.listen_after_bind(); }

void MockServer::log_requests() {
  server_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    std::fprintf(stderr, "failover mock: %s %s -> %d\n", req.method.c_str(), req.path.c_str(),
                 res.status);
  });
}

void MockServer::stop() {
  stopping_.store(true);
  server_.stop();
}

double MockServer::draw(std::uint64_t n, std::uint64_t salt) const {
  std::uint64_t x = mix(scenario_.seed ^ mix(n * 4 + salt));
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

void MockServer::list_models(httplib::Response& res) const {
  const MockScenario& s = scenario_;
  for (const auto& [k, v] : s.headers) res.set_header(k, v);
  if (s.then != 200) {  // the steady state of the scenario, so probes see it too
    res.status = s.then;
    res.set_content(error_body(s.then), "application/json");
    return;
  }
  json list = json::array();
  for (const std::string& m : s.models) {
    if (s.dialect == "gemini") {
      list.push_back({{"name", "models/" + m}, {"displayName", m}});
    } else if (s.dialect == "anthropic") {
      list.push_back({{"type", "model"},
                      {"id", m},
                      {"display_name", m},
                      {"created_at", "2025-01-01T00:00:00Z"}});
    } else {
      list.push_back(
          {{"id", m}, {"object", "model"}, {"created", 0}, {"owned_by", "failover-mock"}});
    }
  }
  json doc = s.dialect == "gemini"      ? json{{"models", list}}
             : s.dialect == "anthropic" ? json{{"data", list}, {"has_more", false}}
                                        : json{{"object", "list"}, {"data", list}};
  res.set_content(doc.dump(), "application/json");
}

// An error body as the dialect's provider writes it.
std::string MockServer::error_body(int status) const {
  const MockScenario& s = scenario_;
  const std::string message = "failover mock: scripted " + std::to_string(status);
  if (s.dialect == "anthropic") {
    const char* type = status == 400   ? "invalid_request_error"
                       : status == 401 ? "authentication_error"
                       : status == 403 ? "permission_error"
                       : status == 404 ? "not_found_error"
                       : status == 413 ? "request_too_large"
                       : status == 429 ? "rate_limit_error"
                       : status == 529 ? "overloaded_error"
                                       : "api_error";
    return json{
        {"type", "error"},
        {"error",
         {{"type", s.error_code.empty() ? std::string(type) : s.error_code}, {"message", message}}}}
        .dump();
  }
  if (s.dialect == "gemini") {
    const char* state = status == 400   ? "INVALID_ARGUMENT"
                        : status == 401 ? "UNAUTHENTICATED"
                        : status == 403 ? "PERMISSION_DENIED"
                        : status == 404 ? "NOT_FOUND"
                        : status == 429 ? "RESOURCE_EXHAUSTED"
                        : status == 503 ? "UNAVAILABLE"
                        : status == 504 ? "DEADLINE_EXCEEDED"
                                        : "INTERNAL";
    json e = {{"code", status},
              {"message", message},
              {"status", s.error_code.empty() ? std::string(state) : s.error_code}};
    if (status == 429 && !s.retry_after.empty()) {
      e["details"] = json::array({{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                                   {"retryDelay", s.retry_after + "s"}}});
    }
    return json{{"error", e}}.dump();
  }
  const char* type = status == 429   ? "rate_limit_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  std::string code = s.error_code;
  if (code.empty() && status == 429) code = "rate_limit_exceeded";
  json e = {{"message", message},
            {"type", type},
            {"param", nullptr},
            {"code", code.empty() ? json(nullptr) : json(code)}};
  return json{{"error", e}}.dump();
}

namespace {

// The text of a trailing assistant turn of a request in any dialect (a partial answer to
// continue), or nothing.
std::optional<std::string> trailing_assistant(const json& request, const std::string& dialect) {
  const char* list = dialect == "gemini" ? "contents" : "messages";
  if (!request.is_object() || !request.contains(list) || !request[list].is_array() ||
      request[list].empty() || !request[list].back().is_object()) {
    return std::nullopt;
  }
  const json& last = request[list].back();
  if (last.value("role", std::string()) != (dialect == "gemini" ? "model" : "assistant")) {
    return std::nullopt;
  }
  std::string text;
  const json& content = last.contains("parts") ? last["parts"] : last.value("content", json());
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {
    for (const json& b : content) {
      if (b.is_object() && b.contains("text") && b["text"].is_string()) {
        text += b["text"].get<std::string>();
      }
    }
  }
  return text;
}

std::string sse(const json& data) { return "data: " + data.dump() + "\n\n"; }
std::string sse(const char* event, const json& data) {
  return std::string("event: ") + event + "\n" + sse(data);
}

}  // namespace

void MockServer::chat(const httplib::Request& req, httplib::Response& res) {
  const std::uint64_t n = requests_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(last_mutex_);
    last_body_ = req.body;
  }
  const MockScenario& s = scenario_;
  const std::string& dialect = s.dialect;
  for (const auto& [k, v] : s.headers) res.set_header(k, v);

  if (s.hang) {  // hold the request until the server stops
    while (!stopping_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return;
  }
  std::int64_t latency = s.latency_min_ms;
  if (s.latency_max_ms > s.latency_min_ms) {
    latency += static_cast<std::int64_t>(
        draw(n, 1) * static_cast<double>(s.latency_max_ms - s.latency_min_ms + 1));
  }
  if (latency > 0) std::this_thread::sleep_for(std::chrono::milliseconds(latency));

  int status = n < s.statuses.size() ? s.statuses[n] : s.then;
  if (status == 200 && s.error_rate > 0 && draw(n, 2) < s.error_rate) status = s.error_status;

  if (status != 200) {
    res.status = status;
    if (status == 429 || status == 503 || status == 529) {
      if (!s.retry_after.empty()) res.set_header("Retry-After", s.retry_after);
      if (s.retry_after_ms) res.set_header("retry-after-ms", std::to_string(*s.retry_after_ms));
    }
    res.set_content(error_body(status), "application/json");
    return;
  }
  if (s.malformed) {
    res.set_content("{\"id\": \"mock\", \"choices\": [{\"message\": ", "application/json");
    return;
  }

  json request = json::parse(req.body, nullptr, false);
  std::string model =
      dialect == "gemini" && req.matches.size() > 1 ? req.matches[1].str()
      : request.is_object() && request.contains("model") && request["model"].is_string()
          ? request["model"].get<std::string>()
          : std::string("gpt-4.1");
  // A trailing assistant message is a partial answer to continue.
  std::string reply = s.reply;
  if (auto prefix = trailing_assistant(request, dialect)) {
    const bool trailing_space =
        !prefix->empty() && std::string(" \t\r\n").find(prefix->back()) != std::string::npos;
    if (s.prefill == MockScenario::Prefill::Reject || (dialect == "anthropic" && trailing_space)) {
      res.status = 400;
      res.set_content(error_body(400), "application/json");
      return;
    }
    if (s.prefill == MockScenario::Prefill::Continue &&
        reply.compare(0, prefix->size(), *prefix) == 0) {
      reply.erase(0, prefix->size());
    }
  }
  const bool stream = dialect == "gemini" ? req.matches.size() > 2 &&
                                                req.matches[2].str() == "streamGenerateContent"
                                          : request.is_object() && request.value("stream", false);
  const bool usage_in_stream = stream && request.contains("stream_options") &&
                               request["stream_options"].is_object() &&
                               request["stream_options"].value("include_usage", false);
  const bool tool = !s.tool_name.empty();
  const std::int64_t prompt_tokens = static_cast<std::int64_t>(req.body.size() / 4);
  const std::int64_t completion_tokens =
      static_cast<std::int64_t>((tool ? s.tool_arguments : reply).size() / 4 + 1);
  const std::string id = "mock-" + std::to_string(n + 1);
  const std::string call_id = "call_mock_" + std::to_string(n + 1);
  const json arguments = tool ? json::parse(s.tool_arguments) : json::object();

  // The answer's pieces: the reply's words, or the tool call's arguments in three parts.
  std::vector<std::string> pieces =
      tool ? split_reply(s.tool_arguments, 3) : split_reply(reply, s.stream_chunks);

  std::vector<std::string> events;  // streamed one by one, with the faults of the scenario
  std::string tail;                 // the finish, after the last piece
  std::string whole;                // the non-streamed answer
  if (dialect == "anthropic") {
    json usage = {{"input_tokens", prompt_tokens},
                  {"output_tokens", completion_tokens},
                  {"cache_creation_input_tokens", 0},
                  {"cache_read_input_tokens", 0}};
    const char* stop = tool ? "tool_use" : "end_turn";
    json block = tool ? json{{"type", "tool_use"},
                             {"id", call_id},
                             {"name", s.tool_name},
                             {"input", arguments}}
                      : json{{"type", "text"}, {"text", reply}};
    whole = json{
        {"id", "msg_" + id},
        {"type", "message"},
        {"role", "assistant"},
        {"model", model},
        {"content", json::array({block})},
        {"stop_reason", stop},
        {"stop_sequence", nullptr},
        {"usage",
         usage}}.dump();
    json start = {{"id", "msg_" + id},
                  {"type", "message"},
                  {"role", "assistant"},
                  {"model", model},
                  {"content", json::array()},
                  {"stop_reason", nullptr},
                  {"stop_sequence", nullptr},
                  {"usage", {{"input_tokens", prompt_tokens}, {"output_tokens", 1}}}};
    events.push_back(sse("message_start", {{"type", "message_start"}, {"message", start}}) +
                     sse("content_block_start",
                         {{"type", "content_block_start"},
                          {"index", 0},
                          {"content_block", tool ? json{{"type", "tool_use"},
                                                        {"id", call_id},
                                                        {"name", s.tool_name},
                                                        {"input", json::object()}}
                                                 : json{{"type", "text"}, {"text", ""}}}}) +
                     sse("ping", {{"type", "ping"}}));
    for (const std::string& piece : pieces) {
      json delta = tool ? json{{"type", "input_json_delta"}, {"partial_json", piece}}
                        : json{{"type", "text_delta"}, {"text", piece}};
      events.push_back(sse("content_block_delta",
                           {{"type", "content_block_delta"}, {"index", 0}, {"delta", delta}}));
    }
    tail = sse("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}) +
           sse("message_delta", {{"type", "message_delta"},
                                 {"delta", {{"stop_reason", stop}, {"stop_sequence", nullptr}}},
                                 {"usage", {{"output_tokens", completion_tokens}}}}) +
           sse("message_stop", {{"type", "message_stop"}});
  } else if (dialect == "gemini") {
    json usage = {{"promptTokenCount", prompt_tokens},
                  {"candidatesTokenCount", completion_tokens},
                  {"totalTokenCount", prompt_tokens + completion_tokens}};
    auto response = [&](json parts, const char* finish, bool with_usage) {
      json candidate = {{"content", {{"role", "model"}, {"parts", std::move(parts)}}},
                        {"index", 0}};
      if (finish) candidate["finishReason"] = finish;
      json r = {
          {"candidates", json::array({candidate})}, {"modelVersion", model}, {"responseId", id}};
      if (with_usage) r["usageMetadata"] = usage;
      return r;
    };
    json call = {{"functionCall", {{"name", s.tool_name}, {"args", arguments}}}};
    whole = response(json::array({tool ? call : json{{"text", reply}}}), "STOP", true).dump();
    if (tool) {  // Gemini sends a call whole, in one event
      events.push_back(sse(response(json::array({call}), nullptr, false)));
    } else {
      for (const std::string& piece : pieces) {
        events.push_back(sse(response(json::array({{{"text", piece}}}), nullptr, false)));
      }
    }
    tail = sse(response(json::array({{{"text", ""}}}), "STOP", true));
  } else {
    json usage = {{"prompt_tokens", prompt_tokens},
                  {"completion_tokens", completion_tokens},
                  {"total_tokens", prompt_tokens + completion_tokens}};
    const char* finish = tool ? "tool_calls" : "stop";
    json message = {{"role", "assistant"}, {"content", reply}};
    if (tool) {
      message["content"] = nullptr;
      message["tool_calls"] =
          json::array({{{"id", call_id},
                        {"type", "function"},
                        {"function", {{"name", s.tool_name}, {"arguments", s.tool_arguments}}}}});
    }
    whole = json{
        {"id", "chatcmpl-" + id},
        {"object", "chat.completion"},
        {"created", 1732406400},
        {"model", model},
        {"choices", json::array({{{"index", 0}, {"message", message}, {"finish_reason", finish}}})},
        {"usage",
         usage}}.dump();
    auto chunk = [&](const json& delta, const json& end) {
      return sse(
          {{"id", "chatcmpl-" + id},
           {"object", "chat.completion.chunk"},
           {"created", 1732406400},
           {"model", model},
           {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", end}}})}});
    };
    events.push_back(chunk(
        tool ? json{{"role", "assistant"},
                    {"content", nullptr},
                    {"tool_calls",
                     json::array({{{"index", 0},
                                   {"id", call_id},
                                   {"type", "function"},
                                   {"function", {{"name", s.tool_name}, {"arguments", ""}}}}})}}
             : json{{"role", "assistant"}, {"content", ""}},
        nullptr));
    for (const std::string& piece : pieces) {
      events.push_back(
          chunk(tool ? json{{"tool_calls",
                             json::array({{{"index", 0}, {"function", {{"arguments", piece}}}}})}}
                     : json{{"content", piece}},
                nullptr));
    }
    tail = chunk(json::object(), finish);
    if (usage_in_stream) {
      tail += sse({{"id", "chatcmpl-" + id},
                   {"object", "chat.completion.chunk"},
                   {"created", 1732406400},
                   {"model", model},
                   {"choices", json::array()},
                   {"usage", usage}});
    }
    tail += "data: [DONE]\n\n";
  }
  if (!stream) {
    res.set_content(whole, "application/json");
    return;
  }
  const int cut_after = s.cut_after;
  const int stall_after = s.stall_after;
  const auto stall = std::chrono::milliseconds(s.stall_ms);
  const auto interval = std::chrono::milliseconds(s.stream_interval_ms);
  res.set_chunked_content_provider(
      "text/event-stream", [this, events, tail, cut_after, stall_after, stall, interval](
                               std::size_t, httplib::DataSink& sink) {
        for (std::size_t i = 0; i < events.size(); ++i) {
          if (cut_after >= 0 && i > static_cast<std::size_t>(cut_after)) return false;  // drop
          if (stall_after >= 0 && i == static_cast<std::size_t>(stall_after) + 1) {
            // Silent with the connection open, until the client leaves or the stall ends.
            const auto until = std::chrono::steady_clock::now() + stall;
            while (!stopping_.load() && sink.is_writable() &&
                   (stall.count() == 0 || std::chrono::steady_clock::now() < until)) {
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            return false;
          }
          if (i > 0 && interval.count() > 0) std::this_thread::sleep_for(interval);
          if (stopping_.load() || !sink.write(events[i].data(), events[i].size())) return false;
        }
        if (cut_after >= 0 && events.size() - 1 <= static_cast<std::size_t>(cut_after)) {
          return false;  // cut right after the last piece, before the finish
        }
        sink.write(tail.data(), tail.size());
        sink.done();
        return true;
      });
}

}  // namespace failover::tools
