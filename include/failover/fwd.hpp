#pragma once

/** @file fwd.hpp  Forward declarations of the public failover types. */

namespace failover {
class Clock;
class Rng;
class Error;
template <class T>
class Result;
struct Attempt;
struct RouteRef;
struct Message;
struct ChatRequest;
struct ChatResponse;
struct Endpoint;
struct Route;
struct Tier;
struct Timeouts;
struct ClientOptions;
struct CallOptions;
class RetryPolicy;
class CircuitBreaker;
class Transport;
class TransportSession;
class CancellationSource;
class CancellationToken;
class Client;
}  // namespace failover
