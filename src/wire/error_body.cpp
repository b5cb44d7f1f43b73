#include "wire/error_body.hpp"

#include "util/ascii.hpp"
#include "util/utf8.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <nlohmann/json.hpp>

namespace failover::wire {

using nlohmann::json;

namespace {

// How deep JSON documents nested in messages are followed (a message holding an error whose
// message holds another...).
constexpr int kMaxNesting = 3;

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

// The first member of `obj` among `keys` that is present and not null, as text.
std::string member_text(const json& obj, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    auto it = obj.find(key);
    if (it != obj.end() && !it->is_null()) return text_of(*it);
  }
  return {};
}

// Google's protobuf Duration in JSON: seconds with an `s` ("34.4s", "1s").
std::optional<Duration> proto_duration(const json& v) {
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_ref<const std::string&>();
  if (s.empty() || s.back() != 's') return std::nullopt;
  s.remove_suffix(1);
  return parse_retry_after(s, WallTime{});
}

void read(const json& doc, ErrorBody& out, int nesting);

// A document nested in a string (an error message, OpenRouter's metadata.raw): when it is an
// error of its own, its fields win over the outer ones; the outer code stays when it has none.
void read_nested(const std::string& text, ErrorBody& out, int nesting) {
  if (nesting >= kMaxNesting) return;
  std::string_view t = trim(text);
  if (t.empty() || (t.front() != '{' && t.front() != '[')) return;
  std::optional<json> doc = parse_json(t);
  if (!doc) return;
  ErrorBody inner;
  read(*doc, inner, nesting + 1);
  if (!inner.found || inner.message.empty()) return;
  out.message = std::move(inner.message);
  if (!inner.type.empty()) out.type = std::move(inner.type);
  if (!inner.code.empty()) out.code = std::move(inner.code);
  if (!inner.param.empty()) out.param = std::move(inner.param);
  if (!inner.status.empty()) out.status = std::move(inner.status);
  for (std::string& r : inner.reasons) out.reasons.push_back(std::move(r));
  if (inner.retry_delay) out.retry_delay = inner.retry_delay;
}

// The members of one error object (OpenAI's `error`, a flat body, a FastAPI `detail`).
void read_fields(const json& e, ErrorBody& out, int nesting) {
  out.found = true;
  out.message = member_text(e, {"message", "msg", "error_message"});
  out.type = member_text(e, {"type", "type_"});
  out.code = member_text(e, {"code"});
  out.param = member_text(e, {"param"});
  if (auto it = e.find("status"); it != e.end() && it->is_string()) out.status = text_of(*it);
  if (auto it = e.find("details"); it != e.end() && it->is_array()) {
    for (const json& d : *it) {
      if (!d.is_object()) continue;
      if (auto r = d.find("reason"); r != d.end() && r->is_string()) {
        out.reasons.push_back(r->get<std::string>());
      }
      if (auto delay = d.find("retryDelay"); delay != d.end()) {
        if (auto parsed = proto_duration(*delay)) out.retry_delay = parsed;
      }
    }
  }
  if (auto it = e.find("metadata"); it != e.end() && it->is_object()) {
    if (auto t = it->find("error_type"); t != it->end() && t->is_string()) {
      out.reasons.push_back(t->get<std::string>());
    }
    if (auto raw = it->find("raw"); raw != it->end() && raw->is_string()) {
      read_nested(raw->get<std::string>(), out, nesting);
    }
  }
  read_nested(out.message, out, nesting);
}

void read(const json& doc, ErrorBody& out, int nesting) {
  if (doc.is_array()) {  // Google's [{"error": {...}}]
    for (const json& item : doc) {
      if (item.is_object()) return read(item, out, nesting);
    }
    return;
  }
  if (!doc.is_object()) return;
  if (auto err = doc.find("error"); err != doc.end() && !err->is_null()) {
    if (err->is_object()) return read_fields(*err, out, nesting);
    // {"error": "text"}, sometimes beside a flat code (xAI: {"code": "...", "error": "..."}).
    out.found = true;
    out.message = text_of(*err);
    out.code = member_text(doc, {"code"});
    out.type = member_text(doc, {"type"});
    return read_nested(out.message, out, nesting);
  }
  if (auto detail = doc.find("detail"); detail != doc.end() && !detail->is_null()) {
    if (detail->is_object()) {
      if (detail->contains("error")) return read(*detail, out, nesting);
      return read_fields(*detail, out, nesting);
    }
    out.found = true;
    if (detail->is_array()) {  // FastAPI validation errors: [{"loc": [...], "msg": ...}, ...]
      for (const json& item : *detail) {
        if (!item.is_object()) continue;
        std::string msg = member_text(item, {"msg", "message"});
        if (msg.empty()) continue;
        if (!out.message.empty()) out.message += "; ";
        out.message += msg;
        if (out.type.empty()) out.type = member_text(item, {"type"});
      }
      return;
    }
    out.message = text_of(*detail);
    return;
  }
  // Flat bodies: {"message": ..., "type": ..., "code": ...} (gateways, vLLM's object "error").
  if (auto m = doc.find("message"); m != doc.end() && m->is_string()) {
    read_fields(doc, out, nesting);
  }
}

bool starts_with_ci(std::string_view s, std::size_t at, std::string_view word) {
  if (s.size() - at < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (detail::ascii_lower(s[at + i]) != word[i]) return false;
  }
  return true;
}

std::size_t find_ci(std::string_view s, std::string_view word, std::size_t from = 0) {
  for (std::size_t i = from; i < s.size(); ++i) {
    if (starts_with_ci(s, i, word)) return i;
  }
  return std::string_view::npos;
}

// Appends `text` with every run of whitespace (control characters included) as one space.
void append_collapsed(std::string_view text, std::string& out) {
  for (char c : text) {
    const bool space = static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
}

// At most `max` bytes, cut between characters, and valid UTF-8 (a Latin-1 page's bytes become
// U+FFFD).
std::string cut(std::string text, std::size_t max) {
  while (!text.empty() && text.back() == ' ') text.pop_back();
  const bool cut_short = text.size() > max;
  text = detail::valid_utf8_prefix(text, max);
  if (cut_short) text += "...";
  return text;
}

}  // namespace

std::string plain_excerpt(std::string_view body, std::size_t max) {
  std::string out;
  const std::size_t html = find_ci(body.substr(0, 1024), "<html");
  const std::size_t doctype = find_ci(body.substr(0, 1024), "<!doctype");
  if (html == std::string_view::npos && doctype == std::string_view::npos) {
    append_collapsed(body.substr(0, max * 4), out);
    return cut(std::move(out), max);
  }
  // An HTML page (nginx, Cloudflare, load balancers): its title says it best.
  if (std::size_t t = find_ci(body, "<title"); t != std::string_view::npos) {
    std::size_t open_end = body.find('>', t);
    std::size_t close = find_ci(body, "</title", t);
    if (open_end != std::string_view::npos && close != std::string_view::npos && open_end < close) {
      append_collapsed(body.substr(open_end + 1, close - open_end - 1), out);
      if (out.find_first_not_of(' ') != std::string::npos) return cut(std::move(out), max);
      out.clear();
    }
  }
  // Otherwise the text between the tags, without scripts and styles.
  std::size_t i = 0;
  while (i < body.size() && out.size() < max * 2) {
    if (body[i] != '<') {
      std::size_t next = body.find('<', i);
      if (next == std::string_view::npos) next = body.size();
      append_collapsed(body.substr(i, next - i), out);
      out += ' ';
      i = next;
      continue;
    }
    std::size_t end = body.find('>', i);
    if (end == std::string_view::npos) break;
    for (std::string_view skipped : {"<script", "<style"}) {
      if (starts_with_ci(body, i, skipped)) {
        std::string closing = "</" + std::string(skipped.substr(1));
        std::size_t close = find_ci(body, closing, end);
        end = close == std::string_view::npos ? body.size() - 1 : body.find('>', close);
        if (end == std::string_view::npos) end = body.size() - 1;
      }
    }
    i = end + 1;
  }
  std::string collapsed;
  append_collapsed(out, collapsed);
  if (!collapsed.empty() && collapsed.front() == ' ') collapsed.erase(0, 1);
  return cut(std::move(collapsed), max);
}

ErrorBody error_from_json(const json& doc) {
  ErrorBody out;
  read(doc, out, 0);
  out.message = excerpt(out.message, 1000);
  return out;
}

ErrorBody decode_error_body(std::string_view body) {
  if (auto doc = parse_json(body)) {
    ErrorBody e = error_from_json(*doc);
    if (e.found) return e;
  }
  ErrorBody out;
  out.message = plain_excerpt(body);
  return out;
}

}  // namespace failover::wire
