"""mmcore: one engine for the offline image-corpus pass.

Decode, resize, thumbnail and perceptually hash images (JPEG, PNG, WebP, GIF, AVIF) with C++ kernels that
release the GIL, never die on bad input (per-record :class:`Status`), and match Pillow's pixels,
imagehash's bits and the PDQ reference's hashes; encode thumbnails (JPEG, WebP); find
near-duplicates among the hashes (:class:`HammingIndex`, :func:`cluster`).

>>> import mmcore
>>> img = mmcore.decode(mmcore.demo_images()[0])
>>> small = mmcore.resize(img, (64, 48))
>>> r = mmcore.thumbnail_batch(mmcore.demo_images(), short_side=32)
>>> sorted(r.counts())
['CORRUPT', 'OK']
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from .hashing import (
    HashResult,
    ThreadBudget,
    ahash,
    colorhash,
    dhash,
    dhash_vertical,
    hamming,
    hash_batch,
    hash_bits,
    hash_to_hex,
    pdq,
    pdq_hex,
    phash,
    phash_simple,
    whash,
)
from .image import (
    BatchResult,
    EncodeResult,
    decode,
    decode_batch,
    encode_batch,
    encode_jpeg,
    encode_webp,
    image_info,
    resize,
    thumbnail,
    thumbnail_batch,
)
from .quant import (
    QuantizedIndex,
    QuantParams,
    quantize_binary,
    quantize_int4,
    quantize_int8,
    score_binary,
    score_int4,
    score_int8,
)
from .search import ClusterResult, HammingIndex, IndexFormatError, cluster
from .status import DecodeError, DeviceError, EncodeError, Status

__version__ = "0.1.0"


if TYPE_CHECKING:  # a type checker sees the real class (and no catch-all __getattr__)
    from .jobs.processor import Processor
else:

    def __getattr__(name: str) -> Any:
        # mmcore.Processor lives in mmcore.jobs, which needs pyarrow: imported on first use only,
        # so that the rest of mmcore works without it.
        if name == "Processor":
            from .jobs.processor import Processor

            return Processor
        raise AttributeError(f"module 'mmcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | {"__version__", "build_info"})


__all__ = [
    "BatchResult",
    "ClusterResult",
    "DecodeError",
    "DeviceError",
    "EncodeError",
    "EncodeResult",
    "HammingIndex",
    "HashResult",
    "IndexFormatError",
    "Processor",
    "QuantParams",
    "QuantizedIndex",
    "Status",
    "ThreadBudget",
    "__version__",
    "ahash",
    "build_info",
    "cluster",
    "colorhash",
    "decode",
    "decode_batch",
    "demo_images",
    "dhash",
    "dhash_vertical",
    "encode_batch",
    "encode_jpeg",
    "encode_webp",
    "hamming",
    "hash_batch",
    "hash_bits",
    "hash_to_hex",
    "image_info",
    "pdq",
    "pdq_hex",
    "phash",
    "phash_simple",
    "quantize_binary",
    "quantize_int4",
    "quantize_int8",
    "resize",
    "score_binary",
    "score_int4",
    "score_int8",
    "thumbnail",
    "thumbnail_batch",
    "whash",
]


def build_info() -> dict[str, Any]:
    """What this build contains and what it runs on.

    Keys: ``version``, ``cpu_variants_compiled``, ``cpu_variants_supported``, ``backend``
    (active CPU variant; ``MMCORE_FORCE_BACKEND=ref|avx2|avx512`` forces one at import),
    ``backend_note``, ``cuda_compiled``, ``cuda_available``, ``cuda_devices``,
    ``dali_available``, ``dali_plugin`` (the DALI version the plugin was built against, None
    without a plugin), ``codecs`` (library versions), ``hardware_threads``, ``forced_backend``
    (the ``MMCORE_FORCE_BACKEND`` value, or None), ``cuda_note`` (why CUDA is not available, or
    what it found), ``cuda_runtime_version``, ``quant_amx`` (whether int8 / int4 searches of 9+
    queries run on AMX tiles: an AVX-512 build on a CPU and OS that grant them, unless
    ``MMCORE_NO_AMX=1``) and ``quant_avx_vnni`` (whether the avx2 variant scores int8 / int4
    codes with AVX-VNNI: a CPU without AVX-512 that has it, such as Alder Lake or Sierra Forest,
    unless ``MMCORE_NO_AVX_VNNI=1``).

    >>> import mmcore
    >>> mmcore.build_info()["backend"] in ("ref", "avx2", "avx512")
    True
    """
    info: dict[str, Any] = {"version": __version__}
    info.update(_core.build_info())
    info["dali_available"] = _module_available("nvidia.dali")
    info["dali_plugin"] = _dali_plugin_version()
    info["forced_backend"] = os.environ.get("MMCORE_FORCE_BACKEND") or None
    return info


def _dali_plugin_version() -> str | None:
    from .pipeline import built_against  # reads a file; imports no DALI

    return built_against()


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def demo_images() -> list[str]:
    """Paths of the small demo images shipped with the package (two are deliberately corrupt: a
    truncated header and a file that is no image).

    >>> import mmcore
    >>> len(mmcore.demo_images()) >= 5
    True
    """
    folder = Path(__file__).parent / "data" / "demo"
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
