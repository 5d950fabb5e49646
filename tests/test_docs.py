"""Every public docstring example runs (the README promises runnable examples)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import mmcore
import mmcore._pillow
import mmcore.gpu
import mmcore.hashing
import mmcore.image
import mmcore.quant
import mmcore.search
import mmcore.status


@pytest.mark.parametrize(
    "module",
    [
        mmcore,
        mmcore.search,
        mmcore.quant,
        mmcore.hashing,
        mmcore.image,
        mmcore.status,
        mmcore.gpu,
        mmcore._pillow,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    "name", ["mmcore.jobs.config", "mmcore.jobs.index_cmd", "mmcore.jobs.schema", "mmcore.ray"]
)
def test_docstring_examples_of_the_jobs(name: str) -> None:
    """The job modules' examples too (they need pyarrow, and mmcore.ray needs Ray)."""
    pytest.importorskip("pyarrow")
    if name == "mmcore.ray":
        pytest.importorskip("ray", reason="mmcore.ray needs Ray (the ray extra)")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
