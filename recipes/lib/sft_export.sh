#!/usr/bin/env bash
# Sourced by the GRPO stage recipes: find the HF export that recipes/run_sft.sh wrote.
#
#   latest_sft_export DIR   prints DIR/global_step_<N>/huggingface with the highest N, or nothing

latest_sft_export() {
    { ls -d "$1"/global_step_*/huggingface 2>/dev/null || true; } | sort -V | tail -n 1
}
