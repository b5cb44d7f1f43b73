// The chaos soak: many threads, four misbehaving loopback upstreams that are taken down and
// brought back mid-run, and the invariants that must hold whatever happens. Bounded in count and
// time. The CI runs a short version; scripts/soak.sh runs the long one:
//   FAILOVER_SOAK_CALLS (default 2000), FAILOVER_SOAK_THREADS (default 32).

#include "loopback.hpp"
#include "test_helpers.hpp"

#include <failover/failover.hpp>

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace failover {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Steady = std::chrono::steady_clock;

long env_or(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

std::string chunk(const std::string& text, const std::string& finish = "") {
  return "data: {\"id\":\"s\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
         "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
         text + "\"},\"finish_reason\":" + (finish.empty() ? "null" : "\"" + finish + "\"") +
         "}]}\n\n";
}

// An upstream that answers at random: 200, 500, 503, 429 with retry-after-ms, a hang, a cut
// stream or malformed JSON. It counts every request it reads, and can be stopped and started
// again on the same port.
class ChaosUpstream {
 public:
  explicit ChaosUpstream(std::uint64_t seed) : rng_(seed) { start(); }
  ~ChaosUpstream() { stop(); }
  ChaosUpstream(const ChaosUpstream&) = delete;
  ChaosUpstream& operator=(const ChaosUpstream&) = delete;

  void start() {
    std::lock_guard<std::mutex> lock(lifecycle_);
    if (server_) return;
    server_ = std::make_unique<httplib::Server>();
    server_->new_task_queue = [] { return new httplib::ThreadPool(64); };
    server_->set_tcp_nodelay(true);
    server_->set_keep_alive_timeout(1);  // so stop() does not wait 5 s for idle connections
    server_->Post("/v1/chat/completions",
                  [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    if (port_ == 0) {
      port_ = server_->bind_to_any_port("127.0.0.1");
    } else {
      for (int i = 0; i < 200 && !server_->bind_to_port("127.0.0.1", port_); ++i) {
        std::this_thread::sleep_for(milliseconds(10));
      }
    }
    testing::widen_backlog(port_);
    httplib::Server* s = server_.get();
    thread_ = std::thread([s] { s->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(milliseconds(1));
    ++starts_;
  }

  void stop() {
    std::lock_guard<std::mutex> lock(lifecycle_);
    if (!server_) return;
    stopping_ = true;
    server_->stop();
    thread_.join();
    server_.reset();
    stopping_ = false;
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  long requests() const { return requests_.load(); }
  int starts() const { return starts_.load(); }

 private:
  int roll() {
    std::lock_guard<std::mutex> lock(rng_mutex_);
    return static_cast<int>(rng_() % 100);
  }

  void serve(const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    const bool stream = req.body.find("\"stream\":true") != std::string::npos;
    const int r = roll();
    if (r < 5) {
      res.status = 500;
      res.set_content(R"({"error":{"message":"chaos 500","type":"server_error"}})",
                      "application/json");
    } else if (r < 10) {
      res.status = 503;
      res.set_content(R"({"error":{"message":"chaos 503","type":"overloaded"}})",
                      "application/json");
    } else if (r < 15) {
      res.status = 429;
      res.set_header("retry-after-ms", "50");
      res.set_content(R"({"error":{"message":"chaos 429","type":"requests"}})", "application/json");
    } else if (r < 18) {
      // Hang past the client's first-byte limit, until the upstream stops or 1.5 s passed.
      const auto until = Steady::now() + milliseconds(1500);
      while (!stopping_ && Steady::now() < until) {
        std::this_thread::sleep_for(milliseconds(5));
      }
      res.status = 503;
    } else if (r < 22) {
      res.set_content(R"({"choices":[{"message":{"content":"broken)", "application/json");
    } else if (stream) {
      const bool cut = r < 28;
      res.set_chunked_content_provider(
          "text/event-stream", [cut, sent = 0](std::size_t, httplib::DataSink& sink) mutable {
            if (sent == 3) {
              if (cut) return false;  // drop the connection mid-answer
              const std::string end = chunk("", "stop") + "data: [DONE]\n\n";
              sink.write(end.data(), end.size());
              sink.done();
              return true;
            }
            const std::string c = chunk("w" + std::to_string(sent++) + " ");
            return sink.write(c.data(), c.size());
          });
    } else {
      res.set_content(testing::completion_json("ok"), "application/json");
    }
  }

  std::mutex lifecycle_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<long> requests_{0};
  std::atomic<int> starts_{0};
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

struct Tally {
  std::mutex mutex;
  long calls = 0;
  long successes = 0;
  long failures = 0;
  long reached = 0;  // attempts that reached an upstream (not refused at connect)
  // Attempts that may have died in the kernel's accept queue of an upstream being stopped:
  // the connection was made, the upstream never read the request.
  long unsure = 0;
  std::map<std::string, long> kinds;
  std::map<std::string, std::string> examples;  // the first message of each kind
  Duration worst_overrun{};

  void add(const Result<ChatResponse>& r, Duration elapsed, Duration limit) {
    const std::vector<Attempt>& attempts = r ? r->attempts : r.error().attempts();
    long reached_here = 0;
    long unsure_here = 0;
    for (const Attempt& a : attempts) {
      if (a.error != ErrorKind::ConnectFailed) ++reached_here;
      if (a.error == ErrorKind::ConnectionLost || a.error == ErrorKind::Timeout) ++unsure_here;
    }
    std::lock_guard<std::mutex> lock(mutex);
    ++calls;
    if (r) {
      ++successes;
    } else {
      ++failures;
      const std::string kind(to_string(r.error().kind()));
      if (kinds[kind]++ == 0) examples[kind] = r.error().message().substr(0, 300);
    }
    reached += reached_here;
    unsure += unsure_here;
    worst_overrun = std::max(worst_overrun, elapsed - limit);
  }
};

TEST(ChaosSoak, EveryCallEndsTypedWithinItsDeadlineAndTheBooksBalance) {
  const long kCalls = env_or("FAILOVER_SOAK_CALLS", 2000);
  const int kThreads = static_cast<int>(env_or("FAILOVER_SOAK_THREADS", 32));
  const Duration kLimit = seconds(2);
  const Duration kSlack = milliseconds(1500);  // scheduling on a loaded 2-core machine
  std::vector<std::unique_ptr<ChaosUpstream>> upstreams;
  for (int i = 0; i < 4; ++i) upstreams.push_back(std::make_unique<ChaosUpstream>(100 + i));

  ClientOptions o;
  Tier tier;
  for (int i = 0; i < 4; ++i) {
    const std::string name = "u" + std::to_string(i);
    o.endpoints.push_back({name, upstreams[i]->base_url(), "sk-" + name});
    tier.routes.push_back({name, "m"});
  }
  tier.balance = BalanceStrategy::RoundRobin;
  o.priority = {tier};
  o.timeouts.connect = milliseconds(300);
  o.timeouts.first_byte = milliseconds(400);
  o.timeouts.idle = milliseconds(400);
  o.timeouts.attempt = seconds(1);
  RetryOptions retry;
  retry.base_delay = milliseconds(10);
  retry.max_delay = milliseconds(100);
  o.retry = std::make_shared<DefaultRetryPolicy>(retry);
  CircuitBreakerOptions breaker;  // short open periods, so routes come back within the run
  breaker.open_duration = milliseconds(200);
  breaker.max_open_duration = seconds(1);
  o.circuit_breaker = DefaultCircuitBreaker::factory(breaker);
  auto client = std::make_unique<Client>(o);

  // Phase 1 runs with chaos: a random upstream is taken down for a while, again and again.
  // Phase 2 runs with every upstream up, so its books must balance to the request.
  struct Phase {
    Tally tally;
    long counted = 0;  // requests the upstreams read during the phase
    int outages = 0;
  };
  const auto run_deadline = Steady::now() + std::chrono::minutes(10);  // a hard bound
  auto run_phase = [&](Phase& phase, long calls, bool chaos_on) {
    long before = 0;
    for (auto& u : upstreams) before += u->requests();
    std::atomic<bool> done{false};
    std::atomic<int> outages{0};
    std::thread chaos([&] {
      std::mt19937 rng(7);
      while (chaos_on && !done) {
        std::this_thread::sleep_for(milliseconds(50 + rng() % 100));
        if (done) break;
        ChaosUpstream& u = *upstreams[rng() % upstreams.size()];
        u.stop();
        ++outages;
        std::this_thread::sleep_for(milliseconds(50 + rng() % 150));
        u.start();
      }
    });
    std::atomic<long> next{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ChatRequest request = testing::ping();
        for (;;) {
          const long n = next.fetch_add(1);
          if (n >= calls || Steady::now() >= run_deadline) break;
          CallOptions call;
          call.timeout = kLimit;
          call.user = "user-" + std::to_string(t);
          if (n % 3 == 0) call.when_unavailable = WhenUnavailable::WaitForRecovery;
          const auto start = Steady::now();
          const int kind = static_cast<int>(n % 10);
          Result<ChatResponse> r = Error(ErrorKind::Cancelled, "not run");
          if (kind < 6) {
            r = client->chat(request, call);
          } else if (kind < 8) {
            r = client->chat_stream(
                request, [](const ChatChunk&) { return true; }, call);
          } else {
            r = client->chat_async(request, call).get();
          }
          phase.tally.add(r, Steady::now() - start, kLimit + kSlack);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    done = true;
    chaos.join();
    for (auto& u : upstreams) u->start();  // every upstream up again
    long after = 0;
    for (auto& u : upstreams) after += u->requests();
    phase.counted = after - before;
    phase.outages = outages.load();
  };
  auto report = [](const char* name, Phase& p) {
    std::string kinds;
    for (const auto& [kind, n] : p.tally.kinds) {
      kinds += kind + "=" + std::to_string(n) + " (" + p.tally.examples[kind] + ") ";
    }
    std::printf(
        "soak %s: %ld calls, %ld successes, %ld failures, %ld attempts reached "
        "upstreams (%ld unsure), upstreams counted %ld, %d outages; failures: %s\n",
        name, p.tally.calls, p.tally.successes, p.tally.failures, p.tally.reached, p.tally.unsure,
        p.counted, p.outages, kinds.c_str());
  };

  Phase chaos;
  run_phase(chaos, kCalls / 2, /*chaos_on=*/true);
  report("with outages", chaos);
  Phase calm;
  run_phase(calm, kCalls - kCalls / 2, /*chaos_on=*/false);
  report("all up", calm);

  for (Phase* p : {&chaos, &calm}) {
    EXPECT_EQ(p->tally.calls, p->tally.successes + p->tally.failures);
    EXPECT_GT(p->tally.successes, p->tally.calls / 4);  // chaos, not an outage
    EXPECT_LE(p->tally.worst_overrun, Duration::zero()) << "a call outlived its deadline";
  }
  EXPECT_EQ(chaos.tally.calls + calm.tally.calls, kCalls);
  EXPECT_GT(chaos.outages, 0);
  // With every upstream up, each attempt the traces say reached an upstream was counted there,
  // and no other request was, but for attempts it may never have read (a lost connection or a
  // timeout in the trace): every call streams now, and the upstream cuts some streams.
  EXPECT_LE(calm.counted, calm.tally.reached);
  EXPECT_LE(calm.tally.reached - calm.counted, calm.tally.unsure);
  // During outages the only difference allowed is attempts lost with a connection that the
  // stopping upstream had not read yet (a lost connection or a timeout in the trace).
  EXPECT_LE(chaos.counted, chaos.tally.reached);
  EXPECT_LE(chaos.tally.reached - chaos.counted, chaos.tally.unsure);
  // The client's own books agree, and nothing is left in flight.
  long metric_calls = 0;
  const std::string metrics = client->metrics_text();
  for (std::size_t at = metrics.find("failover_calls_total{"); at != std::string::npos;
       at = metrics.find("failover_calls_total{", at + 1)) {
    metric_calls += std::strtol(metrics.c_str() + metrics.find("} ", at) + 2, nullptr, 10);
  }
  EXPECT_EQ(metric_calls, kCalls);
  for (const RouteHealth& h : client->health().routes) EXPECT_EQ(h.in_flight, 0);

  // Destroying the client with calls in flight cancels them cleanly.
  testing::SilentServer silent(testing::SilentServer::Mode::AcceptAndHold);
  ClientOptions hold;
  hold.endpoints = {{"silent", silent.base_url(), "sk-silent"}};
  hold.priority = {Tier{{{"silent", "m"}}}};
  auto doomed = std::make_unique<Client>(hold);
  std::vector<std::future<Result<ChatResponse>>> pending;
  for (int i = 0; i < 50; ++i) pending.push_back(doomed->chat_async(testing::ping()));
  while (silent.accepted() < 1) std::this_thread::sleep_for(milliseconds(5));
  doomed.reset();
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(seconds(5)), std::future_status::ready);
    Result<ChatResponse> r = f.get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  }
}

}  // namespace
}  // namespace failover
