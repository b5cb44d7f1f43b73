# Shared helpers for the project's scripts (sourced, not run).

# ensure_packages PKG...: installs the Debian packages that are missing; does nothing when all
# are present, so the scripts stay fast and idempotent.
ensure_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "error: need root (or sudo) to install: ${missing[*]}" >&2
      return 1
    fi
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The packages every build of the project needs.
FAILOVER_BUILD_PACKAGES=(g++ cmake make pkg-config libcurl4-openssl-dev nlohmann-json3-dev
  libsimdjson-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev
  libcli11-dev libhiredis-dev redis-server
  openssl)  # openssl: the TLS test makes a self-signed certificate

jobs() { nproc 2>/dev/null || echo 2; }

# wait_for_ports PORT...: waits (up to 5 s) until something accepts on each 127.0.0.1 port.
wait_for_ports() {
  local port _
  for port in "$@"; do
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.05
    done
  done
}
