#!/usr/bin/env bash
# Debian packages the unit tests need on the host: shellcheck (pod scripts) and haproxy
# (validates the rendered haproxy.cfg with 'haproxy -c'; never started here).
set -euo pipefail

missing=()
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v haproxy >/dev/null || missing+=(haproxy)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "error: ${missing[*]} missing and not root: install them with 'sudo apt-get install ${missing[*]}'" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "error: the Debian archive is unreachable: cannot install ${missing[*]}" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
