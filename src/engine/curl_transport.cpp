// The libcurl transport: one multi handle per session, easy handles recycled, connections
// kept in the multi handle's pool and reused across exchanges.

#include <failover/transport.hpp>

#include "util/ascii.hpp"
#include "util/node_cache.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace failover {

namespace {

constexpr std::size_t kMaxIdleSlots = 256;  // finished exchange slots kept, each with its handle
constexpr std::size_t kMaxParsedUrls = 64;
constexpr std::size_t kParserPadding = 64;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

long ceil_millis(Duration d) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<long>(std::clamp<std::int64_t>(ms, 1, 0x7fffffff));
}

// The options an easy handle holds from its last transfer, as far as start() sets them: an
// option is only set again when its value changes.
struct Applied {
  CURLU* url = nullptr;  // the kept parsed URL, or null for a URL given as text
  bool get = false;
  const char* post_data = nullptr;
  std::size_t post_size = 0;
  const curl_slist* headers = nullptr;
  long connect_ms = 0;  // 0: curl's default
  long total_ms = 0;
};

// What belongs to one exchange alone: a slot starts each exchange with a fresh one.
struct ExchangeState {
  std::uint64_t id = 0;
  bool stream = false;
  bool success_headers = true;
  bool skip_headers = false;  // this response is a 2xx whose headers are not wanted
  std::size_t max_response_bytes = 0;
  Duration first_byte_timeout{};
  int sends = 0;  // times curl was about to send the request (before_send)
  HttpResult result;
  TimePoint first_byte_deadline = TimePoint::max();
  bool got_byte = false;
  bool too_large = false;
  std::size_t received = 0;                     // body bytes so far (the cap counts them all)
  int body_mode = 0;                            // 0 = undecided, 1 = buffered, 2 = streamed
  std::string pending;                          // streamed bytes not yet handed to the caller
  bool headers_sent = false;                    // the first StreamData carried the headers
  std::vector<std::uint64_t>* dirty = nullptr;  // session list of exchanges with pending bytes
};

// One exchange, in a slot that outlives it: a finished slot keeps its easy handle (with the
// options that point at the slot, set once) and its buffers for a later exchange.
struct Exchange : ExchangeState {
  Exchange() = default;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;
  ~Exchange() {
    if (easy) curl_easy_cleanup(easy);
  }

  CURL* easy = nullptr;   // owned; made with the session's CA bundle of generation ca_generation
  bool attached = false;  // easy is in the multi handle
  std::uint64_t ca_generation = 0;
  Applied applied;  // what easy holds (valid while easy is)
  // The request headers as curl reads them: nodes over one buffer of NUL-terminated lines,
  // built without an allocation per header (curl only reads the list). They outlive the
  // exchange: the next exchange in this slot keeps them when its headers are the same.
  std::vector<curl_slist> header_nodes;
  std::string header_lines;
  // The body curl reads from: a copy of the request's, in a buffer kept from exchange to
  // exchange.
  std::string body;
  char errbuf[CURL_ERROR_SIZE] = {};

  // Back to a new exchange's state, keeping the slot's handle and buffers. The error buffer
  // is only emptied: curl writes a message only on failure, and terminates it.
  void recycle() {
    static_cast<ExchangeState&>(*this) = ExchangeState{};
    body.clear();
    errbuf[0] = '\0';
  }
};

