// The client's life cycle and the application code it calls: a Client released from inside its
// own callbacks and handlers; exceptions from every hook contained in a typed error, with
// everything the call held given back.

#include "core/async_engine.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace failover {
namespace {

using testing::outcomes;
using testing::ping;
using testing::Strings;

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kA = "http://a.test/v1";

// Whether a request comes from a stream call. Every request is streamed on the wire; only a
// whole-answer call asks for the usage chunk whatever the request says.
bool stream_call(const HttpRequest& request) {
  return request.body.find(R"("include_usage":true)") == std::string::npos;
}
const std::string kB = "http://b.test/v1";

struct LifecycleTest : testing::FakeClientTest {
  ClientOptions two_routes() {
    return fake_options({{"a", kA, "sk-a"}, {"b", kB, "sk-b"}}, {Tier{{{"a", "m"}, {"b", "m"}}}});
  }
  // Waits (bounded) until only this test holds the transport: the client's core is gone.
  bool core_released() {
    auto until = std::chrono::steady_clock::now() + seconds(10);
    while (fake.use_count() > 1 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    return fake.use_count() == 1;
  }
};

TEST_F(LifecycleTest, AClientReleasedInsideItsOwnCallbackEndsCleanly) {
  fake->sequence(testing::chat_url(kA), {testing::ok("pong")});
  auto client = std::make_shared<Client>(two_routes());
  std::promise<std::string> answered;
  Client& c = *client;
  c.chat_async(ping(), {}, [&answered, holder = std::move(client)](Result<ChatResponse> r) mutable {
    holder.reset();  // the last owner: the client goes away on its own engine thread
    answered.set_value(r ? r->text() : r.error().message());
  });
  EXPECT_EQ(answered.get_future().get(), "pong");
  // The teardown runs on the engine thread after the callback; the application can wait for it.
  EXPECT_TRUE(Client::wait_for_released_clients(seconds(10)));
  EXPECT_EQ(fake.use_count(), 1);  // the core is gone, with no polling
}

TEST_F(LifecycleTest, OtherCallsOfAClientReleasedInACallbackComplete) {
  // A stream sends "a" and then hangs; its handler starts a plain call, whose callback
  // releases the client while the stream is still open. (Both start on the engine thread, so
  // the manual clock cannot run ahead of either.)
  fake->on(testing::chat_url(kA), [](const HttpRequest& request) {
    if (!stream_call(request)) return testing::ok("plain");
    testing::Reply hang = testing::sse({"a"});
    hang.parts.resize(2);
    hang.end = testing::Reply::End::Hang;
    return hang;
  });
  auto client = std::make_shared<Client>(two_routes());
  Client& c = *client;
  std::shared_ptr<Client> holder = std::move(client);  // the only owner
  std::promise<ErrorKind> stream;
  c.chat_stream_async(
      ping(),
      [&](const ChatChunk& chunk) {
        if (chunk.content() == "a") {
          c.chat_async(ping(), {}, [owner = std::move(holder)](Result<ChatResponse>) mutable {
            owner.reset();
          });
        }
        return true;
      },
      {},
      [&stream](Result<ChatResponse> r) {
        stream.set_value(r ? ErrorKind::InvalidRequest : r.error().kind());
      });
  EXPECT_EQ(stream.get_future().get(), ErrorKind::Cancelled);
  EXPECT_TRUE(core_released());
}

TEST_F(LifecycleTest, AClientReleasedInsideASynchronousHandlerFinishesTheCall) {
  fake->sequence(testing::chat_url(kA), {testing::sse({"a", "b"})});
  auto client = std::make_shared<Client>(two_routes());
  std::shared_ptr<Client> holder = client;
  Client& c = *client;
  client.reset();
  auto r = c.chat_stream(ping(), [&](const ChatChunk& chunk) {
    if (chunk.content() == "a") holder.reset();  // the Client object is gone from here on
    return true;
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "ab");
  EXPECT_TRUE(core_released());
}

// A retry policy that throws while `throwing` is set.
struct ThrowingPolicy final : RetryPolicy {
  std::shared_ptr<std::atomic<bool>> throwing = std::make_shared<std::atomic<bool>>(true);
  Decision decide(const AttemptOutcome&, const CallState&) override {
    if (*throwing) throw std::runtime_error("policy bug");
    return Decision::failover();
  }
  std::unique_ptr<RetryPolicy> clone() const override {
    return std::make_unique<ThrowingPolicy>(*this);
  }
};

TEST_F(LifecycleTest, ARetryPolicyThatThrowsGivesATypedErrorAndLaterCallsAreServed) {
  fake->sequence(testing::chat_url(kA), {testing::status(500), testing::status(500),
                                         testing::status(500), testing::ok("a")});
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  ClientOptions o = two_routes();
  auto policy = std::make_shared<ThrowingPolicy>();
  o.retry = policy;
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::HookFailed);
  EXPECT_EQ(r.error().message(), "the retry policy threw: policy bug");
  EXPECT_EQ(outcomes(r.error().attempts()), (Strings{"a:server_error"}));
  auto async = client.chat_async(ping()).get();
  ASSERT_FALSE(async);
  EXPECT_EQ(async.error().kind(), ErrorKind::HookFailed);
  *policy->throwing = false;
  auto later = client.chat(ping());
  ASSERT_TRUE(later) << later.error().message();
  EXPECT_EQ(outcomes(later->attempts), (Strings{"a:server_error", "b:success"}));
  HealthSnapshot h = client.health();
  EXPECT_EQ(h.routes[0].state, BreakerState::Closed);  // three failures: below the threshold
  EXPECT_EQ(h.routes[0].in_flight, 0);
  EXPECT_NE(client.metrics_text().find("failover_calls_total{result=\"hook_failed\"} 2"),
            std::string::npos);
}

TEST_F(LifecycleTest, AStreamHandlerThatThrowsOnAHalfOpenRouteGivesItsProbeSlotBack) {
  fake->sequence(testing::chat_url(kA), {testing::status(500)});
  ClientOptions o = fake_options({{"a", kA, "sk-a"}}, {Tier{{{"a", "m"}}}});
  RetryOptions once;
  once.max_attempts = 1;
  o.retry = std::make_shared<DefaultRetryPolicy>(once);
  Client client(o);
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(client.chat(ping()));
  clock->advance(seconds(5));  // half-open: the next attempt is the probe
  fake->sequence(testing::chat_url(kA), {testing::sse({"x", "y"})});
  auto r = client.chat_stream(ping(), [](const ChatChunk& c) -> bool {
    if (!c.content().empty()) throw std::logic_error("render failed");
    return true;
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::HookFailed);
  EXPECT_EQ(r.error().message(), "the stream handler threw: render failed");
  ASSERT_NE(r.error().partial(), nullptr);
  EXPECT_EQ(r.error().partial()->text(), "x");
  // The probe slot came back: the next call is the probe, and it closes the breaker.
  EXPECT_EQ(client.health().routes[0].state, BreakerState::HalfOpen);
  auto next = client.chat_stream(ping(), [](const ChatChunk&) { return true; });
  ASSERT_TRUE(next) << next.error().message();
  EXPECT_EQ(client.health().routes[0].state, BreakerState::Closed);
}

struct ThrowingBalancer final : Balancer {
  void order(const std::vector<RouteView>&, const BalanceContext&,
             std::vector<std::size_t>&) override {
    throw std::out_of_range("no order");
  }
};

TEST_F(LifecycleTest, ABalancerOrATokenEstimatorThatThrowsFailsTheCallBeforeAnyTraffic) {
  ClientOptions o = two_routes();
  o.priority[0].balancer = std::make_shared<ThrowingBalancer>();
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::HookFailed);
  EXPECT_EQ(r.error().message(), "the balancer of priority[0] threw: no order");
  EXPECT_TRUE(fake->seen().empty());

  ClientOptions e = two_routes();
  e.token_estimator = [](const ChatRequest&) -> std::int64_t { throw 42; };
  Client estimating(e);
  auto s = estimating.chat_async(ping()).get();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind(), ErrorKind::HookFailed);
  EXPECT_EQ(s.error().message(), "the token estimator threw");
  EXPECT_TRUE(fake->seen().empty());
}

struct ThrowingBreaker final : CircuitBreaker {
  bool try_acquire(TimePoint) override { throw std::runtime_error("breaker bug"); }
  void on_success(TimePoint, Duration) override {}
  void on_failure(TimePoint, ErrorKind) override {}
  BreakerState state(TimePoint) const override { throw std::runtime_error("breaker bug"); }
};

TEST_F(LifecycleTest, ACircuitBreakerThatThrowsIsNamedAndHealthStillReads) {
  ClientOptions o = two_routes();
  o.circuit_breaker = [](const RouteRef& route) -> std::unique_ptr<CircuitBreaker> {
    if (route.endpoint == "a") return std::make_unique<ThrowingBreaker>();
    return std::make_unique<DefaultCircuitBreaker>();
  };
  fake->sequence(testing::chat_url(kB), {testing::ok("b")});
  Client client(o);
  auto r = client.chat(ping());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::HookFailed);
  EXPECT_EQ(r.error().message(), "the circuit breaker of a/m threw: breaker bug");
  HealthSnapshot h = client.health();  // a breaker that cannot say reads as open
  EXPECT_EQ(h.routes[0].state, BreakerState::Open);
  EXPECT_EQ(h.routes[1].state, BreakerState::Closed);
}

