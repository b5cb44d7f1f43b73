#include "cli_common.hpp"

#include <failover/config.hpp>

#include <cstdlib>
#include <iostream>

namespace failover::tools {

std::string config_path(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("FAILOVER_CONFIG"); env && *env) return env;
  return "failover.json";
}

std::optional<ClientOptions> load_options(const std::string& flag) {
  const std::string path = config_path(flag);
  try {
    return options_from_file(path);
  } catch (const ConfigError& e) {
    std::cerr << "failover: bad configuration: " << e.what();
    const std::string what = e.what();
    if (flag.empty() && what.find("cannot be opened") != std::string::npos) {
      const char* env = std::getenv("FAILOVER_CONFIG");
      std::cerr << (env && *env ? " (named by $FAILOVER_CONFIG; pass --config FILE for another)"
                                : "; pass --config FILE or set $FAILOVER_CONFIG (without "
                                  "either, ./failover.json is read)");
    }
    std::cerr << "\n";
  }
  return std::nullopt;
}

}  // namespace failover::tools
