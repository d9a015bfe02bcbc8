"""A cached history: one float64 grid of (column, row) in a ``.npy`` file, written column by
column and memory-mapped when read, so a chain reads only the columns it asks for.

A ``Grid`` describes one: its columns in order, its rows, and one crc32 per column; the
cache entry holds it (``cache_entry``), and names the file. ``map_grid`` checks what is
cheap, every time: the file's size before it is mapped, and its ``.npy`` header byte for
byte against the one the shape and dtype give (so a shorter grid, another run's grid or an
empty file is caught before a column is read). A column's crc32 is checked when that
column is first read from the map: checking the whole grid on every read would read every
column, where a chain reads only the ones it needs; crc32 of one column costs about as
much as copying it once, which the stitching does anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import mmap
import os
import zlib
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np

from ..atomic import PRIVATE_FILE, atomic_write


class DamagedEntry(ValueError):
    """A cache entry (or its grid) is unreadable or does not match its run file; the message
    says why."""


@dataclasses.dataclass(frozen=True)
class Grid:
    """A grid file's description: its columns in order, its rows, one crc32 per column."""

    columns: list[str]
    rows: int
    crc32: list[int]


@functools.lru_cache(maxsize=1024)  # a tree's grids share a few shapes; each read checks one
def _npy_header(columns: int, rows: int) -> bytes:
    """The ``.npy`` header of a C-ordered float64 grid of this shape."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": "<f8", "fortran_order": False, "shape": (columns, rows)})
    return out.getvalue()


def write_grid(target: Path, history: Mapping[str, np.ndarray]) -> Grid:
    """Write ``history``'s columns to ``target`` as one grid, atomically, fsynced and
    private (``0600``). Returns its description.

    Raises:
        OSError: the folder is unwritable or the disk is full.
    """
    names = list(history)
    # column by column, never stacked: a stacked copy would double a big run's memory
    columns = [np.ascontiguousarray(history[n], np.float64) for n in names]
    rows = columns[0].size if columns else 0
    header = _npy_header(len(columns), rows)

    def write(f):
        f.write(header)
        for column in columns:
            if column.size:  # a memoryview of no bytes cannot be cast
                f.write(memoryview(column).cast("B"))
    atomic_write(target, write, fsync=True, perms=PRIVATE_FILE)
    return Grid(names, rows, [zlib.crc32(column) for column in columns])


RELEASE_BYTES = 256 << 10  # columns this big give their mapped pages back once read
_CHECKED: dict[tuple, set[int]] = {}  # grid file identity -> columns whose crc32 matched


class _Columns(Mapping[str, np.ndarray]):
    """A mapped grid's columns by name. Each column's crc32 is checked when it is first read;
    on a mismatch ``heal(reason)`` gives the columns decoded again, which are served instead."""

    def __init__(self, values: np.ndarray, grid: Grid,
                 heal: Callable[[str], Mapping[str, np.ndarray]],
                 mapped: mmap.mmap | None = None, offset: int = 0, identity: tuple = ()):
        self._grid, self._crcs, self._heal = values, grid.crc32, heal
        self._mapped, self._offset = mapped, offset
        self._index = {name: i for i, name in enumerate(grid.columns)}
        # columns already checked in this process, in this version of the grid file (a file
        # rewritten or damaged since has another mtime, so it is checked again)
        self._checked = _CHECKED.setdefault(identity, set()) if identity else set()
        self._healed: Mapping[str, np.ndarray] | None = None

    def __getitem__(self, name: str) -> np.ndarray:
        """The column: a big one read into memory, checked, then its mapped pages given
        back, so reading a big run holds one column at a time beside what the caller
        builds; a small one (under ``RELEASE_BYTES``) a read-only view of the mapped grid,
        checked, with no copy."""
        if self._healed is not None:
            return self._healed[name]
        i = self._index[name]
        column = self._grid[i]
        if column.nbytes >= RELEASE_BYTES:
            column = np.array(column)
        if i not in self._checked:
            if zlib.crc32(column) != self._crcs[i]:
                self._healed = self._heal(f"column {name!r} fails its checksum")
                return self._healed[name]
            self._checked.add(i)
        if column.nbytes >= RELEASE_BYTES:  # a small column's pages cost less than the call
            self._release(i)
        return column

    def _release(self, i: int) -> None:
        """Drop column ``i``'s pages from this process (clean file pages: free to drop; a
        later read faults them back in from the page cache)."""
        if self._mapped is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = self._offset + 8 * i * self._grid.shape[1]
        end = start + 8 * self._grid.shape[1]
        start -= start % mmap.PAGESIZE
        with contextlib.suppress(OSError, ValueError):
            self._mapped.madvise(mmap.MADV_DONTNEED, start, end - start)

    def __contains__(self, name: object) -> bool:  # without reading the column
        return name in (self._index if self._healed is None else self._healed)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index if self._healed is None else self._healed)

    def __len__(self) -> int:
        return len(self._index if self._healed is None else self._healed)



def map_grid(grid_file: Path, grid: Grid,
             heal: Callable[[str], Mapping[str, np.ndarray]]) -> Mapping[str, np.ndarray]:
    """The columns of the grid file ``grid`` describes, memory-mapped: reading a column reads
    only that column. ``heal(reason)`` is called, once, if a column read turns out damaged,
    and must return the columns decoded again.

    Raises:
        FileNotFoundError: the grid is missing (the cache may have been cleared meanwhile).
        DamagedEntry: its size or header is not what ``grid`` says, or it is unreadable.
    """
    shape = (len(grid.columns), grid.rows)
    header = _npy_header(*shape)
    size = len(header) + 8 * shape[0] * shape[1]
    try:
        with open(grid_file, "rb", buffering=0) as f:
            st = os.fstat(f.fileno())
            actual = st.st_size
            if actual != size:
                raise DamagedEntry(f"its grid {grid_file.name} is {actual} bytes, not {size}")
            mapped = None
            if size == len(header):  # nothing to map
                found, values = f.read(len(header)), np.empty(shape)
            else:  # the header read from the map: its page holds the first column's start too
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                found = mapped[:len(header)]
                values = np.frombuffer(mapped, "<f8", shape[0] * shape[1], len(header))
                values = values.reshape(shape)
            if found != header:
                raise DamagedEntry(f"its grid {grid_file.name} is not of shape {shape}")
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(grid_file) from None
    except OSError as e:
        raise DamagedEntry(f"its grid {grid_file.name} is unreadable: {e.strerror}") from None
    identity = (str(grid_file), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return _Columns(values, grid, heal, mapped, len(header), identity)