// Open, and says when it reopens only after throwing `throws` times.
struct ReopensAtThrows final : CircuitBreaker {
  int* throws = nullptr;
  explicit ReopensAtThrows(int* t) : throws(t) {}
  bool try_acquire(TimePoint) override { return false; }
  void on_success(TimePoint, Duration) override {}
  void on_failure(TimePoint, ErrorKind) override {}
  BreakerState state(TimePoint) const override { return BreakerState::Open; }
  std::optional<TimePoint> reopens_at(TimePoint now) const override {
    if (*throws > 0) {
      --*throws;
      throw std::runtime_error("reopens_at bug");
    }
    return now + std::chrono::seconds(5);
  }
};

// The routes a served call passed over are listed at its end, asking their breakers: one that
// throws there fails the call in application code, with the attempt that served in its trace,
// and however often it throws, Client::chat returns the error instead of throwing it.
TEST_F(LifecycleTest, ABreakerThrowingWhileTheServedCallListsSkippedRoutesIsAHookFailure) {
  for (int times : {1, 2, 5}) {
    int throws = times;
    ClientOptions o = two_routes();
    o.circuit_breaker = [&throws](const RouteRef& route) -> std::unique_ptr<CircuitBreaker> {
      if (route.endpoint == "a") return std::make_unique<ReopensAtThrows>(&throws);
      return std::make_unique<DefaultCircuitBreaker>();
    };
    fake->sequence(testing::chat_url(kB), {testing::ok("b")});
    Client client(o);
    Result<ChatResponse> r = client.chat(ping());
    ASSERT_FALSE(r) << times;
    EXPECT_EQ(r.error().kind(), ErrorKind::HookFailed) << times;
    EXPECT_EQ(r.error().message(), "the circuit breaker of a/m threw: reopens_at bug") << times;
    ASSERT_EQ(r.error().details().attempts.size(), 1u) << times;  // b's, which served
    EXPECT_EQ(r.error().details().attempts[0].route.endpoint, "b");
    EXPECT_EQ(r.error().details().attempts[0].status, 200);
  }
}

