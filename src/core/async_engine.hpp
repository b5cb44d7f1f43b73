#pragma once

// The engine thread: drives many calls' state machines on one transport session.

#include "core/call.hpp"
#include "util/node_cache.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

namespace failover::detail {

/** Waits until every engine thread detached by its own client's release has ended. */
bool wait_for_detached_engines(std::chrono::milliseconds timeout);

class AsyncEngine {
 public:
  using Callback = std::function<void(Result<ChatResponse>)>;

  /** Starts the engine thread, which holds `keep_alive` (the core's owner) until it ends. */
  AsyncEngine(ClientCore& core, std::shared_ptr<ClientCore> keep_alive);
  /** Cancels every call still running (each completes with `Cancelled`) and joins; on the
   *  engine thread itself (the thread's keep-alive was the core's last owner) it detaches. */
  ~AsyncEngine();
  /** Asks the thread to stop: it cancels every call still running and ends. */
  void stop();
  /** `stop()` from a callback that released the client: the thread tears the client down
   *  after the callback and ends, counted until then by `wait_for_detached_engines`. */
  void stop_from_callback();
  /** Stops the thread and waits for it to end; not from the engine thread. A `submit` after
   *  this (a mirror that held the engine) completes at once with `Cancelled`. */
  void join();
  /** Wake-ups armed, one at most per call in flight. Engine thread only (a handler, a test). */
  std::size_t timer_entries() const { return timers_.size(); }
  /** Whether the caller runs on the engine thread (inside a handler or callback). */
  bool on_engine_thread() const { return std::this_thread::get_id() == thread_id_; }
  AsyncEngine(const AsyncEngine&) = delete;
  AsyncEngine& operator=(const AsyncEngine&) = delete;

  /** Queues a call (streamed to `handler` when set); `handler` and `done` run on the engine
   *  thread. A `mirror` is a shadow call (see `CallMachine`). */
  void submit(ChatRequest request, CallOptions options, StreamHandler handler, Callback done,
              bool mirror = false);

 private:
  using Timers = std::multimap<TimePoint, std::uint64_t>;  // wake-up -> call id
  // A call in flight. The machine lives in the map's node, and finished nodes are kept for
  // reuse (call_nodes_), so admitting a call usually allocates neither.
  struct Call {
    std::uint64_t id = 0;
    std::optional<CallMachine> machine;
    CallOptions options;
    Callback done;
    std::uint64_t subscription = 0;
    TimePoint timer = TimePoint::max();  // the one wake-up armed for this call
    Timers::iterator timer_entry;        // its entry in timers_, while `timer` is set
  };
  using Calls = std::unordered_map<std::uint64_t, Call>;
  // Finished calls' nodes (each with a call machine's storage, about 1.6 KiB) and the nodes of
  // the per-call map entries below, kept for reuse: as many as the curl transport keeps idle
  // exchange slots, since one turn of the loop may finish that many calls before it admits the
  // calls their callbacks submitted.
  static constexpr std::size_t kMaxSpareNodes = 256;
  struct Submission {
    ChatRequest request;
    CallOptions options;
    StreamHandler handler;
    Callback done;
    bool mirror = false;
  };

  // Active health probes (HealthProbeOptions), run on this thread.
  struct ProbeTarget {
    std::size_t endpoint = 0;  // for /models probes
    std::size_t route = 0;     // for chat probes
    bool models = true;
    TimePoint due = TimePoint::max();
    TimePoint started{};
    std::uint64_t exchange = 0;  // 0 while idle
  };
  void plan_probes(TimePoint now);
  TimePoint next_probe_due() const;
  void start_due_probes(TimePoint now);
  void finish_probe(TimePoint now, std::size_t index, const HttpResult& result);
  TimePoint after_interval(TimePoint from);

  void run();
  void cancel_all(std::vector<Submission>& incoming);
  void fire_timers(TimePoint now);
  void hand_over(TimePoint now, TransportEvents& events);
  void admit(Submission& submission);  // takes what it needs out of `submission`
  void drive(std::uint64_t call_id);
  void arm(Call& call, TimePoint until);
  void complete(Calls::iterator it);
  /** Runs an application's callback (when there is one); what it throws is logged, never
   *  let out of the engine. */
  void deliver(Callback& done, Result<ChatResponse> result);

  ClientCore& core_;
  std::unique_ptr<TransportSession> session_;

  std::mutex mutex_;  // guards the three members below
  std::vector<Submission> incoming_;
  std::vector<std::uint64_t> cancel_requests_;
  bool stopping_ = false;

  // Engine-thread state.
  std::uint64_t next_call_id_ = 1;
  Calls calls_;
  using Exchanges = std::unordered_map<std::uint64_t, std::uint64_t>;  // exchange id -> call id
  Exchanges exchanges_;
  Timers timers_;
  NodeCache<Calls> call_nodes_{kMaxSpareNodes};  // finished calls' nodes, emptied
  NodeCache<Exchanges> exchange_nodes_{kMaxSpareNodes};
  NodeCache<Timers> timer_nodes_{kMaxSpareNodes};

  std::vector<ProbeTarget> probes_;
  std::unordered_map<std::uint64_t, std::size_t> probe_exchanges_;  // exchange id -> probe

  std::thread thread_;
  std::thread::id thread_id_;  // set once, before the thread takes `mutex_` the first time
};

}  // namespace failover::detail
