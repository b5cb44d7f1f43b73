#include "shadow_replay.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <sstream>

namespace failover::tools {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& what) { throw ReplayInputError(what); }

std::string text_of(const json& v, const std::string& path) {
  if (!v.is_string()) bad(path + " must be a string, not " + std::string(v.type_name()));
  return v.get<std::string>();
}

Message message_from_json(const json& m, const std::string& path) {
  if (!m.is_object()) bad(path + " must be an object");
  Message out;
  for (const auto& [key, value] : m.items()) {
    const std::string p = path + "." + key;
    if (key == "role") {
      out.role = text_of(value, p);
    } else if (key == "content") {
      if (value.is_null()) continue;
      if (value.is_string()) {
        out.content = value.get<std::string>();
      } else if (value.is_array()) {
        for (std::size_t i = 0; i < value.size(); ++i) {
          const json& part = value[i];
          const std::string pp = p + "[" + std::to_string(i) + "]";
          if (!part.is_object()) bad(pp + " must be an object");
          if (part.value("type", "") == "text" && part.contains("text")) {
            out.parts.push_back(ContentPart::text_part(text_of(part["text"], pp + ".text")));
          } else {
            ContentPart raw;
            raw.type = ContentPart::Type::Raw;
            raw.raw_json = part.dump();
            out.parts.push_back(std::move(raw));
          }
        }
      } else {
        bad(p + " must be a string or an array of parts");
      }
    } else if (key == "name") {
      out.name = text_of(value, p);
    } else if (key == "tool_call_id") {
      out.tool_call_id = text_of(value, p);
    } else if (key == "refusal") {
      if (!value.is_null()) out.refusal = text_of(value, p);
    } else if (key == "tool_calls") {
      if (!value.is_array()) bad(p + " must be an array");
      for (std::size_t i = 0; i < value.size(); ++i) {
        const json& t = value[i];
        const std::string tp = p + "[" + std::to_string(i) + "]";
        if (!t.is_object() || !t.contains("function") || !t["function"].is_object()) {
          bad(tp + " must be an object with a \"function\"");
        }
        ToolCall call;
        if (t.contains("id")) call.id = text_of(t["id"], tp + ".id");
        call.name = text_of(t["function"].value("name", json()), tp + ".function.name");
        call.arguments =
            text_of(t["function"].value("arguments", json("")), tp + ".function.arguments");
        out.tool_calls.push_back(std::move(call));
      }
    } else {
      bad(p +
          " is not a message field this tool replays (role, content, name, tool_calls, "
          "tool_call_id, refusal)");
    }
  }
  if (out.role.empty()) bad(path + ".role is missing");
  return out;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

json latency_json(const LatencySummary& s) {
  return {{"count", s.count},
          {"p50", std::round(ms(s.p50) * 1000) / 1000},
          {"p95", std::round(ms(s.p95) * 1000) / 1000},
          {"p99", std::round(ms(s.p99) * 1000) / 1000},
          {"mean", std::round(ms(s.mean) * 1000) / 1000}};
}

json route_json(const RouteRef& r) { return {{"endpoint", r.endpoint}, {"model", r.model}}; }

Duration attempt_latency(const Result<ChatResponse>& r) {
  const std::vector<Attempt>& a = r.ok() ? r.value().attempts : r.error().attempts();
  return a.empty() ? Duration::zero() : a.back().latency;
}

std::string escape_html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The frame both latency charts share: size, margins, the slowest latency of either side (the
// x axis runs from 0 to it) and the axis labels.
struct Chart {
  static constexpr int kWidth = 720;
  static constexpr int kHeight = 240;
  static constexpr int kLeft = 48;
  static constexpr double kPlotW = kWidth - kLeft - 10;
  static constexpr double kPlotH = kHeight - 32 - 10;
  double top = 0;  // ms
  std::ostringstream svg;

  Chart(const std::vector<Duration>& a, const std::vector<Duration>& b, const char* label) {
    for (const auto* side : {&a, &b}) {
      for (Duration d : *side) top = std::max(top, ms(d));
    }
    svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\""
        << kHeight << "\" role=\"img\" aria-label=\"" << label << "\">";
  }
  void x_labels() {
    for (int i = 0; i <= 4; ++i) {
      svg << "<text x=\"" << fixed(kLeft + kPlotW * i / 4, 1) << "\" y=\"" << kHeight - 12
          << "\" font-size=\"11\" text-anchor=\"middle\">" << fixed(top * i / 4, 0) << " ms</text>";
    }
  }
};

// Two latency distributions as grouped histogram bars, on one shared linear axis.
std::string histogram_svg(const std::vector<Duration>& a, const std::vector<Duration>& b) {
  constexpr int kBins = 20;
  Chart c(a, b, "latency histogram");
  if (c.top <= 0) return c.svg.str() + "<text x=\"10\" y=\"20\">no successful calls</text></svg>";
  const double top = c.top * 1.0001;  // the slowest call falls in the last bin
  std::vector<int> ca(kBins, 0);
  std::vector<int> cb(kBins, 0);
  for (Duration d : a) ++ca[static_cast<std::size_t>(ms(d) / top * kBins)];
  for (Duration d : b) ++cb[static_cast<std::size_t>(ms(d) / top * kBins)];
  // Shares of each side, so sides with different counts compare.
  auto share = [](int n, std::size_t total) {
    return total == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(total);
  };
  double peak = 0;
  for (int i = 0; i < kBins; ++i) {
    peak = std::max({peak, share(ca[i], a.size()), share(cb[i], b.size())});
  }
  const double bin_w = Chart::kPlotW / kBins;
  const double base = 10 + Chart::kPlotH;
  c.svg << "<line x1=\"" << Chart::kLeft << "\" y1=\"" << base << "\" x2=\""
        << Chart::kLeft + Chart::kPlotW << "\" y2=\"" << base << "\" stroke=\"#444\"/>";
  for (int i = 0; i < kBins; ++i) {
    const double x = Chart::kLeft + i * bin_w;
    const double ha = peak > 0 ? share(ca[i], a.size()) / peak * Chart::kPlotH : 0;
    const double hb = peak > 0 ? share(cb[i], b.size()) / peak * Chart::kPlotH : 0;
    c.svg << "<rect x=\"" << fixed(x + 1, 1) << "\" y=\"" << fixed(base - ha, 1) << "\" width=\""
          << fixed(bin_w / 2 - 1, 1) << "\" height=\"" << fixed(ha, 1)
          << "\" fill=\"#3b6fb6\"><title>primary " << ca[i] << "</title></rect>";
    c.svg << "<rect x=\"" << fixed(x + bin_w / 2, 1) << "\" y=\"" << fixed(base - hb, 1)
          << "\" width=\"" << fixed(bin_w / 2 - 1, 1) << "\" height=\"" << fixed(hb, 1)
          << "\" fill=\"#e08a2c\"><title>candidate " << cb[i] << "</title></rect>";
  }
  c.x_labels();
  c.svg << "<text x=\"4\" y=\"18\" font-size=\"11\">share</text></svg>";
  return c.svg.str();
}

// Cumulative distributions of both sides.
std::string cdf_svg(const std::vector<Duration>& a, const std::vector<Duration>& b) {
  Chart c(a, b, "latency CDF");
  if (c.top <= 0) return c.svg.str() + "</svg>";
  const double base = 10 + Chart::kPlotH;
  auto line = [&](std::vector<Duration> v, const char* colour) {
    if (v.empty()) return;
    std::sort(v.begin(), v.end());
    c.svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\""
          << Chart::kLeft << "," << base;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double x = Chart::kLeft + ms(v[i]) / c.top * Chart::kPlotW;
      const double y =
          base - Chart::kPlotH * static_cast<double>(i + 1) / static_cast<double>(v.size());
      c.svg << " " << fixed(x, 1) << "," << fixed(y, 1);
    }
    c.svg << "\"/>";
  };
  c.svg << "<rect x=\"" << Chart::kLeft << "\" y=\"10\" width=\"" << Chart::kPlotW << "\" height=\""
        << Chart::kPlotH << "\" fill=\"none\" stroke=\"#bbb\"/>";
  line(a, "#3b6fb6");
  line(b, "#e08a2c");
  c.x_labels();
  c.svg << "<text x=\"4\" y=\"18\" font-size=\"11\">100%</text></svg>";
  return c.svg.str();
}

void print_text(const ShadowReport& r, const RouteRef& primary, const RouteRef& candidate) {
  auto pct = [](double v) { return fixed(v * 100, 1) + " %"; };
  auto lat = [](const LatencySummary& s) {
    return "p50 " + fixed(ms(s.p50), 1) + " ms, p95 " + fixed(ms(s.p95), 1) + " ms, p99 " +
           fixed(ms(s.p99), 1) + " ms";
  };
  std::cout << "shadow " << primary.endpoint << "/" << primary.model << " -> " << candidate.endpoint
            << "/" << candidate.model << "\n"
            << "  pairs:              " << r.pairs << " (both answered: " << r.both_ok << ")"
            << (r.skipped ? ", " + std::to_string(r.skipped) + " skipped: never sent" : "") << "\n"
            << "  success:            primary " << pct(r.primary_success_rate) << ", candidate "
            << pct(r.candidate_success_rate) << "\n"
            << "  latency primary:    " << lat(r.primary_latency) << "\n"
            << "  latency candidate:  " << lat(r.candidate_latency) << "\n"
            << "  mean latency diff:  " << fixed(ms(r.mean_latency_diff), 1) << " ms\n"
            << "  mean similarity:    " << fixed(r.mean_similarity, 3) << "\n"
            << "  exact match:        " << pct(r.exact_match_rate) << "\n"
            << "  finish_reason same: " << pct(r.finish_reason_match_rate) << "\n"
            << "  tool names same:    " << pct(r.tool_names_match_rate) << "\n"
            << "  candidate cost:     $" << fixed(r.candidate_cost_usd, 6) << "\n"
            << "  recommendation:     " << to_string(r.recommendation) << "\n";
  for (const std::string& why : r.reasons) std::cout << "    - " << why << "\n";
}

}  // namespace

