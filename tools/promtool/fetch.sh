#!/usr/bin/env bash
# Puts `promtool` (for `promtool check metrics` in test/e2e/metrics.e2e.spec.ts) in the cache
# directory that survives between runs: $BACKSTOP_CACHE_DIR or ~/.cache/backstop, as bin/promtool.
# Prints its path. Uses the machine's promtool when there is one.
#
# Debian's `prometheus` package is the source (the upstream release tarball is not reachable from
# these machines). Installing it would also install and try to start the Prometheus server with its
# web UI's JavaScript dependencies (~96 MB); only its promtool binary is needed, so the .deb is
# downloaded (apt-get download, ~19 MB) and promtool alone is extracted from it: no daemon, no
# maintainer scripts, no other package.
set -euo pipefail
if command -v promtool >/dev/null; then command -v promtool; exit 0; fi
bin="${BACKSTOP_CACHE_DIR:-$HOME/.cache/backstop}/bin"
if [ -x "$bin/promtool" ] && "$bin/promtool" --version >/dev/null 2>&1; then echo "$bin/promtool"; exit 0; fi
command -v apt-get >/dev/null || { echo "promtool/fetch.sh: no apt-get here: install Prometheus's promtool by hand" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 0777 "$work" # apt-get download drops to the _apt user, which must be able to write here (a private mktemp dir)
cd "$work"
download() { apt-get download -qq prometheus >/dev/null 2>&1; }
download || { apt-get update -qq >/dev/null 2>&1 && download; } || { echo "promtool/fetch.sh: apt-get download prometheus failed" >&2; exit 1; }
dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool
mkdir -p "$bin"
install -m 0755 usr/bin/promtool "$bin/promtool"
"$bin/promtool" --version >/dev/null
echo "$bin/promtool"
