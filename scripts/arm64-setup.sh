#!/usr/bin/env bash
# Sets up an emulated arm64 Node.js (Debian's nodejs:arm64, run by qemu-user-static) for
# `npm run test:arm64`, from Debian packages only:
#   - dpkg --add-architecture arm64 and apt-get install qemu-user-static (system-wide: needs root or sudo),
#   - apt-get download nodejs:arm64 and the packages it needs to run (its arm64 libraries and the
#     node-* JavaScript packages Debian's node loads its builtins from), dpkg -x into a private root.
# Nothing arm64 is installed into the system: the root is a plain directory, used as
#   qemu-aarch64-static -L <root> <root>/usr/bin/node ...
#
# Cached: the root lives in ${MOBILENET_WASM_ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mobilenet-wasm/arm64}
# (outside the repository: nothing to ignore in git, survives `git clean`, shared by clones).
# When it is complete, this script only checks that the emulated node starts (about a second).
#
# Usage: bash scripts/arm64-setup.sh [--force]     (--force: download and unpack again)
#        bash scripts/arm64-setup.sh --print-cache (prints the cache directory, does nothing else)
# Writes <cache>/env (ARM64_ROOT, ARM64_NODE, QEMU) for scripts/test-arm64.sh.
# Works non-interactively (CI=true, no stdin); Debian or a Debian derivative with arm64 in its archive.
set -euo pipefail

log() { echo "[arm64-setup] $*"; }
die() { echo "[arm64-setup] error: $*" >&2; exit 1; }

FORCE=0
PRINT=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    --print-cache) PRINT=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument $a (usage: bash scripts/arm64-setup.sh [--force | --print-cache])" ;;
  esac
done

CACHE="${MOBILENET_WASM_ARM64_CACHE:-${XDG_CACHE_HOME:-${HOME:?neither HOME nor XDG_CACHE_HOME nor MOBILENET_WASM_ARM64_CACHE is set}/.cache}/mobilenet-wasm/arm64}"
if [ "$PRINT" -eq 1 ]; then echo "$CACHE"; exit 0; fi
ROOT="$CACHE/root"
DEBS="$CACHE/debs"
STAMP="$CACHE/complete"
export DEBIAN_FRONTEND=noninteractive

# Root for the system-wide steps: run directly as root, else through sudo (non-interactive).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@" || die "'$*' needs root: run it yourself, or this script as root"
  else
    die "'$*' needs root: run it yourself, or this script as root"
  fi
}

find_qemu() {
  if [ -n "${QEMU:-}" ]; then command -v "$QEMU" || true; return; fi
  command -v qemu-aarch64-static || command -v qemu-aarch64 || true
}

# Prints the emulated node's "arch version", or fails.
probe_node() {
  "$1" -L "$ROOT" "$ROOT/usr/bin/node" -e 'console.log(process.arch, process.version)' </dev/null
}

write_env() {
  cat >"$CACHE/env" <<EOF
# written by scripts/arm64-setup.sh
ARM64_ROOT='$ROOT'
ARM64_NODE='$ROOT/usr/bin/node'
QEMU='$1'
EOF
}

# One setup at a time (two test runs started together share the cache).
mkdir -p "$CACHE"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/lock"
  flock -n 9 || { log "waiting for another arm64-setup.sh using $CACHE"; flock 9; }
fi

# ---- fast path: everything already there --------------------------------------------------------
QEMU_BIN="$(find_qemu)"
if [ "$FORCE" -eq 0 ] && [ -f "$STAMP" ] && [ -x "$ROOT/usr/bin/node" ] && [ -n "$QEMU_BIN" ]; then
  if v="$(probe_node "$QEMU_BIN")" && [ "${v%% *}" = arm64 ]; then
    write_env "$QEMU_BIN"
    log "cached: $ROOT ($(head -n1 "$STAMP")); $QEMU_BIN runs it: node $v"
    exit 0
  fi
  log "cache at $ROOT does not run (got: ${v:-nothing}); setting it up again"
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  die "needs Debian's apt-get and dpkg (this machine has none): see docs/ARM.md"
fi
log "cache: $CACHE"