ChatRequest request_from_json(const json& doc) {
  if (!doc.is_object()) bad("the request must be a JSON object");
  ChatRequest r;
  json extra = json::object();
  for (const auto& [key, value] : doc.items()) {
    if (key == "model" || key == "stream" || key == "stream_options") continue;
    if (key == "messages") {
      if (!value.is_array() || value.empty()) bad("messages must be a non-empty array");
      for (std::size_t i = 0; i < value.size(); ++i) {
        r.messages.push_back(message_from_json(value[i], "messages[" + std::to_string(i) + "]"));
      }
    } else {
      extra[key] = value;  // sent as it is: tools, temperature, response_format, ...
    }
  }
  if (r.messages.empty()) bad("messages is missing");
  if (!extra.empty()) r.extra_json = extra.dump();
  return r;
}

std::vector<ChatRequest> read_requests(const std::string& path) {
  std::ifstream in(path);
  if (!in) bad("cannot open " + path);
  std::vector<ChatRequest> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json doc = json::parse(line, nullptr, /*allow_exceptions=*/false);
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (doc.is_discarded()) bad(where + "not valid JSON");
    try {
      out.push_back(request_from_json(doc));
    } catch (const ReplayInputError& e) {
      bad(where + e.what());
    }
  }
  if (out.empty()) bad(path + " holds no requests");
  return out;
}

