// The quick start of README.md: two endpoints in one tier; the first answers 503, the second
// serves. scripts/demo.sh starts matching local upstreams (`failover mock` with examples/mock/);
// the tests pass the URLs of theirs.
//   quickstart [PRIMARY_URL BACKUP_URL]

#include <failover/failover.hpp>
#include <iostream>

int main(int argc, char** argv) {
  failover::ClientOptions options;
  options.endpoints = {
      {"primary", argc > 2 ? argv[1] : "http://127.0.0.1:18082/v1", "sk-primary"},
      {"backup", argc > 2 ? argv[2] : "http://127.0.0.1:18081/v1", "sk-backup"},
  };
  options.priority = {failover::Tier::of("gpt-4.1", {"primary", "backup"})};
  failover::Client client(options);

  failover::ChatRequest request;
  request.messages = {failover::Message::system("You are terse."), failover::Message::user("ping")};
  failover::Result<failover::ChatResponse> result = client.chat(request);
  if (!result) {
    std::cerr << result.error().message() << "\n";
    return 1;
  }
  std::cout << result->text() << " via " << result->served_by.endpoint << " after "
            << result->attempts.size() << " attempts\n";
}
