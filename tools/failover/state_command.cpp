#include "state_command.hpp"

#include "cli_common.hpp"

#include <failover/failover.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <vector>

namespace failover::tools {

namespace {

using json = nlohmann::ordered_json;

// 2026-12-01T01:02:03.456Z
std::string iso(WallTime t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

// A time still ahead, as JSON: {"until": ISO, "for_ms": N}; null when absent or past.
json ahead(const std::optional<WallTime>& t, WallTime now) {
  if (!t || *t <= now) return nullptr;
  return {{"until", iso(*t)},
          {"for_ms", std::chrono::duration_cast<std::chrono::milliseconds>(*t - now).count()}};
}

}  // namespace

int run_state(const StateArgs& a) {
  std::optional<ClientOptions> loaded = load_options(a.config, a.log);
  if (!loaded) return 2;
  ClientOptions options = std::move(*loaded);
  if (!options.state.store) {
    std::cerr << "failover: the configuration has no shared state store: add \"state\": "
                 "{\"redis\": \"redis://127.0.0.1:6379/0\"} to share breakers, budgets, rate "
                 "limits and the canary across processes (see docs/scale-out.md)\n";
    return 2;
  }
  StateStore& store = *options.state.store;
  std::vector<RouteRef> routes;
  auto add = [&](const RouteRef& r) {
    for (const RouteRef& x : routes) {
      if (x == r) return;
    }
    routes.push_back(r);
  };
  for (const Tier& tier : options.priority) {
    for (const Route& r : tier.routes) add(RouteRef{r.endpoint, r.model});
  }
  if (options.canary.candidate) add(*options.canary.candidate);
  if (options.shadow.candidate) add(*options.shadow.candidate);
  std::vector<std::string> names;
  for (const RouteRef& r : routes) names.push_back(r.endpoint + "/" + r.model);

  try {
    if (!a.reset_breaker.empty()) {
      bool known = false;
      for (const std::string& n : names) known = known || n == a.reset_breaker;
      if (!known) {
        std::cerr << "failover: --reset-breaker: no route " << a.reset_breaker
                  << " in the configuration (routes are ENDPOINT/MODEL)\n";
        return 2;
      }
      store.route_closed(a.reset_breaker);
      std::cerr << "failover: the breaker of " << a.reset_breaker
                << " is reset for the fleet (each process hears of it at its next sync)\n";
    }
    const WallTime now = std::chrono::system_clock::now();
    if (a.reset_spend) {
      store.reset_spend(now);
      std::cerr << "failover: the fleet's spend of " << iso(now).substr(0, 10)
                << " and its month is reset, with every reservation\n";
    }
    const std::vector<SharedRoute> shared = store.routes(names);
    const SharedSpend spend = store.spend(now);
    const BudgetOptions& budget = options.budget;
    std::optional<SharedCanary> canary;  // when the configuration has one and it was published
    std::string candidate;
    if (options.canary.candidate) {
      candidate = options.canary.candidate->endpoint + "/" + options.canary.candidate->model;
      SharedCanary c = store.canary(candidate);
      if (c.generation != 0 || !c.refused.empty()) canary = std::move(c);
    }
    // The candidate's share of calls in the fleet's state.
    auto percent = [&](const SharedCanary& c) -> double {
      const std::vector<double>& steps = options.canary.steps;
      switch (c.state) {
        case CanaryState::Running:
        case CanaryState::Paused:
          return c.step < steps.size() ? steps[c.step] : 0.0;
        case CanaryState::Completed:
          return c.promoted || steps.empty() ? 100.0 : steps.back();
        case CanaryState::RolledBack:
        case CanaryState::Drained:
          return 0.0;
      }
      return 0.0;
    };
    if (a.as_json) {
      json list = json::array();
      for (std::size_t i = 0; i < routes.size(); ++i) {
        json r = {
            {"endpoint", routes[i].endpoint},
            {"model", routes[i].model},
            {"breaker", shared[i].open_until && *shared[i].open_until > now ? "open" : "closed"},
            {"open", ahead(shared[i].open_until, now)},
            {"cooldown", ahead(shared[i].cooldown_until, now)}};
        if (!shared[i].refused.empty()) r["refused"] = shared[i].refused;
        list.push_back(std::move(r));
      }
      auto period = [&](const std::string& name, std::int64_t nanos,
                        const std::optional<double>& limit) {
        return json{{name, iso(now).substr(0, name == "date" ? 10 : 7)},
                    {"usd", static_cast<double>(nanos) / 1e9},
                    {"limit_usd", limit ? json(*limit) : json(nullptr)}};
      };
      json out = {{"store", store.describe()},
                  {"routes", list},
                  {"spend",
                   {{"day", period("date", spend.day_nanos, budget.usd_per_day)},
                    {"month", period("month", spend.month_nanos, budget.usd_per_month)},
                    {"held_usd", static_cast<double>(spend.held_nanos) / 1e9}}},
                  {"canary", nullptr}};
      if (canary && !canary->refused.empty()) {
        out["canary"] = {{"candidate", candidate}, {"refused", canary->refused}};
      } else if (canary) {
        out["canary"] = {{"candidate", candidate},   {"state", to_string(canary->state)},
                         {"step", canary->step},     {"percent", percent(*canary)},
                         {"reason", canary->reason}, {"generation", canary->generation}};
      }
      std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
      return 0;
    }
    std::printf("shared state in %s\n%-32s %-26s %s\n", store.describe().c_str(), "route",
                "breaker", "cooldown");
    for (std::size_t i = 0; i < routes.size(); ++i) {
      auto show = [&](const std::optional<WallTime>& t, const char* none) {
        if (!t || *t <= now) return std::string(none);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.1f s more",
                      std::chrono::duration<double>(*t - now).count());
        return std::string(buf);
      };
      std::string breaker = show(shared[i].open_until, "closed");
      if (breaker != "closed") breaker = "open, " + breaker;
      std::printf(
          "%-32s %-26s %s%s\n", names[i].c_str(), breaker.c_str(),
          show(shared[i].cooldown_until, "-").c_str(),
          shared[i].refused.empty() ? "" : ("  (refused: " + shared[i].refused + ")").c_str());
    }
    auto usd = [](std::int64_t nanos, const std::optional<double>& limit) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "$%.6f", static_cast<double>(nanos) / 1e9);
      std::string text = buf;
      if (limit) {
        std::snprintf(buf, sizeof buf, " of $%.6f", *limit);
        text += buf;
      }
      return text;
    };
    std::printf("spend %s: %s; month %s: %s; held by calls in flight: %s\n",
                iso(now).substr(0, 10).c_str(), usd(spend.day_nanos, budget.usd_per_day).c_str(),
                iso(now).substr(0, 7).c_str(), usd(spend.month_nanos, budget.usd_per_month).c_str(),
                usd(spend.held_nanos, std::nullopt).c_str());
    if (canary && !canary->refused.empty()) {
      std::printf("canary %s: refused (%s)\n", candidate.c_str(), canary->refused.c_str());
    } else if (canary) {
      std::printf("canary %s: %s at step %zu (%g %%)%s%s\n", candidate.c_str(),
                  std::string(to_string(canary->state)).c_str(), canary->step, percent(*canary),
                  canary->reason.empty() ? "" : ", ", canary->reason.c_str());
    }
    return 0;
  } catch (const StateStoreError& e) {
    if (a.as_json) {
      const json doc = {{"store", store.describe()},
                        {"error", {{"kind", "state_store_unreachable"}, {"message", e.what()}}}};
      std::cout << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    }
    std::cerr << "failover: the shared state store is unreachable: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace failover::tools
