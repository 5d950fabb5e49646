"""Shared fixtures: the corpus (../shared/corpus, optional) and generated images."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("MMCORE_CORPUS", ROOT.parent / "shared" / "corpus"))


def corpus_dir(sub: str = "") -> Path:
    """The corpus folder, or skip the test with a reason when it is absent."""
    d = CORPUS / sub
    if not d.is_dir():
        pytest.skip(f"corpus not found at {d} (set MMCORE_CORPUS to its path)")
    return d


def corpus_index() -> list[dict[str, str]]:
    """Rows of the corpus index.csv (one per image file)."""
    path = corpus_dir() / "index.csv"
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def corpus_files(sub: str) -> list[Path]:
    return sorted(p for p in corpus_dir(sub).iterdir() if p.is_file() and p.name != "README.md")


@contextlib.contextmanager
def outside_source_tree(tmp: Path) -> Iterator[None]:
    """Runs the block with ``tmp`` as the working directory. Spark's and Ray's Python workers put
    the driver's working directory on their sys.path: from the repository root (where CI runs
    pytest) they would import the source tree's mmcore, which has no built extension, instead of
    the installed one."""
    here = os.getcwd()
    os.chdir(tmp)
    try:
        yield
    finally:
        os.chdir(here)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def run_cpp_test(tmp_path: Path, name: str, *args: str) -> str:
    """Builds tests/cpp/<name>.cpp against the pip build tree's libmmcore_cpu.a and runs it from
    the repository root; returns its stdout. Skips when there is no build tree or compiler."""
    libs = sorted(ROOT.glob("build/*/cpp/libmmcore_cpu.a"))
    if not libs or shutil.which("g++") is None or shutil.which("pkg-config") is None:
        pytest.skip("needs g++, pkg-config and a build tree (pip install . creates build/<tag>/cpp)")
    pkgs = ["libjpeg", "libpng", "libwebp", "libwebpdemux", "zlib"]
    if subprocess.run(["pkg-config", "--exists", "libavif"]).returncode == 0:
        pkgs.append("libavif")  # linked when the build found it (MMCORE_AVIF=AUTO); harmless when not
    flags = subprocess.run(
        ["pkg-config", "--libs", *pkgs], capture_output=True, text=True, check=True
    ).stdout.split()
    exe = tmp_path / name
    src = ROOT / "tests" / "cpp" / f"{name}.cpp"
    includes = [f"-I{ROOT / 'cpp' / 'include'}", f"-I{ROOT / 'cpp' / 'src'}"]
    # Contraction off, as the library's scalar sources build (cmake/mmcore_isa.cmake): on aarch64
    # the compiler would otherwise fuse the test's own copies of the float kernels.
    opts = ["-O2", "-std=c++17", "-ffp-contract=off"]
    cmd = ["g++", *opts, *includes, str(src), str(libs[-1]), *flags, "-lpthread"]
    subprocess.run([*cmd, "-o", str(exe)], check=True)
    run = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, f"{name}: rc {run.returncode}: {run.stdout[-3000:]} {run.stderr[-2000:]}"
    return run.stdout


def assert_byte_flips_give_statuses(data: bytes, start: int, rounds: int = 300) -> None:
    """Random 3-byte damage after `start`: every decode ends in an image or a status with a message."""
    import mmcore  # the package under test; imported late so that conftest loads without it

    gen = np.random.default_rng(0)
    for _ in range(rounds):
        bad = bytearray(data)
        for i in gen.integers(start, len(data), size=3):
            bad[i] = int(gen.integers(0, 256))
        r = mmcore.decode_batch([bytes(bad)])
        assert mmcore.Status(int(r.status[0])).ok or r.errors[0]


def run_with_backend(script: str, backend: str, cwd: Path) -> str:
    """Runs a Python script in a fresh interpreter with MMCORE_FORCE_BACKEND=backend ("" = the
    default choice); returns its stdout. The variant is fixed per process, hence the subprocess."""
    env = dict(os.environ, MMCORE_FORCE_BACKEND=backend)
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return res.stdout


def run_bench_script(name: str, *args: str) -> str:
    """Runs bench/<name> with ``args`` in a fresh interpreter importing the mmcore under test;
    asserts it succeeded and returns its stdout (smoke tests: no timing is asserted)."""
    import mmcore

    env = dict(os.environ)
    here = str(Path(mmcore.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, str(ROOT / "bench" / name), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p.stdout


def check_lock_order(index: Any, search_beside: Any, add: Any, search_after: Any) -> list[Any]:
    """The readers-writer lock of an index (QuantizedIndex, HammingIndex), with a search under way
    (the lock held shared here): ``search_beside()`` runs beside it; ``add()`` in a thread waits
    for it (len(index) unchanged); ``search_after()`` in a thread queues behind the waiting add.
    Returns what that last search gave, once everything finished."""
    import threading
    import time

    def wait_for(what: Any) -> None:
        deadline = time.monotonic() + 30
        while not what():
            assert time.monotonic() < deadline
            time.sleep(0.001)

    n = len(index)
    index._lock.acquire_shared()  # a search under way
    try:
        search_beside()  # a second one runs beside it
        adder = threading.Thread(target=add)
        adder.start()
        wait_for(lambda: index._lock._waiting == 1)
        time.sleep(0.05)
        assert adder.is_alive() and len(index) == n  # add waits for the search
        got: list[Any] = []
        searcher = threading.Thread(target=lambda: got.append(search_after()))
        searcher.start()
        wait_for(lambda: index._lock._queued == 1)
        time.sleep(0.05)
        assert searcher.is_alive() and not got  # a new search queues behind the waiting add
    finally:
        index._lock.release_shared()
    adder.join()
    searcher.join()
    return got
