"""Build facts: build_info() and the MMCORE_FORCE_BACKEND override."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import mmcore


def test_build_info_keys() -> None:
    info = mmcore.build_info()
    for key in (
        "version",
        "cpu_variants_compiled",
        "backend",
        "cuda_compiled",
        "cuda_available",
        "dali_available",
        "codecs",
    ):
        assert key in info, key
    assert info["version"] == mmcore.__version__
    assert "ref" in info["cpu_variants_compiled"]
    assert info["backend"] in info["cpu_variants_compiled"]
    assert set(info["codecs"]) == {"jpeg", "png", "webp", "avif"}
    assert isinstance(info["quant_amx"], bool)
    assert isinstance(info["quant_avx_vnni"], bool)
    if info["backend"] != "avx512":
        assert not info["quant_amx"]
    if info["backend"] != "avx2":
        assert not info["quant_avx_vnni"]


def test_no_amx_switch() -> None:
    """MMCORE_NO_AMX=1 keeps batches on the vector kernels (a fresh process: the probe runs once)."""
    env = dict(os.environ, MMCORE_NO_AMX="1")
    code = "import mmcore; print(mmcore.build_info()['quant_amx'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_avx_vnni_switch() -> None:
    """The avx2 variant scores with AVX-VNNI exactly where the CPU has it (Linux: the avx_vnni flag
    of /proc/cpuinfo), and MMCORE_NO_AVX_VNNI=1 keeps it on the plain AVX2 kernels."""
    base = mmcore.build_info()
    if "avx2" not in base["cpu_variants_supported"] or not os.path.exists("/proc/cpuinfo"):
        pytest.skip("needs a CPU with AVX2 and /proc/cpuinfo")
    with open("/proc/cpuinfo") as f:
        has = "avx_vnni" in next((line.split() for line in f if line.startswith("flags")), [])
    assert _backend_in_subprocess("avx2")["quant_avx_vnni"] is has
    assert _backend_in_subprocess("avx2", MMCORE_NO_AVX_VNNI="1")["quant_avx_vnni"] is False


def _backend_in_subprocess(forced: str, **extra: str) -> dict[str, object]:
    env = dict(os.environ, MMCORE_FORCE_BACKEND=forced, **extra)
    code = "import json, mmcore; print(json.dumps(mmcore.build_info()))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    info: dict[str, object] = json.loads(out.stdout)
    return info


def test_force_backend_ref() -> None:
    info = _backend_in_subprocess("ref")
    assert info["backend"] == "ref"
    assert info["forced_backend"] == "ref"


@pytest.mark.parametrize("name", ["avx2", "avx512"])
def test_force_backend_simd(name: str) -> None:
    base = mmcore.build_info()
    info = _backend_in_subprocess(name)
    if name in base["cpu_variants_compiled"] and name in base["cpu_variants_supported"]:
        assert info["backend"] == name
        assert info["backend_note"] == ""
    else:
        assert info["backend"] != name
        assert "using the best below it" in str(info["backend_note"])


def test_force_backend_unknown_is_ignored_with_note() -> None:
    info = _backend_in_subprocess("sse9")
    assert info["backend"] == mmcore.build_info()["backend"]
    assert "ignored" in str(info["backend_note"])


def test_cuda_compiled_when_nvcc_present() -> None:
    import shutil

    if shutil.which("nvcc") is None and not os.path.exists("/usr/local/cuda/bin/nvcc"):
        pytest.skip("nvcc not on this machine: the CUDA path is not expected to be compiled")
    if os.environ.get("MMCORE_CUDA", "").upper() == "OFF":
        pytest.skip("MMCORE_CUDA=OFF: built without CUDA on purpose")
    info = mmcore.build_info()
    assert info["cuda_compiled"] is True
    if not info["cuda_available"]:
        assert info["cuda_note"], "no device must come with a reason"


def test_type_stubs_match_the_extension() -> None:
    """mmcore/_core.pyi against the compiled module (mypy's stubtest): names, parameters, defaults."""
    pytest.importorskip("mypy.stubtest", reason="needs mypy (the lint extra)")
    allow = Path(__file__).parent / "stubtest_allowlist.txt"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "mmcore._core",
            "--allowlist",
            str(allow),
            "--ignore-unused-allowlist",
        ],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-1000:]


