#pragma once

// ASCII case folding: protocol names (header names, URL schemes, error codes) are ASCII, and
// std::tolower would consult the locale for every byte and could fold other bytes too.

#include <string>
#include <string_view>

namespace failover::detail {

/** `c` in lower case when it is an ASCII capital; any other byte as it is. */
constexpr char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/** `s` with its ASCII capitals in lower case. */
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

}  // namespace failover::detail
