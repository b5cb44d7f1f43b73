#pragma once

// What the commands share: where the configuration comes from and how a failure to load it
// reads.

#include <failover/options.hpp>

#include <optional>
#include <string>

namespace failover::tools {

/** The configuration file: `flag` (--config) when given, else $FAILOVER_CONFIG, else
 *  ./failover.json. */
std::string config_path(const std::string& flag);

/** The options of that file; on failure says why on stderr (with where the default comes
 *  from when the file cannot be opened) and returns nothing: the command exits 2. */
std::optional<ClientOptions> load_options(const std::string& flag);

}  // namespace failover::tools
