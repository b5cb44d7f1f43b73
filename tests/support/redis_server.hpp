#pragma once

// A redis-server of the test's own on a free 127.0.0.1 port (no system service, nothing
// saved to disk), stopped with the test.

#include "process.hpp"

#include <memory>
#include <string>

namespace failover::testing {

class RedisServer {
 public:
  /** Starts it and waits until it accepts connections; throws std::runtime_error if it cannot. */
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /** Stops it (a crash, as far as clients can tell). */
  void stop();
  /** Starts it again on the same port, empty. */
  void start();

  int port() const { return port_; }
  /** `redis://127.0.0.1:PORT/0`. */
  std::string url() const;

 private:
  int port_ = 0;
  std::unique_ptr<Background> process_;
};

/** Whether redis-server can be run here. */
bool redis_available();

}  // namespace failover::testing
