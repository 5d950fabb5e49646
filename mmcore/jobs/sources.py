"""Where ``mmcore run`` reads images from, cut into shards (one output Parquet file each).

- a directory (recursive) or a glob: files sorted by path, cut into shards of ``shard_size``;
- WebDataset tar shards (``*.tar``): one shard per tar, member names as keys;
- Parquet files (``*.parquet``) with a bytes column or a path column: one shard per file.

A file or member is taken as an image (a record with its own status) unless its name marks it as a
sidecar (``.json``, ``.txt``, ``.cls``, ``.csv``, ... : :data:`SIDECAR_EXTENSIONS`) and its first
bytes are no JPEG / PNG / GIF / WebP / AVIF signature: images are found by content whatever their
name, and a damaged image or unknown junk still gets a row saying what is wrong with it; sidecars
are skipped and counted. Tar members with an absolute path, a ``..`` component or a link type are
refused: they get a row with status SOURCE_ERROR and are never read, and nothing is ever extracted
to disk.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import os
import re
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import _core
from .._io import open_regular
from .processor import id_text, over_limit, path_to_uri, struct_paths, text, uri_to_path

#: Names skipped unless the content is an image: metadata written next to images (WebDataset
#: members, captions, labels, manifests).
SIDECAR_EXTENSIONS = (
    ".json",
    ".jsonl",
    ".txt",
    ".text",
    ".cls",
    ".cls2",
    ".csv",
    ".tsv",
    ".md",
    ".xml",
    ".yaml",
    ".yml",
    ".toml",
    ".html",
    ".htm",
    ".log",
    ".idx",
    ".index",
    ".npy",
    ".npz",
    ".pth",
    ".pyd",
    ".crc",  # Hadoop / Spark checksums beside each output file
)
#: Marker files that engines write into their output folders (Spark, Hadoop, Databricks): no
#: content, skipped as sidecars are.
MARKER_NAMES = ("_SUCCESS", "_committed_", "_started_", "_temporary")
_ID_COLUMNS = ("id", "key")
_BYTES_COLUMNS = ("bytes", "image", "content", "data", "jpg", "png", "webp")
_PATH_COLUMNS = ("path", "uri", "file", "filename")
#: Read buffer of a Parquet source (its column chunks are streamed through it).
_PARQUET_BUFFER = 8 << 20


def looks_like_image(head: bytes, name: str) -> bool:
    """False only for a sidecar name (SIDECAR_EXTENSIONS, or an engine's marker file such as
    Spark's ``_SUCCESS``: MARKER_NAMES) without a JPEG / PNG / GIF / WebP / AVIF (ISO BMFF ``ftyp``)
    signature in ``head`` (the first 16 bytes)."""
    if head[:3] == b"\xff\xd8\xff" or head[:8] == b"\x89PNG\r\n\x1a\n" or head[:4] == b"GIF8":
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if head[4:8] == b"ftyp":  # AVIF (HEIF too: a row that says it is unsupported, not a skipped file)
        return True
    return not sidecar_name(name)


def sidecar_name(name: str) -> bool:
    """Whether ``name`` is a sidecar's (SIDECAR_EXTENSIONS) or an engine's marker file's
    (MARKER_NAMES): the only names whose content decides whether they are images."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return name.lower().endswith(SIDECAR_EXTENSIONS) or base.startswith(MARKER_NAMES)


def file_is_image(path: str, name: str) -> bool:
    """looks_like_image for a file, opened only when its name is a sidecar's: any other name is an
    image (or a record whose read says what it is) whatever its first bytes, so a folder of images
    is planned without opening each file (one open per file was most of planning 200k files, and
    each is a round trip on a network mount)."""
    if not sidecar_name(name):
        return True
    try:
        with open_regular(path) as f:  # a FIFO is refused, not waited on
            head = f.read(16)
    except OSError:
        head = b""  # unreadable now: judged by its name; its read gives it a READ_ERROR row
    return looks_like_image(head, name)


@dataclass
class Refused:
    """A record the source refuses to read (it still gets an output row)."""

    id: str
    source_uri: str
    member: str | None
    error: str


@dataclass
class Shard:
    """One unit of output: its name, kind and what it reads. ``files`` (kind files) are paths
    relative to ``root``; a tar or Parquet shard's ids start with its path relative to ``root``
    (its file name when ``root`` is empty)."""

    name: str
    kind: str  # "files" | "tar" | "parquet"
    source_uri: str
    root: str = ""
    files: list[str] = field(default_factory=list)
    records: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "source_uri": self.source_uri}
        d["records"] = self.records
        if self.kind == "files":
            d.update(root=self.root, files=self.files)
        elif self.root:
            d["root"] = self.root
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Shard:
        return cls(
            name=d["name"],
            kind=d["kind"],
            source_uri=d["source_uri"],
            root=d.get("root", ""),
            files=list(d.get("files", [])),
            records=d.get("records"),
        )

    def inputs(self) -> list[str]:
        """``size/mtime_ns`` of what the shard reads, now: each file of a files shard, in order,
        else its tar or Parquet file, and for a Parquet file with a path column one more entry, a
        digest of the ``size/mtime_ns`` of every file the column names. ``-1/-1`` is a file that
        is gone, ``?`` one that could not be looked at (permissions, I/O: not taken for a change).
        Taken before a shard is read and kept in its completion record, so that a later run can
        tell what changed at the source."""
        if self.kind == "files":
            return [_stat_text(os.path.join(self.root, f)) for f in self.files]
        path = uri_to_path(self.source_uri)
        out = [_stat_text(path)]
        if self.kind == "parquet":
            digest = _path_column_digest(path)
            if digest is not None:
                out.append(digest)
        return out

    def batches(
        self,
        batch_size: int,
        only: set[str] | None = None,
        max_bytes: int | None = None,
        on_sidecar: Callable[[], None] | None = None,
        id_column: str = "auto",
    ) -> Iterator[pa.RecordBatch | Refused]:
        """Input RecordBatches (id, bytes or path, source_uri, member) and refused records; with
        ``only``, just the records whose id is in it. Tar members over ``max_bytes`` are refused
        unread (files are checked when they are read). ``on_sidecar`` is called for each tar
        member skipped as a sidecar (a folder's sidecars are counted when it is planned).
        ``id_column``: which Parquet column gives the ids (see :func:`parquet_columns`)."""
        if self.kind == "files":
            yield from _file_batches(self, batch_size, only)
        elif self.kind == "tar":
            yield from _tar_batches(self, batch_size, only, max_bytes, on_sidecar)
        else:
            yield from _parquet_batches(self, batch_size, only, id_column)


