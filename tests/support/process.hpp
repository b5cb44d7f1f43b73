#pragma once

// Running the project's own programs from tests: capture output and exit code, with a hard
// time limit, and background processes that are always killed.

#include <chrono>
#include <string>
#include <vector>

namespace failover::testing {

struct RunResult {
  int exit_code = -1;  ///< Exit status, or -1 when killed for the time limit.
  std::string out;     ///< Standard output.
  std::string err;     ///< Standard error.
};

/** Runs `argv` to completion (killed after `limit`), with extra `env` entries (NAME=VALUE). */
RunResult run(const std::vector<std::string>& argv,
              std::chrono::milliseconds limit = std::chrono::milliseconds(30000),
              const std::vector<std::string>& env = {});

/** A process in the background; killed (SIGTERM, then SIGKILL) when destroyed. */
class Background {
 public:
  explicit Background(const std::vector<std::string>& argv);
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  /** The first line the process prints (waits up to `limit`; empty on time-out). */
  std::string first_line(std::chrono::milliseconds limit = std::chrono::milliseconds(10000));

 private:
  int pid_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

}  // namespace failover::testing
