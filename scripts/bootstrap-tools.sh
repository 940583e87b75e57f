#!/usr/bin/env bash
# Build the offline Pulumi toolchain from the Go module proxy and install it
# under $CACHE (${SOPHIA_CACHE:-$HOME/.cache/sophia-redis}):
#
#   $CACHE/bin/pulumi                         CLI (tools/pulumi-cli)
#   $CACHE/bin/pulumi-language-python         our language host (tools/pulumi-language-python)
#   $CACHE/bin/pulumi-language-python-exec    its exec script, copied from the Pulumi SDK module
#   $CACHE/bin/pulumi-resource-pulumi-python  dynamic-provider shim, from the same module
#   $CACHE/bin/actionlint                     GitHub workflow linter
#   $CACHE/pulumi-home                        PULUMI_HOME, with the plugins
#       resource kubernetes v$PULUMI_KUBERNETES_VERSION (tools/pulumi-resource-kubernetes)
#       resource random     v$PULUMI_RANDOM_VERSION     (tools/pulumi-resource-random, our own)
#   $CACHE/env.sh                             source it: PATH, PULUMI_HOME and friends
#   $CACHE/build/                             Go module, build and temp dirs; build logs
#   $CACHE/stamps/tools-*                     what each installed piece was built from
#
# Versions are pinned in scripts/versions.env. Idempotent: a piece is rebuilt
# only when its stamp (Go version, sources, go.mod/go.sum, flags, pins)
# changes or its output is missing, so a warm run takes about a second.
# No prebuilt binary is downloaded; modules come from the Go module proxy.
#
# If a real `pulumi` is already on PATH (outside $CACHE) and has the plugins
# we need, it is used as is and only actionlint is built; set
# SOPHIA_BUILD_PULUMI=1 to build our own anyway.
#
# Env: SOPHIA_CACHE, FORCE=1 (rebuild everything), GO_BUILD_JOBS (go build -p;
# default: Go's default), SOPHIA_BUILD_PULUMI=1.
# Exit status: 0 when every tool is in place, 1 otherwise (one line on stderr
# says why, e.g. no Go toolchain or an unreachable module proxy).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
OUT_DIR=$BUILD_DIR/out
LOG_DIR=$BUILD_DIR/logs
PULUMI_HOME_DIR=$CACHE/pulumi-home
ENV_FILE=$CACHE/env.sh

log() { printf 'bootstrap-tools: %s\n' "$*" >&2; }
die() {
    printf 'bootstrap-tools: error: %s\n' "$*" >&2
    exit 1
}

# ------------------------------------------------------------------ checks

