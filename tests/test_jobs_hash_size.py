"""`mmcore run --hash-size N`: phash / dhash / ahash at imagehash's other sizes in the job's output
(int64 up to hash_size 8, big-endian binary rows over it), equal to hash_batch's and imagehash's;
resumed runs keep the size; `mmcore dedup` on such a run; misuse refused before any work."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from conftest import CORPUS

pytest.importorskip("pyarrow.parquet")
imagehash = pytest.importorskip("imagehash")
Image = pytest.importorskip("PIL.Image")

import mmcore  # noqa: E402
from mmcore.cli import main  # noqa: E402
from mmcore.jobs import Config, read_output  # noqa: E402
from mmcore.jobs.dedup import clusters_path, dedup, summary  # noqa: E402
from mmcore.jobs.schema import SCHEMA, output_schema, read_manifest  # noqa: E402


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo photos, near copies of them (half size, re-encoded) and a corrupt file."""
    d = tmp_path_factory.mktemp("src")
    for i, p in enumerate(mmcore.demo_images()):
        if mmcore.image_info(p)["status"] != mmcore.Status.OK:
            continue
        shutil.copy(p, d / f"{i:02d}{Path(p).suffix}")
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.resize((im.width // 2, im.height // 2)).save(d / f"{i:02d}-half.jpg", quality=80)
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    jpegs = CORPUS / "jpeg"
    if jpegs.is_dir():
        for p in sorted(jpegs.iterdir())[:40:4]:
            shutil.copy(p, d / f"corpus-{p.name}")
    return d


def run(argv: list[str]) -> int:
    return main(["run", *argv, "--quiet"])


@pytest.mark.parametrize("hash_size", [16, 12, 5])
def test_run_writes_sized_hashes_equal_to_hash_batch_and_imagehash(
    tmp_path: Path, source: Path, hash_size: int
) -> None:
    out = tmp_path / "out"
    assert (
        run([str(source), str(out), "--hash-size", str(hash_size), "--hashes", "phash,dhash,ahash,pdq"]) == 0
    )
    t = read_output(out).sort_by("id")
    want_schema = output_schema(hash_size)
    assert t.schema.remove_metadata() == want_schema
    bits = hash_size * hash_size
    if hash_size > 8:
        assert t.schema.field("phash").type == pa.binary((bits + 7) // 8)
    else:
        assert t.schema.field("phash").type == pa.int64()
    ok = [s in ("OK", "OK_WARNING") for s in t["status"].to_pylist()]
    assert sum(ok) >= 8 and not all(ok)  # the corrupt file is a row with its status
    paths = [uri[len("file://") :] for uri in t["source_uri"].to_pylist()]
    good = [p for p, g in zip(paths, ok, strict=True) if g]
    r = mmcore.hash_batch(good, kinds=("phash", "dhash", "ahash", "pdq"), hash_size=hash_size)
    for kind in ("phash", "dhash", "ahash"):
        col = t[kind].to_pylist()
        assert [c is None for c in col] == [not g for g in ok]
        got = [c for c in col if c is not None]
        if hash_size > 8:
            assert got == [bytes(row) for row in r[kind]], kind
            as_int = [int.from_bytes(c, "big") for c in got]
        else:
            assert got == [int(v) for v in r[kind].view(np.int64)], kind
            as_int = got
        oracle = getattr(imagehash, "average_hash" if kind == "ahash" else kind)
        compared = 0
        for p, v in list(zip(good, as_int, strict=True))[:8]:
            with Image.open(p) as im:
                if im.getexif().get(0x0112, 1) != 1:  # imagehash does not turn images: upright ones
                    continue
                assert mmcore.hash_to_hex(v, bits) == str(oracle(im.convert("RGB"), hash_size=hash_size)), (
                    kind,
                    p,
                )
                compared += 1
        assert compared >= 4
    # PDQ does not change with hash_size.
    default = tmp_path / "default"
    assert run([str(source), str(default), "--hashes", "pdq"]) == 0
    assert read_output(default).sort_by("id")["pdq"].equals(t["pdq"])
    manifest = read_manifest(out)
    assert manifest["config"]["hash_size"] == hash_size
    assert manifest["config_hash"] != read_manifest(default)["config_hash"]


def test_default_hash_size_keeps_the_schema_and_config_hash() -> None:
    """Outputs written before the option keep their config hash: hash_size 8 is not in it."""
    assert output_schema(8) is SCHEMA and output_schema(2) is SCHEMA
    assert "hash_size" not in Config().processor_dict()
    assert Config(hash_size=16).processor_dict()["hash_size"] == 16
    assert Config(hash_size=16).config_hash() != Config().config_hash()


def test_a_rerun_keeps_the_size_and_resumes(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "out"
    assert run([str(source), str(out), "--hash-size", "16", "--shard-size", "4"]) == 0
    first = read_output(out).sort_by("id")
    done = sorted((out / "_done").iterdir())
    assert len(done) >= 3
    done[-1].unlink()  # a shard to redo
    assert run([str(source), str(out)]) == 0  # no options: the output's own, hash_size included
    again = read_output(out).sort_by("id")
    assert again.equals(first)
    assert read_manifest(out)["config"]["hash_size"] == 16


def test_dedup_of_a_sized_run(tmp_path: Path, source: Path) -> None:
    out = tmp_path / "out"
    assert run([str(source), str(out), "--hash-size", "16", "--hashes", "phash"]) == 0
    table = dedup(out, hash="phash")
    s = summary(table)
    assert s["threshold"] == 40  # 10 of every 64 bits
    assert clusters_path(out, "phash", 40).is_file()
    rows = read_output(out)
    ok = rows.filter(pa.compute.is_valid(rows["phash"]))
    codes = np.frombuffer(b"".join(ok["phash"].to_pylist()), np.uint8).reshape(-1, 32)
    index = mmcore.HammingIndex(256)
    index.add(codes)
    res = mmcore.cluster(index, 40)
    by_id = dict(zip(table["id"].to_pylist(), table["cluster_id"].to_pylist(), strict=True))
    labels = [by_id[i] for i in ok["id"].to_pylist()]
    # the same partition (cluster numbers are in order of first appearance in both)
    assert labels == res.labels.tolist()
    assert s["clusters_with_duplicates"] >= 4  # the half-size copies
    dist = dict(zip(table["id"].to_pylist(), table["distance_to_representative"].to_pylist(), strict=True))
    assert max(dist.values()) <= 256
    with pytest.raises(ValueError, match=r"0\.\.256 for phash \(256 bits\)"):
        dedup(out, hash="phash", threshold=300)
    assert main(["dedup", str(out), "--hash", "phash", "--threshold", "60"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hash-size", "7"], "phash needs hash_size x highfreq_factor"),
        (["--hash-size", "1"], r"hash_size must be an integer in 2\.\.64"),
        (["--hash-size", "65"], r"hash_size must be an integer in 2\.\.64"),
        (["--hash-size", "16", "--device", "gpu"], "device 'gpu' hashes at hash_size 8"),
    ],
)
def test_bad_sizes_are_refused_before_any_work(
    tmp_path: Path, source: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run([str(source), str(out), *argv]) != 0
    assert re.search(message, capsys.readouterr().err)
    assert not (out / "_done").exists()


def test_hash_size_7_is_fine_without_phash(tmp_path: Path, source: Path) -> None:
    """Only pHash's DCT limits the size: dHash and aHash take 7 (49 bits, int64 columns)."""
    out = tmp_path / "out"
    assert run([str(source), str(out), "--hash-size", "7", "--hashes", "dhash,ahash"]) == 0
    t = read_output(out)
    v = [x for x in t["dhash"].to_pylist() if x is not None]
    assert v and all(0 <= x < 2**49 for x in v)
    assert t["phash"].null_count == t.num_rows


def test_config_toml_takes_hash_size(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('hashes = ["phash"]\nhash_size = 16\n')
    cfg: Any = Config.from_toml(p)
    assert cfg.hash_size == 16
    with pytest.raises(ValueError, match="hash_size"):
        Config(hash_size=True)  # type: ignore[arg-type]
