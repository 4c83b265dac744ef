#!/usr/bin/env bash
# npm run test:arm64: the ARM smoke suite (test/arm64/smoke.mjs) on this machine's Node, then on
# Debian's arm64 Node 18 emulated by qemu-user-static (set up and cached by scripts/arm64-setup.sh).
# The host run comes first so that a failure there (a real bug, or a stale build) is told apart
# from one that only shows on ARM or under emulation. Emulated: nothing here measures ARM speed.
#
# Usage: bash scripts/test-arm64.sh     (extra arguments go to arm64-setup.sh, e.g. --force)
# Exit code: 0 when both runs pass, else the first non-zero one (setup failure: its own code).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[test-arm64] $*"; }
START=$SECONDS

# The package must be built: dist/ (TypeScript) and build/ (wasm).
need=(dist/index.js dist/wasm.js dist/pack.js dist/plan.js build/mobilenet.wasm build/mobilenet-relaxed.wasm)
missing=()
for f in "${need[@]}"; do [ -f "$f" ] || missing+=("$f"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "missing ${missing[*]}: npm run build"
  npm run build --silent
else
  newer="$(find src assembly -newer dist/index.js -type f 2>/dev/null | head -n 3 | paste -sd' ')"
  [ -z "$newer" ] || log "note: sources changed after the last build (${newer} ...): run \`npm run build\` to test them"
fi

bash scripts/arm64-setup.sh "$@"
CACHE="$(bash scripts/arm64-setup.sh --print-cache)"
# shellcheck source=/dev/null
. "$CACHE/env"

host_variant=x86
case "$(node -p process.arch)" in arm64|arm) host_variant=arm ;; esac

log "1/2 host: node test/arm64/smoke.mjs --expect $host_variant   ($(node --version) $(node -p process.arch))"
t=$SECONDS
set +e
node test/arm64/smoke.mjs --expect "$host_variant" </dev/null
host_rc=$?
set -e
host_time=$((SECONDS - t))

log "2/2 arm64 (emulated): $QEMU -L $ARM64_ROOT $ARM64_NODE test/arm64/smoke.mjs --expect arm"
t=$SECONDS
set +e
"$QEMU" -L "$ARM64_ROOT" "$ARM64_NODE" test/arm64/smoke.mjs --expect arm </dev/null
arm_rc=$?
set -e
arm_time=$((SECONDS - t))

verdict() { [ "$1" -eq 0 ] && echo "passed" || echo "FAILED (exit $1)"; }
log "host $(verdict $host_rc) in ${host_time} s; arm64 under qemu $(verdict $arm_rc) in ${arm_time} s; total $((SECONDS - START)) s"
if [ "$host_rc" -ne 0 ] && [ "$arm_rc" -ne 0 ]; then
  log "both failed: a bug or a stale build (npm run build), not an ARM problem"
elif [ "$arm_rc" -ne 0 ]; then
  log "only the arm64 run failed: ARM-specific behaviour, Node 18, or the emulation (see docs/ARM.md)"
elif [ "$host_rc" -ne 0 ]; then
  log "only the host run failed: look at the host's failures above"
fi
[ "$host_rc" -ne 0 ] && exit "$host_rc"
exit "$arm_rc"