# require_go: a missing or too old toolchain is one line, not a failure deep
# inside a build. The minimum is the highest `go` directive of our modules.
require_go() {
    command -v go >/dev/null 2>&1 ||
        die "no Go toolchain: 'go' is not on PATH (install Go >= $(min_go_version) to build the Pulumi tools)"
    local have want
    have=$(go env GOVERSION 2>/dev/null) || die "'go env GOVERSION' failed; is the Go toolchain installed correctly?"
    have=${have#go}
    want=$(min_go_version)
    version_ge "$have" "$want" || die "Go $have is too old: the Pulumi tools need Go >= $want (GOTOOLCHAIN=local, no toolchain download)"
}

min_go_version() {
    sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' "$REPO_ROOT"/tools/pulumi-*/go.mod | sort -V | tail -n1
}

# version_ge A B: A >= B for dotted versions.
version_ge() { [[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$2" ]]; }

# check_pins MODULE_DIR: the wrapper go.mod files are what is built,
# versions.env is what callers read; refuse to build when they disagree.
check_pins() {
    local dir=$1 mod want
    while read -r mod want; do
        [[ -n $mod ]] || continue
        grep -Eq "(^|[[:space:]])${mod//./\\.} ${want//./\\.}([[:space:]]|$)" "$REPO_ROOT/tools/$dir/go.mod" ||
            die "tools/$dir/go.mod does not pin $mod $want as scripts/versions.env says"
    done
}

check_all_pins() {
    check_pins pulumi-cli <<EOF
github.com/pulumi/pulumi/pkg/v3 v$PULUMI_CLI_VERSION
github.com/pulumi/pulumi/sdk/v3 v$PULUMI_CLI_VERSION
EOF
    check_pins pulumi-language-python <<<"github.com/pulumi/pulumi/sdk/v3 v$PULUMI_CLI_VERSION"
    check_pins pulumi-resource-random <<<"github.com/pulumi/pulumi/sdk/v3 v$PULUMI_CLI_VERSION"
    check_pins pulumi-resource-kubernetes <<EOF
github.com/pulumi/pulumi-kubernetes/provider/v4 $PULUMI_KUBERNETES_PROVIDER_MODULE
github.com/pulumi/pulumi-kubernetes/sdk/v4 v$PULUMI_KUBERNETES_VERSION
EOF
}

# go_env points Go's caches and work directories into $CACHE/build, so
# nothing lands in the repository and removing $CACHE removes every build
# artefact (-modcacherw keeps the module cache deletable).
go_env() {
    export GOCACHE=$BUILD_DIR/gocache GOMODCACHE=$BUILD_DIR/gomod GOTMPDIR=$BUILD_DIR/tmp
    export GOFLAGS="-buildvcs=false -modcacherw -mod=readonly"
    export GOTOOLCHAIN=local CGO_ENABLED=0
    mkdir -p "$GOCACHE" "$GOMODCACHE" "$GOTMPDIR" "$OUT_DIR" "$LOG_DIR" "$BIN_DIR" "$STAMP_DIR"
    local d
    for d in "$GOCACHE" "$GOMODCACHE" "$GOTMPDIR"; do
        case "$d/" in "$REPO_ROOT"/*) die "Go cache $d is inside the repository; set SOPHIA_CACHE elsewhere" ;; esac
    done
}

# go_download DIR: fetch DIR's modules (a no-op when cached), so that an
# unreachable proxy is one clear line instead of a failure deep in a build.
go_download() {
    local dir=$1 out
    if ! out=$(cd "$REPO_ROOT/tools/$dir" && timeout 900 go mod download 2>&1); then
        die "Go module proxy unreachable or refusing tools/$dir's modules ($(go env GOPROXY)): $(tail -n1 <<<"$out")"
    fi
}

# ------------------------------------------------------------------ stamps

stamp_ok() { [[ ${FORCE:-0} != 1 && -f $STAMP_DIR/tools-$1 && $(cat "$STAMP_DIR/tools-$1") == "$2" ]]; }
stamp_write() { printf '%s\n' "$2" >"$STAMP_DIR/tools-$1"; }

# source_hash DIR EXTRA...: the Go version, every source and module file of
# tools/DIR and the extra build inputs, in one digest.
source_hash() {
    local dir=$1
    shift
    {
        go version
        printf 'rev=%s %s\n' "$TOOLS_BUILD_REVISION" "$*"
        cd "$REPO_ROOT/tools/$dir" &&
            find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) ! -name '*_test.go' -print0 |
            sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}

# ------------------------------------------------------------------ builds

# go_build NAME MODULE_DIR PACKAGE OUTPUT LDFLAGS [GO_BUILD_FLAGS...]: build
# PACKAGE inside the module tools/MODULE_DIR to OUTPUT, atomically, logging
# to $LOG_DIR/NAME.log. The caller has run go_download.
go_build() {
    local name=$1 dir=$2 pkg=$3 out=$4 ldflags=$5 start
    shift 5
    log "building $name (a cold build takes minutes on 2 cores; log: $LOG_DIR/$name.log)"
    start=$SECONDS
    if ! (cd "$REPO_ROOT/tools/$dir" && nice -n 5 go build ${GO_BUILD_JOBS:+-p "$GO_BUILD_JOBS"} -trimpath \
        -ldflags "$ldflags" "$@" -o "$out.tmp" "$pkg") >"$LOG_DIR/$name.log" 2>&1; then
        tail -n 20 "$LOG_DIR/$name.log" >&2
        die "building $name failed; see $LOG_DIR/$name.log"
    fi
    mv -f "$out.tmp" "$out"
    log "built $name in $((SECONDS - start))s"
}

build_pulumi_cli() {
    local ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_CLI_VERSION" hash
    hash=$(source_hash pulumi-cli "$ldflags")
    if [[ -x $BIN_DIR/pulumi ]] && stamp_ok pulumi "$hash"; then
        log "pulumi v$PULUMI_CLI_VERSION is up to date"
        return 0
    fi
    go_download pulumi-cli
    go_build pulumi pulumi-cli github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$BIN_DIR/pulumi" "$ldflags"
    stamp_write pulumi "$hash"
}

build_language_python() {
    local ldflags="-s -w -X main.version=$PULUMI_CLI_VERSION" hash sdk_dir f
    hash=$(source_hash pulumi-language-python "$ldflags")
    if [[ -x $BIN_DIR/pulumi-language-python && -x $BIN_DIR/pulumi-language-python-exec ]] &&
        stamp_ok pulumi-language-python "$hash"; then
        log "pulumi-language-python is up to date"
        return 0
    fi
    go_download pulumi-language-python
    go_build pulumi-language-python pulumi-language-python . "$BIN_DIR/pulumi-language-python" "$ldflags"
    # The scripts ship in the SDK module zip; copy them next to the host,
    # where it (and the engine, for dynamic providers) looks for them.
    sdk_dir=$(cd "$REPO_ROOT/tools/pulumi-language-python" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3) ||
        die "cannot locate the Pulumi SDK module in the module cache"
    for f in cmd/pulumi-language-python-exec dist/pulumi-resource-pulumi-python; do
        [[ -f $sdk_dir/python/$f ]] || die "the Pulumi SDK module has no python/$f"
        install -m 0755 "$sdk_dir/python/$f" "$BIN_DIR/${f##*/}"
    done
    stamp_write pulumi-language-python "$hash"
}

# install_plugin NAME VERSION BINARY: install BINARY as resource plugin NAME
# vVERSION into our PULUMI_HOME unless that exact binary is installed.
install_plugin() {
    local name=$1 version=$2 binary=$3 installed
    installed=$PULUMI_HOME_DIR/plugins/resource-$name-v$version/pulumi-resource-$name
    if [[ ${FORCE:-0} != 1 && -x $installed ]] && cmp -s "$binary" "$installed"; then
        return 0
    fi
    log "installing plugin resource $name v$version"
    PULUMI_HOME=$PULUMI_HOME_DIR PULUMI_SKIP_UPDATE_CHECK=true \
        "$BIN_DIR/pulumi" plugin install resource "$name" "v$version" --file "$binary" --reinstall >/dev/null ||
        die "installing plugin resource $name v$version failed"
}

build_kubernetes_provider() {
    local ldflags="-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION"
    local out=$OUT_DIR/pulumi-resource-kubernetes dir=$REPO_ROOT/tools/pulumi-resource-kubernetes
    local embed=$BUILD_DIR/pulumi-resource-kubernetes-embed hash upstream
    hash=$(source_hash pulumi-resource-kubernetes "$ldflags" "version=$PULUMI_KUBERNETES_VERSION")
    if [[ -x $out ]] && stamp_ok pulumi-resource-kubernetes "$hash"; then
        log "pulumi-resource-kubernetes v$PULUMI_KUBERNETES_VERSION is up to date"
    else
        go_download pulumi-resource-kubernetes
        # Upstream generates the schema files its main package embeds at build
        # time; generate them outside the repository and overlay them.
        # The build uses a copy of the module, because Go refuses overlays of files in the
        # module cache and embedgen also overlays a backported fix (see embedgen/main.go).
        upstream=$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4) ||
            die "cannot locate the Kubernetes provider module in the module cache"
        rm -rf "$embed" && mkdir -p "$embed"
        cp -R "$upstream" "$embed/provider" && chmod -R u+w "$embed/provider"
        cp "$dir/go.mod" "$dir/go.sum" "$embed/"
        (cd "$dir" && go mod edit -modfile "$embed/go.mod" -replace "github.com/pulumi/pulumi-kubernetes/provider/v4=$embed/provider")
        (cd "$dir" && go run ./embedgen -src "$embed/provider/cmd/pulumi-resource-kubernetes" -pkg "$dir" \
            -out "$embed" -version "$PULUMI_KUBERNETES_VERSION") >"$LOG_DIR/pulumi-resource-kubernetes-embed.log" 2>&1 ||
            die "generating the Kubernetes provider schema failed; see $LOG_DIR/pulumi-resource-kubernetes-embed.log"
        go_build pulumi-resource-kubernetes pulumi-resource-kubernetes . "$out" "$ldflags" \
            -modfile "$embed/go.mod" -overlay "$embed/overlay.json"
        stamp_write pulumi-resource-kubernetes "$hash"
    fi
    install_plugin kubernetes "$PULUMI_KUBERNETES_VERSION" "$out"
}

build_random_provider() {
    local ldflags="-s -w -X main.version=$PULUMI_RANDOM_VERSION"
    local out=$OUT_DIR/pulumi-resource-random hash
    hash=$(source_hash pulumi-resource-random "$ldflags")
    if [[ -x $out ]] && stamp_ok pulumi-resource-random "$hash"; then
        log "pulumi-resource-random v$PULUMI_RANDOM_VERSION is up to date"
    else
        go_download pulumi-resource-random
        go_build pulumi-resource-random pulumi-resource-random . "$out" "$ldflags"
        stamp_write pulumi-resource-random "$hash"
    fi
    install_plugin random "$PULUMI_RANDOM_VERSION" "$out"
}

build_actionlint() {
    local hash start
    hash=$( { go version; echo "rev=$TOOLS_BUILD_REVISION actionlint $ACTIONLINT_VERSION"; } | sha256sum | cut -d' ' -f1)
    if [[ -x $BIN_DIR/actionlint ]] && stamp_ok actionlint "$hash"; then
        log "actionlint $ACTIONLINT_VERSION is up to date"
        return 0
    fi
    log "building actionlint $ACTIONLINT_VERSION (log: $LOG_DIR/actionlint.log)"
    start=$SECONDS
    # `go install pkg@version` builds outside any module, verified by go.sum
    # data from the checksum database; GOFLAGS=-mod=... does not apply there.
    if ! (cd "$BUILD_DIR" && GOFLAGS="-buildvcs=false -modcacherw" GOBIN=$OUT_DIR nice -n 5 \
        go install ${GO_BUILD_JOBS:+-p "$GO_BUILD_JOBS"} -trimpath -ldflags "-s -w" \
        "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION") >"$LOG_DIR/actionlint.log" 2>&1; then
        if grep -qiE 'dial tcp|no such host|timeout|connection refused|403|404|410' "$LOG_DIR/actionlint.log"; then
            die "Go module proxy unreachable or refusing actionlint ($(go env GOPROXY)): $(tail -n1 "$LOG_DIR/actionlint.log")"
        fi
        tail -n 20 "$LOG_DIR/actionlint.log" >&2
        die "building actionlint failed; see $LOG_DIR/actionlint.log"
    fi
    mv -f "$OUT_DIR/actionlint" "$BIN_DIR/actionlint"
    stamp_write actionlint "$hash"
    log "built actionlint in $((SECONDS - start))s"
}

# ------------------------------------------------------------------ system pulumi

# system_pulumi prints the first `pulumi` on PATH that is not ours.
system_pulumi() {
    local p
    while read -r p; do
        [[ -n $p && $(readlink -f "$p") != "$(readlink -f "$BIN_DIR/pulumi" 2>/dev/null || echo "$BIN_DIR/pulumi")" ]] &&
            { echo "$p"; return 0; }
    done < <(type -ap pulumi 2>/dev/null)
    return 1
}

# system_pulumi_usable PULUMI: true when that CLI has the language host and
# the resource plugins (exact versions) our programs need.
system_pulumi_usable() {
    local cli=$1 plugins
    plugins=$(PULUMI_SKIP_UPDATE_CHECK=true "$cli" plugin ls --json 2>/dev/null) || return 1
    command -v pulumi-language-python >/dev/null 2>&1 ||
        [[ -x $(dirname "$cli")/pulumi-language-python ]] || return 1
    PLUGINS_JSON=$plugins python3 -c '
import json, os, sys
have = {(p.get("name"), p.get("kind"), str(p.get("version", "")).lstrip("v"))
        for p in json.loads(os.environ["PLUGINS_JSON"]) or []}
need = {("kubernetes", "resource", sys.argv[1]), ("random", "resource", sys.argv[2])}
sys.exit(0 if need <= have else 1)
' "$PULUMI_KUBERNETES_VERSION" "$PULUMI_RANDOM_VERSION" 2>/dev/null
}

# ------------------------------------------------------------------ env.sh

write_env() {
    local use_home=$1 tmp
    tmp=$(mktemp "$CACHE/.env.sh.XXXXXX")
    {
        echo "# Generated by scripts/bootstrap-tools.sh; source it (. $ENV_FILE)."
        echo "# The stack passphrase (PULUMI_CONFIG_PASSPHRASE or _FILE) is left to the caller."
        # shellcheck disable=SC2016 # $PATH is for env.sh to expand
        printf 'export PATH=%q:"$PATH"\n' "$BIN_DIR"
        if [[ $use_home == 1 ]]; then
            printf 'export PULUMI_HOME=%q\n' "$PULUMI_HOME_DIR"
        else
            echo "# Using the pulumi already on PATH with its own PULUMI_HOME."
        fi
        echo "export PULUMI_SKIP_UPDATE_CHECK=true"
        echo "export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true"
    } >"$tmp"
    mv -f "$tmp" "$ENV_FILE"
}

# ------------------------------------------------------------------ main

main() {
    mkdir -p "$CACHE"
    require_go
    check_all_pins
    go_env

    local sys build_pulumi=1
    if [[ ${SOPHIA_BUILD_PULUMI:-0} != 1 ]] && sys=$(system_pulumi); then
        if system_pulumi_usable "$sys"; then
            log "using the pulumi on PATH ($sys): it has pulumi-language-python and plugins kubernetes v$PULUMI_KUBERNETES_VERSION, random v$PULUMI_RANDOM_VERSION"
            build_pulumi=0
        else
            log "ignoring the pulumi on PATH ($sys): it lacks pulumi-language-python or plugins kubernetes v$PULUMI_KUBERNETES_VERSION / random v$PULUMI_RANDOM_VERSION; building our own"
        fi
    fi

    if [[ $build_pulumi == 1 ]]; then
        mkdir -p "$PULUMI_HOME_DIR"
        build_pulumi_cli
        build_language_python
        build_random_provider
        build_kubernetes_provider
    fi
    build_actionlint
    write_env "$build_pulumi"

    if [[ $build_pulumi == 1 ]]; then
        local v
        v=$(PULUMI_HOME=$PULUMI_HOME_DIR PULUMI_SKIP_UPDATE_CHECK=true "$BIN_DIR/pulumi" version) ||
            die "$BIN_DIR/pulumi does not run"
        [[ $v == "v$PULUMI_CLI_VERSION" ]] || die "$BIN_DIR/pulumi reports $v, expected v$PULUMI_CLI_VERSION"
        log "ready: pulumi $v, pulumi-language-python, plugins kubernetes v$PULUMI_KUBERNETES_VERSION and random v$PULUMI_RANDOM_VERSION in $PULUMI_HOME_DIR"
    fi
    "$BIN_DIR/actionlint" -version >/dev/null 2>&1 || die "$BIN_DIR/actionlint does not run"
    log "environment: . $ENV_FILE"
}

main "$@"
