#include "mock_server.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
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

std::string error_body(int status, const std::string& code) {
  const char* type = status == 429   ? "rate_limit_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  json e = {{"message", "failover mock: scripted " + std::to_string(status)},
            {"type", type},
            {"param", nullptr},
            {"code", code.empty() ? json(nullptr) : json(code)}};
  return json{{"error", e}}.dump();
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
          "stream, hang, malformed, prefill)");
    }
  }
  return s;
}

MockServer::MockServer(MockScenario scenario) : scenario_(std::move(scenario)) {
  server_.new_task_queue = [] { return new httplib::ThreadPool(64); };
  server_.set_tcp_nodelay(true);
  server_.set_keep_alive_max_count(100000);
  server_.Post("/v1/chat/completions",
               [this](const httplib::Request& req, httplib::Response& res) { chat(req, res); });
  server_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    for (const auto& [k, v] : scenario_.headers) res.set_header(k, v);
    if (scenario_.then != 200) {  // the steady state of the scenario, so probes see it too
      res.status = scenario_.then;
      res.set_content(error_body(scenario_.then, scenario_.error_code), "application/json");
      return;
    }
    json data = json::array();
    for (const std::string& m : scenario_.models) {
      data.push_back(
          {{"id", m}, {"object", "model"}, {"created", 0}, {"owned_by", "failover-mock"}});
    }
    res.set_content(json{{"object", "list"}, {"data", data}}.dump(), "application/json");
  });
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

void MockServer::stop() {
  stopping_.store(true);
  server_.stop();
}

double MockServer::draw(std::uint64_t n, std::uint64_t salt) const {
  std::uint64_t x = mix(scenario_.seed ^ mix(n * 4 + salt));
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

void MockServer::chat(const httplib::Request& req, httplib::Response& res) {
  const std::uint64_t n = requests_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(last_mutex_);
    last_body_ = req.body;
  }
  const MockScenario& s = scenario_;
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
    if (status == 429 || status == 503) {
      if (!s.retry_after.empty()) res.set_header("Retry-After", s.retry_after);
      if (s.retry_after_ms) res.set_header("retry-after-ms", std::to_string(*s.retry_after_ms));
    }
    std::string code = s.error_code;
    if (code.empty() && status == 429) code = "rate_limit_exceeded";
    res.set_content(error_body(status, code), "application/json");
    return;
  }
  if (s.malformed) {
    res.set_content("{\"id\": \"chatcmpl-mock\", \"choices\": [{\"message\": ", "application/json");
    return;
  }

  json request = json::parse(req.body, nullptr, false);
  std::string model =
      request.is_object() ? request.value("model", std::string("gpt-4.1")) : std::string("gpt-4.1");
  // A trailing assistant message is a partial answer to continue.
  std::string reply = s.reply;
  if (request.is_object() && request.contains("messages") && request["messages"].is_array() &&
      !request["messages"].empty() && request["messages"].back().is_object() &&
      request["messages"].back().value("role", std::string()) == "assistant") {
    const json& content = request["messages"].back()["content"];
    const std::string prefix = content.is_string() ? content.get<std::string>() : std::string();
    if (s.prefill == MockScenario::Prefill::Reject) {
      res.status = 400;
      res.set_content(
          json{{"error",
                {{"message", "failover mock: a trailing assistant message is not supported"},
                 {"type", "invalid_request_error"},
                 {"param", "messages"},
                 {"code", nullptr}}}}
              .dump(),
          "application/json");
      return;
    }
    if (s.prefill == MockScenario::Prefill::Continue &&
        reply.compare(0, prefix.size(), prefix) == 0) {
      reply.erase(0, prefix.size());
    }
  }
  bool stream = request.is_object() && request.value("stream", false);
  bool usage_in_stream = stream && request.contains("stream_options") &&
                         request["stream_options"].is_object() &&
                         request["stream_options"].value("include_usage", false);
  const std::int64_t prompt_tokens = static_cast<std::int64_t>(req.body.size() / 4);
  const std::int64_t completion_tokens = static_cast<std::int64_t>(reply.size() / 4 + 1);
  json usage = {{"prompt_tokens", prompt_tokens},
                {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens}};
  const std::string id = "chatcmpl-mock-" + std::to_string(n + 1);

  if (!stream) {
    json body = {{"id", id},
                 {"object", "chat.completion"},
                 {"created", 1732406400},
                 {"model", model},
                 {"choices", json::array({{{"index", 0},
                                           {"message", {{"role", "assistant"}, {"content", reply}}},
                                           {"finish_reason", "stop"}}})},
                 {"usage", usage}};
    res.set_content(body.dump(), "application/json");
    return;
  }
  auto chunk = [id, model](const json& delta, const json& finish) {
    json c = {
        {"id", id},
        {"object", "chat.completion.chunk"},
        {"created", 1732406400},
        {"model", model},
        {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
    return "data: " + c.dump() + "\n\n";
  };
  std::vector<std::string> events;
  events.push_back(chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
  for (const std::string& piece : split_reply(reply, s.stream_chunks)) {
    events.push_back(chunk({{"content", piece}}, nullptr));
  }
  const int cut_after = s.cut_after;
  const int stall_after = s.stall_after;
  const auto stall = std::chrono::milliseconds(s.stall_ms);
  std::string tail = chunk(json::object(), "stop");
  if (usage_in_stream) {
    tail += "data: " +
            json{{"id", id},       {"object", "chat.completion.chunk"}, {"created", 1732406400},
                 {"model", model}, {"choices", json::array()},          {"usage", usage}}
                .dump() +
            "\n\n";
  }
  tail += "data: [DONE]\n\n";
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
