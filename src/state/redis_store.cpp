// The StateStore on Redis (hiredis, blocking API with timeouts). Keys are versioned:
//   {prefix}v1:route:{endpoint/model}  hash: open_until, cooldown_until (ms since the epoch)
//   {prefix}v1:calls:{endpoint/model}  string: the fleet's last calls, oldest first, '1' a
//                                      failure and '0' a success (the default breaker's window)
//   {prefix}v1:spend:day:{YYYY-MM-DD}  integer: nano-dollars spent that UTC day
//   {prefix}v1:spend:month:{YYYY-MM}   integer: nano-dollars spent that UTC month
//   {prefix}v1:spend:held              hash: {holder} = nanos reserved, {holder}@ = alive until
//   {prefix}v1:limit:{endpoint}        hash: requests, tokens (bucket levels), at (ms)
//   {prefix}v1:canary:{endpoint/model} hash: generation, state, step, promoted, reason
// Every change that must be atomic across processes is one Lua script.
// Each key expires a minute after the latest time it holds, so nothing lingers. Values are
// parsed strictly; anything else is refused (reported in SharedRoute::refused), never trusted.

#include <failover/state.hpp>

#include "state/redis_scripts.hpp"
#include "state/redis_url.hpp"
#include "util/utc_date.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace failover {

