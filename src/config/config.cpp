// JSON configuration files -> ClientOptions, strictly checked, and back.

#include <failover/config.hpp>

#include "config/reader.hpp"
#include "options/resolve.hpp"
#include "util/edit_distance.hpp"
#include "util/secret_names.hpp"
#include "util/utf8.hpp"
#include "wire/dialect.hpp"
#include "wire/http_headers.hpp"
#include "wire/json_codec.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace failover {

ConfigError::ConfigError(const std::string& message)
    : std::invalid_argument(message), path_(message.substr(0, message.find(' '))) {}

ConfigError::ConfigError(std::string path, const std::string& what)
    : std::invalid_argument(path + " " + what), path_(std::move(path)) {}

namespace detail::config_read {

void fail(const std::string& path, const std::string& what) { throw ConfigError(path, what); }

std::string index_path(const std::string& base, std::size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

// A key of the user's choosing (a model, a header) is quoted in a path when it holds more than
// a name's characters (model names keep their dots): `prices."my model".input_per_mtok`.
std::string join_path(const std::string& base, const std::string& key) {
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
           c == ':' || c == '/';
  });
  const std::string k =
      plain ? key
            : nlohmann::json(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return base.empty() ? k : base + "." + k;
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

}  // namespace detail::config_read

using detail::config_read::fail;
using detail::config_read::index_path;
using detail::config_read::join_path;
using detail::config_read::json;
using detail::config_read::Reader;

namespace {

// The parser's callback that refuses an object with the same key twice (a typo must never
// silently replace a policy), naming the key's path.
json::parser_callback_t duplicate_key_check() {
  struct Frame {
    bool array = false;
    std::string name;       // an object's current key
    std::size_t index = 0;  // an array's current element
    std::set<std::string> keys;
  };
  auto frames = std::make_shared<std::vector<Frame>>();
  return [frames](int, json::parse_event_t event, json& parsed) {
    std::vector<Frame>& f = *frames;
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        f.push_back(Frame{event == json::parse_event_t::array_start, {}, 0, {}});
        break;
      case json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        const bool fresh = f.back().keys.insert(key).second;
        f.back().name = key;
        if (!fresh) {
          std::string path;
          for (const Frame& frame : f) {
            path = frame.array ? index_path(path, frame.index) : join_path(path, frame.name);
          }
          fail(path, "appears twice in one object; the second would silently win");
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        f.pop_back();
        if (!f.empty() && f.back().array) ++f.back().index;
        break;
      case json::parse_event_t::value:
        if (!f.empty() && f.back().array) ++f.back().index;
        break;
    }
    return true;
  };
}

}  // namespace

ClientOptions options_from_json(std::string_view json_text, const EnvLookup& env) {
  if (!wire::json_depth_within(json_text)) fail("config", "nests too deeply to be a configuration");
  json doc = json::parse(json_text.begin(), json_text.end(), duplicate_key_check(), false,
                         /*comments=*/true);
  if (doc.is_discarded()) {
    // Parse again with exceptions for the position of the error.
    try {
      json ignored = json::parse(json_text.begin(), json_text.end(), nullptr, true, true);
      (void)ignored;
    } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
      // Without the library's "[json.exception.parse_error.101] parse error at " in front.
      std::string what = detail::valid_utf8(e.what());
      if (what.rfind("[json.exception.", 0) == 0) what.erase(0, what.find("] ") + 2);
      if (what.rfind("parse error at ", 0) == 0) what.erase(0, 15);
      fail("config", "is not valid JSON: " + what);
    }
    fail("config", "is not valid JSON");
  }
  Reader reader(env);
  ClientOptions options = reader.read(doc);
  ClientOptions check = options;
  (void)detail::resolve_options(check);  // URLs, duplicates, unknown endpoints, empty tiers
  return options;
}

ClientOptions options_from_file(const std::string& path, const EnvLookup& env) {
  const std::string shown = "file \"" + wire::excerpt(path, 200) + "\"";
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    fail("config", shown + " cannot be opened" +
                       (error ? std::string(": ") + std::strerror(error) : std::string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("config", shown + " cannot be read");
  try {
    return options_from_json(text.str(), env);
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    if (what.rfind("config is not valid JSON", 0) != 0) throw;
    fail("config", shown + what.substr(6));  // config file "x.json" is not valid JSON: ...
  }
}

}  // namespace failover