RouteRef parse_route(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) {
    bad("\"" + text + "\" is not ENDPOINT/MODEL");
  }
  return RouteRef{text.substr(0, slash), text.substr(slash + 1)};
}

json report_json(const ShadowReport& r, const RouteRef& primary, const RouteRef& candidate) {
  json worst = json::array();
  for (const ShadowPair& p : r.worst) {
    json j = {{"prompt", p.prompt},
              {"candidate_ok", p.candidate_ok},
              {"similarity", p.similarity},
              {"exact_match", p.exact_match},
              {"primary_text", p.primary_text},
              {"candidate_text", p.candidate_text},
              {"primary_finish_reason", p.primary_finish_reason},
              {"candidate_finish_reason", p.candidate_finish_reason},
              {"primary_latency_ms", ms(p.primary_latency)},
              {"candidate_latency_ms", ms(p.candidate_latency)}};
    if (p.candidate_error) j["candidate_error"] = std::string(to_string(*p.candidate_error));
    worst.push_back(std::move(j));
  }
  return {{"primary", route_json(primary)},
          {"candidate", route_json(candidate)},
          {"pairs", r.pairs},
          {"skipped", r.skipped},
          {"both_ok", r.both_ok},
          {"primary_success_rate", r.primary_success_rate},
          {"candidate_success_rate", r.candidate_success_rate},
          {"latency_ms",
           {{"primary", latency_json(r.primary_latency)},
            {"candidate", latency_json(r.candidate_latency)}}},
          {"mean_latency_diff_ms", ms(r.mean_latency_diff)},
          {"mean_similarity", r.mean_similarity},
          {"exact_match_rate", r.exact_match_rate},
          {"finish_reason_match_rate", r.finish_reason_match_rate},
          {"tool_names_match_rate", r.tool_names_match_rate},
          {"candidate_cost_usd", r.candidate_cost_usd},
          {"recommendation", std::string(to_string(r.recommendation))},
          {"reasons", r.reasons},
          {"thresholds",
           {{"min_pairs", r.thresholds.min_pairs},
            {"min_success_rate", r.thresholds.min_success_rate},
            {"min_similarity", r.thresholds.min_similarity},
            {"max_p95_ratio", r.thresholds.max_p95_ratio}}},
          {"worst", std::move(worst)}};
}

