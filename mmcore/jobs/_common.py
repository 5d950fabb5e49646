"""Helpers shared by the jobs commands: atomic Parquet writes and command-line plumbing."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` to ``path`` as Parquet, atomically: into a temporary file in the same
    folder, fsynced, renamed over ``path``, then the folder fsynced (so the rename survives a
    crash). On any error the temporary file is removed and an existing ``path`` is left as it was.
    The table's schema metadata becomes the file's key-value metadata. Returns ``path``.

    >>> import pyarrow as pa, tempfile, os
    >>> p = write_parquet_atomic(pa.table({"x": [1, 2]}), os.path.join(tempfile.mkdtemp(), "t.parquet"))
    >>> import pyarrow.parquet as pq; pq.read_table(p)["x"].to_pylist()
    [1, 2]
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            pq.write_table(table, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    fsync_dir(target.parent)
    return target


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    unwritable files; ValueError: bad input, invalid files) into one line
    ``mmcore <command>: error: ...`` on stderr and exit code 1, without a traceback."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (OSError, ValueError) as e:
            print(f"mmcore {command}: error: {e}", file=sys.stderr)
            return 1

    return handler
