#include <failover/time.hpp>

#include <cmath>
#include <random>
#include <stdexcept>

namespace failover {

ManualClock::ManualClock(WallTime wall_start)
    : now_(TimePoint{std::chrono::hours(1)}), wall_(wall_start) {}

TimePoint ManualClock::now() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return now_;
}

WallTime ManualClock::wall_now() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return wall_;
}

void ManualClock::advance(Duration d) {
  if (d <= Duration::zero()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  now_ += d;
  wall_ += std::chrono::duration_cast<WallTime::duration>(d);
}

void ManualClock::advance_to(TimePoint t) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (t <= now_) return;
  wall_ += std::chrono::duration_cast<WallTime::duration>(t - now_);
  now_ = t;
}

namespace {
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

std::uint64_t SystemRng::next_u64() {
  thread_local std::mt19937_64 engine{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }()};
  return engine();
}

std::uint64_t SeededRng::next_u64() {
  std::lock_guard<std::mutex> lock(mutex_);
  return splitmix64(state_);
}

FixedRng::FixedRng(double fraction) {
  if (!(fraction >= 0.0 && fraction < 1.0)) {
    throw std::invalid_argument("FixedRng: fraction must be in [0, 1)");
  }
  // uniform() = (value >> 11) * 2^-53, so put the 53-bit mantissa in the high bits.
  value_ = static_cast<std::uint64_t>(std::ldexp(fraction, 53)) << 11;
}

}  // namespace failover
