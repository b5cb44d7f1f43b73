#include "cli_common.hpp"

#include <failover/config.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>

namespace failover::tools {

void add_log_flags(CLI::App& command, LogArgs& args) {
  command.add_flag("-v,--verbose", args.verbose, "Log every attempt (debug) to stderr");
  command.add_option("--log-level", args.level, "Log level; wins over -v and the file's \"log\"")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

std::string config_path(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("FAILOVER_CONFIG"); env && *env) return env;
  return "failover.json";
}

std::optional<ClientOptions> load_options(const std::string& flag, const LogArgs& log) {
  const std::string path = config_path(flag);
  try {
    ClientOptions options = options_from_file(path);
    if (!log.level.empty()) {
      options.log.level = log.level;
    } else if (log.verbose) {
      options.log.level = "debug";
    } else if (options.log.level.empty()) {
      options.log.level = "warn";
    }
    if (options.log.file.empty()) {  // the client would log to stderr too: as the tool does
      auto logger = std::make_shared<spdlog::logger>(
          "failover", std::make_shared<spdlog::sinks::stderr_sink_mt>());
      logger->set_pattern("failover: %v");
      logger->set_level(spdlog::level::from_str(options.log.level));
      options.logger = std::move(logger);
    }
    return options;
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