// The same breaker while the driver cancels a call in flight (its token cancelled from the
// stream handler): the call ends with the breaker's failure, and chat_stream returns it.
TEST_F(LifecycleTest, ACancelWhileABreakerThrowsListingSkippedRoutesReturnsTheError) {
  int throws = 1000;
  ClientOptions o = two_routes();
  o.circuit_breaker = [&throws](const RouteRef& route) -> std::unique_ptr<CircuitBreaker> {
    if (route.endpoint == "a") return std::make_unique<ReopensAtThrows>(&throws);
    return std::make_unique<DefaultCircuitBreaker>();
  };
  fake->sequence(testing::chat_url(kB), {testing::sse({"x", "y", "z", "w"}, milliseconds(20))});
  Client client(o);
  CancellationSource source;
  CallOptions call;
  call.cancel = source.token();
  std::optional<Result<ChatResponse>> r;
  EXPECT_NO_THROW(r.emplace(client.chat_stream(
      ping(),
      [&](const ChatChunk&) {
        source.cancel();
        return true;
      },
      call)));
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().kind(), ErrorKind::HookFailed);
  EXPECT_EQ(r->error().message(), "the circuit breaker of a/m threw: reopens_at bug");
}

TEST_F(LifecycleTest, AStreamOfManyChunksKeepsOneWakeUpPerCall) {
  std::vector<std::string> pieces(500, "x");
  fake->sequence(testing::chat_url(kA), {testing::sse(pieces, milliseconds(1))});
  auto core = std::make_shared<detail::ClientCore>(two_routes());
  detail::AsyncEngine& engine = core->engine();
  std::size_t most = 0;
  std::promise<Result<ChatResponse>> done;
  engine.submit(
      ping(), {},
      [&](const ChatChunk&) {
        most = std::max(most, engine.timer_entries());  // on the engine thread
        return true;
      },
      [&](Result<ChatResponse> r) { done.set_value(std::move(r)); });
  auto r = done.get_future().get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text().size(), 500u);
  EXPECT_EQ(most, 1u);  // re-arming the idle watchdog replaces the call's entry
  core->shutdown();
}

