// The in-process StateStore: one map under a mutex, shared by the clients that hold it.

#include <failover/state.hpp>

#include <algorithm>
#include <map>
#include <mutex>

namespace failover {

namespace {

class MemoryStore final : public StateStore {
 public:
  void route_opened(const std::string& route, WallTime until) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<WallTime>& open = routes_[route].open_until;
    open = open ? std::max(*open, until) : until;
  }
  void route_closed(const std::string& route) override {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_[route].open_until.reset();
  }
  void route_cooling(const std::string& route, WallTime until) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::optional<WallTime>& cooldown = routes_[route].cooldown_until;
    cooldown = cooldown ? std::max(*cooldown, until) : until;
  }
  std::vector<SharedRoute> routes(const std::vector<std::string>& names) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<SharedRoute> out;
    out.reserve(names.size());
    for (const std::string& name : names) {
      auto it = routes_.find(name);
      out.push_back(it == routes_.end() ? SharedRoute{} : it->second);
    }
    return out;
  }
  void reset_route(const std::string& route) override {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_.erase(route);
  }
  std::string describe() const override { return "memory"; }

 private:
  std::mutex mutex_;
  std::map<std::string, SharedRoute> routes_;
};

}  // namespace

std::shared_ptr<StateStore> make_memory_store() { return std::make_shared<MemoryStore>(); }

}  // namespace failover
