#pragma once

// The one funnel for application code the SDK calls (retry policies, balancers, circuit
// breakers, token estimators, stream handlers, comparators): whatever it throws becomes a
// HookError naming the hook, which the call machine catches at its edges and turns into a
// `HookFailed` error, releasing everything the call holds.

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace failover::detail {

/** Application code threw; `what()` names the hook and repeats what it threw. */
class HookError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/** Calls `fn()` (application code named `hook`, e.g. "the retry policy"); rethrows anything it
 *  throws as a HookError. */
template <class F>
decltype(auto) invoke_user(std::string_view hook, F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (const HookError&) {
    throw;
  } catch (const std::exception& e) {
    throw HookError(std::string(hook) + " threw: " + e.what());
  } catch (...) {
    throw HookError(std::string(hook) + " threw");
  }
}

}  // namespace failover::detail
