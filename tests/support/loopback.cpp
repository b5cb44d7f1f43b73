#include "loopback.hpp"

#include "fake_transport.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <stdexcept>

namespace failover::testing {

namespace {
constexpr std::size_t kWorkers = 320;  // one per concurrent keep-alive connection
}  // namespace

LoopbackServer::LoopbackServer() {
  // Keep-alive connections hold a worker each: give the pool room for many clients.
  server_.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  server_.set_tcp_nodelay(true);  // else Nagle + delayed ACK add 40 ms to every answer
  server_.set_keep_alive_max_count(100000);
  server_.set_keep_alive_timeout(30);
}

LoopbackServer::~LoopbackServer() { stop(); }

void LoopbackServer::on_chat(httplib::Server::Handler handler) {
  auto chat = [this, handler](const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      peers_.emplace(req.remote_addr, req.remote_port);
      headers_.push_back(req.headers);
    }
    handler(req, res);
  };
  // Chat Completions, and where the native dialects send a chat (Anthropic, Gemini).
  server_.Post("/v1/chat/completions", chat);
  server_.Post("/v1/messages", chat);
  server_.Post(R"(/v1/models/[^/:]+:(generateContent|streamGenerateContent))", chat);
}

// The packaged cpp-httplib listens with a backlog of 5, so a burst of connects (hundreds of
// calls in flight at once) overflows the accept queue and waits for SYN retransmits. Calling
// listen() again on the listening socket raises the backlog; find that socket by its port.
void widen_backlog(int port) {
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    if (addr.sin_family != AF_INET || ntohs(addr.sin_port) != port) continue;
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening) {
      ::listen(fd, 1024);
      return;
    }
  }
}

void LoopbackServer::start() {
  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("cannot bind a loopback port");
  widen_backlog(port_);
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void LoopbackServer::stop() {
  if (thread_.joinable()) {
    server_.stop();
    thread_.join();
  }
}

std::string LoopbackServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::size_t LoopbackServer::connections() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return peers_.size();
}

std::vector<std::string> LoopbackServer::header_values(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& h : headers_) {
    auto it = h.find(name);
    out.push_back(it == h.end() ? std::string("<none>") : it->second);
  }
  return out;
}

RecordedAnswer recorded(int status, std::string body) {
  RecordedAnswer r;
  r.status = status;
  r.parts = {{std::chrono::milliseconds(0), std::move(body)}};
  return r;
}

RecordedAnswer recorded_sse(std::vector<std::string> events, std::chrono::milliseconds gap) {
  RecordedAnswer r;
  r.stream = true;
  for (std::string& e : events) r.parts.emplace_back(gap, std::move(e));
  return r;
}

std::string sse_data(const std::string& payload) { return "data: " + payload + "\n\n"; }

ReplayServer::ReplayServer(RecordedAnswer answer) {
  on_chat([answer](const httplib::Request&, httplib::Response& res) {
    res.status = answer.status;
    const bool streamed = answer.stream && answer.status >= 200 && answer.status < 300;
    std::string type = streamed ? "text/event-stream" : "application/json";
    for (const auto& [name, value] : answer.headers) {
      if (name == "content-type") {
        type = value;
      } else {
        res.set_header(name, value);
      }
    }
    if (!streamed) {
      std::string body;
      for (const auto& part : answer.parts) body += part.second;
      res.set_content(body, type);
      return;
    }
    res.set_chunked_content_provider(type,
                                     [parts = answer.parts](std::size_t, httplib::DataSink& sink) {
                                       for (const auto& [gap, bytes] : parts) {
                                         std::this_thread::sleep_for(gap);
                                         if (!sink.write(bytes.data(), bytes.size())) return false;
                                       }
                                       sink.done();
                                       return true;
                                     });
  });
  start();
}

HealthyServer::HealthyServer() {
  on_chat([](const httplib::Request& req, httplib::Response& res) {
    if (req.body.find("\"stream\":true") != std::string::npos) {
      stream_sse(res, {"fall", "back"}, std::chrono::milliseconds(1), StreamEnd::Done);
    } else {
      res.set_content(completion_json("fallback"), "application/json");
    }
  });
  start();
}