def shard_name(i: int) -> str:
    return f"part-{i:05d}"


def plan(
    source: str, shard_size: int, known: list[Shard] | None = None, exclude: str | None = None
) -> tuple[list[Shard], int]:
    """The shards of ``source`` and the number of non-image files skipped. With ``known`` (the
    shards of an earlier run of the same source) those keep their names and contents; files they do
    not hold go to new shards after them, with ids relative to the earlier run's root (a glob whose
    new matches widen its common folder still gives every file one id). ``exclude``: a folder
    left out of the walk (the job's own output)."""
    known = known or []
    tars, parquets, files, root = _expand(source, exclude)
    shards = list(known)
    # Known sources are matched by path: URIs written by older versions were not percent-encoded.
    seen_paths = {os.path.abspath(uri_to_path(s.source_uri)) for s in known if s.kind != "files"}
    seen_files = {
        os.path.normpath(os.path.join(s.root, f)) for s in known if s.kind == "files" for f in s.files
    }
    # Ids stay relative to the first run's root, for every kind: one root, so no two ids clash.
    file_root = next((s.root for s in known if s.root), root)
    for kind, paths in (("tar", tars), ("parquet", parquets)):
        for p in paths:
            if p not in seen_paths:
                shards.append(Shard(shard_name(len(shards)), kind, path_to_uri(p), file_root))
    skipped = 0
    fresh: list[str] = []
    under = file_root.rstrip(os.sep) + os.sep
    for path in files:
        if path in seen_files:
            continue
        # Paths from _expand are absolute and normal: below the root, relpath is a slice (relpath
        # itself was 2/3 of planning 200k files).
        rel = path[len(under) :] if path.startswith(under) else os.path.relpath(path, file_root)
        if file_is_image(path, rel):
            fresh.append(rel)
        else:
            skipped += 1
    for i in range(0, len(fresh), shard_size):
        part = fresh[i : i + shard_size]
        shards.append(
            Shard(shard_name(len(shards)), "files", path_to_uri(file_root), file_root, part, len(part))
        )
    return shards, skipped


def image_files(source: str) -> tuple[pa.Table, int]:
    """The image files of a directory, glob or file as ``mmcore run`` plans and reads them, for an
    engine that reads them by path (``mmcore.ray.read_images``, ``mmcore.spark.read_images``): a
    table of ``id`` (the path relative to the source folder, as ``mmcore run``), ``path`` and
    ``source_uri`` (the file's URI) and ``member`` (null), in ``mmcore run``'s order, and the
    number of non-image files skipped. Raises FileNotFoundError for a source that does not exist,
    and ValueError for one that holds tar or Parquet files (``mmcore run`` reads their records;
    a listing of files would leave them out)."""
    require_source(source)
    shards, skipped = plan(source, 1 << 62)
    containers = [uri_to_path(s.source_uri) for s in shards if s.kind != "files"]
    if containers:
        shown = ", ".join(containers[:3]) + (", ..." if len(containers) > 3 else "")
        raise ValueError(
            f"{source} holds {len(containers)} tar or Parquet files ({shown}) whose records a listing "
            "of image files leaves out: process it with mmcore run, or read the tars and Parquet files "
            "as sources of their own and list the image files apart"
        )
    schema = pa.schema(
        [("id", pa.string()), ("path", pa.string()), ("source_uri", pa.string()), ("member", pa.string())]
    )
    batches = [b.cast(schema) for s in shards for b in _file_batches(s, len(s.files) or 1, None)]
    return pa.Table.from_batches(batches, schema=schema), skipped


def _stat_text(p: str) -> str:
    """``size/mtime_ns`` of ``p`` (Shard.inputs)."""
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        return "-1/-1"
    except OSError:
        return "?"
    if stat.S_ISDIR(st.st_mode):  # a folder record (one that could not be listed): chmod moves ctime
        return f"{st.st_size}/{st.st_mtime_ns}/{st.st_ctime_ns}"
    return f"{st.st_size}/{st.st_mtime_ns}"


def _path_column_digest(path: str) -> str | None:
    """A digest of the ``size/mtime_ns`` of every file a Parquet file's path column names (None
    without a path column, or when the file cannot be read: its own entry says that)."""
    try:
        pf = pq.ParquetFile(path)
        _, by, pcol = parquet_columns(pf.schema_arrow)
        if by is not None or pcol is None:
            return None
        h = hashlib.sha256()
        here = os.path.dirname(path)
        for b in pf.iter_batches(65536, columns=[pcol]):
            arr = b.column(0)
            if pa.types.is_struct(arr.type):
                arr = arr.field("path")
            for v in arr.to_pylist():
                p = _resolve(v, here)
                try:
                    seen = "-" if p is None else _stat_text(uri_to_path(p))
                except ValueError:  # not a local path (s3://...): read as the row says, not tracked
                    seen = "-"
                h.update(seen.encode() + b"\n")
    except (OSError, ValueError, pa.ArrowException):
        return None
    return "paths:" + h.hexdigest()


