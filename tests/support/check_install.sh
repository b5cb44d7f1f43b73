#!/usr/bin/env bash
# check_install.sh PREFIX WORK APP_SOURCE CXX
# Checks an installed failover: LICENSE and failover.pc are there; the installed `failover`
# tool runs from PREFIX and from a copy of PREFIX moved elsewhere, with the library of its own
# prefix; an application compiled and linked by `pkg-config --cflags --libs failover` alone,
# against the moved copy, runs and fails over.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=$1
work=$2
app_source=$3
cxx=$4
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
  "$root/bin/failover" --version > /dev/null || fail "$root/bin/failover does not run"
  if [ -e "$root/$libdir/libfailover.so" ]; then
    loaded=$(ldd "$root/bin/failover" | sed -n 's/^\s*libfailover\.so[^ ]* => \(.*\) (0x.*$/\1/p')
    [ "$(dirname "$(readlink -f "$loaded")")" = "$(readlink -f "$root/$libdir")" ] ||
      fail "$root/bin/failover loads '$loaded', not the libfailover of its own prefix"
  fi
done

export PKG_CONFIG_PATH="$moved/$libdir/pkgconfig"
static=()
[ -e "$moved/$libdir/libfailover.so" ] || static=(--static)
# pkg-config escapes the space in the moved prefix as a shell would read it.
eval "cflags=($(pkg-config --cflags failover))"
eval "libs=($(pkg-config "${static[@]}" --libs failover))"
printf '%s\n' "${cflags[@]}" | grep -q "moved" || fail "pkg-config gives no path into the moved prefix"
"$cxx" -std=c++17 -Wall -Wextra -Werror "${cflags[@]}" "$app_source" -o "$work/app" \
  "${libs[@]}" "-Wl,-rpath,$moved/$libdir"
bash "$here/run_against_demo.sh" "Hello via backup after 2 attempts" "$moved/bin/failover" \
  "$work/app" {primary} {backup}
