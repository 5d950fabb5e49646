"""bench/eval_near_dup.py runs end to end on a few photos and writes its table and plot."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from conftest import ROOT, corpus_dir


def _script() -> ModuleType:
    bench = str(ROOT / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("eval_near_dup")


def test_eval_near_dup_smoke(tmp_path: Path) -> None:
    corpus = corpus_dir("jpeg").parent
    mod = _script()
    argv = [
        "--limit",
        "3",
        "--neg-limit",
        "30",
        "--jobs",
        "1",
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path),
    ]
    assert mod.main(argv) == 0
    md = (tmp_path / "eval_near_dup.md").read_text()
    png = (tmp_path / "eval_near_dup.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 300_000
    head = next(ln for ln in md.splitlines() if ln.startswith("| duplicates | pairs |"))
    for col in ("pHash exact <= 10", "pHash fast <= 10", "dHash exact <= 10", "PDQ reference <= 31"):
        assert col in head
    recall_section = md.split("## Recall at the recommended threshold")[1].split("## ")[0]
    rows = {
        cells[0]: cells[1:]
        for ln in recall_section.splitlines()
        if ln.startswith("| ") and (cells := ln.strip(" |").split(" | "))
    }
    for name in ("crop 5% (centre)", "rotate 2°", "watermark text", "flip horizontal", "false-positive rate"):
        assert any(name in r for r in rows), name
    # 3 sources, one copy each per transform; pHash keeps a q75 re-encode within its threshold
    q75 = rows["re-encode: JPEG q75"]
    assert q75[0] == "3" and all(c.endswith("%") for c in q75[1:]) and q75[1] == "100.0%"
    assert "## Threshold sweep" in md and "| PDQ reference | 31 (recommended) |" in md


def test_eval_near_dup_skips_without_corpus(tmp_path: Path) -> None:
    mod = _script()
    assert mod.main(["--corpus", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 0
    assert not (tmp_path / "out").exists()
