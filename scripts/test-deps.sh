#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks: Chromium (the
# status-page test drives a real headless browser) and redis-server (the
# global rate-limit tests of internal/ratelimit start their own throwaway
# Redis on a free loopback port). `make test` runs it first, so the
# README's test command works on a fresh Debian machine; it does nothing
# when everything is present.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v pebble >/dev/null 2>&1 || missing+=(pebble)
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test dependencies missing: ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing test dependencies: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# update first: redis-server comes from bookworm-security and its version
# moves, so stale package lists give 404s.
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
# Debian enables the packaged Redis service, and under systemd it also
# starts it on 6379. The tests never use it (each starts its own server),
# so keep it from holding the port and memory.
if [[ " ${missing[*]} " == *" redis-server "* ]] && [[ -d /run/systemd/system ]]; then
  systemctl disable --now redis-server.service >/dev/null 2>&1 || true
fi
