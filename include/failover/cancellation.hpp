#pragma once

/** @file cancellation.hpp  Cooperative cancellation of calls. */

#include <failover/export.hpp>

#include <cstdint>
#include <functional>
#include <memory>

namespace failover {

namespace detail {
struct CancelState;
}

/** Observes a `CancellationSource`. Cheap to copy; a default token is never cancelled. */
class FAILOVER_EXPORT CancellationToken {
 public:
  /** A token that is never cancelled. */
  CancellationToken() = default;
  /** Whether cancellation was requested. */
  bool cancelled() const noexcept;
  /** Whether this token can ever be cancelled. */
  bool can_be_cancelled() const noexcept { return state_ != nullptr; }
  /** Runs `callback` once on cancellation (at once, on this thread, if already cancelled).
   *  Returns a handle for `unsubscribe`; 0 when the token cannot be cancelled. */
  std::uint64_t subscribe(std::function<void()> callback) const;
  /** Removes a subscription; after it returns the callback is not running and will not run. */
  void unsubscribe(std::uint64_t handle) const;

 private:
  friend class CancellationSource;
  explicit CancellationToken(std::shared_ptr<detail::CancelState> state)
      : state_(std::move(state)) {}
  std::shared_ptr<detail::CancelState> state_;
};

/** Requests cancellation of every call holding one of its tokens. Thread-safe. */
class FAILOVER_EXPORT CancellationSource {
 public:
  /** A fresh, not yet cancelled source. */
  CancellationSource();
  /** A token observing this source. */
  CancellationToken token() const { return CancellationToken(state_); }
  /** Requests cancellation; runs the subscribed callbacks. Idempotent. */
  void cancel();
  /** Whether `cancel()` was called. */
  bool cancelled() const noexcept;

 private:
  std::shared_ptr<detail::CancelState> state_;
};

}  // namespace failover