TEST_F(LifecycleTest, AShadowComparatorThatThrowsSkipsThePair) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  ClientOptions o = fake_options({{"a", kA, "sk-a"}}, {Tier{{{"a", "m"}}}});
  o.shadow.candidate = RouteRef{"a", "m2"};
  o.shadow.sample = 1.0;
  o.shadow.comparator = [](const ChatRequest&, const ChatResponse&, const ChatResponse&) -> double {
    throw std::runtime_error("compare bug");
  };
  Client client(o);
  ASSERT_TRUE(client.chat(ping()));
  ASSERT_TRUE(client.wait_for_shadow(seconds(10)));  // the mirror is accounted for
  ShadowReport report = *client.shadow_report();
  EXPECT_EQ(report.pairs, 0u);
  EXPECT_EQ(report.skipped, 1u);
}

// ---------------------------------------------------------------------------------------------
// Calls that callbacks start on the engine thread, and the shutdown path's callbacks

// A stream that sends its role and then nothing: the call machine's own first-token watchdog
// ends the attempt (the engine's timer phase), before any limit of the transport's.
testing::Reply silent_stream() {
  testing::Reply r = testing::sse({"never"});
  r.parts.resize(1);  // the role chunk
  r.end = testing::Reply::End::Hang;
  return r;
}

// One attempt, a first-token limit of 1 s.
ClientOptions one_attempt(ClientOptions o) {
  RetryOptions once;
  once.max_attempts = 1;
  o.retry = std::make_shared<DefaultRetryPolicy>(once);
  o.timeouts.first_byte = seconds(1);
  return o;
}

// Until the engine thread waits in its transport with nothing to do (it took any wake-up left
// from earlier submissions): the next submission is the one that wakes it.
void let_the_engine_idle(Client& client) {
  ASSERT_TRUE(client.chat_async(ping()).get());
  std::this_thread::sleep_for(milliseconds(50));
}

TEST_F(LifecycleTest, ACallChainedFromACallbackDuringAdmissionIsTakenAtOnce) {
  fake->on(testing::chat_url(kA), [](const HttpRequest&) { return testing::ok("second"); });
  Client client(two_routes());
  let_the_engine_idle(client);
  std::promise<Result<ChatResponse>> second;
  ChatRequest invalid;  // no messages: it ends while the engine admits it
  client.chat_async(invalid, {}, [&](Result<ChatResponse> first) {
    EXPECT_FALSE(first);
    client.chat_async(ping(), {}, [&](Result<ChatResponse> r) { second.set_value(std::move(r)); });
  });
  auto future = second.get_future();
  ASSERT_EQ(future.wait_for(seconds(10)), std::future_status::ready);  // not at shutdown
  auto r = future.get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "second");
}

TEST_F(LifecycleTest, ACallChainedFromACallbackWhenATimerEndsTheFirstIsTakenAtOnce) {
  fake->on(testing::chat_url(kA), [&](const HttpRequest& request) {
    // A route that streams (one that answered whole would be sent whole from then on).
    return stream_call(request) ? silent_stream() : testing::sse({"second"});
  });
  Client client(one_attempt(fake_options({{"a", kA, "sk-a"}}, {Tier{{{"a", "m"}}}})));
  let_the_engine_idle(client);
  std::promise<Result<ChatResponse>> second;
  client.chat_stream_async(
      ping(), [](const ChatChunk&) { return true; }, {},
      [&](Result<ChatResponse> first) {
        EXPECT_FALSE(first);
        client.chat_async(ping(), {},
                          [&](Result<ChatResponse> r) { second.set_value(std::move(r)); });
      });
  auto future = second.get_future();
  ASSERT_EQ(future.wait_for(seconds(10)), std::future_status::ready);
  auto r = future.get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->text(), "second");
}

TEST_F(LifecycleTest, TheMirrorOfAnAsyncCallEndedByATimerIsSent) {
  fake->on(testing::chat_url(kA), [](const HttpRequest& request) {
    return stream_call(request) ? silent_stream() : testing::ok("a");
  });
  fake->on(testing::chat_url("http://c.test/v1"),
           [](const HttpRequest&) { return testing::ok("candidate"); });
  ClientOptions o = one_attempt(
      fake_options({{"a", kA, "sk-a"}, {"c", "http://c.test/v1", "sk-c"}}, {Tier{{{"a", "m"}}}}));
  o.shadow.candidate = RouteRef{"c", "m2"};
  o.shadow.sample = 1.0;
  Client client(o);
  let_the_engine_idle(client);
  ASSERT_TRUE(client.wait_for_shadow(seconds(10)));  // the warm-up's mirror
  std::this_thread::sleep_for(milliseconds(50));
  auto primary = client.chat_stream_async(ping(), [](const ChatChunk&) { return true; }).get();
  ASSERT_FALSE(primary);
  EXPECT_EQ(primary.error().kind(), ErrorKind::AllRoutesUnavailable);
  ASSERT_TRUE(client.wait_for_shadow(seconds(10)));  // not only when the client goes
  EXPECT_EQ(fake->count(testing::chat_url("http://c.test/v1")), 2);
  EXPECT_EQ(client.shadow_report()->sampled, 2u);
}

