"""``mmcore report``: the HTML page and its markdown twin on fake run outputs (report_fixtures)."""

from __future__ import annotations

import argparse
import base64
import doctest
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from report_fixtures import STAGE_SECONDS, encoded, row, write_clusters, write_output

import mmcore.jobs.report as report_module
from mmcore.jobs import Config
from mmcore.jobs.report import GALLERY_MEMBERS, TOP_ERRORS, register, report

EVIL_ID = "<script>alert(1)</script>"
EVIL_MSG = 'member "../evil" & <b>x</b> refused'
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def color(k: int) -> tuple[int, int, int]:
    return (40 + 50 * (k % 5), 220 - 60 * (k % 4), 30 + 70 * (k % 3))


class Page(HTMLParser):
    """The page's tags (checked for balance), text, images and table cells."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.unbalanced: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.tables: list[list[list[str]]] = []
        self.h5: list[str] = []
        self._cell: list[str] | None = None
        self._in_h5 = False
        self.feed(text)
        self.close()
        if self.stack:
            self.unbalanced.append(f"unclosed {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(dict(attrs))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        self._in_h5 = self._in_h5 or tag == "h5"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        if tag == "h5":
            self._in_h5 = False
        if not self.stack or self.stack[-1] != tag:
            self.unbalanced.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_h5:
            self.h5.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def md_tables(md: str) -> list[list[list[str]]]:
    """The markdown's tables as rows of cells, unescaped (separator rows dropped)."""
    tables: list[list[list[str]]] = []
    prev = False
    for line in md.splitlines():
        is_row = line.startswith("| ")
        if is_row:
            if not prev:
                tables.append([])
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            cells = [html.unescape(re.sub(r"\\(.)", r"\1", c.strip())) for c in cells]
            if not all(re.fullmatch(r"-+:?", c) for c in cells):
                tables[-1].append(cells)
        prev = is_row
    return tables


def table_after(tables: list[list[list[str]]], header: list[str]) -> list[list[str]]:
    """The body rows of the first table with this header."""
    for t in tables:
        if t and t[0] == header:
            return t[1:]
    raise AssertionError(f"no table with header {header}")


def sample(out: Path, *, thumbnails: bool = True) -> None:
    """Two completed shards, one leftover without its completion record, one not started; a
    dedup file with a 10-member group (beyond the gallery's 8), a pair and 5 singletons."""

    def th(k: int, fmt: str = "JPEG") -> bytes | None:
        return encoded(color(k), (40 + k, 30), fmt) if thumbnails else None

    part0 = [row(f"img-{k:02d}", thumbnail=th(k)) for k in range(4)] + [
        row("bad-jpeg", "CORRUPT", error="Invalid JPEG file structure", error_stage="decode"),
        row(EVIL_ID, "SOURCE_ERROR", error=EVIL_MSG, error_stage="source"),
    ]
    part1 = [row(f"img-{k:02d}", thumbnail=th(k)) for k in (4, 5)] + [
        row("img-06", thumbnail=th(6, "WEBP")),
        row("huge", "TOO_LARGE", error="over max_pixels", error_stage="decode"),
    ]
    write_output(
        out,
        {"part-00000": part0, "part-00001": part1, "part-00002": [row("leftover-0")]},
        done=["part-00000", "part-00001"],
        listed=["part-00003"],
        source="/data/<corpus>",
        config=Config(thumbnail=64 if thumbnails else 0),
        wall_seconds={"part-00000": 3.0, "part-00001": 0.5},
        stage_seconds={
            "part-00000": {"read": 1.25, "decode_hash": 2.5, "thumbnail": 0.5, "write": 0.25},
            "part-00001": {"read": 2.5, "decode_hash": 5.0, "thumbnail": 0.75, "write": 0.5},
        },
        row_group_size=2,
    )
    big = [("img-00", 0), ("img-01", 3), ("img-02", 5), ("img-04", 1), ("img-05", 7), (EVIL_ID, 9)]
    big += [("img-06", 2), ("img-03", 4), ("absent-0", 11), ("absent-1", 12)]
    write_clusters(out, [big, [("bad-jpeg", 0), ("huge", 4)]], singletons=[f"x-{k}" for k in range(5)])


