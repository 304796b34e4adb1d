#!/usr/bin/env bash
# Renode for `asc-edge bench --renode` (called by scripts/setup.sh; safe to run again).
#
# Where Renode comes from, first match wins:
#   1. `renode` already on PATH (e.g. upstream's renode_1.14.0_amd64.deb): nothing is unpacked;
#   2. $ASC_EDGE_RENODE: a Renode tarball (.tar.gz with one top folder holding bin/renode) or folder;
#   3. ../shared/tools/renode/renode-1.14-mono.tar.gz beside the checkout (this project's machines).
# 2 and 3 are unpacked into .tools/renode/ (ignored by git), where asc_edge.device.renode finds it.
# Then the mono runtime packages (Debian) and Renode's Robot Framework requirements (into .venv, the
# Python that renode-test is given) are installed. Without any source Renode is skipped, and
# `asc-edge bench --renode` says how to install it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
DEST="$ROOT/.tools/renode"
SHARED_TARBALL="$ROOT/../shared/tools/renode/renode-1.14-mono.tar.gz"
# Debian 12 runtime of the mono build (mono-runtime alone is not enough: see ../shared/tools/renode/README.md)
MONO_PACKAGES=(mono-runtime libmono-microsoft-csharp4.0-cil libmono-posix4.0-cil libmono-system-xml-linq4.0-cil
               libmono-system-drawing4.0-cil)

src="${ASC_EDGE_RENODE:-}"
if command -v renode >/dev/null 2>&1 && [ -z "$src" ]; then
  echo "[setup] Renode: $(command -v renode) (on PATH)"
else
  if [ -z "$src" ] && [ -f "$SHARED_TARBALL" ]; then
    src="$SHARED_TARBALL"
  fi
  if [ -z "$src" ]; then
    echo "[setup] Renode: not installed (optional; set ASC_EDGE_RENODE to a Renode tarball or folder, or install" \
         "upstream's package; \`asc-edge bench\` uses QEMU)"
    exit 0
  fi
  if [ ! -e "$src" ]; then
    echo "[setup] error: ASC_EDGE_RENODE=$src does not exist. Fix: name a Renode .tar.gz or an unpacked Renode folder" >&2
    exit 2
  fi
  marker="$DEST/.asc-edge-source"
  want="$(readlink -f "$src") $(stat -c '%s %Y' "$src")"
  if [ ! -x "$DEST/bin/renode" ] || [ "$(cat "$marker" 2>/dev/null)" != "$want" ]; then
    mkdir -p "$ROOT/.tools"
    tmp=$(mktemp -d "$ROOT/.tools/.renode.tmp.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT INT TERM
    if [ -d "$src" ]; then
      cp -a "$src/." "$tmp/"
    else
      tar -C "$tmp" -xzf "$src"
    fi
    top="$tmp"
    if [ ! -x "$top/bin/renode" ]; then  # a tarball's single top folder
      top=$(find "$tmp" -mindepth 2 -maxdepth 3 -path '*/bin/renode' -printf '%h\n' | head -n1 | xargs -r dirname)
    fi
    if [ -z "$top" ] || [ ! -x "$top/bin/renode" ]; then
      echo "[setup] error: $src holds no bin/renode. Fix: point ASC_EDGE_RENODE at a Renode portable package" >&2
      exit 2
    fi
    echo "$want" > "$top/.asc-edge-source"
    rm -rf "$DEST.old"
    [ -e "$DEST" ] && mv "$DEST" "$DEST.old"
    mv "$top" "$DEST"
    rm -rf "$DEST.old" "$tmp"
    trap - EXIT INT TERM
  fi
  missing=()
  for p in "${MONO_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "[setup] apt-get install ${missing[*]} (Renode's mono runtime)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  echo "[setup] Renode: $DEST/bin/renode ($("$DEST/bin/renode" --version 2>/dev/null | head -n1))"
fi
# renode-test runs tests/run_tests.py with $RENODE_PYTHON; asc-edge passes this venv's Python.
if ! "$VENV/bin/python" -c 'import robot, psutil, yaml, requests' >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install -q -e ".[renode]"
fi
