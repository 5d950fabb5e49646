"""``mmcore run``: a source through the Processor into resumable Parquet shards.

Crash safety: a shard's Parquet file is written under a temporary name, fsynced and renamed into
place, then its completion record is written the same way; a shard counts as done only when its
record exists. A run killed at any point leaves at most temporary files and shards without
records, which the next run rewrites: every input record ends up in the output exactly once.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from .. import _pillow as fallback
from .._io import atomic_output, fsync_dir
from ._common import JobError, int_at_least, user_errors
from .config import PROCESSING_OPTIONS, Config
from .processor import SOURCE_ERROR, Processor, ReadBatch, failure_batch, text
from .schema import DONE_DIR, MANIFEST, OK_STATUSES, completed_shards, done_path, read_manifest, shard_path
from .sources import Refused, Shard, inside, plan, repeated_id, require_source, source_base

T = TypeVar("T")


@dataclass
class RunSummary:
    """What a run did: shards written / skipped, records per status, time per stage."""

    out: str
    shards_total: int = 0
    shards_written: int = 0
    shards_skipped: int = 0
    shards_changed: int = 0  # completed shards read again because their inputs changed
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    skipped_files: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def lines(self) -> list[str]:
        rate = self.records / self.wall_seconds if self.wall_seconds > 0 else 0.0
        out = [
            f"output: {self.out}",
            f"shards: {self.shards_total} ({self.shards_written} written, "
            f"{self.shards_skipped} already complete)",
            f"records processed: {self.records:,} in {self.wall_seconds:.1f} s ({rate:,.0f} images/s)",
            "status: " + (", ".join(f"{k} {v:,}" for k, v in sorted(self.counts.items())) or "-"),
            "time per stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in self.stage_seconds.items()),
        ]
        if self.shards_changed:
            out.append(
                f"{self.shards_changed:,} completed shards read again: their inputs changed at the source"
            )
        if self.skipped_files:
            out.append(f"skipped {self.skipped_files:,} files or tar members that are not images (sidecars)")
        return out


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as f:
        f.write(data)


class Progress:
    """One status line on stderr: records, images/s, errors so far, ETA (when the total is known)."""

    def __init__(self, total: int | None, stream: IO[str] | None, every: float = 0.5) -> None:
        self.total, self.stream, self.every = total, stream, every
        self.done = self.errors = 0
        self.t0 = self._last = time.perf_counter()
        self._tty = bool(stream is not None and stream.isatty())

    def add(self, n: int, errors: int) -> None:
        self.done += n
        self.errors += errors
        now = time.perf_counter()
        if self.stream is not None and now - self._last >= (self.every if self._tty else 10 * self.every):
            self._last = now
            self._print(now)

    def _print(self, now: float, end: str = "") -> None:
        assert self.stream is not None
        rate = self.done / max(now - self.t0, 1e-9)
        eta = ""
        if self.total:
            left = max(self.total - self.done, 0)
            eta = f"  ETA {left / rate:,.0f} s" if rate > 0 else ""
            head = f"{self.done:,}/{self.total:,} ({100 * self.done / self.total:.0f}%)"
        else:
            head = f"{self.done:,}"
        line = f"{head}  {rate:,.0f} images/s  errors {self.errors:,}{eta}"
        self.stream.write(("\r" + line + " " * 8 if self._tty else line + "\n") + end)
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self._print(time.perf_counter(), "\n" if self._tty else "")


def _clear(out: Path) -> None:
    """Removes what mmcore wrote in OUT (never anything else; temporaries: _clean_temporaries)."""
    for p in out.glob("part-*.parquet"):
        p.unlink()
    for name in (DONE_DIR, "dedup", "report"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    with contextlib.suppress(FileNotFoundError):
        (out / CODEC_LOG).unlink()
    with contextlib.suppress(FileNotFoundError):
        (out / MANIFEST).unlink()


def _ours(name: str) -> bool:
    """A file mmcore's run leaves in OUT before its manifest exists: the write probe, and the
    temporaries of a first run killed while writing its manifest."""
    return name.startswith(".mmcore-write-test-") or name.startswith(f".{MANIFEST}.tmp-")


def _job_folder(out: Path) -> dict[str, Any] | None:
    """OUT's manifest, or None for an empty folder. Anything else is refused: a folder that holds
    other files is never written into (nor, with --mode overwrite, cleared)."""
    if not (out / MANIFEST).exists():
        others = sorted(p.name for p in out.iterdir() if not _ours(p.name))
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise JobError(
                f"{out} is not empty ({shown}) and is not an mmcore job folder (no {MANIFEST}): "
                "give a new or empty output folder"
            )
        return None
    try:
        return read_manifest(out)
    except (OSError, ValueError) as e:
        raise JobError(f"{e}; remove {out / MANIFEST} (and what the job wrote) to start again") from None


def _clean_temporaries(out: Path) -> None:
    """Temporary files a killed run left (a shard, a completion record, the manifest)."""
    for pattern in (".part-*.tmp-*", f"{DONE_DIR}/.*.tmp-*", f".{MANIFEST}.tmp-*"):
        for p in out.glob(pattern):
            with contextlib.suppress(OSError):
                p.unlink()


def _job_hash(m: dict[str, Any] | None, config: Config) -> str:
    """The config hash the run writes: the manifest's where its options are this config's (an
    output written before hashes were put in one order has another hash for the same options),
    else the config's own."""
    if m is not None and m.get("config_hash") != config.config_hash():
        saved = {k: v for k, v in (m.get("config") or {}).items() if k in PROCESSING_OPTIONS}
        try:
            same = Config.from_dict(saved).config_hash() == config.config_hash()
        except (TypeError, ValueError):
            same = False
        if same:
            return str(m["config_hash"])
    return config.config_hash()


