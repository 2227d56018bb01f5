"""The one rule for a path that lbuild writes from untrusted names (wheel members, zip entries, build contexts).

A safe path is relative, in posix form, and stays where it is put: no empty, ``.`` or ``..`` part, no leading
``/``, no drive letter, no backslash and no NUL. Every writer checks its paths with ``check`` before it
writes anything; filesystem writers also go through ``inside``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lbuild.errors import BuildError

_DRIVE = re.compile(r"^[A-Za-z]:")
HINT = "a path must be relative, without '.', '..' or empty parts, a drive letter, '\\' or NUL"


def problem(path: str) -> str | None:
    """Why ``path`` is unsafe, or None when it is safe (pure)."""
    if not path:
        return "it is empty"
    if "\\" in path:
        return "it holds a backslash"
    if "\0" in path:
        return "it holds a NUL"
    if path.startswith("/"):
        return "it is absolute"
    if _DRIVE.match(path):
        return "it starts with a drive letter"
    parts = path.split("/")
    if ".." in parts:
        return "it climbs out with '..'"
    if "." in parts or "" in parts:
        return "it has an empty or '.' part"
    return None


def check(path: str, where: str | None = None) -> str:
    """``path`` when it is safe; else a BuildError (exit 4) naming it and ``where`` it comes from."""
    why = problem(path)
    if why is not None:
        raise BuildError(f"unsafe path in artifact: {path!r} ({why})", where=where, hint=HINT)
    return path


def inside(root: Path, path: str, where: str | None = None) -> Path:
    """``root / path`` for a safe ``path``, refusing one whose resolved location leaves ``root``."""
    target = root / check(path, where)
    base = os.path.realpath(root)
    if os.path.commonpath([base, os.path.realpath(target)]) != base:
        raise BuildError(f"unsafe path in artifact: {path!r} (it leaves {root})", where=where, hint=HINT)
    return target
