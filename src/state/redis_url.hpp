#pragma once

// A Redis URL, redis://[[user]:password@]host[:port][/db], with IPv6 hosts in brackets.

#include <string>

namespace failover::detail::redis_url {

struct Url {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;
  std::string password;
};

/** The parts of `url`; throws std::invalid_argument naming what is wrong (rediss:// is refused:
 *  this build's hiredis has no TLS). */
Url parse_url(const std::string& url);

}  // namespace failover::detail::redis_url
