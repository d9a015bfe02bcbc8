"""Write a file whole or not at all: into a temporary file beside it, then rename it over.

A reader never sees half a file, and a failed write (a full disk, a killed process)
leaves the old file, or none, as it was. Every file runchain writes goes through here.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any, Callable, Iterator


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", fsync: bool = False,
                **kwargs: Any) -> Iterator[IO]:
    """``open(target, mode)`` whose result appears at ``target`` only if the block finishes.
    With ``fsync``, the data is on disk before the rename, so a power cut leaves the old
    file or the new one, never an empty or partial one (``fsync_folder`` then makes the
    rename itself durable, where the order of two renames matters).

    Example:
        >>> with atomic_open("chain.csv", newline="") as f:  # doctest: +SKIP
        ...     f.write("global_step,loss\\n")

    Raises:
        OSError: the folder is missing or unwritable, or the disk is full; ``target`` is
            then left as it was.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make the renames done in ``folder`` durable (where the OS lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames need no folder sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: str | os.PathLike, write: Callable[[IO[bytes]], Any],
                 fsync: bool = False) -> None:
    """Write ``target`` through ``write(binary_file)``, atomically (see ``atomic_open``)."""
    with atomic_open(target, "wb", fsync=fsync) as f:
        write(f)
