#pragma once

/**
 * @file config.hpp  Client options from JSON configuration files (every key in
 * docs/configuration.md), with
 * `${NAME}` taken from the environment, and the errors that name what was wrong.
 */

#include <failover/export.hpp>
#include <failover/options.hpp>

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace failover {

/**
 * Invalid options or configuration. `what()` starts with the path of the offending field,
 * as written in a configuration file (`endpoints[1].base_url`, `timeouts.connect_ms`, ...);
 * `path()` is that path alone. Secrets are never part of the message.
 */
class FAILOVER_EXPORT ConfigError : public std::invalid_argument {
 public:
  /** `message` starts with the field's path, which becomes `path()`. */
  explicit ConfigError(const std::string& message);
  /** The field at `path` is wrong: `what` says how (the message is both). */
  ConfigError(std::string path, const std::string& what);
  /** The path of the offending field. */
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/** Looks up an environment variable; empty when it is not set. */
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/**
 * Reads client options from JSON configuration text. Every key is checked: an unknown key, a
 * wrong type, a bad URL, an empty or missing key, an unset environment variable, a duplicate
 * endpoint, a route to an unknown endpoint or an empty tier throws `ConfigError` naming the
 * path. In every string value `${NAME}` is replaced by the variable (an error when unset) and
 * `${NAME:-fallback}` by the variable or the fallback. `env` defaults to the process
 * environment.
 */
FAILOVER_EXPORT ClientOptions options_from_json(std::string_view json_text,
                                                const EnvLookup& env = {});

/** Reads a configuration file; `ConfigError` with path `config` when it cannot be read. */
FAILOVER_EXPORT ClientOptions options_from_file(const std::string& path, const EnvLookup& env = {});

/**
 * The configuration keys of `options` as JSON (indented by two spaces), readable by
 * `options_from_json`. API keys are written only when `include_keys` is true; otherwise
 * they are written as `"<redacted>"`. Retry and breaker settings are written when the default
 * policies are in use.
 */
FAILOVER_EXPORT std::string options_to_json(const ClientOptions& options,
                                            bool include_keys = false);

}  // namespace failover
