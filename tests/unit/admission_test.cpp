// Admission of one call's attempts: rate-limit permits, spend reservations and the breaker,
// on the manual clock, to exact values.

#include "core/admission.hpp"
#include "core/attempt_lease.hpp"
#include "core/call_env.hpp"
#include "core/client_core.hpp"
#include "core/user_code.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace failover {
namespace {

using Block = detail::Admission::Block;
using std::chrono::milliseconds;

struct AdmissionTest : testing::FakeClientTest {
  ClientOptions options = fake_options({{"a", "http://a.test/v1", "sk-a"}}, {Tier{{{"a", "m"}}}});
  std::shared_ptr<detail::ClientCore> core;
  TimePoint now{};

  // A request of 40 characters (10 tokens at four a token) asking for at most 100.
  static ChatRequest request() {
    ChatRequest r;
    r.messages = {Message::user(std::string(40, 'x'))};
    r.max_tokens = 100;
    return r;
  }
  void priced() {
    ModelPrice price;
    price.input_per_mtok = 1.0;
    price.output_per_mtok = 2.0;
    options.prices["m"] = price;
  }
  detail::Admission admission(const ChatRequest& r = request()) {
    core = std::make_shared<detail::ClientCore>(options);
    now = clock->now();
    detail::Admission a(core->call_env());
    a.estimate(r);
    return a;
  }
  detail::RouteState& route() { return *core->routes()[0]; }
  ~AdmissionTest() override {
    if (core) core->shutdown();
  }
};

TEST_F(AdmissionTest, TheCostIsThePromptAtFourCharactersATokenAndTheOutputCap) {
  priced();
  options.budget.usd_per_day = 1.0;
  detail::Admission a = admission();
  EXPECT_EQ(a.prompt_tokens(), 10);
  bool guess = false;
  EXPECT_EQ(a.estimated_cost(route(), &guess), 10 * 1000 + 100 * 2000);  // nano-dollars
  EXPECT_FALSE(guess);
}

TEST_F(AdmissionTest, WithoutAnOutputCapTheBudgetsDefaultOutputIsAGuess) {
  priced();
  options.budget.usd_per_day = 1.0;
  options.budget.default_output_tokens = 500;
  ChatRequest r = request();
  r.max_tokens.reset();
  detail::Admission a = admission(r);
  bool guess = false;
  EXPECT_EQ(a.estimated_cost(route(), &guess), 10 * 1000 + 500 * 2000);
  EXPECT_TRUE(guess);
}

TEST_F(AdmissionTest, NothingIsCountedWithoutABudgetOrAPrice) {
  priced();
  EXPECT_EQ(admission().estimated_cost(route()), std::nullopt);  // no budget
  options.priority = {Tier{{{"a", "m"}, {"a", "free"}}}};
  options.budget.usd_per_day = 1.0;
  detail::Admission a = admission();
  EXPECT_EQ(a.estimated_cost(*core->routes()[1]), std::nullopt);  // a model without a price
  EXPECT_TRUE(a.budget_allows(*core->routes()[1]));
}

TEST_F(AdmissionTest, TheApplicationsEstimatorReplacesPromptAndOutput) {
  priced();
  options.budget.usd_per_day = 1.0;
  options.token_estimator = [](const ChatRequest&) { return std::int64_t{1000}; };
  detail::Admission a = admission();
  EXPECT_EQ(a.prompt_tokens(), 1000);
  bool guess = false;
  EXPECT_EQ(a.estimated_cost(route(), &guess), 1000 * 1000);
  EXPECT_FALSE(guess);  // the estimator's figure is a bound, not a guess
}

TEST_F(AdmissionTest, AThrowingEstimatorComesBackAsAHookErrorNamingIt) {
  options.token_estimator = [](const ChatRequest&) -> std::int64_t {
    throw std::runtime_error("no");
  };
  core = std::make_shared<detail::ClientCore>(options);
  detail::Admission a(core->call_env());
  try {
    a.estimate(request());
    FAIL() << "no HookError";
  } catch (const detail::HookError& e) {
    EXPECT_NE(std::string(e.what()).find("the token estimator"), std::string::npos) << e.what();
  }
}

TEST_F(AdmissionTest, APermitABreakerAdmissionAndAReservationAreHeldByTheLease) {
  priced();
  options.budget.usd_per_day = 0.0003;  // room for one estimate of 0.00021
  options.endpoints[0].limits.max_concurrency = 2;
  detail::Admission a = admission();
  TimePoint latest = now;
  detail::AttemptLease first(&latest);
  EXPECT_EQ(a.admit(route(), now, first), Block::None);
  EXPECT_FALSE(first.empty());
  detail::AttemptLease second(&latest);
  EXPECT_EQ(a.admit(route(), now, second), Block::Budget);
  EXPECT_TRUE(a.spend_blocked());
  EXPECT_TRUE(second.empty());  // nothing kept of a refusal
  EXPECT_FALSE(a.would_admit(route(), now));
  first.release();  // the reservation goes back with the lease
  EXPECT_TRUE(a.would_admit(route(), now));
  EXPECT_EQ(a.admit(route(), now, second), Block::None);
}

TEST_F(AdmissionTest, ARefusedPermitIsNotedWithWhenToLookAgain) {
  options.endpoints[0].limits.max_concurrency = 1;
  detail::Admission a = admission();
  TimePoint latest = now;
  detail::AttemptLease first(&latest);
  EXPECT_EQ(a.admit(route(), now, first), Block::None);
  detail::AttemptLease second(&latest);
  EXPECT_EQ(a.admit(route(), now, second), Block::RateLimit);
  EXPECT_TRUE(a.rate_blocked());
  // Only a request ending frees a slot of a concurrency limit: look again shortly.
  EXPECT_EQ(a.rate_wait(), now + milliseconds(50));
  EXPECT_FALSE(a.would_admit(route(), now));
  a.start_round();
  EXPECT_FALSE(a.rate_blocked());
  EXPECT_EQ(a.rate_wait(), TimePoint::max());
}

TEST_F(AdmissionTest, AnOpenBreakerRefusesAndGivesThePermitBack) {
  CircuitBreakerOptions b;
  b.consecutive_failures = 1;
  options.circuit_breaker = DefaultCircuitBreaker::factory(b);
  options.endpoints[0].limits.max_concurrency = 1;
  detail::Admission a = admission();
  route().on_failure(now, ErrorKind::ServerError);  // trips it
  TimePoint latest = now;
  detail::AttemptLease lease(&latest);
  EXPECT_EQ(a.admit(route(), now, lease), Block::Breaker);
  EXPECT_FALSE(a.rate_blocked());
  // The permit taken before the breaker said no was given back: the limiter grants again.
  EXPECT_TRUE(core->limiter(0)->would_grant(now, 0));
}

}  // namespace
}  // namespace failover
