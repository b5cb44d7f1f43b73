#include "wire/http_headers.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>

namespace failover::wire {

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  std::size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

const std::string* find_header(const HttpHeaders& headers, std::string_view lower_name) {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

namespace {

// A non-negative decimal number ("12", "1.5"); no sign, no exponent, no trailing junk.
std::optional<double> parse_plain_number(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.size() > 32) return std::nullopt;
  bool seen_digit = false, seen_dot = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      seen_digit = true;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      return std::nullopt;
    }
  }
  if (!seen_digit) return std::nullopt;
  double value = 0;
  double scale = 0;
  for (char c : s) {
    if (c == '.') {
      scale = 1;
      continue;
    }
    if (scale > 0) {
      scale /= 10;
      value += (c - '0') * scale;
    } else {
      value = value * 10 + (c - '0');
    }
  }
  if (!std::isfinite(value)) return std::nullopt;
  return value;
}

Duration from_millis(double ms) {
  // Clamp absurd values to a day: callers cap far below that anyway.
  constexpr double kMaxMs = 24.0 * 3600.0 * 1000.0;
  if (ms > kMaxMs) ms = kMaxMs;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::milli>(ms));
}

int month_index(std::string_view m) {
  static const std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[static_cast<std::size_t>(i)]) return i;
  }
  return -1;
}

bool parse_int(std::string_view s, int& out) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_clock(std::string_view s, int& h, int& m, int& sec) {
  return s.size() == 8 && s[2] == ':' && s[5] == ':' && parse_int(s.substr(0, 2), h) &&
         parse_int(s.substr(3, 2), m) && parse_int(s.substr(6, 2), sec) && h < 24 && m < 60 &&
         sec <= 60;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

}  // namespace

std::optional<WallTime> parse_http_date(std::string_view value) {
  auto parts = split_spaces(trim(value));
  int day = 0, year = 0, h = 0, mi = 0, s = 0, mon = -1;
  if (parts.size() == 6 && parts[0].size() == 4 && parts[0].back() == ',' && parts[5] == "GMT") {
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    if (!parse_int(parts[1], day) || parts[1].size() != 2) return std::nullopt;
    mon = month_index(parts[2]);
    if (!parse_int(parts[3], year) || parts[3].size() != 4) return std::nullopt;
    if (!parse_clock(parts[4], h, mi, s)) return std::nullopt;
  } else if (parts.size() == 4 && parts[0].back() == ',' && parts[3] == "GMT") {
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    std::string_view d = parts[1];
    if (d.size() != 9 || d[2] != '-' || d[6] != '-') return std::nullopt;
    if (!parse_int(d.substr(0, 2), day) || !parse_int(d.substr(7, 2), year)) return std::nullopt;
    mon = month_index(d.substr(3, 3));
    year += year < 70 ? 2000 : 1900;
    if (!parse_clock(parts[2], h, mi, s)) return std::nullopt;
  } else if (parts.size() == 5) {
    // asctime: Sun Nov  6 08:49:37 1994
    mon = month_index(parts[1]);
    if (!parse_int(parts[2], day) || !parse_clock(parts[3], h, mi, s)) return std::nullopt;
    if (!parse_int(parts[4], year) || parts[4].size() != 4) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (mon < 0 || day < 1 || day > 31 || year < 1970) return std::nullopt;
  // A wall time in nanoseconds ends in 2262: a date past 2200 (found by fuzz_headers: year
  // 6994 overflowed) is taken as 2200, which is far enough for any wait.
  year = std::min(year, 2200);
  std::int64_t secs = days_from_civil(year, mon + 1, day) * 86400 + h * 3600 + mi * 60 + s;
  return WallTime{std::chrono::seconds(secs)};
}

std::optional<WallTime> parse_rfc3339(std::string_view value) {
  std::string_view t = trim(value);
  // 2030-01-01T00:00:30Z, 2030-01-01t00:00:30.25+02:00
  if (t.size() < 20 || t.size() > 40 || t[4] != '-' || t[7] != '-' ||
      (t[10] != 'T' && t[10] != 't' && t[10] != ' ')) {
    return std::nullopt;
  }
  int year = 0, mon = 0, day = 0, h = 0, mi = 0, s = 0;
  if (!parse_int(t.substr(0, 4), year) || !parse_int(t.substr(5, 2), mon) ||
      !parse_int(t.substr(8, 2), day) || !parse_clock(t.substr(11, 8), h, mi, s)) {
    return std::nullopt;
  }
  std::size_t i = 19;
  double fraction = 0;
  if (i < t.size() && t[i] == '.') {
    std::size_t end = i + 1;
    while (end < t.size() && std::isdigit(static_cast<unsigned char>(t[end]))) ++end;
    if (end == i + 1 || end - i > 10) return std::nullopt;
    std::from_chars(t.data() + i + 1, t.data() + end, fraction);
    for (std::size_t k = i + 1; k < end; ++k) fraction /= 10;
    i = end;
  }
  int offset_minutes = 0;
  if (i + 1 == t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    // UTC
  } else if (i + 6 == t.size() && (t[i] == '+' || t[i] == '-') && t[i + 3] == ':') {
    int oh = 0, om = 0;
    if (!parse_int(t.substr(i + 1, 2), oh) || !parse_int(t.substr(i + 4, 2), om) || oh > 23 ||
        om > 59) {
      return std::nullopt;
    }
    offset_minutes = (t[i] == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || year < 1970) return std::nullopt;
  year = std::min(year, 2200);  // as for HTTP dates: far enough, and no overflow
  const std::int64_t secs =
      days_from_civil(year, mon, day) * 86400 + h * 3600 + mi * 60 + s - offset_minutes * 60;
  return WallTime{std::chrono::seconds(secs)} +
         std::chrono::duration_cast<WallTime::duration>(std::chrono::duration<double>(fraction));
}

std::optional<Duration> parse_retry_after_ms(std::string_view value) {
  auto ms = parse_plain_number(value);
  if (!ms) return std::nullopt;
  return from_millis(*ms);
}

std::optional<Duration> parse_retry_after(std::string_view value, WallTime now) {
  if (auto seconds = parse_plain_number(value)) return from_millis(*seconds * 1000.0);
  if (auto date = parse_http_date(value)) {
    if (*date <= now) return Duration::zero();
    double ms = std::chrono::duration<double, std::milli>(*date - now).count();
    return from_millis(ms);
  }
  return std::nullopt;
}

std::optional<Duration> retry_after_from(const HttpHeaders& headers, WallTime now) {
  if (const std::string* ms = find_header(headers, "retry-after-ms")) {
    if (auto d = parse_retry_after_ms(*ms)) return d;
  }
  if (const std::string* ra = find_header(headers, "retry-after")) {
    return parse_retry_after(*ra, now);
  }
  return std::nullopt;
}

std::optional<bool> should_retry_from(const HttpHeaders& headers) {
  const std::string* v = find_header(headers, "x-should-retry");
  if (!v) return std::nullopt;
  std::string_view t = trim(*v);
  if (t == "true") return true;
  if (t == "false") return false;
  return std::nullopt;
}

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (std::isalnum(c)) continue;
    switch (c) {
      case '!':
      case '#':
      case '$':
      case '%':
      case '&':
      case '\'':
      case '*':
      case '+':
      case '-':
      case '.':
      case '^':
      case '_':
      case '`':
      case '|':
      case '~':
        continue;
      default:
        return false;
    }
  }
  return true;
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace failover::wire
