#pragma once

/** @file failover.hpp  Everything a user of the SDK needs, in one include. */

#include <failover/cancellation.hpp>
#include <failover/chat.hpp>
#include <failover/client.hpp>
#include <failover/config.hpp>
#include <failover/error.hpp>
#include <failover/health.hpp>
#include <failover/options.hpp>
#include <failover/policy/balancer.hpp>
#include <failover/policy/circuit_breaker.hpp>
#include <failover/policy/retry.hpp>
#include <failover/result.hpp>
#include <failover/state.hpp>
#include <failover/time.hpp>
#include <failover/transport.hpp>
#include <failover/usage.hpp>
#include <failover/version.hpp>