def build(tmp_path: Path, **kw: Any) -> tuple[Path, Page, str]:
    out = tmp_path / "out"
    sample(out, **{k: v for k, v in kw.items() if k == "thumbnails"})
    index = report(out, **{k: v for k, v in kw.items() if k != "thumbnails"})
    page = Page(index.read_text())
    return out, page, (index.parent / "report.md").read_text()


def test_page_states_the_job(tmp_path: Path) -> None:
    out, page, _ = build(tmp_path)
    assert page.unbalanced == []
    assert "script" not in page.tags
    job = dict(table_after(page.tables, ["", ""]))
    manifest = json.loads((out / "_mmcore_job.json").read_text())
    assert job["source"] == "/data/<corpus>"
    assert job["config hash"] == manifest["config_hash"] == Config(thumbnail=64).config_hash()
    assert job["mmcore version"] == manifest["mmcore_version"]
    assert job["shards complete"] == "2 / 4"
    assert job["records"].startswith("10 of ")  # leftover-0 (no completion record) does not count
    assert "leftover-0" not in page.all_text
    statuses = table_after(page.tables, ["status", "records", "share"])
    assert statuses == [
        ["OK", "7", "70.0%"],
        ["CORRUPT", "1", "10.0%"],
        ["TOO_LARGE", "1", "10.0%"],
        ["SOURCE_ERROR", "1", "10.0%"],
    ]
    config = dict(table_after(page.tables, ["option", "value"]))
    assert config["thumbnail"] == "64" and config["hashes"] == json.dumps(list(Config().hashes))
    assert config["hash_mode"] == "exact"


def test_page_states_throughput_and_stage_times(tmp_path: Path) -> None:
    _, page, _ = build(tmp_path)
    shards = table_after(page.tables, ["shard", "rows", "wall s", "images/s"])
    assert shards == [["part-00000", "6", "3.00", "2.0"], ["part-00001", "4", "0.50", "8.0"]]
    stages = table_after(page.tables, ["stage", "seconds", "share"])
    total = 3.75 + 7.5 + 1.25 + 0.75
    assert stages == [
        [k, f"{v:.2f}", f"{100 * v / total:.1f}%"]
        for k, v in (("read", 3.75), ("decode_hash", 7.5), ("thumbnail", 1.25), ("write", 0.75))
    ]
    assert "10 rows in 3.50 s" in page.all_text
    assert table_after(page.tables, ["stage", "records"]) == [["source", "1"], ["decode", "2"]]
    assert page.tags.count("svg") >= 6  # throughput, stage time, errors x2, sizes x2, cluster sizes


def test_untrusted_strings_are_escaped(tmp_path: Path) -> None:
    out, page, md = build(tmp_path)
    raw = (out / "report" / "index.html").read_text()
    assert EVIL_ID not in raw and "<b>x</b>" not in raw
    assert html.escape(EVIL_ID) in raw and html.escape(EVIL_MSG) in raw  # &lt;script&gt; ... &amp; &quot;
    assert "script" not in page.tags and "b" not in page.tags
    errors = table_after(page.tables, ["records", "message", "status", "stage", "example id"])
    assert ["1", EVIL_MSG, "SOURCE_ERROR", "source", EVIL_ID] in errors
    assert EVIL_ID in page.h5 or EVIL_ID in page.all_text  # listed in the gallery as text
    assert EVIL_ID not in md and "<b>" not in md and "<corpus>" not in md
    assert ["1", EVIL_MSG, "SOURCE_ERROR", "source", EVIL_ID] in table_after(
        md_tables(md), ["records", "message", "status", "stage", "example id"]
    )


def test_markdown_states_the_same_facts(tmp_path: Path) -> None:
    _, page, md = build(tmp_path)
    html_tables = [t for t in page.tables if t[0] != []]
    assert md_tables(md)[: len(html_tables)] == html_tables
    assert "| records | 10 of 11 listed in the manifest |" in md