def _glob(pattern: str) -> list[str]:
    """glob.glob(pattern, recursive=True), with a clear error where its recursion (Python 3.11)
    runs out in a tree ~1,000 folders deep (the folder itself as the source walks any depth)."""
    try:
        return glob.glob(pattern, recursive=True)
    except RecursionError:
        raise ValueError(
            f"source {pattern!r}: the glob goes deeper than Python's glob can follow; give the folder "
            "itself as the source"
        ) from None


def require_source(source: str) -> None:
    """FileNotFoundError unless ``source`` is a directory, a file or a glob that matches something
    (a link to nothing, or a link loop, as the source itself is none of these)."""
    if os.path.lexists(source) and not os.path.exists(source):
        raise FileNotFoundError(f"source {source!r} is a link to nothing (or a link loop)")
    if not (os.path.exists(source) or _glob(source)):
        raise FileNotFoundError(
            f"source {source!r} is not a directory, a file or a glob that matches anything"
        )


def source_base(source: str) -> str:
    """The folder or file a source names: the source itself, or for a glob the part of its path
    before the first wildcard (``data/**/*.jpg`` -> ``data``)."""
    if not glob.has_magic(source):
        return source
    head: list[str] = []
    for part in source.split(os.sep):
        if glob.has_magic(part):
            break
        head.append(part)
    base = os.sep.join(head)
    return base if base else (os.sep if source.startswith(os.sep) else ".")


def inside(path: str, folder: str | None) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (both as given: pass real paths)."""
    return folder is not None and (path == folder or path.startswith(folder.rstrip(os.sep) + os.sep))


def _special(path: str) -> bool:
    """True for an entry that exists but is neither a folder nor a regular file (a FIFO, a
    socket, a device): a record of its own, whose read says so, rather than one that vanishes."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _expand(source: str, exclude: str | None = None) -> tuple[list[str], list[str], list[str], str]:
    """(tar files, parquet files, other files, root), all absolute paths, of a directory, a single
    file or a glob; nothing inside ``exclude``."""
    # By real path: an OUT reached through a link (or a source given through one) is still OUT.
    ex = os.path.realpath(exclude) if exclude is not None else None
    if os.path.isdir(source):
        root = os.path.abspath(source)
        found = _walk(root, ex)  # leaves out what lies in ex; sorts out what is not a record
    else:
        if os.path.isfile(source):
            root, found = os.path.dirname(os.path.abspath(source)), [os.path.abspath(source)]
        else:
            require_source(source)
            found = [os.path.abspath(p) for p in _glob(source)]
            root = os.path.commonpath([os.path.dirname(p) for p in found])
        # Files, and what is neither a file nor a folder (a FIFO, a socket: a record whose read
        # refuses it, rather than one that vanishes).
        found = [
            p for p in found if not inside(os.path.realpath(p), ex) and (os.path.isfile(p) or _special(p))
        ]
    found.sort()
    # A FIFO named x.tar is a record (its read refuses it), not a container to open and wait on.
    tars = [p for p in found if p.lower().endswith(".tar") and not _special(p)]
    parquets = [p for p in found if p.lower().endswith(".parquet") and not _special(p)]
    containers = set(tars) | set(parquets)
    return tars, parquets, [p for p in found if p not in containers], root


def _list_folder(d: str, unlisted: Any) -> tuple[list[tuple[str, bool]], list[tuple[str, int]]] | None:
    """(subfolders as (name, is a link), other entries as (name, kind)) of folder ``d``, links to
    folders counted as folders (as os.walk lists them); None after handing an OSError to
    ``unlisted``. Kinds: _FILE (a regular file, not a link), _LINK (a link, not to a folder),
    _OTHER. From the folder listing's entry types: no call per file on file systems that give
    them."""
    dirs: list[tuple[str, bool]] = []
    names: list[tuple[str, int]] = []
    try:
        with os.scandir(d) as it:
            for entry in it:
                try:
                    link = entry.is_symlink()
                except OSError:
                    link = False
                try:
                    is_dir = entry.is_dir()
                    kind = _LINK if link else _FILE if entry.is_file() else _OTHER
                except OSError:  # a link loop (ELOOP) is still a link: a row, not nothing
                    is_dir, kind = False, _LINK if link else _OTHER
                if is_dir:
                    dirs.append((entry.name, link))
                else:
                    names.append((entry.name, kind))
    except OSError as e:
        unlisted(e)
        return None
    return dirs, names


_FILE, _LINK, _OTHER = 0, 1, 2