// Called by curl just before it sends the request on a connection: once per exchange. A second
// call is libcurl sending the request again by itself, on a new connection, because the
// reused one died before any response byte; the server may have received (and billed) it, so
// the exchange ends there instead (CURLE_ABORTED_BY_CALLBACK) and the retry policy decides.
int before_send(void* user, char*, char*, int, int) {
  auto* ex = static_cast<Exchange*>(user);
  return ex->sends++ == 0 ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

// "Expect:" with no value: no 100-continue round trip before a large body.
curl_slist* no_expect() {
  static char line[] = "Expect:";
  static curl_slist node{line, nullptr};
  return &node;
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::size_t n = size * count;
  ex->got_byte = true;
  std::size_t cap = ex->max_response_bytes;
  if (cap != 0 && ex->received + n > cap) {
    ex->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  ex->received += n;
  if (ex->body_mode == 0) {
    long status = 0;
    curl_easy_getinfo(ex->easy, CURLINFO_RESPONSE_CODE, &status);
    ex->body_mode = ex->stream && status >= 200 && status < 300 ? 2 : 1;
    ex->result.status = static_cast<int>(status);
  }
  if (ex->body_mode == 2) {
    if (ex->pending.empty()) ex->dirty->push_back(ex->id);
    ex->pending.append(data, n);
  } else {
    // Room past the first piece for a SIMD JSON parser's padding (simdjson reads 64 bytes
    // beyond the text): a body that arrives in one piece is then parsed where it lies.
    if (ex->result.body.empty()) ex->result.body.reserve(n + kParserPadding);
    ex->result.body.append(data, n);
  }
  return n;
}

// The first digit of a status line's code ("HTTP/1.1 200 OK", "HTTP/2 503"), or 0.
char status_class(std::string_view status_line) {
  std::size_t space = status_line.find(' ');
  if (space == std::string_view::npos || status_line.size() < space + 4) return 0;
  for (std::size_t i = space + 1; i < space + 4; ++i) {
    if (status_line[i] < '0' || status_line[i] > '9') return 0;
  }
  return status_line[space + 1];
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::size_t n = size * count;
  ex->got_byte = true;
  std::string_view line(data, n);
  if (line.substr(0, 5) == "HTTP/") {
    ex->result.headers.clear();  // a new response (after 100 Continue, say)
    ex->skip_headers = !ex->success_headers && status_class(line) == '2';
    return n;
  }
  if (ex->skip_headers) return n;
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
    // obs-fold (RFC 9112 5.2): the line continues the previous header's value.
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (!ex->result.headers.empty() && !line.empty()) {
      std::string& value = ex->result.headers.back().second;
      if (!value.empty()) value += ' ';
      value.append(line.data(), line.size());
    }
    return n;
  }
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return n;
  std::string name = detail::ascii_lower(line.substr(0, colon));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  // A typical response's count at once (16 would be a large-bin request).
  if (ex->result.headers.empty()) ex->result.headers.reserve(8);
  ex->result.headers.emplace_back(std::move(name), std::string(value));
  return n;
}

ErrorKind kind_of(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_URL_MALFORMAT:
      return ErrorKind::ConnectFailed;
    case CURLE_OPERATION_TIMEDOUT:
      return ErrorKind::Timeout;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return ErrorKind::Tls;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
      return ErrorKind::Protocol;
    default:
      return ErrorKind::ConnectionLost;  // reset, empty reply, partial body, HTTP/2 errors
  }
}

class CurlSession final : public TransportSession {
  using Active = std::unordered_map<std::uint64_t, std::unique_ptr<Exchange>>;

 public:
  CurlSession() {
    multi_ = curl_multi_init();
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
  }

  ~CurlSession() override {
    for (auto& [id, ex] : active_) release(*ex);
    // The exchanges' handles go before the multi handle and the parsed URLs they point at.
    active_.clear();
    active_nodes_.clear();
    curl_multi_cleanup(multi_);
    for (auto& [url, parsed] : urls_) curl_url_cleanup(parsed);
  }