def test_gallery_embeds_thumbnails_as_data_uris(tmp_path: Path) -> None:
    out, page, md = build(tmp_path)
    imgs = page.imgs
    # group 1 shows its representative and the 7 nearest (the evil id has no thumbnail); group 2 none
    ids = [i["alt"] for i in imgs]
    assert ids == ["img-00", "img-04", "img-06", "img-01", "img-03", "img-02", "img-05"]
    for img in imgs:
        src = img["src"]
        assert src is not None
        m = re.fullmatch(r"data:image/(jpeg|webp);base64,([A-Za-z0-9+/=]+)", src)
        assert m, src[:40]
        k = int(str(img["alt"])[-2:])
        with Image.open(io.BytesIO(base64.b64decode(m.group(2)))) as im:
            assert im.format == ("WEBP" if k == 6 else "JPEG") and m.group(1) == im.format.lower()
            assert im.size == (40 + k, 30)
            mean = np.asarray(im.convert("RGB"), dtype=np.float64).mean(axis=(0, 1))
        assert np.abs(mean - color(k)).max() < 8
    assert [t.split(":")[0] for t in page.h5] == ["cluster 0", "cluster 1"]
    assert "cluster 0: 10 ids" in page.h5
    captions = page.all_text
    assert "absent-0" not in captions and "distance 9" in captions
    # report.md refers to the same thumbnails as files beside it
    files = re.findall(r"\]\((thumbs/[^)]+)\)", md)
    assert len(files) == len(imgs)
    for f, img in zip(files, imgs, strict=True):
        data = (out / "report" / f).read_bytes()
        assert img["src"] is not None and img["src"].endswith(base64.b64encode(data).decode())
    sizes = table_after(md_tables(md), ["cluster size", "clusters"])
    assert sizes == [["1", "5"], ["2", "1"], ["3", "0"], ["4", "0"], ["5-8", "0"], ["9-16", "1"]]
    gallery_rows = table_after(md_tables(md), ["thumbnail", "id", ""])
    assert len(gallery_rows) == GALLERY_MEMBERS


def test_gallery_lists_ids_without_thumbnails(tmp_path: Path) -> None:
    _, page, md = build(tmp_path, thumbnails=False)
    assert page.imgs == [] and "data:" not in "".join(page.text)
    for i in ("img-00", "img-04", EVIL_ID, "bad-jpeg", "huge"):
        assert i in page.all_text
    assert "(no thumbnail)" in md and "thumbs/" not in md


def test_gallery_groups_limits_the_groups(tmp_path: Path) -> None:
    out, page, _ = build(tmp_path, gallery_groups=1)
    assert [t.split(":")[0] for t in page.h5] == ["cluster 0"]
    report(out, gallery_groups=0)
    assert Page((out / "report" / "index.html").read_text()).imgs == []
    assert not list((out / "report" / "thumbs").iterdir())  # the previous run's thumbnails are gone


def test_most_frequent_errors(tmp_path: Path) -> None:
    rows = []
    for k in range(25):  # message k on k + 1 records
        rows += [row(f"e{k}-{j}", "CORRUPT", error=f"error {k}", error_stage="decode") for j in range(k + 1)]
    write_output(tmp_path, {"part-00000": rows[::2], "part-00001": rows[1::2]})
    md = (report(tmp_path).parent / "report.md").read_text()
    errors = table_after(md_tables(md), ["records", "message", "status", "stage", "example id"])
    assert len(errors) == TOP_ERRORS
    first = {}
    for r in rows[::2] + rows[1::2]:  # the first record of each message, in shard order
        first.setdefault(r["error"], r["id"])
    assert errors == [
        [str(k + 1), f"error {k}", "CORRUPT", "decode", first[f"error {k}"]] for k in range(24, 4, -1)
    ]
    assert f"Most frequent error messages ({TOP_ERRORS} of 25 distinct)" in md.replace("\\", "")


