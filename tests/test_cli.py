"""The ``mmcore`` command: the README's demo job and ``mmcore info``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmcore
from mmcore.cli import main


def test_demo_runs_dedups_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyarrow")
    assert main(["demo", "--out", str(tmp_path), "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "status: CORRUPT 2, OK 9" in out
    first = mmcore.demo_images()[0]
    assert mmcore.hash_to_hex(mmcore.phash(first)) in out  # the table shows exact pHash
    assert mmcore.pdq_hex(mmcore.pdq(first)[0])[:16] in out
    assert "Invalid JPEG file structure" in out  # a corrupt file's message
    assert "2 near-duplicates" in out
    assert "group: 01_baseline_420.jpg (0), 10_baseline_half_size.jpg" in out
    assert (tmp_path / "job" / "report" / "index.html").is_file()
    assert len(list((tmp_path / "job").glob("part-*.parquet"))) == 1
    assert main(["demo", "--out", str(tmp_path), "--threads", "1"]) == 0  # again into the same folder


def test_info_prints_build_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == mmcore.__version__ and info["backend"] in ("ref", "avx2", "avx512")