  void start(std::uint64_t id, const HttpRequest& r) override {
    // A finished exchange's node comes back with the exchange (and its header buffers) in it.
    Active::iterator it = active_nodes_.acquire(active_, id);
    if (!it->second) it->second = std::make_unique<Exchange>();
    Exchange* ex = it->second.get();
    ex->id = id;
    ex->result.id = id;
    ex->body.assign(r.body);
    ex->stream = r.stream;
    ex->success_headers = r.success_headers;
    ex->max_response_bytes = r.max_response_bytes;
    ex->first_byte_timeout = r.first_byte_timeout;
    ex->dirty = &dirty_;
    // A slot's handle keeps the options every exchange shares (set once, in configure); it is
    // made anew only when the CA bundle changed since. The others are set when they change.
    if (r.ca_bundle != ca_) {
      ca_ = r.ca_bundle;
      ++ca_generation_;
    }
    if (ex->easy && ex->ca_generation != ca_generation_) {
      curl_easy_cleanup(ex->easy);
      ex->easy = nullptr;
    }
    if (!ex->easy) {
      ex->easy = curl_easy_init();
      if (!ex->easy) return fail_now(it, ErrorKind::ConnectFailed, "curl_easy_init failed");
      configure(ex->easy, ca_, ex);
      ex->ca_generation = ca_generation_;
      ex->applied = Applied{};
    }
    CURL* easy = ex->easy;
    Applied& applied = ex->applied;
    build_header_list(r.headers, *ex);
    // A URL parsed once and handed over whole spares curl parsing it on every transfer.
    // curl keeps the URL's text from the handle's last transfer and writes it anew from the
    // parsed URL only once that text is cleared: so it is cleared unless the handle's last
    // transfer went to this very URL (kept URLs are never dropped, so the same pointer is
    // the same URL). Writing the text costs about 8 k instructions.
    CURLU* url = parsed_url(r.url);
    if (url) {
      if (url != applied.url) {
        curl_easy_setopt(easy, CURLOPT_URL, nullptr);
        curl_easy_setopt(easy, CURLOPT_CURLU, url);  // overrides CURLOPT_URL
      }
    } else {
      curl_easy_setopt(easy, CURLOPT_CURLU, nullptr);
      curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());  // curl parses it (and says why not)
    }
    applied.url = url;
    if (r.method == "GET") {
      if (!applied.get) curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
      applied.get = true;
    } else {
      // CURLOPT_HTTPGET dropped the fields; POSTFIELDS sets the method as well as the data.
      if (applied.get || applied.post_data != ex->body.data()) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, ex->body.data());
        applied.post_data = ex->body.data();
        applied.post_size = static_cast<std::size_t>(-1);
      }
      if (applied.post_size != ex->body.size()) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(ex->body.size()));
        applied.post_size = ex->body.size();
      }
      applied.get = false;
    }
    const curl_slist* headers = ex->header_nodes.empty() ? no_expect() : ex->header_nodes.data();
    if (headers != applied.headers) {
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
      applied.headers = headers;
    }
    // 0 restores curl's default (a handle may have had a limit in its previous exchange).
    const long connect_ms =
        r.connect_timeout > Duration::zero() ? ceil_millis(r.connect_timeout) : 0L;
    if (connect_ms != applied.connect_ms) {
      curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
      applied.connect_ms = connect_ms;
    }
    const long total_ms = r.total_timeout > Duration::zero() ? ceil_millis(r.total_timeout) : 0L;
    if (total_ms != applied.total_ms) {
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, total_ms);
      applied.total_ms = total_ms;
    }
    if (r.first_byte_timeout > Duration::zero()) {
      ex->first_byte_deadline = std::chrono::steady_clock::now() + r.first_byte_timeout;
    }
    if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
      return fail_now(it, ErrorKind::ConnectFailed, "curl_multi_add_handle failed");
    }
    ex->attached = true;
  }

  void cancel(std::uint64_t id) override {
    auto it = active_.find(id);
    if (it == active_.end()) {
      ready_.erase(std::remove_if(ready_.begin(), ready_.end(),
                                  [&](const HttpResult& r) { return r.id == id; }),
                   ready_.end());
      return;
    }
    retire(it);
  }

  void wait(TimePoint until, TransportEvents& events) override {
    for (;;) {
      int running = 0;
      curl_multi_perform(multi_, &running);
      flush_streams(events);
      drain(events.completed);
      TimePoint now = std::chrono::steady_clock::now();
      TimePoint watchdog = check_first_byte(now, events.completed);
      if (!ready_.empty()) {
        for (auto& r : ready_) events.completed.push_back(std::move(r));
        ready_.clear();
      }
      if (!events.empty() || now >= until || woken_.exchange(false)) return;
      TimePoint wake = std::min(until, watchdog);
      Duration left = wake - now;
      int timeout_ms =
          static_cast<int>(std::min<long>(ceil_millis(std::max(left, Duration(1))), 60'000));
      curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
    }
  }

  // What every exchange in a slot shares: the callbacks and where they write, and the
  // connection's rules.
  static void configure(CURL* easy, const std::string& ca_bundle, Exchange* ex) {
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, &before_send);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, ex);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, ex);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, ex);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, ex);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, ex->errbuf);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_PROXY, "");  // ignore proxy environment variables
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!ca_bundle.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, ca_bundle.c_str());
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  }

  void wakeup() override {
    woken_.store(true);
    curl_multi_wakeup(multi_);
  }

 private:
  void fail_now(Active::iterator it, ErrorKind kind, const char* message) {
    HttpResult r;
    r.id = it->first;
    r.transport_error = kind;
    r.error_message = message;
    ready_.push_back(std::move(r));
    retire(it);
  }

  // Ends an exchange: its slot (with its handle and header buffers) is emptied and kept in
  // its map node for a later exchange.
  void retire(Active::iterator it) {
    release(*it->second);
    it->second->recycle();
    active_nodes_.erase(active_, it);
  }

  // Detaches the exchange's handle from the multi handle (closing its connection if the
  // transfer was unfinished).
  void release(Exchange& ex) {
    if (ex.attached) {
      curl_multi_remove_handle(multi_, ex.easy);
      ex.attached = false;
    }
  }

  // `url` parsed by curl and kept, read-only, for every later exchange to it (a session sees
  // few URLs: each endpoint's chat and models URLs). Null when curl cannot parse it, or when
  // the session already keeps kMaxParsedUrls: a kept one may be in use, so none is dropped.
  CURLU* parsed_url(const std::string& url) {
    auto it = urls_.find(url);
    if (it != urls_.end()) return it->second;
    if (urls_.size() >= kMaxParsedUrls) return nullptr;
    CURLU* parsed = curl_url();
    if (!parsed) return nullptr;
    if (curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
      curl_url_cleanup(parsed);
      return nullptr;
    }
    urls_.emplace(url, parsed);
    return parsed;
  }

  // "Name: value" lines for curl; "Name:" (an empty value) removes a header curl would add.
  // A list the slot's last exchange built for the same headers is kept as it is.
  static void build_header_list(const HttpHeaders& headers, Exchange& ex) {
    if (same_header_lines(headers, ex)) return;
    ex.header_lines.clear();
    std::size_t size = 0;
    for (const auto& [name, value] : headers) size += name.size() + value.size() + 3;
    // Reserved whole, so the buffer never moves and the nodes can point into it as it grows.
    ex.header_lines.reserve(size);
    ex.header_nodes.resize(headers.size());
    for (std::size_t i = 0; i < headers.size(); ++i) {
      const auto& [name, value] = headers[i];
      curl_slist& node = ex.header_nodes[i];
      node.data = ex.header_lines.data() + ex.header_lines.size();
      node.next = i + 1 < headers.size() ? &ex.header_nodes[i + 1] : no_expect();
      ex.header_lines += name;
      ex.header_lines += ':';
      if (!value.empty()) {
        ex.header_lines += ' ';
        ex.header_lines += value;
      }
      ex.header_lines += '\0';
    }
  }

  // Whether `ex.header_lines` holds exactly the lines build_header_list writes for `headers`.
  static bool same_header_lines(const HttpHeaders& headers, const Exchange& ex) {
    if (ex.header_nodes.size() != headers.size()) return false;
    std::string_view lines = ex.header_lines;
    auto take = [&](std::string_view part) {
      if (lines.substr(0, part.size()) != part) return false;
      lines.remove_prefix(part.size());
      return true;
    };
    for (const auto& [name, value] : headers) {
      if (!take(name) || !take(":")) return false;
      if (!value.empty() && !(take(" ") && take(value))) return false;
      if (!take(std::string_view("\0", 1))) return false;
    }
    return lines.empty();
  }

  // Hands over the bytes streamed since the last wait, before any completion is reported.
  void flush_streams(TransportEvents& events) {
    for (std::uint64_t id : dirty_) {
      auto it = active_.find(id);
      if (it == active_.end() || it->second->pending.empty()) continue;
      Exchange& ex = *it->second;
      StreamData d;
      d.id = id;
      d.status = ex.result.status;
      if (!ex.headers_sent) {
        d.headers = ex.result.headers;
        ex.headers_sent = true;
      }
      d.bytes.swap(ex.pending);
      events.data.push_back(std::move(d));
    }
    dirty_.clear();
  }

  void drain(std::vector<HttpResult>& completed) {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Exchange* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      CURLcode code = msg->data.result;
      auto it = active_.find(raw->id);
      if (it == active_.end()) continue;
      Exchange& ex = *it->second;
      HttpResult& r = ex.result;
      if (code == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(ex.easy, CURLINFO_RESPONSE_CODE, &status);
        r.status = static_cast<int>(status);
      } else if (ex.too_large) {
        r.transport_error = ErrorKind::ResponseTooLarge;
        r.error_message = "the response body exceeds the cap of " +
                          std::to_string(ex.max_response_bytes) + " bytes";
        r.body.clear();
      } else if (code == CURLE_ABORTED_BY_CALLBACK && ex.sends > 1) {  // see before_send
        r.transport_error = ErrorKind::ConnectionLost;
        r.reused_connection_died = true;
        r.error_message =
            "the reused connection closed before any response; the request was not sent again";
      } else {
        r.transport_error = kind_of(code);
        r.error_message = ex.errbuf[0] ? std::string(ex.errbuf) : curl_easy_strerror(code);
      }
      completed.push_back(std::move(r));
      retire(it);
    }
  }

  // Ends exchanges still waiting for their first byte past the limit; returns the earliest
  // first-byte deadline still pending.
  TimePoint check_first_byte(TimePoint now, std::vector<HttpResult>& completed) {
    TimePoint earliest = TimePoint::max();
    for (auto it = active_.begin(); it != active_.end();) {
      Exchange& ex = *it->second;
      if (ex.got_byte || ex.first_byte_deadline == TimePoint::max()) {
        ++it;
        continue;
      }
      if (now >= ex.first_byte_deadline) {
        HttpResult r;
        r.id = ex.id;
        r.transport_error = ErrorKind::Timeout;
        r.error_message = "no response headers within " +
                          std::to_string(ceil_millis(ex.first_byte_timeout)) + " ms";
        completed.push_back(std::move(r));
        retire(it++);
        continue;
      }
      earliest = std::min(earliest, ex.first_byte_deadline);
      ++it;
    }
    return earliest;
  }

  CURLM* multi_ = nullptr;
  std::string ca_;                                // the CA bundle of the latest exchange
  std::uint64_t ca_generation_ = 0;               // counts its changes
  std::unordered_map<std::string, CURLU*> urls_;  // see parsed_url
  Active active_;
  detail::NodeCache<Active> active_nodes_{kMaxIdleSlots};  // finished exchange slots
  std::vector<HttpResult> ready_;                          // failed before reaching curl
  std::vector<std::uint64_t> dirty_;  // exchanges with streamed bytes to hand over
  std::atomic<bool> woken_{false};
};

class CurlTransport final : public Transport {
 public:
  CurlTransport() { global_init(); }
  std::unique_ptr<TransportSession> open_session() override {
    return std::make_unique<CurlSession>();
  }
};

}  // namespace

std::shared_ptr<Transport> make_curl_transport() { return std::make_shared<CurlTransport>(); }

}  // namespace failover
