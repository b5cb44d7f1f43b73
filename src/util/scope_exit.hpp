#pragma once

// Runs a cleanup when the scope ends, however it ends (absl::Cleanup), or earlier by `run()`.

#include <utility>

namespace failover::detail {

template <class F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  ~ScopeExit() { run(); }
  /** Runs the cleanup now (once). */
  void run() {
    if (armed_) {
      armed_ = false;
      f_();
    }
  }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace failover::detail
