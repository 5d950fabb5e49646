# Developer entry points. The set-up itself is scripts/setup.sh (README).
PY ?= python3
PY_DIRS := $(wildcard mmcore tests bench scripts)
CXX_SOURCES := $(shell git ls-files 'cpp/*.h' 'cpp/*.cpp' 'cuda/*.cu' 'cuda/*.cuh' 'cuda/*.cpp' 'tests/cpp/*.cpp' 'tests/gpu/*.cpp' 'tests/gpu/*.cu' 'tests/gpu/*.h' 'tests/fuzz/*.cpp' 'dali/*.cc' 'dali/*.h' 2>/dev/null)

.PHONY: lint format install test bench
lint:
	$(PY) -m ruff check $(PY_DIRS)
	$(PY) -m ruff format --check $(PY_DIRS)
	$(PY) -m mypy
	$(PY) -m mypy --python-version 3.10  # the oldest Python supported (numpy's stubs differ there)
	$(dir $(PY))vermin --target=3.10- --violations --no-tips --eval-annotations mmcore  # requires-python >= 3.10
	clang-format --dry-run --Werror $(CXX_SOURCES)

# lint/format use the clang-format on PATH: scripts/test.sh puts .venv/bin (the pinned one of the lint extra) first.
format:
	$(PY) -m ruff check --fix $(PY_DIRS)
	$(PY) -m ruff format $(PY_DIRS)
	clang-format -i $(CXX_SOURCES)

install:
	$(PY) -m pip install --no-build-isolation .

test:
	$(PY) -m pytest -q