std::string report_html(const ShadowReport& r, const RouteRef& primary, const RouteRef& candidate) {
  const std::string p = escape_html(primary.endpoint + "/" + primary.model);
  const std::string c = escape_html(candidate.endpoint + "/" + candidate.model);
  const bool ready = r.recommendation == ShadowVerdict::Ready;
  auto pct = [](double v) { return fixed(v * 100, 1) + " %"; };
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<title>Shadow report: " << p << " vs " << c << "</title><style>"
    << "body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}"
    << "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    << "text-align:left;vertical-align:top}.verdict{font-size:1.4em;font-weight:bold;color:"
    << (ready ? "#1a7f37" : "#b35900") << "}.key span{display:inline-block;width:12px;"
    << "height:12px;margin:0 4px 0 12px}pre{white-space:pre-wrap;margin:0;max-width:400px}"
    << "</style></head><body>\n<h1>Shadow report</h1>\n<p>Primary <b>" << p << "</b>, candidate <b>"
    << c << "</b>.</p>\n<p class=\"verdict\">" << to_string(r.recommendation) << "</p>\n";
  if (!r.reasons.empty()) {
    h << "<ul>";
    for (const std::string& why : r.reasons) h << "<li>" << escape_html(why) << "</li>";
    h << "</ul>\n";
  }
  auto row = [&](const std::string& name, const std::string& a, const std::string& b) {
    h << "<tr><th>" << name << "</th><td>" << a << "</td><td>" << b << "</td></tr>";
  };
  h << "<table><tr><th></th><th>primary</th><th>candidate</th></tr>";
  row("answered", std::to_string(r.primary_ok) + " of " + std::to_string(r.pairs),
      std::to_string(r.candidate_ok) + " of " + std::to_string(r.pairs));
  row("success rate", pct(r.primary_success_rate), pct(r.candidate_success_rate));
  for (auto [name, pa, pb] :
       {std::tuple{"p50", r.primary_latency.p50, r.candidate_latency.p50},
        std::tuple{"p95", r.primary_latency.p95, r.candidate_latency.p95},
        std::tuple{"p99", r.primary_latency.p99, r.candidate_latency.p99},
        std::tuple{"mean", r.primary_latency.mean, r.candidate_latency.mean}}) {
    row(std::string("latency ") + name, fixed(ms(pa), 1) + " ms", fixed(ms(pb), 1) + " ms");
  }
  h << "</table>\n<table>";
  auto single = [&](const std::string& name, const std::string& v) {
    h << "<tr><th>" << name << "</th><td>" << v << "</td></tr>";
  };
  single("pairs where both answered", std::to_string(r.both_ok));
  single("mean similarity", fixed(r.mean_similarity, 3));
  single("exact match (normalised)", pct(r.exact_match_rate));
  single("same finish_reason", pct(r.finish_reason_match_rate));
  single("same tool names", pct(r.tool_names_match_rate));
  single("mean latency difference (candidate - primary)",
         fixed(ms(r.mean_latency_diff), 1) + " ms");
  single("candidate cost", "$" + fixed(r.candidate_cost_usd, 6));
  h << "</table>\n<h2>Latency distribution</h2>\n<p class=\"key\"><span "
    << "style=\"background:#3b6fb6\"></span>primary<span style=\"background:#e08a2c\"></span>"
    << "candidate</p>\n"
    << histogram_svg(r.primary_latencies, r.candidate_latencies) << "\n<h2>Cumulative</h2>\n"
    << cdf_svg(r.primary_latencies, r.candidate_latencies) << "\n<h2>Worst-matching pairs</h2>\n";
  if (r.worst.empty()) {
    h << "<p>None.</p>";
  } else {
    h << "<table><tr><th>prompt</th><th>primary</th><th>candidate</th><th>similarity</th></tr>";
    for (const ShadowPair& w : r.worst) {
      const std::string cand =
          w.candidate_ok ? escape_html(w.candidate_text)
                         : "<i>failed: " +
                               std::string(w.candidate_error ? to_string(*w.candidate_error)
                                                             : std::string_view("unknown")) +
                               "</i>";
      h << "<tr><td><pre>" << escape_html(w.prompt) << "</pre></td><td><pre>"
        << escape_html(w.primary_text) << "</pre></td><td><pre>" << cand << "</pre></td><td>"
        << (w.candidate_ok ? fixed(w.similarity, 3) : std::string("-")) << "</td></tr>";
    }
    h << "</table>";
  }
  h << "\n</body></html>\n";
  return h.str();
}