def _adds_fallback(m: dict[str, Any], config: Config) -> bool:
    """Whether ``config`` is the manifest's processing options with the Pillow fallback turned on:
    the one change a written output can take without being redone whole, since the fallback
    changes no row but those that were UNSUPPORTED, and retry-failed redoes every failed one."""
    saved = {k: v for k, v in (m.get("config") or {}).items() if k in PROCESSING_OPTIONS}
    try:
        before = Config.from_dict(saved)
    except (TypeError, ValueError):
        return False
    return (
        before.fallback == "none"
        and config.fallback != "none"
        and before.replace(fallback=config.fallback).config_hash() == config.config_hash()
    )


def _load_manifest(m: dict[str, Any] | None, out: Path, source: str, config: Config) -> list[Shard] | None:
    if m is None:
        return None
    if m.get("config_hash") != _job_hash(m, config):
        if _adds_fallback(m, config):
            if config.mode != "retry-failed":
                raise JobError(
                    f"{out} was written without the Pillow fallback: add it with --mode retry-failed "
                    "(only the records that failed are processed again), or use --mode overwrite or "
                    "another output folder"
                )
        else:
            raise JobError(
                f"{out} was written with other processing options (config hash "
                f"{str(m.get('config_hash'))[:12]}, now {config.config_hash()[:12]}); use --mode overwrite "
                "or another output folder"
            )
    if os.path.abspath(str(m.get("source", ""))) != os.path.abspath(source):
        raise JobError(
            f"{out} holds the output of source {m.get('source')!r}, not {source!r}; use --mode overwrite "
            "or another output folder"
        )
    return [Shard.from_dict(d) for d in m["shards"]]


def _write_manifest(
    out: Path, source: str, config: Config, shards: list[Shard], job_hash: str, earlier: set[str]
) -> None:
    m = {
        "format": "mmcore-job",
        "version": 1,
        "mmcore_version": __version__,
        "config": config.to_dict(),
        "config_hash": job_hash,
        "source": os.path.abspath(source),
        "shards": [s.to_dict() for s in shards],
    }
    if earlier:
        # The job's config hashes before the fallback was added: shards whose completion records
        # still carry one have their failed records processed again by every run until none does.
        m["earlier_config_hashes"] = sorted(earlier)
    _atomic_write_bytes(out / MANIFEST, json.dumps(m, indent=1).encode())


@dataclass
class _ShardStart:
    """In the stream of batches: shard ``index`` of the todo list starts; ``inputs``: its
    :meth:`Shard.inputs`, taken just before it is read."""

    index: int
    inputs: list[str]


@dataclass
class _ShardEnd:
    """In the stream of batches: every batch of the shard before it has come."""

    index: int