def _walk(root: str, ex: str | None) -> list[str]:
    """Every file under ``root`` (not inside ``ex``), following links to folders once each (a link
    back to a folder already walked is not followed again), and what is neither a file nor a
    folder (a FIFO, a socket: a record whose read refuses it). What cannot be walked is kept as an
    entry of its own, so that it gets a READ_ERROR row instead of vanishing: a folder that cannot
    be listed (its OSError) and a link to nothing or into a loop of links. Regular files cost no
    call beyond the folder listing (200k files took 1.4 stat calls each)."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()

    def unlisted(e: OSError) -> None:
        if e.filename and os.fspath(e.filename) == root:
            raise e  # the source itself cannot be listed: the job cannot run (exit 1)
        if e.filename:
            found.append(os.fspath(e.filename))

    # Depth first, each folder's subfolders in name order, as os.walk(followlinks=True) goes, but
    # with a stack of its own: os.walk recurses (Python 3.11), and a tree ~1,000 folders deep
    # stopped the job with a RecursionError. Each entry carries its folder's real path, extended
    # by name unless the subfolder is a link (realpath of every subfolder cost the depth's square
    # in lstat calls of deep paths: 14 s for that tree).
    stack = [(root, os.path.realpath(root))]
    while stack:
        d, real = stack.pop()
        listed = _list_folder(d, unlisted)
        if listed is None:
            continue
        dirs, names = listed
        try:
            st = os.stat(d)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:  # a link loop, or a second link to the same folder
            continue
        seen.add((st.st_dev, st.st_ino))
        subs = []
        for n, link in sorted(dirs):
            sub_real = os.path.realpath(os.path.join(d, n)) if link else os.path.join(real, n)
            if not inside(sub_real, ex):
                subs.append((os.path.join(d, n), sub_real))
        stack.extend(reversed(subs))
        for n, kind in names:
            p = os.path.join(d, n)
            if kind == _FILE:
                found.append(p)
            elif kind == _LINK:  # only a link can lead into ex from a folder outside it
                if not os.path.exists(p):
                    found.append(p)  # a link to nothing
                elif not inside(os.path.realpath(p), ex) and (os.path.isfile(p) or _special(p)):
                    found.append(p)
            elif _special(p):
                found.append(p)
    return found


def id_prefix(path: str, root: str) -> str:
    """The id prefix of a tar or Parquet file: its path relative to the source root (so
    train/000000.tar and val/000000.tar differ), or its file name when ``root`` is empty."""
    rel = os.path.relpath(path, root) if root else os.path.basename(path)
    return text(rel.replace(os.sep, "/"))


def _prefix(shard: Shard, path: str) -> str:
    return id_prefix(path, shard.root)


#: A relative name whose ``file://`` URI is its root's URI, '/', the name: characters that
#: path_to_uri does not quote, and no empty, '.' or '..' component (which normpath would change).
_PLAIN_NAME = re.compile(r"(?!\.\.?(?:/|$))[A-Za-z0-9_.~-]+(?:/(?!\.\.?(?:/|$))[A-Za-z0-9_.~-]+)*")


def file_uris(root: str, rels: list[str]) -> list[str]:
    """The ``file://`` URI of each name relative to ``root``, as path_to_uri gives it for the
    normalised path (plain names by concatenation: the join, normpath and quote took ~3 us of the
    GIL a file)."""
    base = path_to_uri(root)
    if not base.endswith("/"):
        base += "/"
    return [
        base + r if _PLAIN_NAME.fullmatch(r) else path_to_uri(os.path.normpath(os.path.join(root, r)))
        for r in rels
    ]


def _file_batches(shard: Shard, batch_size: int, only: set[str] | None) -> Iterator[pa.RecordBatch]:
    rels = [r for r in shard.files if only is None or text(r) in only]
    for i in range(0, len(rels), batch_size):
        part = rels[i : i + batch_size]
        uris = file_uris(shard.root, part)
        yield pa.RecordBatch.from_pydict(
            {
                "id": [text(r) for r in part],
                "path": uris,
                "source_uri": uris,
                "member": [None] * len(part),
            }
        )


def _bad_name(name: str) -> str | None:
    """Why a member named so is refused (an absolute path, a '..' component), or None."""
    if name.startswith("/"):
        return f"member {name!r} has an absolute path: refused"
    if ".." in name and ".." in name.split("/"):
        return f"member {name!r} climbs out of the archive ('..'): refused"
    return None


def _bad_member(m: tarfile.TarInfo) -> str | None:
    why = _bad_name(m.name)
    if why is not None:
        return why
    if m.issym() or m.islnk():
        return f"member {m.name!r} is a link: refused (links are not followed)"
    if m.isfifo() or m.ischr() or m.isblk():
        what = "a FIFO" if m.isfifo() else "a device"
        return f"member {m.name!r} is {what}, not a file: refused"
    return None


#: (TarInfo, or None for a member read by _core.tar_scan; name; type; size; header offset; data
#: offset; the data's first bytes, or None where they are still to be read)
_Entry = tuple[tarfile.TarInfo | None, str, bytes, int, int, int, bytes | None]
#: Members read by one _core.tar_scan call.
_SCAN_RUN = 1024


def _tar_entries(tf: tarfile.TarFile, fd: int | None) -> Iterator[_Entry]:
    """``tf``'s members, as iterating it gives them (the same names, types, sizes, data offsets,
    end offset and errors), with the common headers read natively: runs of plain file or folder
    headers (ustar / GNU / v7, octal fields, the checksum tarfile computes), each alone or after a
    pax header that only sets times (what Python's tarfile writes for a float mtime, as
    WebDataset writers do) go through ``_core.tar_scan`` without the GIL (with each member's
    first 16 bytes, read with its header); a header it stops at goes to _next_member, then to
    tarfile (long names, links, pax paths or sizes, global headers, sparse members, a bad or last
    header), from the same offset. tarfile's iteration took 16-38 us of the GIL a member, the
    Python header reader 7-17."""
    native = fd is not None and tf.errors == "surrogateescape" and _utf8(tf.encoding)
    m = tf.next()  # the first member: tarfile.open has read it already
    while m is not None:
        forget_members(tf)
        yield m, m.name, m.type, m.size, m.offset, m.offset_data, None
        while native and not tf.pax_headers and 0 < tf.offset < 1 << 62:
            assert fd is not None
            tf.offset, run = _core.tar_scan(fd, tf.offset, _SCAN_RUN)
            for e in run:
                yield (None, *e)
            if len(run) < _SCAN_RUN:
                break
        m = _next_member(tf, fd) if fd is not None else tf.next()


def _utf8(encoding: str | None) -> bool:
    try:
        return codecs.lookup(encoding or "").name == "utf-8"
    except LookupError:
        return False


def tar_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """``tf``'s members as TarInfo, read as _tar_entries reads them."""
    for m, name, typ, size, header, data, _ in _tar_entries(tf, _tar_fd(tf)):
        if m is None:
            m = tarfile.TarInfo(name)
            m.type, m.size, m.offset, m.offset_data = typ, size, header, data
        yield m


