#pragma once

// An incremental Server-Sent Events parser (the WHATWG event-stream format): bytes may be split
// anywhere, lines end in LF, CR or CRLF, comments are skipped, multi-line data is joined with
// LF. Each byte is scanned once; a partial line is carried over, never re-scanned.

#include <string>
#include <string_view>

namespace failover::wire {

/** One dispatched event. The views are valid only during the callback. */
struct SseEvent {
  std::string_view event;  ///< `event:` name, or `message`.
  std::string_view data;   ///< The `data:` lines joined with LF.
};

class SseParser {
 public:
  /** Parses `bytes`; calls `on_event(const SseEvent&)` for each complete event. */
  template <class OnEvent>
  void feed(std::string_view bytes, OnEvent&& on_event) {
    if (bom_ < 3) {  // a UTF-8 byte order mark opening the stream is not part of it (the spec)
      static constexpr char kBom[] = "\xEF\xBB\xBF";
      while (bom_ < 3 && !bytes.empty() && bytes.front() == kBom[bom_]) {
        bytes.remove_prefix(1);
        ++bom_;
      }
      if (bom_ < 3 && !bytes.empty()) {
        partial_.append(kBom, bom_);  // a prefix of the mark that was text after all
        bom_ = 3;
      }
    }
    std::size_t i = 0;
    const std::size_t n = bytes.size();
    if (skip_lf_ && n > 0) {
      if (bytes[0] == '\n') i = 1;
      skip_lf_ = false;
    }
    while (i < n) {
      std::size_t j = find_line_end(bytes, i);
      if (j == std::string_view::npos) {
        partial_.append(bytes.data() + i, n - i);
        return;
      }
      if (partial_.empty()) {
        line(bytes.substr(i, j - i), on_event);
      } else {
        partial_.append(bytes.data() + i, j - i);
        line(std::string_view(partial_), on_event);
        partial_.clear();
      }
      if (bytes[j] == '\r') {
        if (j + 1 < n) {
          if (bytes[j + 1] == '\n') ++j;
        } else {
          skip_lf_ = true;  // the LF of a CRLF may come with the next bytes
        }
      }
      i = j + 1;
    }
  }

  /** Comment lines (keep-alives) read so far: a body with any is a stream, not JSON. */
  std::size_t comments() const { return comments_; }

  /** Bytes held for an unfinished line or event (0 when the stream is at an event boundary). */
  std::size_t pending() const { return partial_.size() + data_.size(); }

 private:
  static std::size_t find_line_end(std::string_view s, std::size_t from) {
    for (std::size_t k = from; k < s.size(); ++k) {
      char c = s[k];
      if (c == '\n' || c == '\r') return k;
    }
    return std::string_view::npos;
  }

  template <class OnEvent>
  void line(std::string_view l, OnEvent& on_event) {
    if (l.empty()) {
      if (has_data_) {
        std::string_view data(data_);
        if (!data.empty() && data.back() == '\n') data.remove_suffix(1);
        on_event(SseEvent{event_.empty() ? std::string_view("message") : std::string_view(event_),
                          data});
      }
      data_.clear();
      event_.clear();
      has_data_ = false;
      return;
    }
    if (l.front() == ':') {  // comment / keep-alive
      ++comments_;
      return;
    }
    std::size_t colon = l.find(':');
    std::string_view field = l.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = l.substr(colon + 1);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      data_.append(value.data(), value.size());
      data_.push_back('\n');
      has_data_ = true;
    } else if (field == "event") {
      event_.assign(value.data(), value.size());
    }
    // id and retry are not used by chat streams; unknown fields are ignored (per the spec).
  }

  std::string partial_;
  std::string data_;
  std::string event_;
  bool has_data_ = false;
  bool skip_lf_ = false;
  int bom_ = 0;  // bytes of a byte order mark read at the start; 3 once past it
  std::size_t comments_ = 0;
};

}  // namespace failover::wire
