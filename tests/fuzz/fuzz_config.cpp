// Fuzzes the configuration loader: any text either loads or throws ConfigError (never anything
// else), a loaded configuration is checked the way a Client checks it, and what
// options_to_json writes loads again to the same text.

#include <failover/failover.hpp>

#include "core/client_core.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(bytes), size);
  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "KEY") return std::string("sk-fuzz");
    if (name == "URL") return std::string("http://127.0.0.1:9/v1");
    return std::nullopt;
  };
  failover::ClientOptions options;
  try {
    options = failover::options_from_json(text, env);
  } catch (const failover::ConfigError&) {
    return 0;
  }
  try {
    (void)failover::detail::resolve_options(options);
  } catch (const failover::ConfigError&) {
    return 0;
  }
  // A `${` in a value is written `$${`: nothing is interpolated again.
  const std::string written = failover::options_to_json(options, /*include_keys=*/true);
  try {
    failover::ClientOptions again = failover::options_from_json(written, env);
    if (failover::options_to_json(again, true) != written) std::abort();
  } catch (const failover::ConfigError&) {
    std::abort();  // what the SDK wrote must load
  }
  return 0;
}
