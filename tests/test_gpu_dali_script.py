"""bench/gpu_dali.sh, which only ever runs on a GPU host: its stage and unpack steps on a small archive
split the way bench/gpu_dali_prepare.sh splits DALI's (three parts, a MANIFEST with the sha256)."""

from __future__ import annotations

import hashlib
import io
import lzma
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "gpu_dali.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("xz") is None, reason="needs bash and xz"
)


def make_checkout(tmp_path: Path, corrupt: bool = False) -> tuple[Path, dict[str, bytes]]:
    """A checkout holding the script and three parts of an archive of a few files."""
    root = tmp_path / "checkout"
    (root / "bench").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "bench" / "gpu_dali.sh")
    files = {"nvidia/dali/__init__.py": b"# dali\n", "nvidia/dali/libdali.so": bytes(range(256)) * 40}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = lzma.compress(buf.getvalue(), format=lzma.FORMAT_XZ)
    digest = hashlib.sha256(archive).hexdigest()
    third = len(archive) // 3 + 1
    for i in range(3):
        part = root / ".gpudali" / f"part{i + 1}"
        part.mkdir(parents=True)
        chunk = archive[i * third : (i + 1) * third]
        if corrupt and i == 1:
            chunk = bytes([chunk[0] ^ 1]) + chunk[1:]
        (part / f"dali.tar.xz.{i:02d}").write_bytes(chunk)
        (part / "MANIFEST").write_text(f"parts 3\nsha256 {digest}\nbytes {len(archive)}\ndali 2.4.0\n")
    return root, files


def run(root: Path, keep: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(root / "bench" / "gpu_dali.sh"), *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "MMCORE_DALI_KEEP": str(keep)},
        check=False,
    )


def test_stage_keeps_parts_and_unpack_joins_them(tmp_path: Path) -> None:
    root, files = make_checkout(tmp_path)
    keep = tmp_path / "keep"
    for i in (1, 2, 3):
        r = run(root, keep, "stage", str(i))
        assert r.returncode == 0, r.stdout + r.stderr
        assert (keep / f"part{i}" / "MANIFEST").is_file()
    assert "part3: missing" not in r.stdout
    # The parts kept outside the checkout are enough: the checkout's copies may be gone.
    shutil.rmtree(root / ".gpudali")
    out = tmp_path / "out"
    r = run(root, keep, "unpack", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == str(out / "site")
    for name, data in files.items():
        assert (out / "site" / name).read_bytes() == data


def test_unpack_refuses_a_missing_or_damaged_part(tmp_path: Path) -> None:
    root, _ = make_checkout(tmp_path, corrupt=True)
    keep = tmp_path / "keep"
    r = run(root, keep, "unpack", str(tmp_path / "out"))
    assert r.returncode == 1 and "do not join" in r.stdout
    shutil.rmtree(root / ".gpudali" / "part2")
    r = run(root, keep, "unpack", str(tmp_path / "out"))
    assert r.returncode == 1 and "part 2 not here" in r.stdout
    r = run(root, keep, "stage", "2")
    assert r.returncode == 1 and "was not carried" in r.stdout
