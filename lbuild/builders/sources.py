"""A function's source tree: the files that go into its bundle, after excludes, and their content hash."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: Never shipped, whatever the configuration says: secrets and host byte code.
ALWAYS_EXCLUDED = (".env", ".env.*", "*.pyc", "__pycache__", ".git")


@dataclass(frozen=True)
class SourceFile:
    path: str  # posix, relative to the source root
    absolute: Path
    mode: int  # 0o644 or 0o755
    size: int


@dataclass(frozen=True)
class SourceTree:
    root: Path
    files: tuple[SourceFile, ...]
    digest: str  # sha256 over paths, modes and contents

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)


@lru_cache(maxsize=256)
def _pattern(glob: str) -> re.Pattern[str]:
    """Compile a gitignore-like glob: ``**`` spans folders, ``*`` and ``?`` stay within one."""
    out, i = "", 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if glob.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + r"\Z")


def excluded(path: str, patterns: Sequence[str]) -> bool:
    """Whether ``path`` (or a folder above it) matches a pattern; a pattern without ``/`` matches any name."""
    parts = path.split("/")
    for pattern in patterns:
        anchored = "/" in pattern.rstrip("/")
        glob = pattern.rstrip("/")
        regex = _pattern(glob)
        if anchored:
            if any(regex.match("/".join(parts[: i + 1])) for i in range(len(parts))):
                return True
        elif any(regex.match(part) for part in parts):
            return True
    return False


def scan(root: Path, exclude: Sequence[str]) -> SourceTree:
    """Walk ``root`` in sorted order, skipping excluded paths and symlinked folders; hash as we go."""
    patterns = (*ALWAYS_EXCLUDED, *exclude)
    files: list[SourceFile] = []
    h = hashlib.sha256()
    for folder, dirs, names in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        prefix = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        dirs[:] = sorted(d for d in dirs if not excluded(prefix + d, patterns)
                         and not os.path.islink(os.path.join(folder, d)))
        for name in sorted(names):
            rel = prefix + name
            if excluded(rel, patterns):
                continue
            absolute = Path(folder, name)
            info = absolute.stat()
            if not stat.S_ISREG(info.st_mode):
                continue
            mode = 0o755 if info.st_mode & 0o111 else 0o644
            files.append(SourceFile(rel, absolute, mode, info.st_size))
    files.sort(key=lambda f: f.path.encode())
    for f in files:
        h.update(f"{f.path}\0{f.mode:o}\0{f.size}\0".encode())
        h.update(hashlib.sha256(f.absolute.read_bytes()).digest())
    return SourceTree(root, tuple(files), h.hexdigest())
