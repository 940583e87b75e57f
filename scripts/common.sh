# shellcheck shell=bash disable=SC2034  # the scripts that source this file use the variables
# Paths and pinned versions shared by the set-up scripts; sourced, never executed.
#   REPO_ROOT  this checkout
#   CACHE      $SOPHIA_CACHE or ~/.cache/sophia-redis: every build output, outside the repo
#   BIN_DIR BUILD_DIR STAMP_DIR  binaries, build trees and caches, build stamps under CACHE
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# versions.env is shared with other tooling; only plain KEY=VALUE lines.
set -a
# shellcheck source-path=SCRIPTDIR source=versions.env
. "$REPO_ROOT/scripts/versions.env"
set +a

CACHE=${SOPHIA_CACHE:-$HOME/.cache/sophia-redis}
BIN_DIR=$CACHE/bin
BUILD_DIR=$CACHE/build
STAMP_DIR=$CACHE/stamps
