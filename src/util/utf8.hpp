#pragma once

// UTF-8 for the text the library makes (messages, excerpts): cut only between characters, and
// every byte that is not part of a well-formed character replaced by U+FFFD, so that whatever
// a provider sends, a message can be written as JSON or shown.

#include <cstddef>
#include <string>
#include <string_view>

namespace failover::detail {

/** The length of the well-formed UTF-8 character at `s[i]`, or 0 when none starts there
 *  (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
inline std::size_t utf8_char_length(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

/** `text` with each byte that starts no well-formed character replaced by U+FFFD. */
inline std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_char_length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

/** The longest prefix of `text` of at most `max` bytes that does not end inside a character. */
inline std::size_t utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text.size();
  std::size_t n = max;
  // Back over continuation bytes to the start of the character `max` falls into (at most 3).
  for (int k = 0; k < 3 && n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80; ++k) {
    --n;
  }
  return n;
}

/** At most `max` bytes of `text`, cut between characters, with bad bytes as U+FFFD (which
 *  takes three bytes: the replacement never makes the result longer than `max`). */
inline std::string valid_utf8_prefix(std::string_view text, std::size_t max) {
  std::string out = valid_utf8(text.substr(0, utf8_prefix(text, max)));
  out.resize(utf8_prefix(out, max));
  return out;
}

}  // namespace failover::detail
