// The StateStore on Redis (hiredis, blocking API with timeouts). Keys are versioned:
//   {prefix}v1:route:{endpoint/model}  hash: open_until, cooldown_until (ms since the epoch)
// Each key expires a minute after the latest time it holds, so nothing lingers. Values are
// parsed strictly; anything else is refused (reported in SharedRoute::refused), never trusted.

#include <failover/state.hpp>

#include <hiredis/hiredis.h>

#include <charconv>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace failover {

namespace {

constexpr const char* kVersion = "v1";
// A key lives this long after the latest time it holds.
constexpr std::chrono::milliseconds kLinger = std::chrono::minutes(1);
// Raises a time field to ARGV[2] (never lowers it) and keeps the key alive ARGV[3] ms at least.
constexpr const char* kRaiseScript = R"lua(
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if current == nil or current < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
)lua";

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct Url {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;
  std::string password;
};

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

std::string field_value(std::int64_t ms) { return std::to_string(ms); }

// A stored time: up to 15 digits of ms since the epoch; anything else is refused.
std::optional<WallTime> parse_time(const redisReply* r, const char* field, std::string& refused) {
  if (!r || r->type == REDIS_REPLY_NIL) return std::nullopt;
  if (r->type != REDIS_REPLY_STRING) {
    refused = std::string(field) + " is not a string";
    return std::nullopt;
  }
  const std::string text(r->str, r->len);
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size() || text.size() > 15 || ms < 0) {
    refused = std::string(field) + " is not a time in ms (\"" + text.substr(0, 24) + "\")";
    return std::nullopt;
  }
  return WallTime{std::chrono::milliseconds(ms)};
}

std::int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

class RedisStore final : public StateStore {
 public:
  explicit RedisStore(RedisStoreOptions options)
      : options_(std::move(options)), url_(parse_url(options_.url)) {
    if (options_.timeout <= Duration::zero()) {
      throw std::invalid_argument("state.timeout must be positive");
    }
    describe_ = "redis://" +
                (url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host) +
                ":" + std::to_string(url_.port) + "/" + std::to_string(url_.db);
  }
  ~RedisStore() override {
    if (ctx_) redisFree(ctx_);
  }

  void route_opened(const std::string& route, WallTime until) override {
    raise(route, "open_until", until);
  }
  void route_closed(const std::string& route) override {
    std::lock_guard<std::mutex> lock(mutex_);
    command({"HDEL", key(route), "open_until"});
  }
  void route_cooling(const std::string& route, WallTime until) override {
    raise(route, "cooldown_until", until);
  }
  std::vector<SharedRoute> routes(const std::vector<std::string>& names) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& name : names) {  // one pipelined round trip
      send_locked({"HMGET", key(name), "open_until", "cooldown_until"});
    }
    std::vector<SharedRoute> out;
    out.reserve(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      Reply r = receive_locked("HMGET");
      SharedRoute s;
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        // e.g. a key of another type (WRONGTYPE): not ours to trust.
        s.refused = r && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                                      : std::string("not a hash of two fields");
      } else {
        s.open_until = parse_time(r->element[0], "open_until", s.refused);
        s.cooldown_until = parse_time(r->element[1], "cooldown_until", s.refused);
      }
      out.push_back(std::move(s));
    }
    return out;
  }
  void reset_route(const std::string& route) override {
    std::lock_guard<std::mutex> lock(mutex_);
    command({"DEL", key(route)});
  }
  std::string describe() const override { return describe_; }

 private:
  std::string key(const std::string& route) const {
    return options_.prefix + kVersion + ":route:" + route;
  }

  void raise(const std::string& route, const char* field, WallTime until) {
    const auto now = std::chrono::system_clock::now();
    const auto ttl = std::max<std::int64_t>(0, to_ms(until) - to_ms(now)) +
                     static_cast<std::int64_t>(kLinger.count());
    std::lock_guard<std::mutex> lock(mutex_);
    command({"EVAL", kRaiseScript, "1", key(route), field, field_value(to_ms(until)),
             std::to_string(ttl)});
  }

  // Runs one command; throws StateStoreError on any failure (the connection is then dropped).
  Reply command(const std::vector<std::string>& args) {
    send_locked(args);
    Reply r = receive_locked(args[0]);
    if (r->type == REDIS_REPLY_ERROR) {
      throw StateStoreError(describe_ + ": " + args[0] + " failed: " + std::string(r->str, r->len));
    }
    return r;
  }

  // Queues one command on the connection (made first if need be); sent by the next read.
  void send_locked(const std::vector<std::string>& args) {
    redisContext* c = connect_locked();
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      fail_locked(args[0]);
    }
  }

  // The reply to the oldest command queued; never null.
  Reply receive_locked(const std::string& what) {
    void* raw = nullptr;
    if (!ctx_ || redisGetReply(ctx_, &raw) != REDIS_OK || !raw) fail_locked(what);
    return Reply(static_cast<redisReply*>(raw));
  }

  redisContext* connect_locked() {
    if (ctx_) return ctx_;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout).count();
    timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    redisContext* c = redisConnectWithTimeout(url_.host.c_str(), url_.port, tv);
    if (!c) throw StateStoreError(describe_ + ": cannot allocate a connection");
    if (c->err) {
      std::string why = c->errstr;
      redisFree(c);
      throw StateStoreError(describe_ + ": " + why);
    }
    redisSetTimeout(c, tv);
    ctx_ = c;
    try {
      if (!url_.password.empty()) {
        if (url_.user.empty()) {
          command({"AUTH", url_.password});
        } else {
          command({"AUTH", url_.user, url_.password});
        }
      }
      if (url_.db != 0) command({"SELECT", std::to_string(url_.db)});
    } catch (const StateStoreError&) {  // a connection that cannot be used is not kept
      if (ctx_) redisFree(ctx_);
      ctx_ = nullptr;
      throw;
    }
    return ctx_;
  }

  [[noreturn]] void fail_locked(const std::string& what) {
    std::string why = ctx_ && ctx_->err ? ctx_->errstr : "no reply";
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    throw StateStoreError(describe_ + ": " + what + ": " + why);
  }

  RedisStoreOptions options_;
  Url url_;
  std::string describe_;
  std::mutex mutex_;
  redisContext* ctx_ = nullptr;
};

}  // namespace

std::shared_ptr<StateStore> make_redis_store(RedisStoreOptions options) {
  return std::make_shared<RedisStore>(std::move(options));
}

}  // namespace failover
