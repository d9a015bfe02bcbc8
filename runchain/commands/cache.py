"""``runchain cache``: see or empty the cache of decoded run files. Part of the command
line (``cli.py`` adds the group); every line goes through ``formats.visible``, as there."""

from __future__ import annotations

import warnings

import click

from ..errors import CacheError
from ..renderers.formats import visible


def echo(line: str, err: bool = False) -> None:
    click.echo(visible(line), err=err)


def _warn_line(message, category, filename, lineno, file=None, line=None):
    echo(f"warning: {message}", err=True)


def _folder(off: str):
    """The cache folder, or None after saying the cache is off (``off`` ends that line)."""
    from ..readers import cache_entry  # the readers load only for a cache command
    warnings.showwarning = _warn_line
    folder = cache_entry.cache_dir()
    if folder is None:
        echo(f"cache: off (RUNCHAIN_CACHE_DIR is empty){off}")
    return folder


@click.group()
def cache() -> None:
    """See or empty the cache of decoded run files ($RUNCHAIN_CACHE_DIR).

    \b
    Example:
        runchain cache info
        runchain cache clear
    """


@cache.command("info")
def cache_info() -> None:
    """Print where the cache is, its entries, its size and its size cap.

    \b
    Example:
        runchain cache info
        RUNCHAIN_CACHE_MAX_MB=500 runchain cache info
    """
    from ..readers import cache_folder
    folder = _folder("")
    if folder is None:
        return
    found = cache_folder.info(folder)  # a CacheError: one line (cli._Main)
    for line in (f"cache: {folder}", f"entries: {found.entries}",
                 f"size: {found.bytes / (1 << 20):.1f} MB",
                 f"cap: {found.max_bytes / (1 << 20):.0f} MB (RUNCHAIN_CACHE_MAX_MB)"):
        echo(line)


@cache.command("clear")
def cache_clear() -> None:
    """Remove every cache entry; the next read decodes the run files again.

    \b
    Example:
        runchain cache clear
    """
    from ..readers import cache_folder
    folder = _folder("; nothing to clear")
    if folder is None:
        return
    try:
        removed = cache_folder.clear(folder)
    except CacheError:
        raise  # one line (cli._Main), not the message below
    except OSError as e:
        raise click.ClickException(f"cannot clear the cache {folder}: {e.strerror} "
                                   f"({e.filename}); remove the folder by hand") from None
    echo(f"removed {removed.entries} entries ({removed.bytes / (1 << 20):.1f} MB) from {folder}")
