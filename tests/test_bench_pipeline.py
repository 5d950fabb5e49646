"""bench/bench_pipeline.py runs end to end on a few corpus files and writes its table (no timing asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, corpus_dir

import mmcore


@pytest.mark.dali
def test_bench_pipeline_smoke(tmp_path: Path) -> None:
    for d in ("jpeg", "png", "webp"):
        corpus_dir(d)
    dali = pytest.importorskip("nvidia.dali")
    import mmcore.pipeline as mpl

    want = mpl.built_against()
    if want is None:
        pytest.skip(f"this mmcore was built without its DALI plugin ({mpl.plugin_path()} is missing)")
    if want != dali.__version__:
        pytest.skip(
            f"mmcore's DALI plugin was built against DALI {want}, DALI {dali.__version__} is installed"
        )
    env = dict(os.environ)  # the bench and its probe process import the mmcore under test
    here = str(Path(mmcore.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env["TMPDIR"] = str(tmp)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "bench_pipeline.py"),
        "--quick",
        "--limit",
        "30",
        "--out",
        str(out),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    md = (out / "bench_pipeline.md").read_text()
    assert "files: 30 picked from" in md and "CPU: " in md and "ISA: " in md and "backend" in md
    assert f"DALI {dali.__version__}" in md and f"built against DALI {want}" in md
    assert "phash / pdq / pdq_quality / status == hash_batch on" in md and "WARNINGS" not in p.stdout
    kept_m = re.search(r"files: 30 picked from [^;]*; (\d+) kept", md)
    assert kept_m, md[:2000]
    kept = int(kept_m.group(1))
    assert 0 < kept <= 30
    cols = (
        "contestant",
        "runs",
        "threads",
        "batch",
        "build s",
        "best pass s",
        "teardown s",
        "images/s",
        "MB/s",
    )
    assert "| " + " | ".join(cols) + " | vs DALI-only | rows OK / failed |" in md
    rows = {ln.split(" | ")[0].lstrip("| "): ln.split(" | ") for ln in md.splitlines() if ln.startswith("| ")}
    for name in (
        "mmcore pipeline",
        "mmcore pipeline thumbnail=256",
        "mmcore hash_batch (no DALI)",
        "DALI-only",
        "DALI + mmcore_decode",
    ):
        cells = rows[name]
        assert float(cells[7].replace(",", "")) > 0, cells  # images/s measured
        assert cells[9].endswith("x"), cells  # vs DALI-only
        ok, failed = (int(x) for x in cells[10].rstrip(" |").split(" / "))
        assert ok + failed == kept and ok > 0, cells  # every file has a row
    assert rows["DALI-only"][9] == "1.00x"
    assert not list(tmp.iterdir()), list(tmp.iterdir())  # the probe's file list is removed
