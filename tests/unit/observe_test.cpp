// Passive health (Client::health) and Prometheus metrics (Client::metrics_text).

#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <map>
#include <regex>
#include <sstream>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ping;

const std::string kA = "http://a.test/v1";
const std::string kB = "http://b.test/v1";

struct ObserveTest : testing::FakeClientTest {
  ClientOptions options() {
    return fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{{"a", "m"}, {"b", "m"}}}});
  }
};

TEST_F(ObserveTest, HealthReportsRatesPercentilesAndTheLastError) {
  std::vector<testing::Reply> replies;
  for (int i = 1; i <= 10; ++i) replies.push_back(testing::ok("x", milliseconds(10 * i)));
  replies.push_back(testing::status(503));
  fake->sequence(testing::chat_url(kA), replies);
  fake->sequence(testing::chat_url(kB), {testing::ok("b", milliseconds(7))});
  Client client(options());
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(client.chat(ping()));
  HealthSnapshot h = client.health();
  ASSERT_EQ(h.routes.size(), 2u);
  const RouteHealth& a = h.routes[0];
  EXPECT_EQ(a.route.endpoint, "a");
  EXPECT_EQ(a.state, BreakerState::Closed);
  EXPECT_EQ(a.in_flight, 0);
  EXPECT_EQ(a.window, 11u);
  EXPECT_DOUBLE_EQ(a.success_rate, 10.0 / 11.0);
  EXPECT_EQ(a.successes, 10u);
  EXPECT_EQ(a.failures, 1u);
  EXPECT_EQ(a.p50, Duration(milliseconds(50)));  // nearest rank of 10, 20, ..., 100 ms
  EXPECT_EQ(a.p95, Duration(milliseconds(100)));
  EXPECT_EQ(a.p99, Duration(milliseconds(100)));
  EXPECT_GT(a.ewma, Duration(milliseconds(50)));
  EXPECT_LT(a.ewma, Duration(milliseconds(100)));
  ASSERT_TRUE(a.last_error.has_value());
  EXPECT_EQ(*a.last_error, ErrorKind::Overloaded);
  EXPECT_EQ(a.last_error_message, "scripted 503");
  EXPECT_EQ(h.routes[1].successes, 1u);
  EXPECT_EQ(h.routes[1].p50, Duration(milliseconds(7)));
}

TEST_F(ObserveTest, HealthShowsOpenBreakersAndCooldowns) {
  fake->sequence(testing::chat_url(kA), {testing::status(500)});
  fake->sequence(testing::chat_url(kB), {testing::status(429, "", {{"retry-after", "20"}})});
  Client client(options());
  for (int i = 0; i < 5; ++i) (void)client.chat(ping());
  HealthSnapshot h = client.health();
  EXPECT_EQ(h.routes[0].state, BreakerState::Open);
  ASSERT_TRUE(h.routes[0].reopens_at.has_value());
  EXPECT_GT(*h.routes[0].reopens_at, h.at);
  ASSERT_TRUE(h.routes[1].cooldown_until.has_value());
  EXPECT_GT(*h.routes[1].cooldown_until, h.at);
  EXPECT_EQ(h.routes[1].state, BreakerState::Closed);  // a 429 is not a breaker failure
}

TEST_F(ObserveTest, InFlightCountsWhileAnAttemptRuns) {
  std::mutex m;
  std::condition_variable cv;
  bool entered = false, release = false;
  fake->on(testing::chat_url(kA), [&](const HttpRequest&) {
    std::unique_lock<std::mutex> lock(m);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return testing::ok("a");
  });
  Client client(options());
  auto future = client.chat_async(ping());
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return entered; });
  }
  EXPECT_EQ(client.health().routes[0].in_flight, 1);
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(future.get());
  EXPECT_EQ(client.health().routes[0].in_flight, 0);
}

// ---- a small Prometheus text-format checker ----------------------------------------------------

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family -> type
  std::vector<Sample> samples;
};

Exposition parse_exposition(const std::string& text) {
  Exposition out;
  const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  const std::regex sample_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)");
  const std::regex label_re(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string family, type;
      t >> family >> type;
      EXPECT_TRUE(std::regex_match(family, name_re)) << line;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_EQ(out.types.count(family), 0u) << "TYPE twice: " << line;
      out.types[family] = type;
      continue;
    }
    std::smatch m;
    if (!std::regex_match(line, m, sample_re)) {
      ADD_FAILURE() << "not a sample line: " << line;
      continue;
    }
    Sample s;
    s.name = m[1];
    std::string labels = m[3];
    for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label_re);
         it != std::sregex_iterator(); ++it) {
      s.labels[(*it)[1]] = (*it)[2];
    }
    s.value = std::stod(m[4]);
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string suf(suffix);
      if (family.size() > suf.size() &&
          family.compare(family.size() - suf.size(), suf.size(), suf) == 0 &&
          out.types.count(family.substr(0, family.size() - suf.size()))) {
        family = family.substr(0, family.size() - suf.size());
      }
    }
    EXPECT_TRUE(out.types.count(family)) << "sample before its TYPE: " << line;
    out.samples.push_back(std::move(s));
  }
  return out;
}

