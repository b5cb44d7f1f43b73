#include "policy/kinds.hpp"

namespace failover::detail {

bool is_transient(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::ServerError:
    case ErrorKind::Overloaded:
    case ErrorKind::Conflict:
    case ErrorKind::ConnectFailed:
    case ErrorKind::ConnectionLost:
    case ErrorKind::Tls:
    case ErrorKind::Timeout:
    case ErrorKind::Protocol:
    case ErrorKind::RateLimited:
      return true;
    default:
      return false;
  }
}

}  // namespace failover::detail
