// The failover command-line tool: chat, health, shadow, state, mock (docs/cli.md).
// Exit codes: 0 success, 1 the call (or a probe) failed, 2 bad usage or bad configuration.

#include "cli_common.hpp"
#include "mock_server.hpp"
#include "shadow_replay.hpp"
#include "state_command.hpp"

#include <failover/failover.hpp>
#include <failover/json.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace {

// Ordered, so a response is printed with its members in the order the server sent them.
using json = nlohmann::ordered_json;
namespace fo = failover;

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

std::atomic<bool> g_interrupted{false};
fo::tools::MockServer* g_mock = nullptr;

void on_signal(int) {
  g_interrupted.store(true);
  if (g_mock) g_mock->stop();
}

double ms(fo::Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double round3(double v) {
  return static_cast<double>(static_cast<long long>(v * 1000.0 + 0.5)) / 1000.0;
}

json usage_json(const std::optional<fo::Usage>& u) {
  if (!u) return nullptr;
  return {{"prompt_tokens", u->prompt_tokens},
          {"completion_tokens", u->completion_tokens},
          {"total_tokens", u->total_tokens}};
}

json error_json(const fo::Error& e) {
  json err = {{"kind", std::string(fo::to_string(e.kind()))},
              {"message", e.message()},
              {"status", e.http_status() ? json(e.http_status()) : json(nullptr)},
              {"attempts", json(e.attempts())},
              {"skipped", json(e.skipped())}};
  if (!e.provider_code().empty()) err["code"] = e.provider_code();
  if (const fo::ChatResponse* p = e.partial()) {
    json calls = json::array();
    for (const fo::ToolCall& t : p->tool_calls()) {
      calls.push_back({{"id", t.id}, {"name", t.name}, {"arguments", t.arguments}});
    }
    err["partial"] = {
        {"text", p->text()},
        {"tool_calls", calls},
        {"finish_reason", p->finish_reason().empty() ? json(nullptr) : json(p->finish_reason())},
        {"usage", usage_json(p->usage)}};
  }
  return json{{"error", err}};
}

// Loads the client or explains why not (exit code 2). Its warnings (a shared state store that
// cannot be reached, a skipped stream event) go to stderr.
std::optional<fo::Client> load_client(const std::string& flag, const fo::tools::LogArgs& log) {
  std::optional<fo::ClientOptions> loaded = fo::tools::load_options(flag, log);
  if (!loaded) return std::nullopt;
  try {
    return fo::Client(std::move(*loaded));
  } catch (const fo::ConfigError& e) {
    std::cerr << "failover: bad configuration: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "failover: cannot start: " << e.what() << "\n";
  }
  return std::nullopt;
}

struct ChatArgs {
  std::string config;
  fo::tools::LogArgs log;
  bool stream = false;
  bool as_json = false;
  std::string user;
  std::string system;
  std::vector<std::string> models;
  bool usage = false;
  int max_tokens = 0;  // 0: not sent
  std::string message;
};

json usage_json(const fo::UsageReport& report) {
  json routes = json::array();
  for (const fo::RouteUsage& u : report.routes) {
    routes.push_back({{"endpoint", u.route.endpoint},
                      {"model", u.route.model},
                      {"calls", u.calls},
                      {"failures", u.failures},
                      {"error_rate", u.error_rate},
                      {"prompt_tokens", u.prompt_tokens},
                      {"cached_tokens", u.cached_tokens},
                      {"completion_tokens", u.completion_tokens},
                      {"cost_usd", u.priced ? json(u.cost_usd) : json(nullptr)},
                      {"average_latency_ms", round3(ms(u.average_latency))},
                      {"p99_latency_ms", round3(ms(u.p99_latency))}});
  }
  return {{"routes", routes}, {"calls", report.calls}, {"cost_usd", report.cost_usd}};
}

void print_usage_table(const fo::UsageReport& report) {
  // "served": the route's successful attempts; "failed": its failed ones.
  std::fprintf(stderr, "\n%-28s %6s %6s %10s %10s %12s %10s %10s\n", "route", "served", "failed",
               "tokens in", "tokens out", "cost usd", "avg ms", "p99 ms");
  for (const fo::RouteUsage& u : report.routes) {
    std::string route = u.route.endpoint + "/" + u.route.model;
    std::string cost = u.priced ? std::to_string(u.cost_usd) : "-";
    std::fprintf(
        stderr, "%-28s %6llu %6llu %10lld %10lld %12s %10.2f %10.2f\n", route.c_str(),
        static_cast<unsigned long long>(u.calls), static_cast<unsigned long long>(u.failures),
        static_cast<long long>(u.prompt_tokens), static_cast<long long>(u.completion_tokens),
        cost.c_str(), ms(u.average_latency), ms(u.p99_latency));
  }
}

int run_chat(const ChatArgs& a) {
  auto client = load_client(a.config, a.log);
  if (!client) return kUsage;
  if (!a.models.empty()) {  // a model no route serves is a usage error, named as such
    std::vector<std::string> served;
    for (const fo::RouteHealth& h : client->health().routes) {
      if (std::find(served.begin(), served.end(), h.route.model) == served.end()) {
        served.push_back(h.route.model);
      }
    }
    bool any = false;
    for (const std::string& m : a.models) {
      any = any || std::find(served.begin(), served.end(), m) != served.end();
    }
    if (!any) {
      std::string asked, list;
      for (const std::string& m : a.models) asked += (asked.empty() ? "" : ", ") + m;
      for (const std::string& m : served) list += (list.empty() ? "" : ", ") + m;
      std::cerr << "failover: --model " << asked << ": no route serves it; the configured routes "
                << "serve " << list << "\n";
      return kUsage;
    }
  }
  fo::ChatRequest request;
  if (!a.system.empty()) request.messages.push_back(fo::Message::system(a.system));
  request.messages.push_back(fo::Message::user(a.message));
  request.user = a.user;
  if (a.max_tokens > 0) request.max_tokens = a.max_tokens;
  fo::CallOptions call;
  call.user = a.user;
  call.models = a.models;

  fo::Result<fo::ChatResponse> result = [&] {
    if (!a.stream) return client->chat(request, call);
    request.include_usage = true;
    return client->chat_stream(
        request,
        [&](const fo::ChatChunk& chunk) {
          if (chunk.restart) {  // what was printed is void: the whole answer follows
            if (!a.as_json) {
              std::fputs("\n", stdout);
              std::fflush(stdout);
            }
            std::cerr << "failover: the stream broke; the answer restarts from the beginning\n";
            return !g_interrupted.load();
          }
          if (!a.as_json) {
            std::fwrite(chunk.content().data(), 1, chunk.content().size(), stdout);
            std::fflush(stdout);
          }
          return !g_interrupted.load();
        },
        call);
  }();

  if (!result) {
    const fo::Error& e = result.error();
    if (a.as_json) {
      json doc = error_json(e);
      if (a.usage) doc["usage"] = usage_json(client->usage_report());
      std::cout << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    } else {
      if (a.stream) std::cout << "\n";
      std::cerr << "failover: " << fo::to_string(e.kind()) << ": " << e.message() << "\n";
      if (a.usage) print_usage_table(client->usage_report());
    }
    return kFailed;
  }
  const fo::ChatResponse& r = *result;
  if (a.as_json) {
    json doc = json::parse(r.raw_json, nullptr, false);
    if (!doc.is_object()) doc = json::object();
    doc["failover"] = {
        {"served_by", {{"endpoint", r.served_by.endpoint}, {"model", r.served_by.model}}},
        {"attempts", json(r.attempts)},
        {"skipped", json(r.skipped)},
        {"cost_usd", r.cost_usd ? json(*r.cost_usd) : json(nullptr)}};
    if (a.usage) doc["failover"]["usage"] = usage_json(client->usage_report());
    std::cout << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else if (a.stream) {
    std::cout << "\n";
  } else {
    std::cout << r.text() << "\n";
  }
  if (a.usage && !a.as_json) print_usage_table(client->usage_report());
  return kOk;
}

struct HealthArgs {
  std::string config;
  fo::tools::LogArgs log;
  double watch = 0;
  bool as_json = false;
};

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

int print_health(fo::Client& client, bool as_json) {
  std::vector<fo::RouteProbe> probes = client.probe();
  bool all_ok = true;
  std::size_t failed = 0;
  json routes = json::array();
  std::ostringstream table;
  // Columns as wide as their longest entry, and a space more.
  std::size_t endpoint_width = 9, model_width = 6;
  for (const fo::RouteProbe& p : probes) {
    endpoint_width = std::max(endpoint_width, p.route.endpoint.size() + 2);
    model_width = std::max(model_width, p.route.model.size() + 2);
  }
  table << pad("ENDPOINT", endpoint_width) << pad("MODEL", model_width) << pad("STATUS", 8)
        << pad("LATENCY", 11) << pad("BREAKER", 11) << "RESULT\n";
  for (const fo::RouteProbe& p : probes) {
    all_ok = all_ok && p.ok;
    failed += p.ok ? 0 : 1;
    std::string result = p.ok ? "ok" : (p.error ? std::string(fo::to_string(*p.error)) : "not ok");
    if (!p.message.empty()) result += ": " + p.message;
    char latency[32];
    std::snprintf(latency, sizeof latency, "%.1f ms", ms(p.latency));
    table << pad(p.route.endpoint, endpoint_width) << pad(p.route.model, model_width)
          << pad(p.status ? std::to_string(p.status) : "-", 8) << pad(latency, 11)
          << pad(std::string(fo::to_string(p.state)), 11) << result << "\n";
    routes.push_back(
        {{"endpoint", p.route.endpoint},
         {"model", p.route.model},
         {"ok", p.ok},
         {"status", p.status ? json(p.status) : json(nullptr)},
         {"latency_ms", round3(ms(p.latency))},
         {"breaker", std::string(fo::to_string(p.state))},
         {"error", p.error ? json(std::string(fo::to_string(*p.error))) : json(nullptr)},
         {"message", p.message},
         {"model_listed", p.model_listed ? json(*p.model_listed) : json(nullptr)}});
  }
  if (as_json) {
    const json doc = {{"routes", routes}, {"ok", all_ok}};
    std::cout << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::cout << table.str();
    // Exit code 1 means some route failed its probe, not that calls fail: say which it is.
    if (failed > 0 && failed < probes.size()) {
      std::cout << failed << " of " << probes.size()
                << " routes failed their probe; calls fail over to the others\n";
    } else if (failed > 0) {
      std::cout << "every route failed its probe; calls would fail\n";
    }
  }
  std::cout.flush();
  return all_ok ? kOk : kFailed;
}

int run_health(const HealthArgs& a) {
  auto client = load_client(a.config, a.log);
  if (!client) return kUsage;
  if (a.watch <= 0) return print_health(*client, a.as_json);
  int code = -1;  // none printed yet
  while (!g_interrupted.load()) {
    // On a terminal the screen is cleared and redrawn; into a file or a pipe, each refresh
    // follows the last after a blank line.
    if (!a.as_json && ::isatty(STDOUT_FILENO)) {
      std::cout << "\033[H\033[2J";
    } else if (!a.as_json && code != -1) {
      std::cout << "\n";
    }
    code = print_health(*client, a.as_json);
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(static_cast<long long>(a.watch * 1000));
    while (!g_interrupted.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return code == -1 ? kOk : code;
}

struct MockArgs {
  fo::tools::LogArgs log;
  int port = 0;
  std::string scenario;
  std::string dialect;
  double seconds = 0;
};

int run_mock(const MockArgs& a) {
  fo::tools::MockScenario scenario;
  if (!a.scenario.empty()) {
    std::ifstream in(a.scenario);
    if (!in) {
      std::cerr << "failover mock: cannot open scenario " << a.scenario << "\n";
      return kUsage;
    }
    std::stringstream text;
    text << in.rdbuf();
    try {
      scenario = fo::tools::parse_scenario(text.str());
    } catch (const std::invalid_argument& e) {
      std::cerr << "failover mock: bad scenario: " << e.what() << "\n";
      return kUsage;
    }
  }
  if (!a.dialect.empty()) scenario.dialect = a.dialect;
  fo::tools::MockServer server(scenario);
  const std::string& level = a.log.level;
  if (level == "trace" || level == "debug" || (level.empty() && a.log.verbose)) {
    server.log_requests();
  }
  int port = server.bind(a.port);
  if (port <= 0) {
    std::cerr << "failover mock: cannot bind 127.0.0.1:" << a.port << "\n";
    return kFailed;
  }
  g_mock = &server;
  std::cout << "failover mock (" << scenario.dialect << ") listening on http://127.0.0.1:" << port
            << (scenario.dialect == "gemini" ? "/v1beta" : "/v1") << std::endl;
  std::thread stopper;
  if (a.seconds > 0) {
    stopper = std::thread([&] {
      auto until = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<long long>(a.seconds * 1000));
      while (!g_interrupted.load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      server.stop();
    });
  }
  server.run();
  g_interrupted.store(true);
  if (stopper.joinable()) stopper.join();
  g_mock = nullptr;
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  CLI::App app{"failover: talk to LLMs through an ordered list of routes that fail over"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("failover ") + FAILOVER_VERSION_STRING);

  ChatArgs chat;
  CLI::App* chat_cmd = app.add_subcommand("chat", "Send one message and print the answer");
  chat_cmd->add_option("--config", chat.config,
                       "Configuration file (default: $FAILOVER_CONFIG, then ./failover.json)");
  fo::tools::add_log_flags(*chat_cmd, chat.log);
  chat_cmd->add_flag("--stream", chat.stream, "Print tokens as they arrive");
  chat_cmd->add_flag("--json", chat.as_json, "Print the response (or error) as JSON");
  chat_cmd->add_option("--user", chat.user, "End-user id");
  chat_cmd->add_option("--system", chat.system, "System message");
  chat_cmd->add_option("--model", chat.models, "Only use routes serving this model (repeatable)")
      ->take_all();
  chat_cmd->add_flag("--usage", chat.usage,
                     "Also print the usage report (per route: calls, tokens, cost, latency)");
  chat_cmd->add_option("--max-tokens", chat.max_tokens, "Cap the answer at N tokens")
      ->check(CLI::PositiveNumber);
  chat_cmd->add_option("MESSAGE", chat.message, "The user message")->required();

  HealthArgs health;
  CLI::App* health_cmd = app.add_subcommand("health", "Probe every route and print a table");
  health_cmd->add_option("--config", health.config,
                         "Configuration file (default: $FAILOVER_CONFIG, then ./failover.json)");
  health_cmd->add_option("--watch", health.watch, "Refresh every SECONDS until interrupted")
      ->check(CLI::PositiveNumber);
  health_cmd->add_flag("--json", health.as_json, "Print JSON");
  fo::tools::add_log_flags(*health_cmd, health.log);

  fo::tools::ShadowArgs shadow;
  CLI::App* shadow_cmd = app.add_subcommand(
      "shadow", "Replay recorded requests against a primary and a candidate route and compare");
  shadow_cmd->add_option("--config", shadow.config, "Configuration file")->required();
  shadow_cmd
      ->add_option("--requests", shadow.requests,
                   "Requests to replay: one CreateChatCompletionRequest JSON per line")
      ->required();
  shadow_cmd->add_option("--primary", shadow.primary, "The route in use, ENDPOINT/MODEL")
      ->required();
  shadow_cmd->add_option("--candidate", shadow.candidate, "The route to evaluate, ENDPOINT/MODEL")
      ->required();
  shadow_cmd->add_flag("--json", shadow.as_json, "Print the report as JSON");
  fo::tools::add_log_flags(*shadow_cmd, shadow.log);
  shadow_cmd->add_option("--report", shadow.report,
                         "Also write a self-contained HTML report (charts, worst pairs)");
  shadow_cmd->add_option("--concurrency", shadow.concurrency, "Requests in flight at once")
      ->check(CLI::Range(1, 256));

  fo::tools::StateArgs state;
  CLI::App* state_cmd = app.add_subcommand(
      "state", "Show the state shared through the configured store (breakers, cooldowns, spend)");
  state_cmd->add_option("--config", state.config,
                        "Configuration file (default: $FAILOVER_CONFIG, then ./failover.json)");
  state_cmd->add_flag("--json", state.as_json, "Print JSON");
  fo::tools::add_log_flags(*state_cmd, state.log);
  state_cmd->add_option("--reset-breaker", state.reset_breaker,
                        "Close ENDPOINT/MODEL's breaker for the whole fleet");
  state_cmd->add_flag("--reset-spend", state.reset_spend,
                      "Forget the fleet's budget spend of today and this month (UTC), and "
                      "every reservation of calls in flight");

  MockArgs mock;
  CLI::App* mock_cmd =
      app.add_subcommand("mock", "Run a fault-injecting LLM API server on 127.0.0.1");
  mock_cmd->add_option("--port", mock.port, "Port (0 = any free port, printed on start)")
      ->check(CLI::Range(0, 65535));
  mock_cmd->add_option("--scenario", mock.scenario, "Scenario file (JSON)");
  mock_cmd
      ->add_option("--dialect", mock.dialect,
                   "API spoken: openai (/v1/chat/completions), anthropic (/v1/messages) or "
                   "gemini (/v1beta/models/M:generateContent); overrides the scenario's")
      ->check(CLI::IsMember({"openai", "anthropic", "gemini"}));
  mock_cmd->footer(R"(Scenario keys (a JSON object; every key is optional):
  reply            the answer's text ("pong")
  statuses         status of request 1, 2, ... in order, e.g. [503, 503, 200]
  then             status of every request after those (200); GET /models answers it too
  error_rate       chance (0 to 1) that a 200 becomes error_status instead (0)
  error_status     the status of those random errors (503)
  error_code       error.code in error bodies
  retry_after      Retry-After header on 429 and 503 answers, e.g. "2"
  retry_after_ms   retry-after-ms header on 429 and 503 answers
  headers          extra headers on every answer: {"name": "value"}
  latency_ms       wait before answering: N, or {"min": N, "max": M} drawn at random
  stream           how a streamed answer is sent: {"chunks": N (0: one per word),
                   "interval_ms": N (10), "cut_after": N pieces then drop the connection,
                   "stall_after": N pieces then go silent, "stall_ms": N (0: until the
                   client leaves) then drop it}
  hang             true: accept chat requests and never answer
  malformed        true: answer 200 with a broken JSON body
  tool_call        answer a tool call instead: {"name": "...", "arguments": {...}}
  prefill          a request ending in the assistant's partial answer: "ignore" (answer
                   whole), "continue" (send only the rest), "reject" (400)
  dialect          "openai" (/v1), "anthropic" (/v1, Messages) or "gemini" (/v1beta)
  models           model ids listed by GET /models (["gpt-4.1"])
  seed             seeds every random choice (1)
Examples: examples/mock/*.json)");
  fo::tools::add_log_flags(*mock_cmd, mock.log);
  mock_cmd->add_option("--seconds", mock.seconds, "Stop by itself after SECONDS")
      ->check(CLI::PositiveNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A usage error: say what was wrong, then show the usage of the command at hand.
    const CLI::App* shown = &app;
    for (const CLI::App* sub : {chat_cmd, health_cmd, shadow_cmd, state_cmd, mock_cmd}) {
      for (int i = 1; i < argc; ++i) {
        if (sub->get_name() == argv[i]) shown = sub;
      }
    }
    std::cerr << "failover: " << e.what() << "\n\n" << shown->help();
    return kUsage;
  }
  if (chat_cmd->parsed()) return run_chat(chat);
  if (health_cmd->parsed()) return run_health(health);
  if (shadow_cmd->parsed()) return fo::tools::run_shadow(shadow);
  if (state_cmd->parsed()) {
    return fo::tools::run_state(state);
  }
  if (mock_cmd->parsed()) return run_mock(mock);
  return kUsage;
}
