#include "core/candidates.hpp"

#include "core/call_env.hpp"
#include "core/call_report.hpp"
#include "core/user_code.hpp"

#include <algorithm>

namespace failover::detail {

namespace {

// Planning's working buffers, one set per thread (a call is planned on one thread): reused
// from call to call instead of allocated for each. Taken out while in use, so that a custom
// balancer that plans a call of its own gets fresh ones.
struct PlanBuffers {
  std::vector<RouteView> views;
  std::vector<std::size_t> order;
  std::vector<char> placed;
};
thread_local PlanBuffers plan_buffers;

// A half-open route whose probe is out has no known time to come back: look again this soon.
constexpr Duration kProbeWait = std::chrono::milliseconds(50);
// How often a call waiting for a budget's one call of unknown cost looks again.
constexpr Duration kBudgetPoll = std::chrono::milliseconds(20);

}  // namespace

RouteState& Candidates::route(std::size_t c) const {
  return *env_.routes()[env_.plan()[list_[c].plan].route];
}

const PlanEntry& Candidates::entry(std::size_t c) const { return env_.plan()[list_[c].plan]; }

void Candidates::plan_mirror() { list_ = {Candidate{*env_.shadow_plan()}}; }

void Candidates::plan(TimePoint now, const CallOptions& options) {
  const auto& plan = env_.plan();
  PlanBuffers b = std::move(plan_buffers);
  // Each tier's routes in its balancer's order, tier after tier.
  list_.clear();
  list_.reserve(plan.size() + 1);
  BalanceContext context;
  context.user = options.user;
  context.rng = &env_.rng();
  context.now = now;
  for (const TierState& tier : env_.tiers()) {
    b.views.clear();
    for (std::size_t i = 0; i < tier.count; ++i) {
      const RouteState& route = *env_.routes()[plan[tier.first + i].route];
      RouteView v;
      v.index = i;
      v.weight = tier.weights[i];
      v.in_flight = route.in_flight.load(std::memory_order_relaxed);
      v.ewma_latency = Duration(route.ewma_latency.load(std::memory_order_relaxed));
      b.views.push_back(v);
    }
    b.order.clear();
    invoke_user(tier.hook_name, [&] { tier.balancer->order(b.views, context, b.order); });
    b.placed.assign(tier.count, 0);
    for (std::size_t i : b.order) {  // a custom balancer's answer is checked, never trusted
      if (i < tier.count && !b.placed[i]) {
        b.placed[i] = 1;
        list_.push_back(Candidate{tier.first + i});
      }
    }
    for (std::size_t i = 0; i < tier.count; ++i) {
      if (!b.placed[i]) list_.push_back(Candidate{tier.first + i});
    }
  }
  plan_buffers = std::move(b);
  // A canary call tries the candidate first, with the priority list behind it. With
  // CallOptions::models, only when the candidate serves one of them.
  bool canary_first = false;
  if (std::optional<std::size_t> canary = env_.canary_plan()) {
    const std::string& model = env_.routes()[plan[*canary].route]->ref.model;
    if ((options.models.empty() ||
         std::find(options.models.begin(), options.models.end(), model) != options.models.end()) &&
        env_.canary()->admit(now, options.user, env_.rng())) {
      // Where the candidate is in the priority list too, this call tries it once, first.
      list_.erase(
          std::remove_if(list_.begin(), list_.end(),
                         [&](Candidate c) { return plan[c.plan].route == plan[*canary].route; }),
          list_.end());
      list_.insert(list_.begin(), Candidate{*canary});
      canary_first = true;
    }
  }
  if (options.models.empty()) return;
  // Only the named models, in the order they are named.
  std::vector<Candidate> chosen;
  const std::size_t from = canary_first ? 1 : 0;
  if (canary_first) chosen.push_back(list_[0]);
  for (const std::string& model : options.models) {
    for (std::size_t k = from; k < list_.size(); ++k) {
      const std::size_t i = list_[k].plan;
      if (env_.routes()[plan[i].route]->ref.model == model &&
          std::none_of(chosen.begin(), chosen.end(), [&](Candidate c) { return c.plan == i; })) {
        chosen.push_back(Candidate{i});
      }
    }
  }
  list_ = std::move(chosen);
}

void Candidates::prepare(const ChatRequest& request, RequestWriter& writer, CallTrace& trace) {
  for (std::size_t k = 0; k < list_.size(); ++k) {
    Candidate& c = list_[k];
    const RouteState& r = route(k);
    const ResolvedEndpoint& endpoint = env_.endpoints()[r.endpoint];
    c.whole = !endpoint.streaming || r.answers_whole.load(std::memory_order_relaxed);
    if (!env_.translating() || !endpoint.api->translates()) continue;
    c.body = writer.translate(request, *endpoint.api, entry(k).shaping.get(), !c.whole);
    const std::optional<std::string>& problem = writer.problem(c.body);
    if (!problem) continue;
    c.tried = true;
    Attempt a;
    a.route = r.ref;
    a.error = ErrorKind::InvalidRequest;
    a.message = std::string("not sent: the request cannot be translated for this ") +
                endpoint.api->name() + " route: " + *problem;
    trace.add(std::move(a));
    trace.log_last();
  }
}

std::optional<std::size_t> Candidates::pick(TimePoint now, AttemptLease& lease,
                                            std::optional<std::size_t> retry) {
  if (retry && admission_.admit(route(*retry), now, lease) == Admission::Block::None) return retry;
  return pick(now, lease);
}

std::optional<std::size_t> Candidates::pick(TimePoint now, AttemptLease& lease) {
  for (std::size_t c = 0; c < list_.size(); ++c) {
    if (list_[c].tried) continue;
    RouteState& r = route(c);
    if (r.cooldown() > now) {
      list_[c].blocked = Admission::Block::Cooling;
      continue;
    }
    list_[c].blocked = admission_.admit(r, now, lease);
    if (list_[c].blocked == Admission::Block::None) return c;
  }
  return std::nullopt;
}

bool Candidates::available(std::size_t c, TimePoint now) const {
  if (list_[c].tried) return false;
  const RouteState& r = route(c);
  return r.cooldown() <= now && admission_.would_admit(r, now);
}

bool Candidates::has_alternative(TimePoint now, std::optional<std::size_t> tier) const {
  for (std::size_t c = 0; c < list_.size(); ++c) {
    if (tier && entry(c).tier != *tier) continue;
    if (available(c, now)) return true;
  }
  return false;
}

std::optional<TimePoint> Candidates::earliest_recovery(TimePoint now) const {
  std::optional<TimePoint> best;
  if (admission_.rate_blocked()) best = admission_.rate_wait();
  for (std::size_t c = 0; c < list_.size(); ++c) {
    if (list_[c].tried) continue;
    const RouteState& r = route(c);
    if (!admission_.budget_allows(r)) continue;  // a spent budget does not come back by waiting
    TimePoint at = now + kProbeWait;
    if (std::optional<TimePoint> reopen = r.reopens_at(now)) at = *reopen;
    if (r.cooldown() > now) at = std::max(at, r.cooldown());
    if (!best || at < *best) best = at;
  }
  return best;
}

std::optional<std::size_t> Candidates::least_bad(TimePoint now) {
  std::optional<std::size_t> pick;
  TimePoint pick_at = TimePoint::max();
  for (std::size_t c = 0; c < list_.size(); ++c) {
    if (list_[c].tried) continue;
    const RouteState& r = route(c);
    if (!admission_.within_budget(r)) continue;
    TimePoint at = r.reopens_at(now).value_or(now);
    at = std::max(at, r.cooldown());
    if (at < pick_at) {
      pick = c;
      pick_at = at;
    }
  }
  return pick;
}

std::optional<std::size_t> Candidates::panic(TimePoint now, AttemptLease& lease) {
  std::optional<std::size_t> pick = least_bad(now);
  if (pick && (!admission_.take_permit(route(*pick), lease, now) ||
               !admission_.reserve_spend(route(*pick), lease))) {
    lease.release();
    pick.reset();
  }
  return pick;
}

std::optional<TimePoint> Candidates::look_again_at(TimePoint now, std::optional<std::size_t> retry,
                                                   bool for_recovery) const {
  std::optional<TimePoint> back;
  if (for_recovery) back = earliest_recovery(now);
  if (retry && for_recovery) {  // the retry may come back first (its permit, its breaker)
    TimePoint at = admission_.rate_blocked() ? admission_.rate_wait() : now + kProbeWait;
    if (std::optional<TimePoint> reopen = route(*retry).reopens_at(now)) at = std::max(at, *reopen);
    back = std::min(back.value_or(at), at);
  }
  if (admission_.budget_busy()) back = std::min(back.value_or(TimePoint::max()), now + kBudgetPoll);
  return back;
}

Duration Candidates::failover_reserve(TimePoint now, Duration remaining) const {
  std::optional<Duration> best;
  for (std::size_t k = 0; k < list_.size(); ++k) {
    if (!available(k, now)) continue;
    const Duration ewma{route(k).ewma_latency.load(std::memory_order_relaxed)};
    const Duration need = ewma > Duration::zero()
                              ? std::max<Duration>(2 * ewma, std::chrono::seconds(1))
                              : remaining / 2;
    best = best ? std::min(*best, need) : need;
  }
  return best ? std::min(*best, remaining / 2) : Duration::zero();
}

bool Candidates::rule_out(std::size_t c, const Decision& decision) {
  if (decision.stop) {
    for (Candidate& other : list_) other.tried = true;
  }
  if (decision.skip_tier) {
    const std::size_t tier = entry(c).tier;
    for (Candidate& other : list_) {
      if (env_.plan()[other.plan].tier == tier) other.tried = true;
    }
  }
  return decision.stop;
}

SkippedRoute Candidates::passed_over(std::size_t c, TimePoint now) const {
  return detail::passed_over(route(c), list_[c].blocked, admission_.rate_wait(), now);
}

Flight Candidates::start(std::size_t c, TimePoint now, int attempt, bool whole) {
  Candidate& k = list_[c];
  k.tried = true;
  ++k.attempts;
  Flight f;
  f.candidate = c;
  f.route = &route(c);
  f.canary = env_.canary_plan() == k.plan;
  f.start = now;
  f.attempt = attempt;
  if (!k.whole) {
    f.wire = std::make_unique<AttemptStream>(*env_.endpoints()[f.route->endpoint].api, now, whole);
  }
  return f;
}

bool Candidates::can_continue(std::size_t c) const {
  return !list_[c].prefix_refused &&
         env_.endpoints()[route(c).endpoint].continuation == Continuation::Prefill;
}

CallState Candidates::call_state(TimePoint now, std::size_t c, bool canary, int attempts,
                                 TimePoint deadline) const {
  CallState state;
  state.attempts = attempts;
  state.route_attempts = list_[c].attempts;
  state.has_alternative = has_alternative(now);
  // From a canary's candidate the priority list is the stable version, not a downgrade.
  state.tier_alternative = state.has_alternative && (canary || has_alternative(now, entry(c).tier));
  state.now = now;
  state.deadline = deadline;
  state.rng = &env_.rng();
  return state;
}

RequestWriter::Attempt Candidates::attempt_of(const Flight& f, const CallOptions& options) const {
  const ClientOptions& o = env_.options();
  const RouteState& route = *f.route;
  RequestWriter::Attempt a;
  a.route = &route;
  a.endpoint = &env_.endpoints()[route.endpoint];
  a.shaping = entry(f.candidate).shaping.get();
  a.call_headers = &options.headers;
  a.body = list_[f.candidate].body;
  a.streamed = f.wire != nullptr;
  a.continuation = f.continuation;
  a.number = f.attempt;
  a.total = f.limits.total;
  a.connect = f.limits.connect;
  a.headers = f.limits.headers;
  a.max_response_bytes = o.max_response_bytes;
  a.ca_bundle = &o.ca_bundle;
  // Only an endpoint's rate limiter reads a successful answer's headers (see observe_limits).
  a.success_headers = env_.limiter(route.endpoint) != nullptr;
  return a;
}

bool Candidates::untranslatable(const RequestWriter& writer) const {
  return std::all_of(list_.begin(), list_.end(),
                     [&](const Candidate& c) { return c.body >= 0 && writer.problem(c.body); });
}

Exhaustion Candidates::exhaustion(TimePoint now) const {
  Exhaustion x;
  x.untried = untried(now);
  x.rate_blocked = admission_.rate_blocked();
  x.rate_wait = admission_.rate_wait();
  x.spend_blocked = admission_.spend_blocked();
  x.store_down = admission_.budget_store_down();
  x.store = env_.options().state.store.get();
  x.now = now;
  return x;
}

std::vector<SkippedRoute> Candidates::skipped(TimePoint now) const {
  std::vector<SkippedRoute> out;
  for (std::size_t c = 0; c < list_.size(); ++c) {
    if (!list_[c].tried && list_[c].blocked != Admission::Block::None) {
      out.push_back(passed_over(c, now));
    }
  }
  return out;
}

std::vector<SkippedRoute> Candidates::untried(TimePoint now) const {
  std::vector<SkippedRoute> out;
  for (std::size_t c = 0; c < list_.size(); ++c) {
    if (!list_[c].tried) out.push_back(passed_over(c, now));
  }
  return out;
}

std::vector<RouteRef> Candidates::available_routes(TimePoint now) const {
  std::vector<RouteRef> out;
  for (std::size_t c = 0; c < list_.size(); ++c) {
    if (available(c, now)) out.push_back(route(c).ref);
  }
  return out;
}

std::vector<std::string> models_served(const CallEnv& env) {
  std::vector<std::string> served;
  for (const auto& r : env.routes()) {
    if (std::find(served.begin(), served.end(), r->ref.model) == served.end()) {
      served.push_back(r->ref.model);
    }
  }
  return served;
}

}  // namespace failover::detail
