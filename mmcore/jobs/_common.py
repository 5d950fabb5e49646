"""Helpers shared by the jobs commands: atomic Parquet writes and command-line plumbing."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .._io import atomic_output


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` to ``path`` as Parquet, atomically (:func:`mmcore._io.atomic_output`: a
    temporary file fsynced and renamed over ``path``, then the folder fsynced; on any error an
    existing ``path`` is left as it was). The table's schema metadata becomes the file's key-value
    metadata. Returns ``path``.

    >>> import pyarrow as pa, tempfile, os
    >>> p = write_parquet_atomic(pa.table({"x": [1, 2]}), os.path.join(tempfile.mkdtemp(), "t.parquet"))
    >>> import pyarrow.parquet as pq; pq.read_table(p)["x"].to_pylist()
    [1, 2]
    """
    with atomic_output(path) as f:
        pq.write_table(table, f)
    return Path(path)


class JobError(RuntimeError):
    """A job could not complete (unreadable source, unwritable output, full disk...)."""


def int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse ``type``: an int >= lo (threads, k, rerank, ...)."""

    def parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            n = lo - 1
        if n < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {v!r}")
        return n

    return parse


def user_errors(
    command: str, func: Callable[[argparse.Namespace], int]
) -> Callable[[argparse.Namespace], int]:
    """A handler that runs ``func`` and turns the errors a user can cause (OSError: missing or
    unwritable files; ValueError: bad input, invalid files; JobError) into one line
    ``mmcore <command>: error: ...`` on stderr and exit code 1, without a traceback."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (OSError, ValueError, JobError) as e:
            print(f"mmcore {command}: error: {e}", file=sys.stderr)
            return 1

    return handler