// Callbacks of calls still queued when the engine stops: what they throw stays in the engine,
// and an empty callback is no callback. The first call's callback holds the engine thread
// while the others are queued behind it and the engine is told to stop.
TEST_F(LifecycleTest, CallbacksOfCallsQueuedAtShutdownMayThrowOrBeEmpty) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  auto core = std::make_shared<detail::ClientCore>(two_routes());
  detail::AsyncEngine& engine = core->engine();
  std::promise<void> holding, go;
  std::shared_future<void> released = go.get_future().share();
  engine.submit(ping(), {}, nullptr, [&](Result<ChatResponse>) {
    holding.set_value();
    released.wait();
  });
  holding.get_future().wait();
  std::atomic<int> ran{0};
  engine.submit(ping(), {}, nullptr, [&](Result<ChatResponse> r) {
    ++ran;
    std::printf("%s", r->text().c_str());  // throws the Error: the call was cancelled
  });
  engine.submit(ping(), {}, nullptr, detail::AsyncEngine::Callback{});
  engine.submit(ping(), {}, nullptr, [&](Result<ChatResponse> r) {
    EXPECT_EQ(r ? ErrorKind::InvalidRequest : r.error().kind(), ErrorKind::Cancelled);
    ++ran;
  });
  engine.stop();
  go.set_value();
  core->shutdown();  // joins: the process is still here
  EXPECT_EQ(ran.load(), 2);
}

// The review's program: a callback that reads the answer (throwing when the call was
// cancelled), and the client going out of scope at once.
TEST_F(LifecycleTest, AClientGoingOutOfScopeRightAfterAnAsyncCallEndsCleanly) {
  fake->on(testing::chat_url(kA), [](const HttpRequest&) { return testing::ok("a"); });
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) {
    Client c(two_routes());
    c.chat_async(ping(), {}, [&](Result<ChatResponse> r) {
      ++ran;
      std::printf("%s", r->text().c_str());  // throws when the call was cancelled
    });
    c.chat_async(ping(), {}, nullptr);
  }
  EXPECT_EQ(ran.load(), 100);  // each callback ran once, and the process is still here
}

// A synchronous call's answer is mirrored while another thread destroys the Client: the
// mirror must find the engine alive or not at all (AddressSanitizer checks this in CI).
TEST_F(LifecycleTest, DestroyingTheClientWhileASampledSynchronousCallMirrorsIsSafe) {
  fake->on(testing::chat_url(kA), [](const HttpRequest&) { return testing::sse({"a", "b"}); });
  fake->on(testing::chat_url("http://c.test/v1"),
           [](const HttpRequest&) { return testing::ok("c"); });
  ClientOptions o =
      fake_options({{"a", kA, "sk-a"}, {"c", "http://c.test/v1", "sk-c"}}, {Tier{{{"a", "m"}}}});
  o.shadow.candidate = RouteRef{"c", "m2"};
  o.shadow.sample = 1.0;
  ChatRequest big = ping();
  big.messages[0] = Message::user(std::string(256 * 1024, 'x'));  // a copy that takes a while
  for (int i = 0; i < 40; ++i) {
    auto client = std::make_unique<Client>(o);
    ASSERT_TRUE(client->chat_async(ping()).get());  // the engine exists
    std::promise<void> answered;
    std::thread caller([&] {
      auto r = client->chat_stream(big, [&](const ChatChunk& chunk) {
        if (chunk.content() == "a") answered.set_value();
        return true;
      });
      EXPECT_TRUE(r) << r.error().message();
    });
    answered.get_future().wait();
    std::this_thread::sleep_for(std::chrono::microseconds(25 * (i % 8)));
    client.reset();  // while the caller's call ends and mirrors
    caller.join();
  }
  o = ClientOptions{};  // the options held the transport too
  EXPECT_TRUE(core_released());
}

}  // namespace
}  // namespace failover