_PLAIN = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE)
_NUMBERS = ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345))
_PAX_TIMES = frozenset((b"mtime", b"atime", b"ctime"))
#: A number field as tar writers write it (octal digits, padding, a NUL): what tarfile reads as
#: octal text; any other field is checked by _octal, as tarfile checks it.
_NUMBER = re.compile(rb"[ \t\n\r\x0b\x0c]*[0-7]*[ \t\n\r\x0b\x0c]*(?:\x00[\x00-\xff]*)?")


def _octal(field: bytes) -> int | None:
    """tarfile's number field read as octal text; None where tarfile would read it otherwise
    (base-256) or refuse it."""
    if field[:1] in (b"\x80", b"\xff"):
        return None
    p = field.find(b"\0")
    try:
        return int((field[:p] if p != -1 else field).decode("ascii").strip() or "0", 8)
    except ValueError:
        return None


def _text(field: bytes, tf: tarfile.TarFile) -> str:
    p = field.find(b"\0")
    return (field[:p] if p != -1 else field).decode(tf.encoding or "utf-8", tf.errors or "surrogateescape")


def _plain_header(buf: bytes, tf: tarfile.TarFile) -> tuple[str, bytes, int] | None:
    """(name, type, size) of a header block that tarfile reads as a plain file, folder or pax
    header with these values; None for any other block (tarfile reads it)."""
    if len(buf) != tarfile.BLOCKSIZE or not buf.strip(b"\0"):
        return None
    typ = buf[156:157]
    if typ not in _PLAIN and typ != tarfile.XHDTYPE:
        return None
    chksum = _octal(buf[148:156])
    if chksum is None or chksum != 256 + sum(buf) - sum(buf[148:156]):
        return None  # (tarfile also takes a signed-byte checksum: it reads those itself)
    size = _octal(buf[124:136])
    if size is None or not all(
        _NUMBER.fullmatch(buf, a, b) or _octal(buf[a:b]) is not None for a, b in _NUMBERS
    ):
        return None
    name = _text(buf[0:100], tf)
    prefix = _text(buf[345:500], tf)
    if typ == tarfile.AREGTYPE and name.endswith("/"):  # v7: a folder is a file named 'x/'
        typ = tarfile.DIRTYPE
    if typ == tarfile.DIRTYPE:
        name = name.rstrip("/")
    if prefix:
        name = prefix + "/" + name
    if typ == tarfile.DIRTYPE:
        name = name.rstrip("/")
    return name, typ, size


def _times_only(data: bytes) -> bool:
    """Whether pax records ``data`` are well formed and set only mtime / atime / ctime."""
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 21)
        if space <= pos or not data[pos:space].isdigit():
            return False
        end = pos + int(data[pos:space])
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if end > len(data) or data[end - 1 : end] != b"\n" or not eq or key not in _PAX_TIMES:
            return False
        if not value or not value.replace(b".", b"", 1).isdigit():
            return False
        pos = end
    return pos == len(data)


