"""Write a file whole or not at all: into a temporary file beside it, then rename it over.

A reader never sees half a file, and a failed write (a full disk, a killed process, Ctrl-C,
a SIGTERM turned into ``SystemExit``) leaves the old file, or none, as it was, and no
temporary file behind. Every file runchain writes goes through here.

The temporary file ``.<name>.<12 random digits>.tmp`` is created exclusively (``O_CREAT|O_EXCL``, and
``O_NOFOLLOW`` where the OS has it) in the target's folder, so a file or symlink planted at
its name makes runchain pick another name, never write through it. A target that exists
keeps its permission bits; a new one gets ``0o666`` less the umask, as ``open()`` gives, or
the caller's ``perms``. A target that is a symlink is replaced by the file (``os.replace``
renames over the link itself), so the link's target is never written.

A private file (``perms=PRIVATE_FILE``, ``0600``) and a private folder (``private_folder``,
``0700``) have their one rule here: the cache of decoded run files uses both.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Callable, Iterator

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL
for _name in ("O_NOFOLLOW", "O_BINARY", "O_CLOEXEC"):  # where the OS has them
    _FLAGS |= vars(os).get(_name, 0)
_ATTEMPTS = 100  # names taken by someone else before giving up (FileExistsError)
PRIVATE_FILE = 0o600  # perms= of a file only its user may read
PRIVATE_FOLDER = 0o700
_TEMP_NAME = re.compile(r"\..+\.\d+\.tmp")  # 12 random digits; a process id before


def _temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target``: ``.<name>.<12 random digits>.tmp``."""
    return target.with_name(f".{target.name}.{secrets.randbelow(10 ** 12):012d}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is named as a temporary file of ``atomic_open`` is (a write under
    way, or one a killed process left), as this or an older runchain named them."""
    return _TEMP_NAME.fullmatch(name) is not None


def private_folder(folder: Path, tighten: bool = True) -> None:
    """Make ``folder`` (and missing parents) exist, ``0700`` where runchain creates it; with
    ``tighten``, also make it ``0700`` if it exists, this user owns it and others may read it
    (best effort).

    Raises:
        OSError: it cannot be created.
    """
    folder.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    if not tighten:
        return
    try:
        st = os.stat(folder)
        mine = st.st_uid == os.geteuid() if hasattr(os, "geteuid") else True  # Windows: no uid
        if st.st_mode & 0o077 and mine:
            os.chmod(folder, PRIVATE_FOLDER)
    except OSError:  # someone else's, or a read-only file system: it still serves
        pass


def _create_temp(target: Path, perms: int | None) -> tuple[int, Path]:
    """A new, empty temporary file beside ``target``, opened for writing, with the mode the
    target will have."""
    try:
        keep = stat.S_IMODE(os.stat(target).st_mode) & 0o777  # the target's, through a link
    except OSError:  # none yet (or a dangling link): open()'s 0o666 less the umask
        keep = None
    wanted = perms if perms is not None else keep
    for _ in range(_ATTEMPTS):
        tmp = _temp_path(target)
        try:
            fd = os.open(tmp, _FLAGS, 0o666 if wanted is None else wanted & 0o666)
        except FileExistsError:
            continue
        try:
            if wanted is not None and hasattr(os, "fchmod"):  # exactly, whatever the umask
                os.fchmod(fd, wanted)
            elif wanted is not None:  # Windows keeps only the read-only bit anyway
                os.chmod(tmp, wanted)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        return fd, tmp
    raise FileExistsError(f"no free temporary name beside {target} after {_ATTEMPTS} tries")


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", fsync: bool = False,
                perms: int | None = None, **kwargs: Any) -> Iterator[IO]:
    """``open(target, mode)`` whose result appears at ``target`` only if the block finishes.
    With ``fsync``, the data is on disk before the rename, so a power cut leaves the old
    file or the new one, never an empty or partial one (``fsync_folder`` then makes the
    rename itself durable, where the order of two renames matters).

    Args:
        mode: a writing mode, ``"w"`` or ``"wb"``.
        perms: the file's permission bits, e.g. ``0o600`` for a private file; default
            those of the target it replaces, else ``0o666`` less the umask.

    Example:
        >>> with atomic_open("chain.csv", newline="") as f:  # doctest: +SKIP
        ...     f.write("global_step,loss\\n")

    Raises:
        OSError: the folder is missing or unwritable, or the disk is full; ``target`` is
            then left as it was.
    """
    target = Path(target)
    fd, tmp = _create_temp(target, perms)
    done = False
    try:
        try:
            f = os.fdopen(fd, mode, **kwargs)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
        done = True
    finally:  # any exception, KeyboardInterrupt and SystemExit too: no partial file left
        if not done:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


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
                 fsync: bool = False, perms: int | None = None) -> None:
    """Write ``target`` through ``write(binary_file)``, atomically (see ``atomic_open``;
    ``perms=0o600`` makes a private file)."""
    with atomic_open(target, "wb", fsync=fsync, perms=perms) as f:
        write(f)