def test_messages_naming_their_file_are_one_kind(tmp_path: Path) -> None:
    """A lost mount: every failed record's message names its own file. The table counts them as
    one kind (path as <path>, size as <n>), not one entry per record."""
    rows = [
        row(
            f"r{k}",
            "READ_ERROR",
            error=f"cannot read /mnt/lost dir/{k}.jpg: No such file or directory",
            error_stage="read",
        )
        for k in range(30)
    ]
    rows += [
        row(
            f"b{k}",
            "SOURCE_ERROR",
            error=f"/data/{k}.png is {10**6 + k:,} bytes, over the limit of 1,000,000 (max_bytes)",
            error_stage="read",
        )
        for k in range(5)
    ]
    rows += [row("c", "CORRUPT", error="JPEG: premature end of data segment", error_stage="decode")]
    write_output(tmp_path, {"part-00000": rows[::2], "part-00001": rows[1::2]})
    md = (report(tmp_path).parent / "report.md").read_text().replace("\\", "")
    errors = table_after(md_tables(md), ["records", "message", "status", "stage", "example id"])
    assert [e[:4] for e in errors] == [
        ["30", "cannot read <path>: No such file or directory", "READ_ERROR", "read"],
        [
            "5",
            "<record> is <n> bytes, over the limit of 1,000,000 (max_bytes)",
            "SOURCE_ERROR",
            "read",
        ],
        ["1", "JPEG: premature end of data segment", "CORRUPT", "decode"],
    ]
    assert "Most frequent error messages (3 of 3 distinct)" in md


def test_size_histograms(tmp_path: Path) -> None:
    rows = [row(f"s{k}", width=100, height=100, byte_size=1500) for k in range(3)]
    rows += [row(f"m{k}", width=4000, height=3000, byte_size=3_000_000) for k in range(2)]
    rows += [row("one", width=1000, height=1000, byte_size=999), row("bad", "CORRUPT", byte_size=None)]
    write_output(tmp_path, {"part-00000": rows})
    tables = md_tables((report(tmp_path).parent / "report.md").read_text())
    mp, nbytes = [t[1:] for t in tables if t[0] == ["bin", "images"]]
    assert dict(mp) == {
        "0.01-0.02 MP": "3",
        "0.02-0.05 MP": "0",
        "0.05-0.1 MP": "0",
        "0.1-0.2 MP": "0",
        "0.2-0.5 MP": "0",
        "0.5-1 MP": "0",
        "1-2 MP": "1",
        "2-5 MP": "0",
        "5-10 MP": "0",
        "10-20 MP": "2",
    }
    assert nbytes[0] == ["500 B-1 kB", "1"] and nbytes[1] == ["1 kB-2 kB", "3"]
    assert nbytes[-1] == ["2 MB-5 MB", "2"] and sum(int(c) for _, c in nbytes) == 6


def test_empty_output(tmp_path: Path) -> None:
    write_output(tmp_path, {"part-00000": [row("a")]}, done=[], listed=["part-00001"])
    index = report(tmp_path)
    page = Page(index.read_text())
    md = (index.parent / "report.md").read_text()
    assert page.unbalanced == []
    assert dict(table_after(page.tables, ["", ""]))["shards complete"] == "0 / 2"
    assert "0 of 2 shards completed: no records to report yet." in page.all_text
    assert "No dedup output" in page.all_text and page.imgs == []
    assert "| shards complete | 0 / 2 |" in md and "| records | 0 of 1 listed in the manifest |" in md


