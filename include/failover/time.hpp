#pragma once

/** @file time.hpp  Injected time and randomness: the policies never read a clock or call rand(). */

#include <failover/export.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

namespace failover {

/** Monotonic time point used by every policy and by the engine. */
using TimePoint = std::chrono::steady_clock::time_point;
/** Duration type used throughout the SDK (nanosecond resolution). */
using Duration = std::chrono::steady_clock::duration;
/** Wall-clock time point, used only to read HTTP dates such as `Retry-After`. */
using WallTime = std::chrono::system_clock::time_point;

/** Source of time. Implementations must be safe to call from several threads. */
class FAILOVER_EXPORT Clock {
 public:
  virtual ~Clock() = default;
  /** Monotonic now. */
  virtual TimePoint now() const = 0;
  /** Wall-clock now (for HTTP-date headers). */
  virtual WallTime wall_now() const = 0;
};

/** The real clocks: `steady_clock` and `system_clock`. */
class FAILOVER_EXPORT SystemClock final : public Clock {
 public:
  /** Monotonic now from `std::chrono::steady_clock`. */
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
  /** Wall-clock now from `std::chrono::system_clock`. */
  WallTime wall_now() const override { return std::chrono::system_clock::now(); }
};

/** A clock that moves only when told to: for tests and simulations. Thread-safe. */
class FAILOVER_EXPORT ManualClock final : public Clock {
 public:
  /** Starts at an arbitrary fixed monotonic epoch and the given wall time. */
  explicit ManualClock(WallTime wall_start = WallTime{std::chrono::hours(24 * 365 * 50)});
  /** Current manual time. */
  TimePoint now() const override;
  /** Wall time, advancing in step with `now()`. */
  WallTime wall_now() const override;
  /** Moves time forward by `d` (negative durations are ignored). */
  void advance(Duration d);
  /** Moves time forward to `t` when `t` is later than now. */
  void advance_to(TimePoint t);

 private:
  mutable std::mutex mutex_;
  TimePoint now_;
  WallTime wall_;
};

/** Source of randomness. Implementations must be safe to call from several threads. */
class FAILOVER_EXPORT Rng {
 public:
  virtual ~Rng() = default;
  /** A uniformly distributed 64-bit value. */
  virtual std::uint64_t next_u64() = 0;
  /** A uniformly distributed double in [0, 1). */
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
};

/** Default randomness: a per-thread generator seeded from `std::random_device`; lock-free. */
class FAILOVER_EXPORT SystemRng final : public Rng {
 public:
  /** Next value from this thread's generator. */
  std::uint64_t next_u64() override;
};

/** Deterministic randomness (splitmix64) for tests: the same seed gives the same sequence. */
class FAILOVER_EXPORT SeededRng final : public Rng {
 public:
  /** Seeds the sequence. */
  explicit SeededRng(std::uint64_t seed) : state_(seed) {}
  /** Next value of the sequence (mutex-protected). */
  std::uint64_t next_u64() override;

 private:
  std::mutex mutex_;
  std::uint64_t state_;
};

/** An Rng that always returns the same value: `uniform()` gives `fraction` exactly (tests). */
class FAILOVER_EXPORT FixedRng final : public Rng {
 public:
  /** `fraction` in [0, 1). */
  explicit FixedRng(double fraction);
  /** The fixed value. */
  std::uint64_t next_u64() override { return value_; }

 private:
  std::uint64_t value_;
};

/** Converts a duration to whole milliseconds, rounding down. */
inline std::int64_t to_millis(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace failover
