#!/usr/bin/env bash
# Install r1ci-verl for CPU work (tests, sandbox, smoke runs) into a virtual environment.
#
# Steps: bubblewrap from Debian (namespace sandbox), a venv, the CPU torch wheel first, then the
# project pinned against it (any other torch would pull a multi-GB CUDA build).
# Idempotent: re-running only installs what is missing.
#
# Knobs: VENV (default .venv), PYTHON (default python3), EXTRAS (default test).
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-test}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[install] %s\n' "$*"; }

if ! command -v bwrap >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then
    log "installing bubblewrap (namespace isolation for the code sandbox)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    log "installing bubblewrap with sudo"
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
  else
    log "WARNING: bubblewrap missing and no root: the sandbox will use unshare or rlimit-only isolation"
  fi
fi

# The sandbox runs code as an unprivileged uid, which must be able to start this Python.
# A root-owned interpreter under a 0700 home (e.g. pyenv in /root) is not: grant traverse-only
# (o+x, no listing) on its parent directories, loudly.
if [[ $(id -u) -eq 0 ]]; then
  dir=$(dirname "$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.executable))')")
  while [[ $dir != / ]]; do
    if [[ $(stat -c %A "$dir") != *x ]]; then
      log "chmod o+x $dir (lets the sandbox's unprivileged uid reach the Python interpreter)"
      chmod o+x "$dir"
    fi
    dir=$(dirname "$dir")
  done
fi

if [[ ! -x $VENV/bin/python ]]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# pip's older resolvers backtrack for many minutes over verl's dependency tree; a current one does not.
"${PIP[@]}" --upgrade "pip>=25"
log "installing torch 2.13.0 (CPU build)"
"${PIP[@]}" torch==2.13.0
log "installing r1ci-verl[$EXTRAS]"
"${PIP[@]}" -c "$ROOT/constraints-cpu.txt" -e "$ROOT[$EXTRAS]"
# verl-core pulls torchcodec, whose binary does not load beside this torch; verl does not use it for text.
"$VENV/bin/python" -m pip uninstall -y -q torchcodec 2>/dev/null || true
log "done: $("$VENV/bin/python" -c 'import verl, torch; print(f"verl {verl.__version__}, torch {torch.__version__}")')"
