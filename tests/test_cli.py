"""The ``mmcore`` command: the README's demo job and ``mmcore info``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmcore
from mmcore.cli import main


def test_demo_decodes_thumbnails_and_hashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "{'OK': 7, 'CORRUPT': 2}" in out
    assert len(list(tmp_path.glob("*.thumb.npy"))) == 7
    first = mmcore.demo_images()[0]
    assert mmcore.hash_to_hex(mmcore.phash(first)) in out  # the table shows exact pHash
    assert mmcore.pdq_hex(mmcore.pdq(first)[0])[:16] in out
    assert "Invalid JPEG file structure" in out  # a corrupt file's message


def test_info_prints_build_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == mmcore.__version__ and info["backend"] in ("ref", "avx2", "avx512")