def _block(n: int) -> int:
    return -(-n // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _next_member(tf: tarfile.TarFile, fd: int) -> tarfile.TarInfo | None:
    """The member at ``tf.offset``, read here when its headers are plain (see tar_members), else by
    tarfile; ``tf.offset`` is left after it, as tarfile leaves it."""
    at = tf.offset
    if tf.pax_headers or not 0 < at < 1 << 62:
        # A global pax header applies to every member after it; an offset no file has (after a
        # size field of 2^80, or a negative one in base-256) is tarfile's to refuse, its own way.
        return tf.next()
    head = _plain_header(os.pread(fd, tarfile.BLOCKSIZE, at), tf)
    if head is None:
        return tf.next()
    name, typ, size = head
    header = at
    if typ == tarfile.XHDTYPE:
        records = os.pread(fd, size, at + tarfile.BLOCKSIZE)
        if len(records) != size or not _times_only(records):
            return tf.next()
        header = at + tarfile.BLOCKSIZE + _block(size)
        head = _plain_header(os.pread(fd, tarfile.BLOCKSIZE, header), tf)
        if head is None or head[1] == tarfile.XHDTYPE:
            return tf.next()
        name, typ, size = head
    m = tarfile.TarInfo(name)
    m.type, m.size, m.offset = typ, size, at
    m.offset_data = header + tarfile.BLOCKSIZE
    tf.offset = m.offset_data + (_block(size) if m.isreg() else 0)
    return m


def ends_cleanly(path: str, offset: int) -> bool:
    """Whether the tar at ``path`` has its end-of-archive zero blocks at ``offset`` (tarfile's
    offset after its last member): tarfile ends quietly where a header is cut short or missing."""
    with open(path, "rb") as f:
        f.seek(offset)
        rest = f.read(1 << 16)
    return len(rest) >= 512 and not rest.strip(b"\0")


def _member_bytes(tf: tarfile.TarFile, m: tarfile.TarInfo, size: int | None = None) -> bytes:
    """The first ``size`` bytes (all by default) of a regular member's data: one ``pread`` (its
    data lies in one piece after its header), or extractfile for a sparse member. A tar cut inside
    the data raises ReadError("unexpected end of data"), as extractfile's read does."""
    want = m.size if size is None else min(size, m.size)
    fd = _tar_fd(tf)
    if m.issparse() or fd is None:
        f = tf.extractfile(m)
        return f.read(want) if f is not None else b""
    data = os.pread(fd, want, m.offset_data)
    while len(data) < want:  # a short read: read on, or the tar ends inside the member
        more = os.pread(fd, want - len(data), m.offset_data + len(data))
        if not more:
            raise tarfile.ReadError("unexpected end of data")
        data += more
    return data


def _tar_fd(tf: tarfile.TarFile) -> int | None:
    """The descriptor of the tar's file (None for a tar read from a stream)."""
    try:
        return int(getattr(tf.fileobj, "fileno")())  # noqa: B009  (the stub's _Fileobj lacks it)
    except (AttributeError, OSError, ValueError, TypeError):
        return None


def _member_is_image(tf: tarfile.TarFile, m: tarfile.TarInfo) -> bool:
    """looks_like_image on a member's first 16 bytes (read without reading the rest)."""
    return looks_like_image(_member_bytes(tf, m, 16) if m.isfile() else b"", m.name)


def _entry_is_image(tf: tarfile.TarFile, m: tarfile.TarInfo | None, name: str, head: bytes | None) -> bool:
    """_member_is_image for an entry of _tar_entries (a regular member): its first bytes as read
    with its header, else read now."""
    if head is not None:
        return looks_like_image(head, name)
    assert m is not None
    return _member_is_image(tf, m)


#: A tar batch's bytes from this size on are a large_binary column (binary's offsets are int32).
_LARGE_BATCH = 1 << 31


class _TarBatch:
    """The image members of a tar batch, their data read when the batch is made: each member's
    bytes go straight from the file into one Arrow buffer (``preadv`` at its offset), where
    extractfile's read, then Arrow's copy of the bytes, had taken ~100 us of the GIL a 150 kB
    member."""

    def __init__(self, fd: int | None, source_uri: str) -> None:
        self.fd, self.source_uri = fd, source_uri
        self.ids: list[str] = []
        self.members: list[str] = []
        self.where: list[tuple[int, int] | bytes] = []  # (offset, size) in the tar, or the bytes

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, rid: str, name: str, where: tuple[int, int] | bytes) -> None:
        self.ids.append(rid)
        self.members.append(name)
        self.where.append(where)

    def batch(self) -> pa.RecordBatch:
        sizes = [w[1] if isinstance(w, tuple) else len(w) for w in self.where]
        total = sum(sizes)
        large = total >= _LARGE_BATCH
        offsets = [0]
        for n in sizes:
            offsets.append(offsets[-1] + n)
        data = pa.allocate_buffer(max(total, 1))
        view = memoryview(data).cast("B")
        for k, w in enumerate(self.where):
            a, b = offsets[k], offsets[k + 1]
            if not isinstance(w, tuple):
                view[a:b] = w
                continue
            got = 0
            while got < b - a:  # preadv may read less than asked: read on
                assert self.fd is not None
                n = os.preadv(self.fd, [view[a + got : b]], w[0] + got)
                if n <= 0:
                    raise tarfile.ReadError("unexpected end of data")
                got += n
        view.release()
        offset_type = pa.int64() if large else pa.int32()
        blobs = pa.Array.from_buffers(
            pa.large_binary() if large else pa.binary(),
            len(self.ids),
            [None, pa.array(offsets, offset_type).buffers()[1], data],
        )
        return pa.RecordBatch.from_arrays(
            [
                pa.array(self.ids, pa.string()),
                blobs,
                pa.array([self.source_uri] * len(self.ids), pa.string()),
                pa.array(self.members, pa.string()),
            ],
            names=["id", "bytes", "source_uri", "member"],
        )


