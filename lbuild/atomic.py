"""Atomic writes: the one place that writes a file or replaces a directory so that a reader (or a crash, or
Ctrl-C) sees the old content or the new one, never a part.

A file is written to a temporary file in the same directory (same file system, so the rename is atomic),
flushed and fsynced, given its mode, then ``os.replace``d over the target. A directory is built beside its
target (``staging_dir``) and swapped in last (``swap_dir``); the old one is removed only once the new one is
in place. Temporary names start with ``.`` and end with ``.tmp`` so they are easy to recognise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform or file system opens directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (temp file beside it, fsync, ``os.replace``)."""
    _replace(path, lambda handle: handle.write(data), mode)
    _fsync_dir(path.parent)


def _replace(path: Path, fill: Callable[[BinaryIO], object], mode: int) -> None:
    """``fill`` a temp file beside ``path``, fsync it, give it ``mode`` and move it over ``path``; on any
    failure (Ctrl-C included) the temp file goes and ``path`` is as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` as UTF-8 with ``\\n`` line ends to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"), mode)


def copy_file(source: Path, path: Path, mode: int = 0o644) -> None:
    """Copy ``source`` to ``path`` atomically (the target is complete or untouched)."""
    with source.open("rb") as src:
        _replace(path, lambda handle: shutil.copyfileobj(src, handle, 1024 * 1024), mode)


def link_or_copy(source: Path, path: Path) -> None:
    """``path`` becomes the same bytes as ``source``: a hard link when the file system allows, else a copy."""
    try:
        os.link(source, path)
    except OSError:
        copy_file(source, path, source.stat().st_mode & 0o777)


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A new empty directory beside ``target`` (``.<name>.<random>.tmp``), removed again on any failure.
    The caller fills it and ``swap_dir``s it over ``target`` inside the block."""
    staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=TMP_SUFFIX))
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    if staged.exists():  # not swapped in: nothing must be left behind
        shutil.rmtree(staged, ignore_errors=True)


def swap_dir(new: Path, target: Path) -> None:
    """Put directory ``new`` in place of ``target`` (which may be absent); the old one is deleted after.

    The old directory is first renamed aside, then ``new`` renamed into place; if that fails (or Ctrl-C
    comes between the two), the old one is put back, so ``target`` is the old tree or the new one."""
    if not target.exists() and not target.is_symlink():
        os.replace(new, target)
        _fsync_dir(target.parent)
        return
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old.", suffix=TMP_SUFFIX))
    aside.rmdir()
    moved = False
    try:
        os.replace(target, aside)
        moved = True
        os.replace(new, target)
    except BaseException:
        if moved and not target.exists():
            os.replace(aside, target)
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)