void stream_sse(httplib::Response& res, std::vector<std::string> pieces,
                std::chrono::milliseconds gap, StreamEnd end,
                std::chrono::milliseconds stall_limit) {
  res.set_chunked_content_provider(
      "text/event-stream",
      [pieces = std::move(pieces), gap, end, stall_limit](std::size_t, httplib::DataSink& sink) {
        auto send = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        if (!send(sse_role())) return false;
        for (const std::string& p : pieces) {
          std::this_thread::sleep_for(gap);
          if (!send(sse_content(p))) return false;
        }
        switch (end) {
          case StreamEnd::Done:
            send(sse_finish_and_done());
            sink.done();
            return true;
          case StreamEnd::Close:
            sink.done();
            return true;
          case StreamEnd::Cut:
            return false;  // httplib drops the connection
          case StreamEnd::Stall: {
            auto until = std::chrono::steady_clock::now() + stall_limit;
            while (std::chrono::steady_clock::now() < until && sink.is_writable()) {
              std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            return false;
          }
        }
        return false;
      });
}

std::string completion_json(const std::string& text, const std::string& model) {
  return R"({"id":"chatcmpl-loop","object":"chat.completion","created":1700000000,"model":")" +
         model + R"(","choices":[{"index":0,"message":{"role":"assistant","content":")" + text +
         R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}})";
}

namespace {

int listen_loopback(int& port_out) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot listen on loopback");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_out = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

SilentServer::SilentServer(Mode mode) {
  fd_ = listen_loopback(port_);
  if (mode == Mode::AcceptAndHold) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
          int c = ::accept(fd_, nullptr, nullptr);
          if (c >= 0) {
            held_.push_back(c);
            ++accepted_;
          }
        }
      }
    });
  }
}

SilentServer::~SilentServer() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  for (int c : held_) ::close(c);
  ::close(fd_);
}

std::string SilentServer::base_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

namespace {

// Reads one HTTP request (headers and a Content-Length body) from `fd`; false at the end of
// the connection or after `stop`.
bool read_request(int fd, const std::atomic<bool>& stop) {
  std::string data;
  std::size_t body_at = std::string::npos;
  std::size_t length = 0;
  char buf[4096];
  while (!stop.load()) {
    if (body_at == std::string::npos) {
      body_at = data.find("\r\n\r\n");
      if (body_at != std::string::npos) {
        body_at += 4;
        std::string head = data.substr(0, body_at);
        for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::size_t at = head.find("content-length:");
        if (at != std::string::npos) length = std::stoul(head.substr(at + 15));
      }
    }
    if (body_at != std::string::npos && data.size() >= body_at + length) return true;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    data.append(buf, static_cast<std::size_t>(n));
  }
  return false;
}

void send_answer(int fd) {
  const std::string body = completion_json("after a resend");
  const std::string answer =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
}

// Accepts connections on `fd` one at a time until `stop`, hands each to `serve`, closes it.
template <class Serve>
void accept_each(int fd, const std::atomic<bool>& stop, Serve serve) {
  while (!stop.load()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) continue;
    serve(c);
    ::close(c);
  }
}

std::string v1_url(int port) { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }

}  // namespace

DroppingServer::DroppingServer(std::chrono::milliseconds silence) : silence_(silence) {
  fd_ = listen_loopback(port_);
  thread_ = std::thread([this] {
    int connection = 0;
    accept_each(fd_, stop_, [&](int c) {
      ++connection;
      while (read_request(c, stop_)) {
        ++requests_;
        if (connection == 1 && requests_.load() == 2) {  // dropped without a byte
          const auto until = std::chrono::steady_clock::now() + silence_;
          while (!stop_.load() && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
          break;
        }
        send_answer(c);
      }
    });
  });
}

DroppingServer::~DroppingServer() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

std::string DroppingServer::base_url() const { return v1_url(port_); }

RawServer::RawServer(std::string raw) : raw_(std::move(raw)) {
  fd_ = listen_loopback(port_);
  thread_ = std::thread([this] {
    accept_each(fd_, stop_, [this](int c) {
      if (!read_request(c, stop_)) return;
      ++requests_;
      (void)::send(c, raw_.data(), raw_.size(), MSG_NOSIGNAL);
    });
  });
}

RawServer::~RawServer() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

std::string RawServer::base_url() const { return v1_url(port_); }

int refused_port() {
  int port = 0;
  int fd = listen_loopback(port);
  ::close(fd);
  return port;
}

}  // namespace failover::testing