def _tar_batches(
    shard: Shard,
    batch_size: int,
    only: set[str] | None,
    max_bytes: int | None = None,
    on_sidecar: Callable[[], None] | None = None,
) -> Iterator[pa.RecordBatch | Refused]:
    def sidecar() -> None:
        if on_sidecar is not None:
            on_sidecar()

    path = uri_to_path(shard.source_uri)
    tar_name = _prefix(shard, path)
    try:
        with tarfile.open(path, "r:") as tf:
            fd = _tar_fd(tf)
            end = os.fstat(fd).st_size if fd is not None else None
            pending = _TarBatch(fd, shard.source_uri)
            try:
                names: dict[str, int] = {}
                used: set[str] = set()
                for m, raw, typ, size, _, offset, head in _tar_entries(tf, fd):
                    name = text(raw)
                    base = f"{tar_name}/{name}"
                    seen = names[name] = names.get(name, 0) + 1
                    # The same name again: its own id, never read (which copy is meant?). An id already
                    # given (a member really named 'a.jpg#2' after a second 'a.jpg', or before it) takes
                    # the next free '#k', so that ids stay unique within the tar.
                    k = seen
                    rid = base if k == 1 else f"{base}#{k}"
                    while rid in used:
                        k += 1
                        rid = f"{base}#{k}"
                    used.add(rid)
                    if only is not None and rid not in only:
                        continue
                    # tar_scan reads only regular files and folders, without sparse data
                    if m is None:
                        why, isfile = _bad_name(raw), typ != tarfile.DIRTYPE
                    else:
                        why, isfile = _bad_member(m), m.isfile()
                    if why is None and seen > 1 and isfile:
                        if not _entry_is_image(tf, m, raw, head):
                            sidecar()  # a repeated sidecar is skipped as any sidecar is
                            continue
                        why = f"member {name!r} appears {seen} times in the archive: refused (ambiguous)"
                    if why is not None:
                        yield Refused(rid, shard.source_uri, name, text(why))
                        continue
                    if not isfile:
                        continue
                    if max_bytes is not None and size > max_bytes:
                        if _entry_is_image(tf, m, raw, head):
                            why = over_limit(f"member {name!r}", size, max_bytes)
                            yield Refused(rid, shard.source_uri, name, why)
                        else:
                            sidecar()  # a large sidecar is skipped as any sidecar is
                        continue
                    where: tuple[int, int] | bytes
                    if m is not None and (m.issparse() or fd is None or end is None):
                        data = _member_bytes(tf, m)
                        head, where = data[:16], data
                    else:
                        if end is None or offset + size > end:  # cut inside its data: as extractfile says it
                            raise tarfile.ReadError("unexpected end of data")
                        if head is None:
                            assert m is not None
                            head = _member_bytes(tf, m, 16)
                        where = (offset, size)
                    if not looks_like_image(head, raw):
                        sidecar()
                        continue
                    pending.add(rid, name, where)
                    if len(pending) >= batch_size:
                        yield pending.batch()
                        pending = _TarBatch(fd, shard.source_uri)
                if not ends_cleanly(path, tf.offset):
                    raise tarfile.ReadError(
                        "it has no end-of-archive blocks after its last member (truncated?)"
                    )
                if len(pending):
                    yield pending.batch()
                    pending = _TarBatch(fd, shard.source_uri)
            except (tarfile.TarError, OSError, EOFError, ValueError):
                # The records read before the error keep their rows: their batch is made now,
                # while the file is open; then the tar's own row says what went wrong.
                if len(pending):
                    try:
                        done = pending.batch()
                    except (tarfile.TarError, OSError):
                        done = None  # the file changed under the read: the tar's row stands for them
                    pending = _TarBatch(fd, shard.source_uri)
                    if done is not None:
                        yield done
                raise
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        rid = f"{tar_name}/"
        if only is None or rid in only:
            yield Refused(rid, shard.source_uri, None, text(f"cannot read tar {tar_name}: {e}"))
        return


def _pick(
    names: list[str], schema: pa.Schema, wanted: tuple[str, ...], types: tuple[Any, ...], any_name: bool
) -> str | None:
    for n in wanted:
        if n in names and any(t(schema.field(n).type) for t in types):
            return n
    if any_name:
        for n in names:
            if any(t(schema.field(n).type) for t in types) and n not in _ID_COLUMNS:
                return n
    return None


def _is_image_struct(t: pa.DataType) -> bool:
    """Hugging Face's image feature: struct<bytes: binary, path: string> (large_binary too)."""
    return pa.types.is_struct(t) and any(
        t.field(i).name == "bytes"
        and (pa.types.is_binary(t.field(i).type) or pa.types.is_large_binary(t.field(i).type))
        for i in range(t.num_fields)
    )


def parquet_columns(schema: pa.Schema, id_column: str = "auto") -> tuple[str | None, str | None, str | None]:
    """(id column, bytes column, path column) of a Parquet input, by name and type: a bytes column
    by name or else any binary (or Hugging Face image struct) column; a path column only by name
    (any string column could be a caption). ``id_column``: ``"auto"`` (an ``id`` or ``key``
    column), ``"none"`` (no id column: ids by row) or a column's name (None when it is absent)."""
    names = schema.names
    is_bin = (pa.types.is_binary, pa.types.is_large_binary, _is_image_struct)
    is_str = (pa.types.is_string, pa.types.is_large_string)
    if id_column == "auto":
        id_col = next((n for n in _ID_COLUMNS if n in names), None)
    else:
        id_col = id_column if id_column in names else None
        names = [n for n in names if n != id_column]
    by = _pick(names, schema, _BYTES_COLUMNS, is_bin, True)
    pa_col = None if by else _pick([n for n in names if n != id_col], schema, _PATH_COLUMNS, is_str, False)
    return id_col, by, pa_col


def forget_members(tf: tarfile.TarFile) -> None:
    """Drop the member headers an iterating TarFile keeps (its ``members`` list): a tar of
    millions of members would hold them all (~1 kB each) until it is closed. Iteration goes on
    from the file offset, so a member-by-member pass is unaffected."""
    members = getattr(tf, "members", None)
    if isinstance(members, list):
        members.clear()


