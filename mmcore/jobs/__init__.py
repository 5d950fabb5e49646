"""Corpus jobs: the Processor (Arrow batch in, Arrow batch out), sources, resumable Parquet
output, and the ``mmcore run`` / ``dedup`` / ``index`` / ``report`` commands. Needs pyarrow
(``pip install mmcore[jobs]``)."""

from __future__ import annotations

from .config import Config
from .schema import SCHEMA, completed_shards, read_output

__all__ = ["SCHEMA", "Config", "completed_shards", "read_output"]