def test_thumbnails_are_read_only_for_gallery_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 records in row groups of 4; the only group of 2 or more holds r-13 and r-14 (row group 3)
    rows = [row(f"r-{k:02d}", thumbnail=encoded(color(k))) for k in range(40)]
    write_output(tmp_path, {"part-00000": rows}, row_group_size=4)
    write_clusters(tmp_path, [[("r-13", 0), ("r-14", 2)]], singletons=[f"r-{k:02d}" for k in range(13)])
    calls: list[tuple[str, Any]] = []
    pf = pq.ParquetFile
    orig_rg, orig_iter, orig_read = pf.read_row_group, pf.iter_batches, pf.read

    def read_row_group(self: pq.ParquetFile, i: int, columns: Any = None, **kw: Any) -> Any:
        calls.append((f"row group {i}", columns))
        return orig_rg(self, i, columns=columns, **kw)

    def iter_batches(self: pq.ParquetFile, *a: Any, columns: Any = None, **kw: Any) -> Any:
        calls.append(("iter_batches", columns))
        return orig_iter(self, *a, columns=columns, **kw)

    def read(self: pq.ParquetFile, columns: Any = None, **kw: Any) -> Any:
        calls.append(("read", columns))
        return orig_read(self, columns=columns, **kw)

    monkeypatch.setattr(pf, "read_row_group", read_row_group)
    monkeypatch.setattr(pf, "iter_batches", iter_batches)
    monkeypatch.setattr(pf, "read", read)
    page = Page(report(tmp_path).read_text())
    assert [i["alt"] for i in page.imgs] == ["r-13", "r-14"]
    assert all(c is not None for _, c in calls)  # never every column
    assert [(how, c) for how, c in calls if "thumbnail" in c] == [("row group 3", ["id", "thumbnail"])]
    # the id statistics of the other row groups rule them out unread
    shard_reads = [how for how, c in calls if how.startswith("row group") and "cluster_id" not in c]
    assert shard_reads == ["row group 3"] * 2
    # the clusters file: its cluster_id column for the sizes, then the gallery's rows
    assert ("read", ["cluster_id"]) in calls
    assert not any(how == "read" and "id" in c for how, c in calls)


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mmcore")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


