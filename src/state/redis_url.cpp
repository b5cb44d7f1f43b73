#include "state/redis_url.hpp"

#include <charconv>
#include <stdexcept>

namespace failover::detail::redis_url {

namespace {

[[noreturn]] void bad_url(const std::string& why) {
  throw std::invalid_argument("state.redis: " + why +
                              " (expected redis://[:password@]host[:port][/db])");
}

int whole(const std::string& text, int max, const char* what) {
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0 || v > max) {
    bad_url(std::string(what) + " \"" + text + "\" is not a number from 0 to " +
            std::to_string(max));
  }
  return v;
}

}  // namespace

Url parse_url(const std::string& url) {
  if (url.rfind("rediss://", 0) == 0) {
    bad_url("TLS (rediss://) needs hiredis 1.0 with SSL support; this build's hiredis has none");
  }
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) bad_url("\"" + url.substr(0, 40) + "\" is not a redis:// URL");
  std::string rest = url.substr(scheme.size());
  Url u;
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    std::string userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string::npos) bad_url("the password must follow a ':'");
    u.user = userinfo.substr(0, colon);
    u.password = userinfo.substr(colon + 1);
  }
  std::string hostport = rest;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    hostport = rest.substr(0, slash);
    const std::string db = rest.substr(slash + 1);
    if (!db.empty()) u.db = whole(db, 1 << 20, "database");
  }
  if (!hostport.empty() && hostport[0] == '[') {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string::npos) bad_url("an IPv6 host needs its closing ']'");
    u.host = hostport.substr(1, close - 1);
    std::string after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') bad_url("unexpected text after the host");
      u.port = whole(after.substr(1), 65535, "port");
    }
  } else {
    auto colon = hostport.find(':');
    u.host = hostport.substr(0, colon);
    if (colon != std::string::npos) u.port = whole(hostport.substr(colon + 1), 65535, "port");
  }
  if (u.host.empty()) bad_url("the host is missing");
  return u;
}

}  // namespace failover::detail::redis_url