def test_gpu_decode_stand_in_defines_what_the_nvjpeg_decoder_does() -> None:
    """A CUDA build without nvjpeg.h links cuda/decode_nvjpeg_absent.cpp in place of
    decode_nvjpeg.cu (the bindings always bind DecodeGpu: without the stand-in an isolated
    `pip install .` with nvcc imported with 'undefined symbol DecodeGpu::init'). CI builds with
    nvJPEG, so the stand-in is only compiled there, never linked: this keeps its members in step."""
    import re

    root = Path(__file__).resolve().parents[1] / "cuda"
    if not (root / "decode_nvjpeg.cu").exists():
        pytest.skip("no source tree beside the tests")

    def members(name: str) -> set[str]:
        text = (root / name).read_text()
        return set(re.findall(r"^(?:\S[^\n;(]*\s)?DecodeGpu::(~?\w+)\(", text, flags=re.M))

    full, stand_in = members("decode_nvjpeg.cu"), members("decode_nvjpeg_absent.cpp")
    assert full, "no DecodeGpu members found in decode_nvjpeg.cu"
    assert full == stand_in, (sorted(full), sorted(stand_in))
    assert "plan" in members("decode_plan.cu") and "plan" not in full | stand_in


def test_portable_wheel_bundles_the_codecs_and_runs_the_demo(tmp_path: Path) -> None:
    """scripts/wheel.sh (the wheels docs/spark_ray.md ships to executors): each repaired wheel
    carries libjpeg-turbo / libpng / libwebp (and libavif with its AV1 libraries, the
    manylinux_2_35 one), is tagged manylinux, and runs `mmcore demo` in a fresh environment (the
    script checks these; a registry must be reachable for numpy and pyarrow)."""
    root = Path(__file__).resolve().parents[1]
    venv = root / ".venv"
    if not (root / "scripts" / "wheel.sh").exists() or Path(sys.prefix).resolve() != venv.resolve():
        pytest.skip("needs the source tree and its .venv (scripts/setup.sh) as the running Python")
    if sys.platform != "linux":
        pytest.skip("auditwheel repairs Linux wheels")
    r = subprocess.run(
        ["bash", str(root / "scripts" / "wheel.sh"), str(tmp_path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    plain = list(tmp_path.glob("mmcore-*-manylinux_2_34_*.whl"))
    assert len(plain) == 1 and r.stdout.strip().splitlines()[-1] == str(plain[0])
    assert "codecs from the wheel: libjpeg" in r.stdout and "mmcore demo ran" in r.stdout
    if mmcore.build_info()["codecs"]["avif"].startswith("libavif"):  # then the AVIF wheel too
        avif = list(tmp_path.glob("mmcore-*-manylinux_2_35_*.whl"))
        assert len(avif) == 1 and r.stdout.strip().splitlines()[-2] == str(avif[0])
        assert "an AVIF decodes to this build's pixels" in r.stdout and "libavif-" in r.stdout
        assert r.stdout.count("mmcore demo ran") == 2


def test_avif_auto_builds_without_a_libavif_it_cannot_compile_against(tmp_path: Path) -> None:
    """CMake compiles decode_avif.cpp against the libavif pkg-config finds first: a libavif whose
    API it does not know (here this machine's header with imir's field renamed, version unchanged)
    makes MMCORE_AVIF=AUTO configure without AVIF, with a warning, and ON fail with the reason."""
    root = Path(__file__).resolve().parents[1]
    header = Path("/usr/include/avif/avif.h")
    if not (root / "CMakeLists.txt").exists() or shutil.which("cmake") is None or not header.exists():
        pytest.skip("needs the source tree, cmake and libavif's header (libavif-dev)")
    pybind11 = pytest.importorskip("pybind11")
    text = header.read_text()
    assert "uint8_t mode;" in text or "uint8_t axis;" in text
    broken = text.replace("uint8_t mode;", "uint8_t renamed;").replace("uint8_t axis;", "uint8_t renamed;")
    (tmp_path / "inc" / "avif").mkdir(parents=True)
    (tmp_path / "inc" / "avif" / "avif.h").write_text(broken)
    (tmp_path / "pc").mkdir()
    (tmp_path / "pc" / "libavif.pc").write_text(
        f"Name: libavif\nDescription: a header mmcore does not compile against\nVersion: 0.11.1\n"
        f"Libs: -lavif\nCflags: -I{tmp_path / 'inc'}\n"
    )
    env = {**os.environ, "PKG_CONFIG_PATH": str(tmp_path / "pc")}
    for mode, ok in (("AUTO", True), ("ON", False)):
        r = subprocess.run(
            ["cmake", "-S", str(root), "-B", str(tmp_path / f"build_{mode}"), f"-DMMCORE_AVIF={mode}",
             "-DMMCORE_CUDA=OFF", "-DMMCORE_DALI=OFF", "-DSKBUILD_PROJECT_VERSION=0.1.0",
             f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DPython_EXECUTABLE={sys.executable}"],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        out = r.stdout + r.stderr
        assert "decode_avif.cpp does not compile against libavif 0.11.1" in out, out[-3000:]
        if ok:
            assert r.returncode == 0 and "building without libavif" in out, out[-3000:]
        else:
            assert r.returncode != 0 and "avifImageMirror" in out, out[-3000:]  # the compiler's words
