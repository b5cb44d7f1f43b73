// The call machine's steps as its drivers see them: a call whose route admits it starts its
// attempt at the first step, and application code that cancels the call during admission finds
// the request already sent.

#include "core/call.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"
#include "test_helpers.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace failover {
namespace {

const std::string kA = "http://a.test/v1";

struct CallMachineTest : testing::FakeClientTest {};

TEST_F(CallMachineTest, TheFirstStepStartsTheAttempt) {
  auto core =
      std::make_shared<detail::ClientCore>(fake_options({{"a", kA, "sk-a"}}, {Tier{{{"a", "m"}}}}));
  {
    detail::CallMachine m(core->call_env(), testing::ping(), CallOptions{}, clock->now());
    ASSERT_FALSE(m.done());
    const detail::Step step = m.next(clock->now());
    EXPECT_EQ(step.kind, detail::Step::Kind::Start);
    EXPECT_NE(step.request, nullptr);
  }
  core->shutdown();
}

TEST_F(CallMachineTest, ACallNoRouteCanServeEndsAtTheFirstStep) {
  auto core =
      std::make_shared<detail::ClientCore>(fake_options({{"a", kA, "sk-a"}}, {Tier{{{"a", "m"}}}}));
  core->routes()[0]->cool_down_until(clock->now() + std::chrono::seconds(30));
  {
    detail::CallMachine m(core->call_env(), testing::ping(), CallOptions{}, clock->now());
    EXPECT_EQ(m.next(clock->now()).kind, detail::Step::Kind::Done);
    ASSERT_TRUE(m.done());
    EXPECT_EQ(m.take().error().kind(), ErrorKind::AllRoutesUnavailable);
  }
  core->shutdown();
}

// A breaker (application code) that cancels the call while admitting its attempt.
struct CancellingBreaker : CircuitBreaker {
  explicit CancellingBreaker(CancellationSource* s) : source(s) {}
  CancellationSource* source;
  bool try_acquire(TimePoint) override {
    source->cancel();
    return true;
  }
  void on_success(TimePoint, Duration) override {}
  void on_failure(TimePoint, ErrorKind) override {}
  BreakerState state(TimePoint) const override { return BreakerState::Closed; }
};

TEST_F(CallMachineTest, ACallCancelledDuringAdmissionHasSentItsRequest) {
  fake->sequence(testing::chat_url(kA), {testing::ok("a")});
  CancellationSource source;
  ClientOptions o = fake_options({{"a", kA, "sk-a"}}, {Tier{{{"a", "m"}}}});
  o.circuit_breaker = [&source](const RouteRef&) -> std::unique_ptr<CircuitBreaker> {
    return std::make_unique<CancellingBreaker>(&source);
  };
  Client client(o);
  CallOptions call;
  call.cancel = source.token();
  auto r = client.chat(testing::ping(), call);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::Cancelled);
  EXPECT_EQ(fake->count(testing::chat_url(kA)), 1);  // Start came before the cancellation
}

}  // namespace
}  // namespace failover
