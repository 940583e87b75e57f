#!/usr/bin/env bash
# Build esc/evaltool (offline Pulumi ESC evaluator) into $CACHE/bin/esc-eval.
#
# CACHE=${SOPHIA_CACHE:-$HOME/.cache/sophia-redis}. Idempotent: a stamp under
# $CACHE/stamps records a hash of the tool's sources and the Go version, and
# the build is skipped while it matches and the binary exists. Modules come
# from the Go module proxy; as in scripts/cluster/lib.sh the Go build and
# module caches live in $CACHE/build/{gocache,gomod}, outside the repository,
# and nothing is written into the work tree.
#
# Environment: SOPHIA_CACHE, GO_BUILD_JOBS (go build -p, default 1: the
# machine is small and shared with other builds), FORCE=1 to rebuild.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$repo/esc/evaltool
cache=${SOPHIA_CACHE:-$HOME/.cache/sophia-redis}
bin=$cache/bin/esc-eval
stamp=$cache/stamps/esc-eval.stamp

command -v go >/dev/null 2>&1 || { echo "build-esc-eval: go is not on PATH" >&2; exit 1; }

export GOCACHE=$cache/build/gocache GOMODCACHE=$cache/build/gomod
export GOFLAGS="-buildvcs=false -modcacherw -mod=readonly"
export GOTOOLCHAIN=local CGO_ENABLED=0   # never download a Go toolchain
case "$cache/" in
    "$repo"/*) echo "build-esc-eval: SOPHIA_CACHE ($cache) must be outside the repository" >&2; exit 1 ;;
esac

want=$(
    cd "$src"
    { go version; find . -maxdepth 1 -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) ! -name '*_test.go' -print0 \
        | sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1
)

if [[ "${FORCE:-0}" != 1 && -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "build-esc-eval: $bin is up to date"
    exit 0
fi

mkdir -p "$cache/bin" "$cache/stamps" "$GOCACHE" "$GOMODCACHE"
tmp=$(mktemp "$cache/bin/.esc-eval.XXXXXX")
trap 'rm -f "$tmp"' EXIT

echo "build-esc-eval: building $bin"
(
    cd "$src"
    nice -n 10 go build -p "${GO_BUILD_JOBS:-1}" -trimpath -ldflags='-s -w' -o "$tmp" .
)
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
printf '%s\n' "$want" >"$stamp"
"$bin" --help >/dev/null 2>&1 || [[ $? -eq 2 ]] || { echo "build-esc-eval: $bin does not run" >&2; exit 1; }
echo "build-esc-eval: installed $bin"
