"""Every public docstring example runs (the README promises runnable examples)."""

from __future__ import annotations

import doctest

import pytest

import mmcore
import mmcore.gpu
import mmcore.hashing
import mmcore.image
import mmcore.quant
import mmcore.search
import mmcore.status


@pytest.mark.parametrize(
    "module",
    [mmcore, mmcore.search, mmcore.quant, mmcore.hashing, mmcore.image, mmcore.status, mmcore.gpu],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
