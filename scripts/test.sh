#!/usr/bin/env bash
# README command 2 (and what CI runs): set up with the test extras, lint, cross-build for aarch64, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$PWD/.venv/bin:$PATH"
# setup.sh test builds the DALI plugin: its tests fail rather than skip when it is missing.
export MMCORE_REQUIRE_DALI_PLUGIN=1
make lint PY=.venv/bin/python
# aarch64 (Graviton, Grace) builds too: a cross compile of the scalar kernels against a Debian arm64 root.
bash scripts/check_aarch64.sh build
# The pytest script (not python -m pytest) keeps the source tree off sys.path, so tests import the install.
.venv/bin/pytest -q -p no:cacheprovider "$@"
