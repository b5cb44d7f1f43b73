// Two OpenAI-compatible upstreams on 127.0.0.1 for the demo and the quick-start check:
// a primary that answers 503 and a backup that answers a valid completion.
//
//   demo_upstreams [--primary-port N] [--backup-port N] [--seconds N]
//
// Stops on SIGINT/SIGTERM, or by itself after --seconds (default 300).

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  int primary_port = 18082, backup_port = 18081, seconds = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--primary-port")) {
      primary_port = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--backup-port")) {
      backup_port = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--seconds")) {
      seconds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  httplib::Server primary, backup;
  primary.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_content(
        R"({"error":{"message":"The server is overloaded","type":"server_error","code":null}})",
        "application/json");
  });
  backup.Post("/v1/chat/completions", [](const httplib::Request& req, httplib::Response& res) {
    std::string model = "gpt-4.1";
    if (req.body.find("\"stream\":true") != std::string::npos) {
      // A streamed answer: "Hel", "lo", then the finish chunk and [DONE].
      res.set_chunked_content_provider("text/event-stream", [](std::size_t,
                                                               httplib::DataSink& sink) {
        const char* head =
            R"({"id":"chatcmpl-demo","object":"chat.completion.chunk","created":1732406400,"model":"gpt-4.1","choices":[{"index":0,"delta":)";
        for (const char* delta :
             {R"({"role":"assistant","content":""},"finish_reason":null}]})",
              R"({"content":"Hel"},"finish_reason":null}]})",
              R"({"content":"lo"},"finish_reason":null}]})", R"({},"finish_reason":"stop"}]})"}) {
          std::string event = std::string("data: ") + head + delta + "\n\n";
          if (!sink.write(event.data(), event.size())) return false;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        return true;
      });
      return;
    }
    res.set_content(
        R"({"id":"chatcmpl-demo","object":"chat.completion","created":1732406400,"model":")" +
            model +
            R"(","choices":[{"index":0,"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}],)"
            R"("usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}})",
        "application/json");
  });
  for (httplib::Server* s : {&primary, &backup}) s->set_tcp_nodelay(true);
  if (!primary.bind_to_port("127.0.0.1", primary_port) ||
      !backup.bind_to_port("127.0.0.1", backup_port)) {
    std::fprintf(stderr, "cannot bind 127.0.0.1:%d and 127.0.0.1:%d\n", primary_port, backup_port);
    return 1;
  }
  std::thread a([&] { primary.listen_after_bind(); });
  std::thread b([&] { backup.listen_after_bind(); });
  std::printf("primary (503) on 127.0.0.1:%d, backup (200) on 127.0.0.1:%d\n", primary_port,
              backup_port);
  std::fflush(stdout);
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!g_stop.load() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  primary.stop();
  backup.stop();
  a.join();
  b.join();
  return 0;
}
