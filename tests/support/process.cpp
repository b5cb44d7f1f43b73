#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

extern char** environ;

namespace failover::testing {

namespace {

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, int out[2],
            int err[2]) {
  if (::pipe(out) != 0 || (err && ::pipe(err) != 0)) throw std::runtime_error("pipe() failed");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork() failed");
  if (pid == 0) {
    ::dup2(out[1], 1);
    if (err) ::dup2(err[1], 2);
    ::close(out[0]);
    ::close(out[1]);
    if (err) {
      ::close(err[0]);
      ::close(err[1]);
    }
    for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  if (err) ::close(err[1]);
  return pid;
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds limit,
              const std::vector<std::string>& env) {
  int out[2], err[2];
  pid_t pid = spawn(argv, env, out, err);
  RunResult result;
  auto deadline = std::chrono::steady_clock::now() + limit;
  bool out_open = true, err_open = true, killed = false;
  char buf[4096];
  while (out_open || err_open) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd fds[2] = {{out[0], static_cast<short>(out_open ? POLLIN : 0), 0},
                     {err[0], static_cast<short>(err_open ? POLLIN : 0), 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = !killed && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

Background::Background(const std::vector<std::string>& argv) {
  int out[2];
  pid_ = spawn(argv, {}, out, nullptr);
  out_fd_ = out[0];
}

Background::~Background() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      ::usleep(10000);
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  if (out_fd_ >= 0) ::close(out_fd_);
}

std::string Background::first_line(std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[512];
  while (buffer_.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {};
    pollfd fd{out_fd_, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0) return {};
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
  return buffer_.substr(0, buffer_.find('\n'));
}

}  // namespace failover::testing
