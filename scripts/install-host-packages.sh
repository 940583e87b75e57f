#!/usr/bin/env bash
# Installs, in one step, every Debian package of scripts/host-packages.txt that is missing.
# Run first by `make up` and `make test`; a no-op when everything is there.
#   install-host-packages.sh            install what is missing
#   install-host-packages.sh --list     print the manifest's package names
set -euo pipefail
manifest="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/host-packages.txt"

packages() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$manifest" | awk '{ print $1 }'; }

if [[ ${1:-} == --list ]]; then
    packages
    exit 0
fi

missing=()
while read -r pkg; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < <(packages)
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "error: host packages missing and not root: run 'sudo apt-get install ${missing[*]}' or this script as root" >&2
    exit 1
fi
echo "installing host packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null ||
    { echo "error: the Debian archive is unreachable (apt-get update failed): cannot install ${missing[*]}" >&2; exit 1; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { echo "error: apt-get install ${missing[*]} failed" >&2; exit 1; }
