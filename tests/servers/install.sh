#!/usr/bin/env bash
# The real servers the test suite starts itself: Debian's Chromium (browser tests), PostgreSQL
# (the run store's second backend), redis-server (replicas' live events and Stop) and nginx (the
# balancer in front of several replicas). Installed only when missing; apt-get needs root (CI is root).
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