namespace {

using namespace detail::redis_scripts;
using detail::redis_url::parse_url;
using detail::redis_url::Url;

constexpr const char* kVersion = "v1";
// A key lives this long after the latest time it holds.
constexpr std::chrono::milliseconds kLinger = std::chrono::minutes(1);
// A day's spend is kept three days, a month's 62 days: long enough for any report of them.
constexpr std::chrono::milliseconds kDayTtl = std::chrono::hours(24 * 3);
constexpr std::chrono::milliseconds kMonthTtl = std::chrono::hours(24 * 62);
// A bucket untouched for a minute is full again, the same as no bucket.
constexpr std::chrono::milliseconds kBucketTtl = std::chrono::seconds(61);
// A canary's state outlives a month without news.
constexpr std::chrono::milliseconds kCanaryTtl = std::chrono::hours(24 * 31);

// A stored whole number: digits only, at most 18; empty when it is anything else.
std::optional<std::uint64_t> stored_whole(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 18) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(r->str, r->str + r->len, v);
  if (ec != std::errc() || end != r->str + r->len) return std::nullopt;
  return v;
}
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

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
    if (options_.call_timeout <= Duration::zero()) {
      throw std::invalid_argument("state.call_timeout must be positive");
    }
    bg_.timeout = options_.timeout;
    calls_.timeout = options_.call_timeout;
    describe_ = "redis://" +
                (url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host) +
                ":" + std::to_string(url_.port) + "/" + std::to_string(url_.db);
  }
  ~RedisStore() override {
    for (Link* l : {&bg_, &calls_}) {
      if (l->ctx) redisFree(l->ctx);
    }
  }

  // A trip or a recovery starts the fleet's window of the route's calls over.
  void route_opened(const std::string& route, WallTime until) override {
    raise(route, "open_until", until);
    Use u = use(bg_);
    command(u, {"DEL", calls_key(route)});
  }
  void route_closed(const std::string& route) override {
    Use u = use(bg_);
    send_locked(u, {"HDEL", key(route), "open_until"});
    send_locked(u, {"DEL", calls_key(route)});
    std::string refused;
    for (const char* what : {"HDEL", "DEL"}) {  // one round trip; both replies read
      Reply r = receive_locked(u, what);
      if (r->type == REDIS_REPLY_ERROR && refused.empty()) {
        refused = describe_ + ": " + what + " failed: " + std::string(r->str, r->len);
      }
    }
    if (!refused.empty()) throw StateRefused(refused);
  }
  void route_cooling(const std::string& route, WallTime until) override {
    raise(route, "cooldown_until", until);
  }
  std::vector<SharedRoute> routes(const std::vector<std::string>& names) override {
    Use u = use(bg_);
    for (const std::string& name : names) {  // one pipelined round trip
      send_locked(u, {"HMGET", key(name), "open_until", "cooldown_until"});
    }
    std::vector<SharedRoute> out;
    out.reserve(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      Reply r = receive_locked(u, "HMGET");
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
    Use u = use(bg_);
    command(u, {"DEL", key(route), calls_key(route)});
  }
  std::optional<std::vector<bool>> record_calls(const std::string& route,
                                                const std::vector<bool>& calls, std::size_t keep,
                                                Duration ttl) override {
    std::string appended;
    for (bool failure : calls) appended += failure ? '1' : '0';
    Use u = use(bg_);
    Reply r = command(u, {"EVAL", kRecordCallsScript, "1", calls_key(route), appended,
                          std::to_string(keep), std::to_string(std::max(1LL, millis(ttl)))});
    const std::string window =
        r->type == REDIS_REPLY_STRING ? std::string(r->str, r->len) : std::string("?");
    if (window.size() > keep || window.find_first_not_of("01") != std::string::npos) {
      throw StateRefused(describe_ + ": the window of calls of " + route +
                         " is not a string of at most " + std::to_string(keep) + " 0s and 1s");
    }
    std::vector<bool> out;
    out.reserve(window.size());
    for (char c : window) out.push_back(c == '1');
    return out;
  }
  std::string describe() const override { return describe_; }

  bool reserve_spend(const std::string& holder, WallTime now, std::int64_t nanos,
                     const SpendCaps& caps, WallTime alive_until) override {
    Use u = use(calls_);
    Reply r =
        command(u, {"EVAL", kReserveScript, "3", day_key(now), month_key(now), held_key(), holder,
                    std::to_string(nanos), cap_text(caps.day_nanos), cap_text(caps.month_nanos),
                    std::to_string(to_ms(now)), std::to_string(to_ms(alive_until)),
                    held_ttl(now, alive_until), caps.admit_alone ? "1" : "0"});
    return integer(r.get(), "reserve") == 1;
  }
  void settle_spend(const std::string& holder, WallTime now, std::int64_t released,
                    std::int64_t spent) override {
    Use u = use(bg_);
    command(u, {"EVAL", kSettleScript, "3", day_key(now), month_key(now), held_key(), holder,
                std::to_string(released), std::to_string(spent), std::to_string(kDayTtl.count()),
                std::to_string(kMonthTtl.count())});
  }
  void keep_holder(const std::string& holder, WallTime alive_until,
                   std::optional<std::int64_t> held) override {
    const auto now = std::chrono::system_clock::now();
    Use u = use(bg_);
    command(u, {"EVAL", kKeepScript, "1", held_key(), holder, std::to_string(to_ms(alive_until)),
                held ? std::to_string(*held) : std::string(), held_ttl(now, alive_until)});
  }
  SharedSpend spend(WallTime now) override {
    Use u = use(bg_);
    Reply r = command(u, {"EVAL", kSpendScript, "3", day_key(now), month_key(now), held_key(),
                          std::to_string(to_ms(now))});
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
      throw StateStoreError(describe_ + ": the spend read answered something not three numbers");
    }
    SharedSpend s;
    s.day_nanos = integer(r->element[0], "spend");
    s.month_nanos = integer(r->element[1], "spend");
    s.held_nanos = integer(r->element[2], "spend");
    return s;
  }
  void reset_spend(WallTime now) override {
    Use u = use(bg_);
    command(u, {"DEL", day_key(now), month_key(now), held_key()});
  }

  SharedCanary canary(const std::string& candidate) override {
    Use u = use(bg_);
    send_locked(
        u, {"HMGET", canary_key(candidate), "generation", "state", "step", "promoted", "reason"});
    Reply r = receive_locked(u, "HMGET");
    SharedCanary c;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {  // e.g. another type (WRONGTYPE)
      c.refused = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                               : std::string("not a hash of five fields");
      return c;
    }
    if (r->element[0]->type == REDIS_REPLY_NIL) return c;  // never published
    const std::optional<std::uint64_t> generation = stored_whole(r->element[0]);
    const std::optional<std::uint64_t> step = stored_whole(r->element[2]);
    const std::optional<std::uint64_t> promoted = stored_whole(r->element[3]);
    std::optional<CanaryState> state;
    if (r->element[1]->type == REDIS_REPLY_STRING) {
      const std::string text(r->element[1]->str, r->element[1]->len);
      for (CanaryState s : {CanaryState::Running, CanaryState::Paused, CanaryState::RolledBack,
                            CanaryState::Drained, CanaryState::Completed}) {
        if (to_string(s) == text) state = s;
      }
    }
    if (!generation || !state || !step || !promoted || *promoted > 1 ||
        r->element[4]->type != REDIS_REPLY_STRING) {
      c.refused = "the canary's fields are not a generation, a state, a step, 0/1 and a reason";
      return c;
    }
    c.generation = *generation;
    c.state = *state;
    c.step = static_cast<std::size_t>(*step);
    c.promoted = *promoted == 1;
    c.reason.assign(r->element[4]->str, r->element[4]->len);
    return c;
  }
  std::uint64_t publish_canary(const std::string& candidate, const SharedCanary& next,
                               std::optional<std::uint64_t> expected) override {
    Use u = use(bg_);
    Reply r =
        command(u, {"EVAL", kCanaryScript, "1", canary_key(candidate),
                    expected ? std::to_string(*expected) : std::string(),
                    std::string(to_string(next.state)), std::to_string(next.step),
                    next.promoted ? "1" : "0", next.reason, std::to_string(kCanaryTtl.count())});
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, integer(r.get(), "canary")));
  }

  Permits take_permits(const std::string& endpoint, WallTime now, const BucketLimits& limits,
                       double tokens, int count) override {
    Use u = use(calls_);
    Reply r =
        command(u, {"EVAL", kBucketScript, "1", bucket_key(endpoint), rate_text(limits.rpm),
                    rate_text(limits.tpm), std::to_string(to_ms(now)), "take", rate_text(tokens),
                    std::to_string(count), std::to_string(kBucketTtl.count())});
    const std::int64_t n = integer(r.get(), "take_permits");
    if (n > 0) return Permits{static_cast<int>(std::min<std::int64_t>(n, count)), Duration::zero()};
    return Permits{0, std::chrono::duration_cast<Duration>(std::chrono::milliseconds(-n))};
  }
  void return_permit(const std::string& endpoint, WallTime now, const BucketLimits& limits,
                     double requests, double tokens) override {
    Use u = use(bg_);
    command(u, {"EVAL", kBucketScript, "1", bucket_key(endpoint), rate_text(limits.rpm),
                rate_text(limits.tpm), std::to_string(to_ms(now)), "give", rate_text(requests),
                rate_text(tokens), std::to_string(kBucketTtl.count())});
  }

 private:
  // The spend of the UTC day and month of `now`.
  std::string day_key(WallTime now) const {
    return options_.prefix + kVersion + ":spend:day:" + detail::day_text(now);
  }
  std::string month_key(WallTime now) const {
    return options_.prefix + kVersion + ":spend:month:" + detail::month_text(now);
  }
  std::string canary_key(const std::string& candidate) const {
    return options_.prefix + kVersion + ":canary:" + candidate;
  }
  std::string held_key() const { return options_.prefix + kVersion + ":spend:held"; }
  std::string bucket_key(const std::string& endpoint) const {
    return options_.prefix + kVersion + ":limit:" + endpoint;
  }
  static std::string cap_text(const std::optional<std::int64_t>& cap) {
    return cap ? std::to_string(*cap) : std::string("-1");
  }
  static std::string rate_text(std::optional<double> rate) {
    if (!rate) return "-1";
    char out[40];
    std::snprintf(out, sizeof out, "%.17g", *rate);
    return out;
  }
  // The held hash lives a minute past its latest holder.
  static std::string held_ttl(WallTime now, WallTime alive_until) {
    return std::to_string(std::max<std::int64_t>(0, to_ms(alive_until) - to_ms(now)) +
                          static_cast<std::int64_t>(kLinger.count()));
  }
  // An integer reply, or a typed error naming `what`.
  std::int64_t integer(const redisReply* e, const char* what) const {
    if (!e || e->type != REDIS_REPLY_INTEGER) {
      throw StateStoreError(describe_ + ": " + what + " answered something not an integer");
    }
    return static_cast<std::int64_t>(e->integer);
  }

  std::string key(const std::string& route) const {
    return options_.prefix + kVersion + ":route:" + route;
  }
  std::string calls_key(const std::string& route) const {
    return options_.prefix + kVersion + ":calls:" + route;
  }

  void raise(const std::string& route, const char* field, WallTime until) {
    const auto now = std::chrono::system_clock::now();
    const auto ttl = std::max<std::int64_t>(0, to_ms(until) - to_ms(now)) +
                     static_cast<std::int64_t>(kLinger.count());
    Use u = use(bg_);
    command(u, {"EVAL", kRaiseScript, "1", key(route), field, field_value(to_ms(until)),
                std::to_string(ttl)});
  }

  // One connection and who may use it now (a flag under a mutex, waited for with a deadline:
  // a timed mutex would do, but ThreadSanitizer cannot follow its timed lock). The calls' link
  // has the short timeout (a call never waits long on Redis); the background's the long one.
  struct Link {
    std::mutex mutex;
    std::condition_variable freed;
    bool busy = false;
    redisContext* ctx = nullptr;
    Duration timeout{};
  };
  using Deadline = std::chrono::steady_clock::time_point;
  // One use of a link: it holds the link, and the deadline of what is sent under it. The
  // link's timeout bounds the whole use (waiting for the link, connecting, sending, the last
  // reply), however slowly the server trickles its answer.
  class Use {
   public:
    Use(Link& l, Deadline d) : link(l), deadline(d) {}
    ~Use() {
      {
        std::lock_guard<std::mutex> lock(link.mutex);
        link.busy = false;
      }
      link.freed.notify_one();
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Link& link;
    const Deadline deadline;
  };
  Use use(Link& l) {
    const Deadline deadline = std::chrono::steady_clock::now() + l.timeout;
    {
      std::unique_lock<std::mutex> lock(l.mutex);
      if (!l.freed.wait_until(lock, deadline, [&] { return !l.busy; })) {
        throw StateBusy(describe_ + ": busy: the connection was not free within " +
                        std::to_string(millis(l.timeout)) + " ms");
      }
      l.busy = true;
    }
    return Use(l, deadline);  // guaranteed elision: the one Use frees the link
  }
  static long long millis(Duration d) {
    return static_cast<long long>(std::chrono::ceil<std::chrono::milliseconds>(d).count());
  }

  // Runs one command; throws StateStoreError on any failure (the connection is then dropped).
  Reply command(Use& u, const std::vector<std::string>& args) {
    send_locked(u, args);
    Reply r = receive_locked(u, args[0]);
    if (r->type == REDIS_REPLY_ERROR) {  // answered: the connection stays good
      throw StateRefused(describe_ + ": " + args[0] + " failed: " + std::string(r->str, r->len));
    }
    return r;
  }

  // Queues one command on the connection (made first if need be); sent by the next read.
  void send_locked(Use& u, const std::vector<std::string>& args) {
    redisContext* c = connect_locked(u);
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      fail_locked(u.link, args[0]);
    }
  }

  // The reply to the oldest command queued, by the use's deadline; never null. Sends what is
  // queued first (each write bounded by the socket's timeout), then reads only when poll says
  // a byte is there, so no read blocks past the deadline.
  Reply receive_locked(Use& u, const std::string& what) {
    Link& l = u.link;
    void* raw = nullptr;
    if (!l.ctx || redisGetReplyFromReader(l.ctx, &raw) != REDIS_OK) fail_locked(l, what);
    if (!raw) {
      int done = 0;
      while (!done) {
        if (redisBufferWrite(l.ctx, &done) != REDIS_OK) fail_locked(l, what);
      }
    }
    while (!raw) {
      const auto left = u.deadline - std::chrono::steady_clock::now();
      pollfd p{l.ctx->fd, POLLIN, 0};
      const int ready = left <= Duration::zero()
                            ? 0
                            : ::poll(&p, 1, static_cast<int>(std::max<long long>(1, millis(left))));
      if (ready == 0) {
        fail_locked(l, what, "no whole reply within " + std::to_string(millis(l.timeout)) + " ms");
      }
      if (ready < 0 && errno == EINTR) continue;
      if (ready < 0 || redisBufferRead(l.ctx) != REDIS_OK ||
          redisGetReplyFromReader(l.ctx, &raw) != REDIS_OK) {
        fail_locked(l, what);
      }
    }
    return Reply(static_cast<redisReply*>(raw));
  }

  redisContext* connect_locked(Use& u) {
    Link& l = u.link;
    if (l.ctx) return l.ctx;
    auto tv_of = [](Duration d) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
      return timeval{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    };
    const Duration left = std::max<Duration>(u.deadline - std::chrono::steady_clock::now(),
                                             std::chrono::milliseconds(1));
    redisContext* c = redisConnectWithTimeout(url_.host.c_str(), url_.port, tv_of(left));
    if (!c) throw StateStoreError(describe_ + ": cannot allocate a connection");
    if (c->err) {
      std::string why = c->errstr;
      redisFree(c);
      throw StateStoreError(describe_ + ": " + why);
    }
    redisSetTimeout(c, tv_of(l.timeout));  // bounds each write
    l.ctx = c;
    try {
      if (!url_.password.empty()) {
        if (url_.user.empty()) {
          command(u, {"AUTH", url_.password});
        } else {
          command(u, {"AUTH", url_.user, url_.password});
        }
      }
      if (url_.db != 0) command(u, {"SELECT", std::to_string(url_.db)});
    } catch (const StateStoreError& e) {  // a connection that cannot be used is not kept
      if (l.ctx) redisFree(l.ctx);
      l.ctx = nullptr;
      throw StateStoreError(e.what());  // not a refused key: the store cannot be used
    }
    return l.ctx;
  }

  [[noreturn]] void fail_locked(Link& l, const std::string& what, std::string why = {}) {
    if (why.empty()) why = l.ctx && l.ctx->err ? l.ctx->errstr : "no reply";
    if (l.ctx) redisFree(l.ctx);
    l.ctx = nullptr;
    throw StateStoreError(describe_ + ": " + what + ": " + why);
  }

  RedisStoreOptions options_;
  Url url_;
  std::string describe_;
  Link bg_;     // publishing and reading in the background, operators' commands
  Link calls_;  // what a call waits for: reserving spend, taking a permit
};

}  // namespace

std::shared_ptr<StateStore> make_redis_store(RedisStoreOptions options) {
  return std::make_shared<RedisStore>(std::move(options));
}

}  // namespace failover
