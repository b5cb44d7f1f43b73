#pragma once

/** @file result.hpp  The Result template: a value or an `Error`, never an "ok error". */

#include <failover/error.hpp>

#include <stdexcept>
#include <utility>
#include <variant>

namespace failover {

/**
 * Holds either a `T` or an `Error`. Test it with `if (result)`; read it with `*result`,
 * `result->`, or `value()`, which throws the `Error` for callers who prefer exceptions.
 */
template <class T>
class [[nodiscard]] Result {
 public:
  /** A successful result. */
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  /** A failed result. */
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  /** True when a value is held. */
  bool ok() const noexcept { return v_.index() == 0; }
  /** True when a value is held. */
  explicit operator bool() const noexcept { return ok(); }

  /** The value; throws the held `Error` when there is none. */
  T& value() & {
    if (!ok()) throw std::get<1>(v_);
    return std::get<0>(v_);
  }
  /** The value; throws the held `Error` when there is none. */
  const T& value() const& {
    if (!ok()) throw std::get<1>(v_);
    return std::get<0>(v_);
  }
  /** The value, moved out; throws the held `Error` when there is none. */
  T&& value() && {
    if (!ok()) throw std::get<1>(v_);
    return std::get<0>(std::move(v_));
  }
  /** The value (throws the `Error` when there is none). */
  T& operator*() & { return value(); }
  /** The value (throws the `Error` when there is none). */
  const T& operator*() const& { return value(); }
  /** Member access to the value (throws the `Error` when there is none). */
  T* operator->() { return &value(); }
  /** Member access to the value (throws the `Error` when there is none). */
  const T* operator->() const { return &value(); }

  /** The error; throws `std::logic_error` when the result holds a value. */
  const Error& error() const {
    if (ok()) throw std::logic_error("failover::Result::error() called on a successful result");
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

}  // namespace failover