double value_of(const Exposition& e, const std::string& name,
                const std::map<std::string, std::string>& labels) {
  for (const Sample& s : e.samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      match = match && it != s.labels.end() && it->second == v;
    }
    if (match) return s.value;
  }
  return -1;
}

void check_histograms(const Exposition& e) {
  // For every histogram series: buckets ascend in le and in count, +Inf equals _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // series -> (le, n)
  std::map<std::string, double> counts;
  for (const Sample& s : e.samples) {
    std::string series;
    for (const auto& [k, v] : s.labels) {
      if (k != "le") series += k + "=" + v + ",";
    }
    if (s.name.size() > 7 && s.name.compare(s.name.size() - 7, 7, "_bucket") == 0) {
      double le = s.labels.at("le") == "+Inf" ? INFINITY : std::stod(s.labels.at("le"));
      buckets[s.name.substr(0, s.name.size() - 7) + "|" + series].emplace_back(le, s.value);
    } else if (s.name.size() > 6 && s.name.compare(s.name.size() - 6, 6, "_count") == 0) {
      counts[s.name.substr(0, s.name.size() - 6) + "|" + series] = s.value;
    }
  }
  EXPECT_FALSE(buckets.empty());
  for (const auto& [series, list] : buckets) {
    for (std::size_t i = 1; i < list.size(); ++i) {
      EXPECT_LT(list[i - 1].first, list[i].first) << series;
      EXPECT_LE(list[i - 1].second, list[i].second) << series;
    }
    EXPECT_TRUE(std::isinf(list.back().first)) << series;
    EXPECT_EQ(list.back().second, counts[series]) << series;
  }
}

TEST_F(ObserveTest, MetricsTextIsValidExpositionWithExactCounts) {
  fake->sequence(testing::chat_url(kA), {testing::status(503)});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  ClientOptions o = options();
  o.endpoints[0].name = "a\"quoted";  // label values are escaped
  o.priority = {Tier{{{"a\"quoted", "m"}, {"b", "m"}}}};
  Client client(o);
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(client.chat(ping()));
  Exposition e = parse_exposition(client.metrics_text());
  EXPECT_EQ(e.types.at("failover_calls_total"), "counter");
  EXPECT_EQ(e.types.at("failover_in_flight"), "gauge");
  EXPECT_EQ(e.types.at("failover_attempt_duration_seconds"), "histogram");
  EXPECT_EQ(value_of(e, "failover_calls_total", {{"result", "success"}}), 7);
  // a failed 5 times (then its breaker opened and calls went straight to b).
  EXPECT_EQ(value_of(e, "failover_attempts_total",
                     {{"endpoint", "a\\\"quoted"}, {"outcome", "overloaded"}}),
            5);
  EXPECT_EQ(value_of(e, "failover_attempts_total", {{"endpoint", "b"}, {"outcome", "success"}}), 7);
  EXPECT_EQ(value_of(e, "failover_breaker_transitions_total",
                     {{"endpoint", "a\\\"quoted"}, {"from", "closed"}, {"to", "open"}}),
            1);
  EXPECT_EQ(value_of(e, "failover_breaker_state", {{"endpoint", "a\\\"quoted"}, {"state", "open"}}),
            1);
  EXPECT_EQ(value_of(e, "failover_breaker_state", {{"endpoint", "b"}, {"state", "closed"}}), 1);
  EXPECT_EQ(value_of(e, "failover_in_flight", {{"endpoint", "b"}}), 0);
  EXPECT_EQ(value_of(e, "failover_retries_total", {}), 0);
  EXPECT_EQ(value_of(e, "failover_call_duration_seconds_count", {}), 7);
  check_histograms(e);
}

TEST_F(ObserveTest, RetriesAreCounted) {
  fake->sequence(testing::chat_url(kA),
                 {testing::status(500), testing::status(500), testing::ok("a")});
  ClientOptions o = options();
  o.priority = {Tier{{{"a", "m"}}}};
  Client client(o);
  ASSERT_TRUE(client.chat(ping()));
  Exposition e = parse_exposition(client.metrics_text());
  EXPECT_EQ(value_of(e, "failover_retries_total", {}), 2);
}

TEST_F(ObserveTest, HistogramBoundsAreWrittenAsOtherExportersWriteThem) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  ClientOptions o = options();
  o.priority = {Tier{{{"a", "m"}}}};
  Client client(o);
  ASSERT_TRUE(client.chat(ping()));
  const std::string text = client.metrics_text();
  for (const char* le : {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
                         "2.5", "5", "10", "30", "60"}) {
    EXPECT_NE(text.find("failover_call_duration_seconds_bucket{le=\"" + std::string(le) + "\"}"),
              std::string::npos)
        << le;
  }
  EXPECT_EQ(text.find("0000000"), std::string::npos);
}

}  // namespace
}  // namespace failover