def _parquet_batches(
    shard: Shard, batch_size: int, only: set[str] | None, id_column: str = "auto"
) -> Iterator[pa.RecordBatch | Refused]:
    path = uri_to_path(shard.source_uri)
    name = _prefix(shard, path)
    try:
        # Buffered reads: a row group's column chunks are streamed, not loaded whole (pyarrow's
        # writer makes groups of up to 1M rows: an 800 MB single-group file took +881 MB, +81 MB
        # so).
        pf = pq.ParquetFile(path, buffer_size=_PARQUET_BUFFER, pre_buffer=False)
    except (OSError, pa.ArrowException) as e:
        yield Refused(f"{name}#", shard.source_uri, None, text(f"cannot read parquet {name}: {e}"))
        return
    id_col, by, pcol = parquet_columns(pf.schema_arrow, id_column)
    if id_column not in ("auto", "none") and id_col is None:
        why = f"parquet {name} has no column {id_column!r} (the id_column option)"
        yield Refused(f"{name}#", shard.source_uri, None, text(why))
        return
    if by is None and pcol is None:
        yield Refused(
            f"{name}#",
            shard.source_uri,
            None,
            f"parquet {name} has no bytes (binary) or path column ({', '.join(_PATH_COLUMNS)})",
        )
        return
    cols = [c for c in (id_col, by, pcol) if c is not None]
    row = 0
    # Row group by row group, so that a damaged page costs only its own group's rows.
    groups = (b for g in range(pf.num_row_groups) for b in pf.iter_batches(batch_size, [g], columns=cols))
    while True:
        try:
            b = next(groups, None)
        except (OSError, pa.ArrowException) as e:  # a damaged page: the rows before it stand
            if only is None or f"{name}#" in only:
                why = text(f"cannot read parquet {name} after row {row}: {e}")
                yield Refused(f"{name}#", shard.source_uri, None, why)
            return
        if b is None:
            return
        n = b.num_rows
        rows = [str(row + i) for i in range(n)]
        given = b.column(id_col).to_pylist() if id_col else [None] * n
        # A row without an id (no id column, or a null in it) is named by its place in the file.
        ids = [id_text(v) if v is not None else f"{name}#{r}" for v, r in zip(given, rows, strict=True)]
        row += n
        keep = [i for i in range(n) if only is None or ids[i] in only]
        if not keep:
            continue
        d: dict[str, Any] = {
            "id": [ids[i] for i in keep],
            "source_uri": [shard.source_uri] * len(keep),
            "member": [rows[i] for i in keep],
        }
        arr = b.column(by if by is not None else pcol)
        here = os.path.dirname(path)  # relative paths are relative to the Parquet file's folder
        if pa.types.is_struct(arr.type):  # a Hugging Face image: its path where it has no bytes
            spaths = struct_paths(arr)
            if spaths is not None:
                d["path"] = [_resolve(spaths[i], here) for i in keep]
            arr = pc.struct_field(arr, "bytes")
        if by is not None:  # the column's own buffers (a copy only when some rows are left out)
            d["bytes"] = arr if len(keep) == n else arr.take(pa.array(keep, pa.int64()))
        else:
            col = arr.to_pylist()
            d["path"] = [_resolve(col[i], here) for i in keep]
        yield pa.RecordBatch.from_pydict(d)


def _resolve(p: str | None, here: str | None) -> str | None:
    """A path column's value as read: relative to ``here`` (the Parquet file's folder, when known);
    URIs and absolute paths as they are."""
    if p is None or here is None or "://" in p or p.startswith("file:") or os.path.isabs(p):
        return p
    return os.path.join(here, p)


def repeated_id(shards: list[Shard], id_column: str = "auto") -> str | None:
    """Where two records of these shards would share an id: a message naming the id and both
    places, else None. Only the ids taken from a Parquet column can repeat (file and member ids
    are unique by construction); each Parquet file's id column is read (that column only), and a
    file that cannot be read is passed over (its read gives it a SOURCE_ERROR row)."""
    if id_column == "none" or not any(s.kind == "parquet" for s in shards):
        return None
    if _ids_distinct(shards, id_column):
        return None
    # Some id repeats: find the first and name both places (a Python pass, only now).
    seen = {text(f) for s in shards if s.kind == "files" for f in s.files}
    for rid, where, col in _column_ids(shards, id_column):
        if rid in seen:
            first = next(
                (w for r, w, _ in _column_ids(shards, id_column) if r == rid and w != where),
                f"the file {rid}",  # a folder's file: its path is its id
            )
            return (
                f"the id {rid!r} is on {first} and on {where} (column {col!r}): every record needs "
                "an id of its own (dedup and retry-failed match rows by id); set "
                'id_column = "none" (ids <file>#<row>) or name a column whose values are unique'
            )
        seen.add(rid)
    return None


def _ids_distinct(shards: list[Shard], id_column: str) -> bool | None:
    """Whether the ids of the folder files and of the Parquet id columns are all distinct, sorted
    in Arrow (a Python set of 8M ids took 12.6 s); None when a column's type is one whose id text
    Arrow does not give as str() does (then the Python pass decides)."""
    files = [text(f) for s in shards if s.kind == "files" for f in s.files]
    arrays: list[pa.Array] = list(pa.chunked_array([pa.array(files, pa.string())]).chunks) if files else []
    del files
    for s in shards:
        if s.kind != "parquet":
            continue
        try:
            pf = pq.ParquetFile(uri_to_path(s.source_uri))
            col = parquet_columns(pf.schema_arrow, id_column)[0]
            if col is None:
                continue
            values = pf.read(columns=[col]).column(0)
        except (OSError, pa.ArrowException):
            continue  # as _column_ids: its read gives it a SOURCE_ERROR row
        t = values.type
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)):
            return None
        values = pc.drop_null(values)
        # string chunks as they are (no copy); each chunk of a large_string column is under 2 GB
        arrays.extend(c if pa.types.is_string(c.type) else c.cast(pa.string()) for c in values.chunks)
    ids = pa.chunked_array(arrays, type=pa.string())
    if len(ids) < 2:
        return True
    # Sorted, a repeat sits beside its twin (2.5 s for 8M ids, where count_distinct's hash table
    # took 6.8 s and 1.7 GB).
    ids = ids.take(pc.sort_indices(ids))
    return not pc.any(pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1))).as_py()


def _column_ids(shards: list[Shard], id_column: str) -> Iterator[tuple[str, str, str]]:
    """(id, 'row R of FILE', column) of every non-null id a Parquet column gives, in order."""
    for s in shards:
        if s.kind != "parquet":
            continue
        path = uri_to_path(s.source_uri)
        try:
            pf = pq.ParquetFile(path)
            col = parquet_columns(pf.schema_arrow, id_column)[0]
            if col is None:
                continue
            values = pf.read(columns=[col]).column(0).to_pylist()
        except (OSError, pa.ArrowException):
            continue
        name = _prefix(s, path)
        for row, v in enumerate(values):
            if v is not None:
                yield id_text(v), f"row {row} of {name}", col