def _stream(
    todo: list[tuple[Shard, set[str] | None]],
    config: Config,
    proc: Processor,
    summary: RunSummary,
    stats: dict[str, list[str]],
) -> Generator[Any, None, None]:
    """Every todo shard's batches as one stream, each shard's between a :class:`_ShardStart` and a
    :class:`_ShardEnd`: ``(RecordBatch, seconds per stage)`` pairs and :class:`Refused` records.

    The source is read (files opened, tars and Parquet files parsed) a batch ahead in a thread of
    its own while the batches before are hashed, two at once (:func:`hash_ahead`), and neither
    stops at a shard's end: the next shard's first batches are read and hashed while the last
    one's slowest images finish and while it is written (a shard's end was a barrier that left
    most cores idle on a host with many). The writes stay in order, one shard after the other."""

    def sidecar() -> None:
        summary.skipped_files += 1

    def reads() -> Iterator[ReadBatch | Refused | _ShardStart | _ShardEnd]:
        rows = config.batch_rows()
        for k, (shard, only) in enumerate(todo):
            # Taken before the read: a change during it makes the next run read it again.
            yield _ShardStart(k, stats.pop(shard.name, []) or shard.inputs())
            for b in shard.batches(rows, only, config.byte_limit, sidecar, config.id_column):
                yield b if isinstance(b, Refused) else proc.read(b)
            yield _ShardEnd(k)

    def hashed(r: ReadBatch) -> tuple[pa.RecordBatch, dict[str, float]]:
        return proc.hash_read(r), r.seconds

    depth = 1 if config.device == "gpu" else _HASH_AHEAD
    read = read_ahead(reads(), _READ_AHEAD)
    try:
        yield from hash_ahead(read, hashed, depth)
    finally:
        read.close()


def _shard_rows(items: Iterator[Any], spent: dict[str, float], config: Config) -> Iterator[pa.RecordBatch]:
    """One shard's output rows from :func:`_stream`, up to its end marker; each batch's seconds
    per stage are added to ``spent``. Records the source refused that come one after the other
    share a batch (a batch for each took ~240 us a record: a tar of 100,000 escaping members
    would have taken half a minute)."""
    refused: list[Refused] = []

    def refused_rows() -> pa.RecordBatch:
        b = failure_batch(
            [r.id for r in refused],
            [r.source_uri for r in refused],
            [r.member for r in refused],
            SOURCE_ERROR,
            [r.error for r in refused],
            "source",
            config,
        )
        refused.clear()
        return b

    rows = config.batch_rows()
    for x in items:
        if isinstance(x, Refused):
            refused.append(x)
            if len(refused) >= rows:
                yield refused_rows()
            continue
        if refused:
            yield refused_rows()
        if isinstance(x, _ShardEnd):
            return
        batch, seconds = x
        for k, v in seconds.items():
            spent[k] = spent.get(k, 0.0) + v
        yield batch
    raise RuntimeError("the stream of batches ended inside a shard")


#: Batches hashed at once. A batch ends with its slowest image (a 30 MP photo: 0.3 s where the
#: median takes 1 ms), and the cores it leaves idle meanwhile take the next batch's images; the
#: Processor's ThreadBudget keeps the two on `workers` threads between them. By a simulation with
#: the corpus's measured per-image times (one 0.3 s image in 890), 16 threads were ~66% busy with
#: one batch at a time, ~89% with two while each shard's end was a barrier, ~97% now (_stream).
_HASH_AHEAD = 2


def hash_ahead(items: Iterator[Any], hash_read: Callable[[ReadBatch], T], depth: int) -> Iterator[Any]:
    """``items`` with each :class:`ReadBatch` replaced by ``hash_read(it)``, in order, up to
    ``depth`` of them at once on threads of their own (the hashing releases the GIL); anything else
    (a Refused record, a marker) passes as it is, in its place. An exception raised by a hash_read
    or by ``items`` is raised here, where its batch or item would have come; closing this
    generator early cancels the batches not started and waits for those running."""
    if depth <= 1:
        for r in items:
            yield hash_read(r) if isinstance(r, ReadBatch) else r
        return
    pending: collections.deque[tuple[Future[T] | None, Any]] = collections.deque()
    running = 0
    with ThreadPoolExecutor(depth, thread_name_prefix="mmcore-hash") as ex:
        try:
            it = iter(items)
            while True:
                try:
                    r = next(it)
                except StopIteration:
                    break
                except Exception:  # the items' own error comes after those before it
                    while pending:
                        fut, x = pending.popleft()
                        yield x if fut is None else fut.result()
                    raise
                if isinstance(r, ReadBatch):
                    pending.append((ex.submit(hash_read, r), None))
                    running += 1
                else:
                    pending.append((None, r))
                while pending and (pending[0][0] is None or running >= depth):
                    fut, x = pending.popleft()
                    if fut is None:
                        yield x
                    else:
                        running -= 1
                        yield fut.result()
            while pending:
                fut, x = pending.popleft()
                yield x if fut is None else fut.result()
        finally:
            for fut, _ in pending:
                if fut is not None:
                    fut.cancel()


