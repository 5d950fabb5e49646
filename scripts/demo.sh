#!/usr/bin/env bash
# README command 1: set up, then run the main job on the demo images shipped with mmcore.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/mmcore demo "$@"
