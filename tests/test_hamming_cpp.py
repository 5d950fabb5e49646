"""The Hamming kernels' C++ test (tests/cpp/test_hamming.cpp): every compiled variant this CPU runs
against the scalar ref and a naive oracle (kNN, radius, join, brute force and MIH, union-find)."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cpp_test


def test_cpp_hamming_variants_match_ref(tmp_path: Path) -> None:
    out = run_cpp_test(tmp_path, "test_hamming")
    assert "ref: checked, ok" in out
    assert "PASS" in out
