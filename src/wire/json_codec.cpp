// JSON shared by the codec: parsing with a depth limit, excerpts, and JSON written fast.

#include "wire/json_codec.hpp"

#include "util/utf8.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <string_view>

namespace failover::wire {

using nlohmann::json;

bool json_depth_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '/':  // a comment, where the parser takes them (configs): what it holds is not read
        if (i + 1 < text.size() && text[i + 1] == '/') {
          i = text.find_first_of("\n\r", i);
          if (i == std::string_view::npos) return true;
        } else if (i + 1 < text.size() && text[i + 1] == '*') {
          i = text.find("*/", i + 2);
          if (i == std::string_view::npos) return true;
          ++i;
        }
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

std::int64_t to_int64(double v) noexcept {
  if (!(v == v)) return 0;
  if (v >= 9223372036854775807.0) return std::numeric_limits<std::int64_t>::max();
  if (v <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(v);
}

std::optional<json> parse_json(std::string_view text) {
  if (!json_depth_within(text)) return std::nullopt;
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

std::string excerpt(std::string_view text, std::size_t max) {
  // Cut between characters, control characters as spaces, bad bytes as U+FFFD: the excerpt is
  // valid UTF-8 whatever `text` holds.
  std::string out = detail::valid_utf8_prefix(text, max);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  if (text.size() > max) out += "...";
  return out;
}

namespace {

// The length of the well-formed UTF-8 sequence at `p` (Unicode's table 3-7: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(const unsigned char* p, std::size_t left) {
  const unsigned char c = p[0];
  auto cont = [&](std::size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < left && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

}  // namespace

bool append_string(const std::string& s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  out += '"';
  std::size_t run = 0;  // the start of the bytes copied as they are
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x80) {
      const std::size_t len = utf8_sequence(p + i, n - i);
      if (len == 0) return false;
      i += len;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(s, run, i - run);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escaped, sizeof escaped);
      }
    }
    run = ++i;
  }
  out.append(s, run, n - run);
  out += '"';
  return true;
}

bool append_json(const json& value, std::string& out) {
  switch (value.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out += ',';
        first = false;
        if (!append_string(it.key(), out)) return false;
        out += ':';
        if (!append_json(it.value(), out)) return false;
      }
      out += '}';
      return true;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& item : value) {
        if (!first) out += ',';
        first = false;
        if (!append_json(item, out)) return false;
      }
      out += ']';
      return true;
    }
    case json::value_t::string:
      return append_string(value.get_ref<const std::string&>(), out);
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return true;
    case json::value_t::null:
      out += "null";
      return true;
    case json::value_t::number_integer:
      append_integer(value.get<std::int64_t>(), out);
      return true;
    case json::value_t::number_unsigned:
      append_integer(value.get<std::uint64_t>(), out);
      return true;
    case json::value_t::number_float:  // nlohmann's shortest round-trip form, NaN as null
    case json::value_t::binary:
    case json::value_t::discarded:
      out += value.dump();
      return true;
  }
  return false;
}

}  // namespace failover::wire
