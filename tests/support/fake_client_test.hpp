#pragma once

// The base fixture of client tests on the scripted transport.

#include "fake_transport.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <utility>
#include <vector>

namespace failover::testing {

/** A manual clock, a fake transport on it, and client options that use both. */
struct FakeClientTest : ::testing::Test {
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  std::shared_ptr<FakeTransport> fake = std::make_shared<FakeTransport>(clock);

  /** `endpoints` and `priority` on this clock and transport, with a fixed random source
   *  (0.5); a test that needs another sets `rng` after. */
  ClientOptions fake_options(std::vector<Endpoint> endpoints, std::vector<Tier> priority) const {
    ClientOptions o;
    o.endpoints = std::move(endpoints);
    o.priority = std::move(priority);
    o.clock = clock;
    o.rng = std::make_shared<FixedRng>(0.5);
    o.transport = fake;
    return o;
  }
};

}  // namespace failover::testing