#: Batches read ahead of the one being hashed (each ~Config.batch_rows() records' bytes in memory).
_READ_AHEAD = 2


def read_ahead(items: Iterator[Any], depth: int) -> Generator[Any, None, None]:
    """``items`` as they come, produced up to ``depth`` ahead by a thread of their own. An
    exception in the thread is raised here, where the item would have come; closing this
    generator early (an error downstream) stops the thread and waits for it."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for x in items:
                while not stop.is_set():
                    try:
                        q.put(("item", x), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as e:  # handed to the consumer, which raises it
            q.put(("error", e))

    t = threading.Thread(target=produce, name="mmcore-read-ahead", daemon=True)
    t.start()
    try:
        while True:
            kind, x = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise x
            yield x
    finally:
        stop.set()
        while t.is_alive():  # unblock a put, then let the thread see stop
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        t.join()


def _write_shard(
    out: Path, shard: Shard, batches: Iterator[pa.RecordBatch], proc: Processor
) -> tuple[dict[str, int], float]:
    """Streams batches into the shard's Parquet file (temp name, fsync, rename); returns counts
    and the seconds spent writing (the batches are read and hashed meanwhile: the wall time less
    the other stages no longer tells the write's share)."""
    counts: dict[str, int] = {}
    spent = 0.0
    with (
        atomic_output(shard_path(out, shard.name)) as f,
        pq.ParquetWriter(f, proc.schema, compression="zstd") as w,
    ):
        group: list[pa.RecordBatch] = []
        rows = size = 0
        for b in batches:
            group.append(b)
            # (nbytes took ~30 us a batch, looking for buffers shared between columns; none are)
            rows, size = rows + b.num_rows, size + b.get_total_buffer_size()
            if rows >= _ROW_GROUP_ROWS or size >= _ROW_GROUP_BYTES:
                spent += _write_group(w, group, proc.schema)
                group, rows, size = [], 0, 0
            for st in b.column("status").to_pylist():
                counts[st] = counts.get(st, 0) + 1
        if group:
            spent += _write_group(w, group, proc.schema)
        t_close = time.perf_counter()
    return counts, spent + time.perf_counter() - t_close


#: A row group holds the batches of up to this many rows or bytes (thumbnails), whichever comes
#: first. A row group per batch (256 rows) wrote 4.7 us a row where one group took 0.5 (and
#: readers pay for many small groups too); the byte bound keeps the gallery's reads of a few
#: thumbnails (by the row groups' id statistics) small, and the memory held to ~32 MB.
_ROW_GROUP_ROWS = 65_536
_ROW_GROUP_BYTES = 32 << 20


def _write_group(w: pq.ParquetWriter, group: list[pa.RecordBatch], schema: pa.Schema) -> float:
    """Writes ``group`` as one row group; returns the seconds it took."""
    t0 = time.perf_counter()
    table = pa.Table.from_batches(group, schema)
    w.write_table(table, row_group_size=max(table.num_rows, 1))
    return time.perf_counter() - t0


def _done_record(
    shard: Shard,
    counts: dict[str, int],
    stages: dict[str, float],
    wall: float,
    config_hash: str,
    inputs: list[str],
    part_bytes: int,
) -> bytes:
    rec = {
        "shard": shard.name,
        "inputs": inputs,
        "rows": sum(counts.values()),
        "part_bytes": part_bytes,
        "counts": counts,
        "stage_seconds": stages,
        "wall_seconds": round(wall, 4),
        "config_hash": config_hash,
        "mmcore_version": __version__,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return json.dumps(rec, indent=1).encode()


def run(
    source: str,
    out: str | os.PathLike[str],
    config: Config | None = None,
    *,
    progress: IO[str] | None = sys.stderr,
) -> RunSummary:
    """Processes ``source`` into ``out`` (see the module doc); returns the summary. Raises
    :class:`JobError` (or FileNotFoundError for a missing source) when the job cannot complete;
    failed records never raise, they are rows with their status."""
    config = config or Config()
    if config.device == "gpu":
        from ..gpu import unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise JobError(f"--device gpu: {reason}")
    if config.fallback == "pillow":
        try:
            fallback.load()
        except ImportError as e:
            raise JobError(str(e)) from None
    t_start = time.perf_counter()
    outp = Path(out)
    require_source(source)
    if os.path.isdir(source) and os.path.realpath(source) == os.path.realpath(outp):
        raise JobError(f"the output folder is the source folder ({source}): give another output folder")
    base = os.path.realpath(source_base(source) or ".")
    if inside(base, os.path.realpath(outp)):
        # OUT's own files are left out of the walk, so a source inside OUT would lose records.
        raise JobError(
            f"the source {source!r} lies inside the output folder {os.fspath(out)}: "
            "give another output folder"
        )
    try:
        outp.mkdir(parents=True, exist_ok=True)
        probe = outp / f".mmcore-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise JobError(f"cannot write to the output folder {os.fspath(out)}: {e.strerror or e}") from None
    try:
        with _locked(outp):
            return _run(source, outp, config, progress, t_start)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise JobError(f"the job stopped: {e.strerror or e}{where}") from None


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """An exclusive lock (flock) on the OUT folder itself for the whole run: a second run on the
    same OUT (same options or not) is refused at once and touches nothing. No lock file: nothing is
    left in OUT, and the lock goes with the process, even on kill -9."""
    import fcntl

    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobError(
                f"another mmcore run is writing {out}; wait for it to finish, or give another output folder"
            ) from None
        except OSError:  # a file system without flock (some network mounts): run unlocked, as before
            pass
        yield
    finally:
        os.close(fd)


def _run(source: str, outp: Path, config: Config, progress: IO[str] | None, t_start: float) -> RunSummary:
    manifest = _job_folder(outp)
    if config.mode == "overwrite":
        if manifest is not None:
            _clear(outp)
        manifest = None
    _clean_temporaries(outp)
    known = _load_manifest(manifest, outp, source, config)
    job_hash = _job_hash(manifest, config)
    earlier = set(manifest.get("earlier_config_hashes") or []) if manifest is not None else set()
    adding = manifest is not None and manifest.get("config_hash") != job_hash  # the fallback, retry-failed
    if adding:
        earlier.add(str(manifest["config_hash"]))  # type: ignore[index]
    shards, skipped = plan(source, config.shard_files(), known, exclude=os.fspath(outp))
    known_names = {s.name for s in known or []}
    if any(s.kind == "parquet" and s.name not in known_names for s in shards):
        # Before anything is written: a repeated id would only show when dedup refuses the output.
        clash = repeated_id(shards, config.id_column)
        if clash is not None:
            raise JobError(clash)
    if known is None or len(shards) != len(known) or adding:
        _write_manifest(outp, source, config, shards, job_hash, earlier)
    done = set(completed_shards(outp))
    summary = RunSummary(out=os.fspath(outp), shards_total=len(shards), skipped_files=skipped)
    proc = Processor(config)
    todo: list[tuple[Shard, set[str] | None]] = []
    stats: dict[str, list[str]] = {}  # what completed shards read, as it is now (Shard.inputs)
    for s in shards:
        # Written before the fallback was added: its failed records are processed again.
        older = bool(earlier) and s.name in done and _recorded_hash(outp, s.name) in earlier
        if s.name not in done:
            todo.append((s, None))
        elif (changed := _changed_inputs(outp, s, stats)) is not None and s.kind != "files":
            todo.append((s, None))  # a tar or Parquet file rewritten: read it all again
            summary.shards_changed += 1
        elif changed and config.mode != "retry-failed" and not older:  # files changed or deleted
            todo.append((s, changed))
            summary.shards_changed += 1
        elif config.mode == "retry-failed" or older:
            t = pq.read_table(shard_path(outp, s.name), columns=["id", "status", "member"]).to_pydict()
            failed = {i for i, st in zip(t["id"], t["status"], strict=True) if st not in OK_STATUSES}
            # A tar or Parquet file that could not be read to its end ('shard.tar/', 'f.parquet#'
            # rows without a member): its records after the failure never had rows, so the
            # whole shard is read again.
            whole = s.kind != "files" and any(
                st not in OK_STATUSES and m is None and i.endswith(("/", "#"))
                for i, st, m in zip(t["id"], t["status"], t["member"], strict=True)
            )
            summary.shards_changed += 1 if changed else 0
            if whole:
                todo.append((s, None))
            elif failed or changed:
                todo.append((s, failed | set(changed or ())))
            else:
                summary.shards_skipped += 1
                if older:  # nothing the fallback could change: the part is the new config's
                    _restamp(outp, s.name, job_hash)
        else:
            summary.shards_skipped += 1
    total = sum(s.records or 0 for s, only in todo if only is None) + sum(len(o) for _, o in todo if o)
    unknown = any(s.records is None and only is None for s, only in todo)
    bar = Progress(None if unknown else total, progress)
    write_s = 0.0

    def counted(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            st = b.column("status").to_pylist()
            for x in st:
                summary.counts[x] = summary.counts.get(x, 0) + 1
            summary.records += len(st)
            bar.add(len(st), sum(1 for x in st if x not in OK_STATUSES))
            yield b

    stream = _stream(todo, config, proc, summary, stats)
    with contextlib.closing(stream):
        t_last = time.perf_counter()
        for k, (shard, only) in enumerate(todo):
            start = next(stream)
            assert isinstance(start, _ShardStart) and start.index == k, start
            spent = {stage: 0.0 for stage in proc.stage_seconds}
            batches = counted(_shard_rows(stream, spent, config))
            if only is not None:
                batches = _merge_retry(outp, shard, batches)
                # The old completion record goes before the part is replaced: a kill in between leaves
                # the shard incomplete (redone by the next run), never a record that describes another part.
                with contextlib.suppress(FileNotFoundError):
                    done_path(outp, shard.name).unlink()
                    fsync_dir(done_path(outp, shard.name).parent)
            counts, written = _write_shard(outp, shard, batches, proc)
            # Shards overlap (the next one is read and hashed while this one ends): a shard's wall
            # time is the time since the one before it was complete, and they add up to the run's.
            now = time.perf_counter()
            wall, t_last = now - t_last, now
            stages = {stage: round(v, 4) for stage, v in spent.items()}
            stages["write"] = round(written, 4)
            write_s += stages["write"]
            size = shard_path(outp, shard.name).stat().st_size
            rec = _done_record(shard, counts, stages, wall, job_hash, start.inputs, size)
            _atomic_write_bytes(done_path(outp, shard.name), rec)
            summary.shards_written += 1
    bar.close()
    summary.stage_seconds = {
        **{k: round(v, 2) for k, v in proc.stage_seconds.items()},
        "write": round(write_s, 2),
    }
    summary.wall_seconds = time.perf_counter() - t_start
    return summary


def _recorded_hash(out: Path, shard: str) -> str | None:
    """The config hash a completed shard's record says it was written with (None: unreadable)."""
    try:
        h = json.loads(done_path(out, shard).read_bytes()).get("config_hash")
    except (OSError, ValueError, AttributeError):
        return None
    return h if isinstance(h, str) else None


def _restamp(out: Path, shard: str, job_hash: str) -> None:
    """A completed shard's record, with ``job_hash`` as the hash it was written with."""
    rec = json.loads(done_path(out, shard).read_bytes())
    rec["config_hash"] = job_hash
    _atomic_write_bytes(done_path(out, shard), json.dumps(rec, indent=1).encode())


def _changed_inputs(out: Path, shard: Shard, stats: dict[str, list[str]]) -> set[str] | None:
    """What a completed shard read that has changed since its completion record: the ids of the
    files that changed or are gone (empty for a tar or Parquet file: its one input), None when
    nothing changed (or the record, written before records kept their inputs, cannot tell). The
    inputs as they are now go into ``stats``, for the shard's new record."""
    now = stats[shard.name] = shard.inputs()
    try:
        was = json.loads(done_path(out, shard.name).read_bytes()).get("inputs")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(was, list) or not was:
        return None
    if len(was) != len(now):
        # A Parquet record from before path-column digests: its own file still tells.
        if shard.kind != "files" and was[0] != now[0] and now[0] != "?":
            return set()
        return None
    # An input that could not be looked at now ('?': permissions, I/O) is taken as unchanged, and
    # its record keeps what was known of it.
    now = stats[shard.name] = [a if b == "?" else b for a, b in zip(was, now, strict=True)]
    if was == now:
        return None
    if shard.kind != "files":
        return set()
    return {text(f) for f, a, b in zip(shard.files, was, now, strict=True) if a != b}


def _merge_retry(out: Path, shard: Shard, fresh: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The shard's rows with the retried records replaced by their new rows (same order), a batch
    of the old part at a time: a tar or Parquet file is one shard however large, and the whole
    part as Python rows took ~10 kB a row."""
    new = pa.Table.from_batches(list(fresh))  # the retried records only
    # By occurrence, not by id alone: ids from a Parquet id column can repeat, and the k-th old row
    # of an id is the k-th record of that id read again (the source is read in the same order).
    queues: dict[str, collections.deque[int]] = {}
    for k, rid in enumerate(new["id"].to_pylist() if new.num_rows else []):
        queues.setdefault(rid, collections.deque()).append(k)
    part = pq.ParquetFile(shard_path(out, shard.name), buffer_size=8 << 20, pre_buffer=False)
    schema = part.schema_arrow
    new = new.select(schema.names).cast(schema) if new.num_rows else new
    for batch in part.iter_batches(batch_size=_MERGE_ROWS):
        ids = batch.column("id").to_pylist()
        take = np.arange(len(ids), dtype=np.int64)
        for r, rid in enumerate(ids):
            q = queues.get(rid)
            if q:
                take[r] = len(ids) + q.popleft()
        old = pa.Table.from_batches([batch], schema=schema)
        both = pa.concat_tables([old, new]) if new.num_rows else old
        yield from both.take(pa.array(take)).combine_chunks().to_batches()


#: Rows of the old part merged per step by a retry.
_MERGE_ROWS = 4_096


# -- command line ---------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Adds ``mmcore run`` to the ``mmcore`` command's subparsers."""
    p = sub.add_parser(
        "run",
        help="process a corpus into resumable Parquet shards",
        description="Decode, hash (and thumbnail) every image of SOURCE into Parquet shards in OUT. "
        "SOURCE: a directory (recursive), a glob, WebDataset .tar shards or Parquet files with a bytes "
        "or path column. Rerunning resumes: completed shards are skipped (a rerun without processing "
        "options or --config keeps those OUT was written with). Exit code 0 when the job "
        "completed (even if some records failed: see their status), 1 when it could not.",
    )
    p.add_argument("source", help="directory, glob, .tar or .parquet file(s)")
    p.add_argument("out", help="output folder")
    p.add_argument(
        "--config", help="TOML file of options (the keys of mmcore.jobs.Config); flags override it"
    )
    p.add_argument("--hashes", help="comma-separated hash columns (default phash,dhash,ahash,pdq)")
    p.add_argument(
        "--hash-mode",
        choices=("exact", "fast"),
        default=None,
        help="exact (imagehash / PDQ-reference bits, the default) or fast (measured agreement)",
    )
    p.add_argument(
        "--hash-size",
        type=int,
        default=None,
        metavar="N",
        help="imagehash's hash_size for phash, dhash, ahash (2..64, default 8): N*N bits; over 8 the "
        "columns are binary(ceil(N*N/8)), big-endian",
    )
    p.add_argument(
        "--thumbnail", type=int_at_least(0), default=None, help="thumbnail short side in px (0: none)"
    )
    p.add_argument("--thumbnail-format", choices=("jpeg", "webp"), default=None, help="(default jpeg)")
    p.add_argument(
        "--thumbnail-webp-method",
        type=int,
        default=None,
        help="WebP thumbnails: libwebp method 0 (fastest) .. 6 (smallest); default 4, Pillow's",
    )
    p.add_argument(
        "--fallback",
        choices=("none", "pillow"),
        default=None,
        help="pillow: formats mmcore does not decode (TIFF, BMP, ICO, PNM, JPEG 2000, HEIC with "
        "pillow-heif...) decoded by Pillow and hashed by mmcore (default none: an UNSUPPORTED row)",
    )
    p.add_argument(
        "--workers",
        type=int_at_least(0),
        default=None,
        help="decode/hash threads (0, the default: all cores)",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default=None,
        help="gpu: JPEGs hashed on the GPU, same rows (default cpu)",
    )
    p.add_argument(
        "--id-column",
        default=None,
        metavar="NAME",
        help="Parquet sources: the column of record ids ('auto': id or key; 'none': <file>#<row>)",
    )
    p.add_argument(
        "--shard-size",
        type=int_at_least(1),
        default=None,
        help="files per shard for directory sources (default: 1000, or 256 per decode thread if more)",
    )
    p.add_argument(
        "--mode",
        choices=("incremental", "overwrite", "retry-failed"),
        default=None,
        help="incremental (the default: skip completed shards), overwrite (start again) or retry-failed "
        "(process again the records whose status is not OK)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=user_errors("run", _cmd_run))


def _saved_processing(out: str) -> dict[str, Any]:
    """The processing options OUT's manifest was written with ({} when there is no manifest, or
    one without a readable config: the run then reports what is wrong with OUT)."""
    try:
        saved = read_manifest(out).get("config")
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in saved.items() if k in PROCESSING_OPTIONS} if isinstance(saved, dict) else {}


def _cmd_run(args: Any) -> int:
    flags = (
        args.hashes,
        args.hash_mode,
        args.hash_size,
        args.thumbnail,
        args.thumbnail_format,
        args.thumbnail_webp_method,
        args.id_column,
    )
    if args.config:
        config = Config.from_toml(args.config)
    elif all(f is None for f in flags):
        # A rerun with no processing options (resumed, retried or overwritten) keeps those OUT was
        # written with; --fallback alone changes that one (how an output takes the fallback).
        config = Config.from_dict(_saved_processing(args.out))
    else:
        config = Config()
    config = config.replace(
        hashes=None if args.hashes is None else tuple(h.strip() for h in args.hashes.split(",") if h.strip()),
        hash_mode=args.hash_mode,
        hash_size=args.hash_size,
        thumbnail=args.thumbnail,
        thumbnail_format=args.thumbnail_format,
        thumbnail_webp_method=args.thumbnail_webp_method,
        id_column=args.id_column,
        fallback=args.fallback,
        workers=args.workers,
        device=args.device,
        shard_size=args.shard_size,
        mode=args.mode,
    )
    try:
        with codec_messages(args.out) as (terminal, said):
            summary = run(args.source, args.out, config, progress=None if args.quiet else terminal)
    except KeyboardInterrupt:
        print(
            f"\nmmcore run: interrupted; completed shards are kept: rerun the same command to resume "
            f"({args.out})",
            file=sys.stderr,
        )
        return 130
    hint = []
    unsupported = summary.counts.get("UNSUPPORTED", 0)
    if unsupported and config.fallback == "none":
        hint = [
            f"{unsupported:,} UNSUPPORTED: their error column names what mmcore does not decode; formats "
            "Pillow reads (TIFF, BMP, HEIC, ...) get hashed by the same command with "
            '--mode retry-failed --fallback pillow (docs/jobs.md, "Other formats")'
        ]
    print("\n".join(summary.lines() + said + hint))
    return 0


#: In OUT: what the codec libraries wrote to stderr during the runs (codec_messages).
CODEC_LOG = "_mmcore_stderr.log"


@contextlib.contextmanager
def codec_messages(out: str | os.PathLike[str]) -> Iterator[tuple[IO[str], list[str]]]:
    """For the run of a command: file descriptor 2 goes to a temporary file, and the block gets a
    stream on the terminal's stderr (for the progress line) and a list that, once the block is
    done, holds the summary's line about what was caught.

    Some codec libraries write about a damaged file straight to stderr (dav1d for AVIF; the libtiff
    and libjpeg inside Pillow's wheel, for the Pillow fallback): one line per file, between the
    progress line's updates, while each row already says what was wrong. Python's warnings go the
    same way. Afterwards the lines are appended to OUT/_mmcore_stderr.log (or, when the run made no
    job folder, written to the terminal as they came). The command owns its process's stderr; the
    library (:func:`run`) never touches it."""
    sys.stdout.flush()
    sys.stderr.flush()
    said: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            with os.fdopen(os.dup(saved), "w", buffering=1) as terminal:
                yield terminal, said
        finally:  # also when the run fails or is interrupted: what was caught is kept
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            _keep_caught(Path(out), caught, said)


def _keep_caught(out: Path, caught: IO[bytes], said: list[str]) -> None:
    """codec_messages' lines into OUT's log under a line with the run's time (a summary line in
    ``said``), or back on stderr when there is no job folder to put them in; copied a MiB at a
    time (a long run over a damaged corpus can catch millions of lines)."""
    if caught.seek(0, os.SEEK_END) == 0:
        return
    caught.seek(0)
    if not (out / MANIFEST).is_file():
        shutil.copyfileobj(caught, sys.stderr.buffer)
        sys.stderr.flush()
        return
    n, last = 0, b""
    with open(out / CODEC_LOG, "ab") as f:
        f.write(f"== mmcore run, {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC ==\n".encode())
        while chunk := caught.read(1 << 20):
            f.write(chunk)
            n, last = n + chunk.count(b"\n"), chunk[-1:]
        if last != b"\n":  # the next run's heading starts a line of its own
            f.write(b"\n")
            n += 1
    said.append(f"{n:,} line{'s' * (n != 1)} the codec libraries wrote to stderr: in {out / CODEC_LOG}")
