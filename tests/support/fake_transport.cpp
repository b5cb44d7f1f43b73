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

std::string sse_content(const std::string& piece) {
  return R"(data: {"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":")" +
         piece + R"("},"finish_reason":null}]})" + "\n\n";
}

std::string sse_role() {
  return R"(data: {"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})"
         "\n\n";
}

std::string sse_finish_and_done(const std::string& reason) {
  return R"(data: {"id":"chatcmpl-s","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":")" +
         reason + "\"}]}\n\ndata: [DONE]\n\n";
}

Reply sse(const std::vector<std::string>& pieces, Duration gap, bool done) {
  Reply r;
  r.headers = {{"content-type", "text/event-stream"}};
  r.parts.emplace_back(gap, sse_role());
  for (const std::string& p : pieces) r.parts.emplace_back(gap, sse_content(p));
  if (done) {
    r.parts.emplace_back(gap, sse_finish_and_done());
  } else {
    r.end = Reply::End::Cut;
  }
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

  void start(std::uint64_t id, const HttpRequest& request) override {
    TimePoint now = transport_.clock_->now();
    Reply reply = transport_.answer(request);
    // Like the curl transport, leave out a 2xx response's headers when they are not wanted, so
    // that a machine that asks too little shows in the tests that need them.
    if (!request.success_headers && reply.status >= 200 && reply.status < 300) {
      reply.headers.clear();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    auto timeout = [&](TimePoint at, const char* what) {
      HttpResult r;
      r.id = id;
      r.transport_error = ErrorKind::Timeout;
      r.error_message = what;
      push(at, std::move(r));
    };
    const TimePoint total_limit =
        request.total_timeout > Duration::zero() ? now + request.total_timeout : TimePoint::max();
    const TimePoint first_limit = request.first_byte_timeout > Duration::zero()
                                      ? now + request.first_byte_timeout
                                      : TimePoint::max();
    if (!reply.parts.empty()) {
      bool streamed = request.stream && reply.status >= 200 && reply.status < 300;
      TimePoint at = now;
      HttpResult end;
      end.id = id;
      end.status = reply.status;
      end.headers = reply.headers;
      end.reused_connection_died = reply.reused_connection_died;
      for (std::size_t i = 0; i < reply.parts.size(); ++i) {
        at += reply.parts[i].first;
        if (i == 0 && at > first_limit) return timeout(first_limit, "first-byte timeout");
        if (at > total_limit) return timeout(total_limit, "attempt timeout");
        if (streamed) {
          Event e;
          e.at = at;
          e.is_data = true;
          e.data.id = id;
          e.data.status = reply.status;
          if (i == 0) e.data.headers = reply.headers;
          e.data.bytes = reply.parts[i].second;
          events_.push_back(std::move(e));
        } else {
          end.body += reply.parts[i].second;
        }
      }
      if (reply.end == Reply::End::Hang) return;
      if (reply.end == Reply::End::Cut) {
        end.transport_error = ErrorKind::ConnectionLost;
        end.error_message = "connection cut by the script";
      }
      return push(at, std::move(end));
    }
    if (reply.latency > first_limit - now) return timeout(first_limit, "first-byte timeout");
    if (reply.latency > total_limit - now) return timeout(total_limit, "attempt timeout");
    HttpResult r;
    r.id = id;
    r.transport_error = reply.error;
    r.error_message = reply.error_message;
    r.status = reply.error ? 0 : reply.status;
    r.headers = reply.headers;
    r.body = reply.body;
    r.reused_connection_died = reply.reused_connection_died;
    push(now + reply.latency, std::move(r));
  }

  void cancel(std::uint64_t id) override {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.erase(
        std::remove_if(events_.begin(), events_.end(),
                       [&](const Event& e) { return (e.is_data ? e.data.id : e.result.id) == id; }),
        events_.end());
  }

  void wait(TimePoint until, TransportEvents& out) override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (events_.empty() && until == TimePoint::max()) {
      cv_.wait(lock, [&] { return woken_ || !events_.empty(); });
      woken_ = false;
      return;
    }
    if (woken_) {
      woken_ = false;
      return;
    }
    TimePoint earliest = TimePoint::max();
    for (const Event& e : events_) earliest = std::min(earliest, e.at);
    if (earliest > until) {
      transport_.clock_->advance_to(until);
      return;
    }
    transport_.clock_->advance_to(earliest);
    for (auto it = events_.begin(); it != events_.end();) {
      if (it->at > earliest) {
        ++it;
        continue;
      }
      if (it->is_data) {
        out.data.push_back(std::move(it->data));
      } else {
        out.completed.push_back(std::move(it->result));
      }
      it = events_.erase(it);
    }
  }

  void wakeup() override {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
    cv_.notify_all();
  }

 private:
  struct Event {
    TimePoint at;
    bool is_data = false;
    StreamData data;
    HttpResult result;
  };
  void push(TimePoint at, HttpResult r) {
    Event e;
    e.at = at;
    e.result = std::move(r);
    events_.push_back(std::move(e));
  }

  FakeTransport& transport_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  bool woken_ = false;
};

std::unique_ptr<TransportSession> FakeTransport::open_session() {
  return std::make_unique<FakeSession>(*this);
}

}  // namespace failover::testing
