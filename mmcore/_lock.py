"""The readers-writer lock of the in-memory indexes (:class:`mmcore.HammingIndex`,
:class:`mmcore.QuantizedIndex`).

Contract: methods that read an index's buffers hold its lock shared and run side by side (their
C++ scans release the GIL); methods that change the buffers or the row count hold it alone. A
reader therefore sees the index as it was before or after a whole mutation. The lock is not
reentrant: a method that holds it calls no other method that takes it.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast


class _SharedLock:
    """A readers-writer lock: many holders of the shared side (searches, whose C++ scans release
    the GIL and run side by side) or one of the exclusive side (add, remove, train). Phase-fair,
    so that neither side starves the other: a waiting writer holds back new readers, and the
    readers it held back go in before the next writer. Not reentrant: a method that holds it calls
    no other method that takes it.

    Fork-safe: a child process starts with every lock free (the threads that held one, or waited,
    are not in the child), where it would otherwise inherit a search's hold, or the mutex itself
    held, and hang on its first add. An index forked while another thread was changing it is
    torn in the child: there every method raises RuntimeError instead."""

    __slots__ = (
        "__weakref__",
        "_cond",
        "_mutex",
        "_owed",
        "_phase",
        "_queued",
        "_readers",
        "_torn",
        "_waiting",
        "_writer",
    )

    _writer: bool

    def __init__(self) -> None:
        self._torn = False
        self._reset()
        _LIVE.add(self)

    def _after_fork(self) -> None:
        """In a forked child: free, or torn (held exclusive at the fork: a mutation half done)."""
        torn = self._torn or self._writer
        self._reset()
        if torn:
            self._torn = self._writer = True  # every acquire takes the slow path, which raises

    def _check(self) -> None:
        if self._torn:
            raise RuntimeError(
                "this index was being changed by another thread when the process forked: its copy "
                "in the child process is half changed; fork before changing it, or load it in the child"
            )

    def _reset(self) -> None:
        # `with` on the Lock itself, not on the Condition, whose __enter__ is a Python call: a
        # search's two passes through the lock cost 0.45 us instead of 0.65
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._readers = 0  # holding the shared side
        self._writer = False  # one holds the exclusive side
        self._waiting = 0  # writers waiting
        self._queued = 0  # readers waiting
        self._owed = 0  # readers a writer's release let in that are not in yet
        self._phase = 0  # writer releases so far

    def acquire_shared(self) -> None:
        with self._mutex:
            if self._writer or self._waiting:
                self._check()
                phase = self._phase
                self._queued += 1
                try:
                    while self._phase == phase and (self._writer or self._waiting):
                        self._cond.wait()
                finally:
                    self._queued -= 1
                    if self._phase != phase:
                        self._owed -= 1
                        if not self._owed:  # (interrupted, a writer may be waiting for it alone)
                            self._cond.notify_all()
            self._readers += 1

    def release_shared(self) -> None:
        with self._mutex:
            self._readers -= 1
            if not self._readers and self._waiting:
                self._cond.notify_all()

    def acquire_exclusive(self) -> None:
        with self._mutex:
            self._check()
            self._waiting += 1
            try:
                while self._writer or self._readers or self._owed:
                    self._cond.wait()
            except BaseException:  # interrupted (KeyboardInterrupt): the readers it held back go on
                self._waiting -= 1
                self._cond.notify_all()
                raise
            self._waiting -= 1
            self._writer = True

    def release_exclusive(self) -> None:
        with self._mutex:
            self._writer = False
            self._phase += 1
            self._owed = self._queued
            self._cond.notify_all()


#: Every lock alive, freed in a forked child (a WeakSet: an index's lock goes with the index).
_LIVE: weakref.WeakSet[_SharedLock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lock in list(_LIVE):
        lock._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Locked(Protocol):
    """An object whose methods the decorators below lock: it holds its lock as ``_lock``."""

    _lock: _SharedLock


_F = TypeVar("_F", bound=Callable[..., Any])


def _shared(method: _F) -> _F:
    """The method runs holding the index's lock shared (beside other searches, never during a
    mutation)."""

    @functools.wraps(method)
    def locked(self: _Locked, *args: Any, **kwargs: Any) -> Any:
        lock = self._lock
        lock.acquire_shared()
        try:
            return method(self, *args, **kwargs)
        finally:
            lock.release_shared()

    return cast(_F, locked)


def _exclusive(method: _F) -> _F:
    """The method runs holding the index's lock alone (it changes the buffers or the row count)."""

    @functools.wraps(method)
    def locked(self: _Locked, *args: Any, **kwargs: Any) -> Any:
        lock = self._lock
        lock.acquire_exclusive()
        try:
            return method(self, *args, **kwargs)
        finally:
            lock.release_exclusive()

    return cast(_F, locked)