def test_cli_prints_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    sample(out)
    dest = tmp_path / "elsewhere"
    assert cli(["report", str(out), "--dest", str(dest), "--groups", "1"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(dest / "index.html")
    assert Page(Path(printed).read_text()).h5 == ["cluster 0: 10 ids"]
    assert not (out / "report").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "is not a folder"),
        (lambda d: d.mkdir(), "is not an mmcore run output (no _mmcore_job.json)"),
        (lambda d: (d.mkdir(), (d / "_mmcore_job.json").write_text("{oops")), "is not valid JSON"),
        (lambda d: (d.mkdir(), (d / "_mmcore_job.json").write_text("{}")), "is not an mmcore job manifest"),
    ],
    ids=["missing", "no-manifest", "bad-json", "not-a-manifest"],
)
def test_cli_refuses_a_folder_that_is_not_a_run_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: Any, message: str
) -> None:
    d = tmp_path / "nothing"
    setup(d)
    assert cli(["report", str(d)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmcore report: error: ")
    assert message in err and str(d) in err


def test_negative_groups_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An argument error (exit 2, as dedup's and index's), from the command line; from Python a
    ValueError."""
    sample(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli(["report", str(tmp_path), "--groups", "-1"])
    assert e.value.code == 2 and "--groups" in capsys.readouterr().err
    with pytest.raises(ValueError, match="gallery_groups must be an integer >= 0, got -1"):
        report(tmp_path, gallery_groups=-1)


def test_stage_defaults_sum(tmp_path: Path) -> None:
    write_output(tmp_path, {f"part-{k:05d}": [row(f"r{k}")] for k in range(3)})
    stages = table_after(
        md_tables((report(tmp_path).parent / "report.md").read_text()), ["stage", "seconds", "share"]
    )
    assert [r[:2] for r in stages] == [[k, f"{3 * v:.2f}"] for k, v in STAGE_SECONDS.items()]


def test_docstring_examples() -> None:
    result = doctest.testmod(report_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("part-00001.parquet", b"garbage", "not a readable Parquet file"),
        ("part-00001.parquet", None, "has no column status, error, error_stage, width, height, byte_size"),
        ("dedup/clusters-pdq.parquet", None, "has no column cluster_id, is_representative"),
    ],
    ids=["garbage-part", "foreign-part", "foreign-clusters"],
)
def test_cli_names_a_damaged_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, content: bytes | None, message: str
) -> None:
    sample(tmp_path)
    if content is None:
        pq.write_table(pa.table({"id": ["a"]}), tmp_path / path)
    else:
        (tmp_path / path).write_bytes(content)
    assert cli(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / path) in err and message in err


def test_a_damaged_completion_record_leaves_its_shard_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Such a shard is not complete (the next run rewrites it): the report counts it so."""
    sample(tmp_path)
    (tmp_path / "_done/part-00000.json").write_bytes(b"[1]")
    assert cli(["report", str(tmp_path)]) == 0
    capsys.readouterr()
    assert "| shards complete | 1 / 4 |" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.parametrize(
    "text",
    [
        "TOO_LARGE",
        "fuzz__jpg_go-1",
        "_x_ **b** ~~s~~ `c`",
        "[a](javascript:alert(1))",
        "a|b\\c",
        "<img src=x>",
        "x\ny",
    ],
)
def test_markdown_escape_round_trips(text: str) -> None:
    cell = report_module._md(text)
    assert "<" not in cell and "\n" not in cell and not re.search(r"(?<!\\)[|*`\[\]~]", cell)
    assert md_tables(f"| {cell} |")[0][0][0] == " ".join(text.split())


@pytest.mark.parametrize("ids", ["dense", "offset", "sparse", "string"])
def test_cluster_statistics_and_gallery_equal_a_count_of_every_row(tmp_path: Path, ids: str) -> None:
    """Sizes come from the cluster_id column alone and the gallery's rows from the row groups that
    can hold its clusters; both equal a plain count over every row, for dense, offset, sparse and
    string cluster ids, with null ones."""
    from collections import Counter

    rng = np.random.default_rng(3)
    n = 3000
    raw = rng.integers(0, 900, n)
    raw[:400] = 7  # one big cluster
    raw[rng.random(n) < 0.05] = -1  # no cluster
    cid: list[Any] = {
        "dense": lambda v: int(v),
        "offset": lambda v: int(v) + 10**6,
        "sparse": lambda v: int(v) * 10**12,
        "string": lambda v: f"c{v:04d}",
    }[ids]
    values = [None if v < 0 else cid(v) for v in raw]
    member_ids = [f"img-{k:05d}" for k in range(n)]
    dist = rng.integers(0, 31, n).astype(np.int32)
    rep = np.zeros(n, bool)
    first: dict[Any, int] = {}
    for k, v in enumerate(values):
        if v is not None and v not in first:
            first[v] = k
            rep[k], dist[k] = True, 0
    order = np.argsort([str(v) for v in values], kind="stable")  # row groups by cluster, as dedup
    table = pa.table(
        {
            "id": member_ids,
            "cluster_id": pa.array(values),
            "is_representative": rep,
            "distance_to_representative": pa.array(dist, pa.int32()),
        }
    ).take(pa.array(order))
    path = tmp_path / "clusters-pdq-31.parquet"
    pq.write_table(table, path, row_group_size=256)
    got = report_module._clustering(path, 5, "x")

    counts = Counter(v for v in values if v is not None)
    multi = {c: k for c, k in counts.items() if k >= 2}
    assert (got.ids, got.clusters, got.groups) == (sum(counts.values()), len(counts), len(multi))
    assert got.grouped_ids == sum(multi.values()) and got.largest == max(counts.values()) > 300
    assert got.size_bins == report_module._cluster_bins(np.array(list(counts.values())))
    top = sorted(multi, key=lambda c: (-multi[c], c))[:5]
    assert [(g.cluster, g.size) for g in got.gallery] == [(str(c), multi[c]) for c in top]
    for g, c in zip(got.gallery, top, strict=True):
        members = [k for k, v in enumerate(values) if v == c]
        want = sorted(members, key=lambda k: (not rep[k], int(dist[k]), member_ids[k]))[:GALLERY_MEMBERS]
        assert [m.id for m in g.members] == [member_ids[k] for k in want]
