"""bench/bench_job.py runs end to end on a few corpus files and writes its table (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, corpus_dir

import mmcore


def test_bench_job_smoke(tmp_path: Path) -> None:
    for d in ("jpeg", "png", "webp"):
        corpus_dir(d)
    for mod in ("imagehash", "pdqhash", "pyarrow", "PIL"):
        pytest.importorskip(mod)
    env = dict(os.environ)  # the bench and its subprocesses import the mmcore under test
    here = str(Path(mmcore.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env["TMPDIR"] = str(tmp)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "bench_job.py"),
        "--quick",
        "--limit",
        "30",
        "--out",
        str(out),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    md = (out / "bench_job.md").read_text()
    assert "files: 30 from" in md and "ISA: " in md and "backend" in md and "pdqhash 0.2" in md
    assert "check: job phash == imagehash on" in md and "WARNINGS" not in p.stdout
    assert "check: the WebDataset run's rows == the directory run's on" in md
    cols = ("contestant", "runs", "workers", "best s", "images/s", "MB/s", "vs baseline", "rows OK / failed")
    assert "| " + " | ".join(cols) + " | output MB |" in md
    rows = {ln.split(" | ")[0].lstrip("| "): ln.split(" | ") for ln in md.splitlines() if ln.startswith("| ")}
    for name in (
        "mmcore run (in-process)",
        "mmcore run (CLI)",
        "baseline (in-process)",
        "baseline (subprocess)",
        "mmcore run, WebDataset",
    ):
        cells = rows[name]
        assert float(cells[4].replace(",", "")) > 0, cells  # images/s measured
        ok, failed = (int(x) for x in cells[7].split(" / "))
        assert ok + failed == 30 and ok > 0, cells  # every file has a row
    assert rows["mmcore run (in-process)"][6].endswith("x") and rows["mmcore run (CLI)"][6].endswith("x")
    assert "mmcore run thumbnail=256" in rows
    assert not list(tmp.iterdir()), list(tmp.iterdir())  # link and tar folders, outputs: all removed