# ---- system: arm64 package lists, qemu ----------------------------------------------------------
UPDATED=0
apt_update() {
  if [ "$UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -q </dev/null | sed 's/^/    /'
    UPDATED=1
  fi
}

# (Command output is captured before grep -q: with pipefail, grep -q closing the pipe early fails the pipeline.)
FOREIGN="$(dpkg --print-foreign-architectures)"
if ! grep -qx arm64 <<<"$FOREIGN" && [ "$(dpkg --print-architecture)" != arm64 ]; then
  log "dpkg --add-architecture arm64 (lets apt see arm64 packages; installs nothing)"
  as_root dpkg --add-architecture arm64
  apt_update
fi

if [ -z "$QEMU_BIN" ]; then
  POLICY="$(apt-cache policy qemu-user-static 2>/dev/null)"
  grep -q 'Candidate: [0-9]' <<<"$POLICY" || apt_update
  log "apt-get install qemu-user-static"
  as_root apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 qemu-user-static </dev/null 2>&1 | sed 's/^/    /'
  QEMU_BIN="$(find_qemu)"
  [ -n "$QEMU_BIN" ] || die "qemu-user-static is installed but no qemu-aarch64-static on PATH"
fi
log "qemu: $QEMU_BIN ($("$QEMU_BIN" --version | head -n1))"

if ! apt-cache show nodejs:arm64 >/dev/null 2>&1; then apt_update; fi
apt-cache show nodejs:arm64 >/dev/null 2>&1 \
  || die "apt knows no nodejs:arm64 even after apt-get update: do the apt sources serve arm64? (see docs/ARM.md)"

# ---- the packages: nodejs:arm64 and what it needs to run -----------------------------------------
# Breadth-first over Depends/Pre-Depends, following only arm64 packages (the libraries) and the
# arch-independent node-* packages (JavaScript Debian's node loads: acorn, cjs-module-lexer,
# undici, ...). Tools a package's maintainer scripts use (dpkg, debconf, perl, ...) are never needed.
resolve() {
  local -A seen=()
  local queue=(nodejs:arm64) next line name
  while [ "${#queue[@]}" -gt 0 ]; do
    next=()
    for name in "${queue[@]}"; do seen[$name]=1; done
    while IFS= read -r line; do
      case "$line" in
        "  Depends: "*|"  PreDepends: "*|" |Depends: "*|"  |Depends: "*|"    "*) ;;
        *) continue ;;
      esac
      name="${line##* }"
      case "$name" in
        \<*) continue ;;                                  # virtual: its providers follow, indented
        dpkg:arm64|tar:arm64|install-info:arm64|debconf*|perl*) continue ;;
        *:arm64) ;;
        node-*) ;;
        *) continue ;;
      esac
      [ -n "${seen[$name]:-}" ] && continue
      seen[$name]=1
      next+=("$name")
    done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
               --no-replaces --no-enhances "${queue[@]}" 2>/dev/null)
    queue=("${next[@]+"${next[@]}"}")
  done
  printf '%s\n' "${!seen[@]}" | sort
}

mapfile -t PKGS < <(resolve)
[ "${#PKGS[@]}" -gt 2 ] || die "could not resolve the packages of nodejs:arm64 (got: ${PKGS[*]:-none})"
log "packages (${#PKGS[@]}): ${PKGS[*]}"

rm -rf "$DEBS.tmp"
mkdir -p "$DEBS.tmp"
log "apt-get download -> $DEBS"
# As root apt drops to the _apt user to download, which cannot write here: keep root instead.
SANDBOX=()
[ "$(id -u)" -eq 0 ] && SANDBOX=(-o APT::Sandbox::User=root)
(cd "$DEBS.tmp" && apt-get download -q "${SANDBOX[@]}" "${PKGS[@]}" </dev/null) | sed 's/^/    /'
rm -rf "$DEBS" && mv "$DEBS.tmp" "$DEBS"

log "dpkg -x each package -> $ROOT"
rm -rf "$ROOT.tmp"
mkdir -p "$ROOT.tmp"
for f in "$DEBS"/*.deb; do dpkg -x "$f" "$ROOT.tmp"; done
rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT"
[ -x "$ROOT/usr/bin/node" ] || die "no usr/bin/node in the unpacked packages"

v="$(probe_node "$QEMU_BIN")" || die "the emulated node does not start: $QEMU_BIN -L $ROOT $ROOT/usr/bin/node"
[ "${v%% *}" = arm64 ] || die "the emulated node reports '$v', not arm64"
{
  echo "nodejs:arm64 $(dpkg-deb -f "$DEBS"/nodejs_*_arm64.deb Version), $(du -sh "$ROOT" | cut -f1) unpacked"
  for f in "$DEBS"/*.deb; do dpkg-deb -f "$f" Package Version Architecture | paste -sd' '; done
} >"$STAMP"
write_env "$QEMU_BIN"
log "ready: $(head -n1 "$STAMP"); $QEMU_BIN -L $ROOT $ROOT/usr/bin/node runs node $v"