namespace {

// The replay's breaker: never opens, so that every request reaches its route.
struct AlwaysClosed final : CircuitBreaker {
  bool try_acquire(TimePoint) override { return true; }
  void on_success(TimePoint, Duration) override {}
  void on_failure(TimePoint, ErrorKind) override {}
  BreakerState state(TimePoint) const override { return BreakerState::Closed; }
};

// Whether the call sent its request (some attempt reached the wire).
bool reached(const Result<ChatResponse>& r) {
  const std::vector<Attempt>& attempts = r.ok() ? r.value().attempts : r.error().attempts();
  return std::any_of(attempts.begin(), attempts.end(), [](const Attempt& a) {
    return a.status != 0 || a.latency > Duration::zero() || a.error != ErrorKind::InvalidRequest;
  });
}

}  // namespace

int run_shadow(const ShadowArgs& a) {
  std::optional<ClientOptions> loaded = load_options(a.config, a.log);
  if (!loaded) return 2;
  ClientOptions base = std::move(*loaded);
  RouteRef primary;
  RouteRef candidate;
  std::vector<ChatRequest> requests;
  try {
    primary = parse_route(a.primary);
    candidate = parse_route(a.candidate);
    requests = read_requests(a.requests);
  } catch (const ConfigError& e) {
    std::cerr << "failover: bad configuration: " << e.what() << "\n";
    return 2;
  } catch (const ReplayInputError& e) {
    std::cerr << "failover: " << e.what() << "\n";
    return 2;
  }
  for (const auto& [flag, route] :
       {std::pair{"--primary", &primary}, {"--candidate", &candidate}}) {
    const std::string& name = route->endpoint;
    if (std::none_of(base.endpoints.begin(), base.endpoints.end(),
                     [&name](const Endpoint& e) { return e.name == name; })) {
      std::cerr << "failover: " << flag << ": endpoint \"" << route->endpoint
                << "\" is not in the configuration\n";
      return 2;
    }
  }
  // One client per side, pinned to its route, one attempt per request, and no breaker: the
  // report measures the routes themselves, every request, not the failover around them.
  auto pinned = [&](const RouteRef& route) {
    ClientOptions o = base;
    o.priority = {Tier{{Route{route.endpoint, route.model}}}};
    o.shadow = {};
    o.canary = {};
    o.health_probe = {};
    o.hedging = {};
    o.state = {};
    RetryOptions once;
    once.max_attempts = 1;
    o.retry = std::make_shared<DefaultRetryPolicy>(once);
    o.circuit_breaker = [](const RouteRef&) -> std::unique_ptr<CircuitBreaker> {
      return std::make_unique<AlwaysClosed>();
    };
    return o;
  };
  std::optional<Client> pc;
  std::optional<Client> cc;
  try {
    pc.emplace(pinned(primary));
    cc.emplace(pinned(candidate));
  } catch (const std::invalid_argument& e) {
    std::cerr << "failover: bad configuration: " << e.what() << "\n";
    return 2;
  }
  ShadowAnalyzer analyzer(base.shadow.thresholds, base.shadow.worst_pairs, requests.size());
  struct Pending {
    std::size_t index;
    std::future<Result<ChatResponse>> primary;
    std::future<Result<ChatResponse>> candidate;
  };
  std::deque<Pending> pending;
  std::size_t next = 0;
  std::size_t done = 0;
  std::size_t candidate_ok = 0;
  std::size_t both_ok = 0;
  double similarity = 0;
  std::map<std::string, int> primary_errors;  // kind -> count, for the output
  std::map<std::string, int> candidate_errors;
  const std::size_t window = static_cast<std::size_t>(std::max(1, a.concurrency));
  while (done < requests.size()) {
    while (next < requests.size() && pending.size() < window) {
      pending.push_back({next, pc->chat_async(requests[next]), cc->chat_async(requests[next])});
      ++next;
    }
    Pending p = std::move(pending.front());
    pending.pop_front();
    Result<ChatResponse> rp = p.primary.get();
    Result<ChatResponse> rc = p.candidate.get();
    ++done;
    analyzer.count_sampled();
    // A side that never sent the request (a 429's cooldown, a client-side limit or budget)
    // says nothing of its route: the pair is skipped, as the live shadow path does.
    if (!reached(rp) || !reached(rc)) {
      analyzer.count_skipped();
      continue;
    }
    ShadowPair pair = compare_results(requests[p.index], rp, attempt_latency(rp), rc,
                                      attempt_latency(rc), base.shadow.comparator);
    candidate_ok += pair.candidate_ok ? 1 : 0;
    if (pair.primary_error) ++primary_errors[std::string(to_string(*pair.primary_error))];
    if (pair.candidate_error) ++candidate_errors[std::string(to_string(*pair.candidate_error))];
    if (pair.primary_ok && pair.candidate_ok) {
      ++both_ok;
      similarity += pair.similarity;
    }
    analyzer.add(std::move(pair));
    std::cerr << "\rshadow: " << done << "/" << requests.size() << " pairs, candidate ok "
              << candidate_ok << ", mean similarity "
              << fixed(both_ok ? similarity / static_cast<double>(both_ok) : 0.0, 3) << std::flush;
  }
  std::cerr << "\n";
  const ShadowReport report = analyzer.report();
  if (a.as_json) {
    json doc = report_json(report, primary, candidate);
    doc["errors"] = {{"primary", primary_errors}, {"candidate", candidate_errors}};
    std::cout << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    print_text(report, primary, candidate);
    for (const auto& [side, errors] :
         {std::pair{"primary", &primary_errors}, std::pair{"candidate", &candidate_errors}}) {
      if (errors->empty()) continue;
      std::cout << "  " << side << " failures:" << std::string(side[0] == 'p' ? 3 : 1, ' ');
      const char* sep = "";
      for (const auto& [kind, n] : *errors) {
        std::cout << sep << kind << " x" << n;
        sep = ", ";
      }
      std::cout << "\n";
    }
  }
  if (!a.report.empty()) {
    std::ofstream out(a.report, std::ios::binary | std::ios::trunc);
    out << report_html(report, primary, candidate);
    if (!out.flush()) {
      std::cerr << "failover: cannot write " << a.report << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace failover::tools
