"""Per-record outcomes and the errors raised for bad data."""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import numpy.typing as npt


class Status(enum.IntEnum):
    """What happened to one record. Values are stable (stored in Parquet)."""

    OK = 0
    OK_WARNING = 1  #: decoded, but the stream had recoverable errors
    CORRUPT = 2  #: damaged data, or not an image
    UNSUPPORTED = 3  #: a valid stream mmcore does not handle (e.g. 12-bit JPEG)
    TOO_LARGE = 4  #: over the pixel limit; refused before any allocation
    NO_MEMORY = 5  #: an allocation failed
    DEVICE = 6  #: a GPU / driver error

    @property
    def ok(self) -> bool:
        """True for OK and OK_WARNING: an output was produced."""
        return self in (Status.OK, Status.OK_WARNING)


class RecordError(ValueError):
    """A single-record call failed on its data: ``.status`` (a :class:`Status`) and ``.message``.

    The base of :class:`DecodeError` and :class:`EncodeError`; batch calls return statuses instead.
    """

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its constructor's arguments: the default (str(self) alone) cannot rebuild it,
        # and a worker's DecodeError then broke multiprocessing's result thread (a hung Pool).
        return (type(self), (self.status, self.message))


class DecodeError(RecordError):
    """Bad image data given to a single-record call (batch calls return statuses instead).

    ``.status`` is the :class:`Status`; the message says what was wrong.

    >>> import mmcore
    >>> try:
    ...     mmcore.decode(b"not an image")
    ... except mmcore.DecodeError as e:
    ...     print(e.status.name)
    CORRUPT
    """


class EncodeError(RecordError):
    """An image a single-record encode call could not encode (``encode_batch`` returns statuses).

    ``.status`` says why: TOO_LARGE over the format's size limit (WebP: 16383 pixels a side),
    CORRUPT for an empty image, NO_MEMORY, UNSUPPORTED when the codec refused.

    >>> import mmcore, numpy as np
    >>> try:
    ...     mmcore.encode_webp(np.zeros((8, 16384), np.uint8))
    ... except mmcore.EncodeError as e:
    ...     print(e.status.name)
    TOO_LARGE
    """


class DeviceError(RuntimeError):
    """A GPU call failed as a whole (no device, no driver, a CUDA error, out of device memory):
    ``.status`` (DEVICE or NO_MEMORY) and ``.message`` say why. Per-record problems are statuses."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.message))


#: Row status names (beside the :class:`Status` names) of the jobs and pipelines, for records that
#: never reached the decoder: a source that refused them (e.g. a tar member with a ``..`` path) or
#: a path / cell with no bytes to read.
SOURCE_ERROR = "SOURCE_ERROR"
READ_ERROR = "READ_ERROR"


class StatusColumn:
    """What every batch result shares: a uint8 ``status`` per record, and what it tells."""

    status: npt.NDArray[np.uint8]

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        """Boolean mask of the records that produced an output (OK or OK_WARNING)."""
        return self.status <= Status.OK_WARNING

    def counts(self) -> dict[str, int]:
        """Number of records per status name, e.g. ``{"OK": 98, "CORRUPT": 2}``."""
        values, n = np.unique(self.status, return_counts=True)
        return {Status(int(v)).name: int(c) for v, c in zip(values, n, strict=True)}
