#!/usr/bin/env bash
# check_install.sh PREFIX WORK APP_SOURCE CXX MOCK_CLI
# Checks an installed failover, shared or static: LICENSE and failover.pc are there; the
# installed `failover` tool, when there is one, runs from PREFIX and from a copy of PREFIX moved
# elsewhere, with the library of its own prefix; an application compiled and linked by
# `pkg-config --cflags --libs failover` alone, against the moved copy, runs and fails over
# (against mocks of MOCK_CLI).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=$1
work=$2
app_source=$3
cxx=$4
mock_cli=$5
fail() { echo "check_install: $*" >&2; exit 1; }

[ -f "$prefix/share/doc/failover/LICENSE" ] || fail "LICENSE is not in share/doc/failover"
pc=$(cd "$prefix" && find . -path '*/pkgconfig/failover.pc' | head -n 1)
[ -n "$pc" ] || fail "failover.pc is not installed"
libdir=$(dirname "$(dirname "$pc")")  # e.g. ./lib

rm -rf "$work"
mkdir -p "$work"
moved="$work/moved prefix"  # a space, too
cp -a "$prefix" "$moved"
unset LD_LIBRARY_PATH
for root in "$prefix" "$moved"; do
  [ -e "$root/bin/failover" ] || continue
  "$root/bin/failover" --version > /dev/null || fail "$root/bin/failover does not run"
  if [ -e "$root/$libdir/libfailover.so" ]; then
    loaded=$(ldd "$root/bin/failover" | sed -n 's/^\s*libfailover\.so[^ ]* => \(.*\) (0x.*$/\1/p')
    [ "$(dirname "$(readlink -f "$loaded")")" = "$(readlink -f "$root/$libdir")" ] ||
      fail "$root/bin/failover loads '$loaded', not the libfailover of its own prefix"
  fi
done

export PKG_CONFIG_PATH="$moved/$libdir/pkgconfig"
# pkg-config escapes the space in the moved prefix as a shell would read it. A static
# libfailover's dependencies are among its Requires: no --static needed.
eval "cflags=($(pkg-config --cflags failover))"
eval "libs=($(pkg-config --libs failover))"
printf '%s\n' "${cflags[@]}" | grep -q "moved" || fail "pkg-config gives no path into the moved prefix"
"$cxx" -std=c++17 -Wall -Wextra -Werror "${cflags[@]}" "$app_source" -o "$work/app" \
  "${libs[@]}" "-Wl,-rpath,$moved/$libdir"
bash "$here/run_against_demo.sh" "Hello via backup after 2 attempts" "$mock_cli" \
  "$work/app" {primary} {backup}
