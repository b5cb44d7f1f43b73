// What a call's attempts spent, on their own: an answer's usage, a stream's report or estimate,
// and the settling of a reservation whose alerts go to the application.

#include "core/charges.hpp"
#include "core/admission.hpp"
#include "core/call_env.hpp"
#include "core/client_core.hpp"
#include "fake_client_test.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace failover {
namespace {

using detail::AttemptStream;
using detail::Charges;

struct ChargesTest : testing::FakeClientTest {
  ClientOptions options = fake_options({{"a", "http://a.test/v1", "k"}}, {Tier::of("m", {"a"})});
  std::shared_ptr<detail::ClientCore> core;
  std::unique_ptr<detail::Admission> admission;
  int alerts = 0;

  Charges charges(bool priced = true) {
    if (priced) {
      ModelPrice price;
      price.input_per_mtok = 1.0;   // 1,000 nano-dollars a token
      price.output_per_mtok = 2.0;  // 2,000
      options.prices["m"] = price;
      options.budget.usd_per_day = 0.00003;  // 30,000 nano-dollars
      options.budget.on_alert = [this](const BudgetAlert&) {
        ++alerts;
        throw std::runtime_error("the application's callback throws");
      };
    }
    core = std::make_shared<detail::ClientCore>(options);
    admission = std::make_unique<detail::Admission>(core->call_env());
    ChatRequest r;
    r.messages = {Message::user(std::string(40, 'x'))};  // 10 tokens at four a token
    admission->estimate(r);
    return Charges(core->call_env(), *admission);
  }
  detail::RouteState& route() { return *core->routes()[0]; }
  ~ChargesTest() override {
    if (core) core->shutdown();
  }
};

TEST_F(ChargesTest, AnAnswerCostsItsUsage) {
  Charges c = charges();
  ChatResponse answer;
  Usage u;
  u.prompt_tokens = 7;
  u.completion_tokens = 3;
  u.total_tokens = 10;
  answer.usage = u;
  EXPECT_EQ(c.answer(answer, nullptr, route(), 0), 7 * 1000 + 3 * 2000);
  EXPECT_EQ(route().typical_output(), 3);  // kept for the estimates of uncapped requests
}

TEST_F(ChargesTest, AStreamWithoutUsageCostsAnEstimate) {
  Charges c = charges();
  AttemptStream s(wire::api_of(Dialect::OpenAI), TimePoint{}, true);
  s.received_chars = 9;  // 3 tokens at four characters a token
  EXPECT_EQ(c.stream(s, route(), 0), 10 * 1000 + 3 * 2000);
  ChatResponse no_usage;
  EXPECT_EQ(c.answer(no_usage, &s, route(), 0), 10 * 1000 + 3 * 2000);
  EXPECT_EQ(c.answer(no_usage, nullptr, route(), 0), std::nullopt);  // nothing known
}

TEST_F(ChargesTest, AnUnpricedRouteCostsNothingKnown) {
  Charges c = charges(/*priced=*/false);
  AttemptStream s(wire::api_of(Dialect::OpenAI), TimePoint{}, true);
  s.received_chars = 9;
  EXPECT_EQ(c.stream(s, route(), 0), std::nullopt);
}

TEST_F(ChargesTest, AnAlertCallbackThatThrowsIsContained) {
  Charges c = charges();
  EXPECT_NO_THROW(c.settle(0, 29'000));  // past 80 % of the day
  EXPECT_EQ(alerts, 1);
}

}  // namespace
}  // namespace failover
