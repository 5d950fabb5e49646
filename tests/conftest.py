"""Shared fixtures: the corpus (../shared/corpus, optional) and generated images."""

from __future__ import annotations

import csv
import os
from pathlib import Path

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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
