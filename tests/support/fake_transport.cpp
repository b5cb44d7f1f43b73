#include "fake_transport.hpp"

#include <algorithm>

namespace failover::testing {

std::string completion_body(const std::string& text, const std::string& model) {
  std::string escaped;
  for (char c : text) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    escaped.push_back(c);
  }
  return R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":")" + model +
         R"(","choices":[{"index":0,"message":{"role":"assistant","content":")" + escaped +
         R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})";
}

Reply ok(const std::string& text, Duration latency) {
  Reply r;
  r.latency = latency;
  r.body = completion_body(text);
  return r;
}

Reply status(int code, const std::string& error_code, HttpHeaders headers, Duration latency) {
  Reply r;
  r.latency = latency;
  r.status = code;
  r.headers = std::move(headers);
  r.body = R"({"error":{"message":"scripted )" + std::to_string(code) +
           R"(","type":"test","code":)" +
           (error_code.empty() ? std::string("null") : "\"" + error_code + "\"") + "}}";
  return r;
}

Reply failure(ErrorKind kind, Duration latency) {
  Reply r;
  r.latency = latency;
  r.error = kind;
  r.error_message = "scripted " + std::string(to_string(kind));
  return r;
}

void FakeTransport::on(const std::string& url, Handler handler) {
  std::lock_guard<std::mutex> lock(mutex_);
  handlers_[url] = std::move(handler);
}

void FakeTransport::sequence(const std::string& url, std::vector<Reply> replies) {
  auto state = std::make_shared<std::pair<std::vector<Reply>, std::size_t>>(std::move(replies), 0);
  on(url, [state](const HttpRequest&) {
    auto& [list, next] = *state;
    Reply r = list[std::min(next, list.size() - 1)];
    ++next;
    return r;
  });
}

std::vector<Seen> FakeTransport::seen() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seen_;
}

int FakeTransport::count(const std::string& url) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(std::count_if(seen_.begin(), seen_.end(),
                                        [&](const Seen& s) { return s.request.url == url; }));
}

Reply FakeTransport::answer(const HttpRequest& request) {
  Handler handler;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    seen_.push_back(Seen{clock_->now(), request});
    auto it = handlers_.find(request.url);
    if (it == handlers_.end()) return failure(ErrorKind::ConnectFailed, Duration::zero());
    handler = it->second;
  }
  return handler(request);
}

class FakeSession final : public TransportSession {
 public:
  explicit FakeSession(FakeTransport& transport) : transport_(transport) {}

  void start(std::uint64_t id, HttpRequest request) override {
    TimePoint now = transport_.clock_->now();
    Reply reply = transport_.answer(request);
    Pending p;
    p.result.id = id;
    Duration latency = reply.latency;
    if (request.first_byte_timeout > Duration::zero() && latency > request.first_byte_timeout) {
      p.at = now + request.first_byte_timeout;
      p.result.transport_error = ErrorKind::Timeout;
      p.result.error_message = "first-byte timeout";
    } else if (request.total_timeout > Duration::zero() && latency > request.total_timeout) {
      p.at = now + request.total_timeout;
      p.result.transport_error = ErrorKind::Timeout;
      p.result.error_message = "attempt timeout";
    } else {
      p.at = now + latency;
      p.result.transport_error = reply.error;
      p.result.error_message = reply.error_message;
      p.result.status = reply.error ? 0 : reply.status;
      p.result.headers = reply.headers;
      p.result.body = reply.body;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back(std::move(p));
  }

  void cancel(std::uint64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [&](const Pending& p) { return p.result.id == id; }),
                   pending_.end());
  }

  void wait(TimePoint until, std::vector<HttpResult>& completed) override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (pending_.empty() && until == TimePoint::max()) {
      cv_.wait(lock, [&] { return woken_ || !pending_.empty(); });
      woken_ = false;
      return;
    }
    if (woken_) {
      woken_ = false;
      return;
    }
    TimePoint earliest = TimePoint::max();
    for (const Pending& p : pending_) earliest = std::min(earliest, p.at);
    if (earliest > until) {
      transport_.clock_->advance_to(until);
      return;
    }
    transport_.clock_->advance_to(earliest);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->at <= earliest) {
        completed.push_back(std::move(it->result));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void wakeup() override {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
    cv_.notify_all();
  }

 private:
  struct Pending {
    TimePoint at;
    HttpResult result;
  };
  FakeTransport& transport_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Pending> pending_;
  bool woken_ = false;
};

std::unique_ptr<TransportSession> FakeTransport::open_session() {
  return std::make_unique<FakeSession>(*this);
}

}  // namespace failover::testing
