#pragma once

// What the commands share: where the configuration comes from and how a failure to load it
// reads.

#include <failover/options.hpp>

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

namespace failover::tools {

/** -v and --log-level, which every command takes. */
struct LogArgs {
  bool verbose = false;  // -v: debug
  std::string level;     // --log-level: wins over -v and the file's "log"
};
void add_log_flags(CLI::App& command, LogArgs& args);

/** The configuration file: `flag` (--config) when given, else $FAILOVER_CONFIG, else
 *  ./failover.json. */
std::string config_path(const std::string& flag);

/** The options of that file, logging as `log` and the file's `log` section say (warnings by
 *  default; to stderr as "failover: ..." unless the file names a log file); on failure says
 *  why on stderr (with where the default comes from when the file cannot be opened) and
 *  returns nothing: the command exits 2. */
std::optional<ClientOptions> load_options(const std::string& flag, const LogArgs& log = {});

}  // namespace failover::tools
