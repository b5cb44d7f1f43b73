// The parent library's one function: it only has to use failover.
#include <failover/failover.hpp>

#include <string>

std::string parent_describe(const failover::ClientOptions& options) {
  return failover::options_to_json(options);
}
