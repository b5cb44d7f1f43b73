#include <failover/cancellation.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace failover {
namespace detail {

struct CancelState {
  std::atomic<bool> cancelled{false};
  std::mutex mutex;
  std::condition_variable done;
  std::map<std::uint64_t, std::function<void()>> callbacks;
  std::uint64_t next_handle = 1;
  std::uint64_t running = 0;  // handle of the callback being run, 0 = none
  std::thread::id runner;
};

}  // namespace detail

bool CancellationToken::cancelled() const noexcept {
  return state_ && state_->cancelled.load(std::memory_order_acquire);
}

std::uint64_t CancellationToken::subscribe(std::function<void()> callback) const {
  if (!state_) return 0;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (!state_->cancelled.load(std::memory_order_acquire)) {
      std::uint64_t handle = state_->next_handle++;
      state_->callbacks.emplace(handle, std::move(callback));
      return handle;
    }
  }
  callback();  // already cancelled: run now, on this thread
  return 0;
}

void CancellationToken::unsubscribe(std::uint64_t handle) const {
  if (!state_ || handle == 0) return;
  std::unique_lock<std::mutex> lock(state_->mutex);
  state_->callbacks.erase(handle);
  // If cancel() is running this very callback on another thread, wait until it returns.
  state_->done.wait(lock, [&] {
    return state_->running != handle || state_->runner == std::this_thread::get_id();
  });
}

CancellationSource::CancellationSource() : state_(std::make_shared<detail::CancelState>()) {}

void CancellationSource::cancel() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (state_->cancelled.exchange(true, std::memory_order_acq_rel)) return;
  state_->runner = std::this_thread::get_id();
  while (!state_->callbacks.empty()) {
    auto it = state_->callbacks.begin();
    std::uint64_t handle = it->first;
    std::function<void()> callback = std::move(it->second);
    state_->callbacks.erase(it);
    state_->running = handle;
    lock.unlock();
    callback();
    lock.lock();
    state_->running = 0;
    state_->done.notify_all();
  }
}

bool CancellationSource::cancelled() const noexcept {
  return state_->cancelled.load(std::memory_order_acquire);
}

}  // namespace failover
