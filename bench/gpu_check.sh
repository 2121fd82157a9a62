#!/usr/bin/env bash
# GPU check (issue 23 item 4): a few rollout steps of cli_configs/octothinker.yaml and
# cli_configs/qwen3_4b_fsdp.yaml on real-shape random models (bench/shapes/), one JSON file.
# Needs one CUDA GPU and no hub access; at most 8 minutes on one H100. On a machine without a
# GPU it stops at once with one line. See bench/GPU.md.
#   bash bench/gpu_check.sh [--out bench/gpu_check.json] [--runs octothinker qwen3_4b_fsdp]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python bench/gpu_check.py "$@"
