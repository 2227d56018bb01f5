"""A function's source tree: the files that go into its bundle, after excludes, and their content hash.

Excludes have gitignore semantics (``pathspec``'s ``GitIgnoreSpec``, relative to the source folder): ``*``, ``?``,
``[...]``, ``**``, a leading ``/`` anchors, a trailing ``/`` matches folders only, ``!`` re-includes, and nothing
inside an excluded folder can be re-included. ``ALWAYS_EXCLUDED`` is applied on its own, so no ``!`` brings
it back.

Symbolic links are followed when their target stays inside the repository (the folder holding lbuild.toml) or
the source folder: a link to a file ships that file's bytes under the link's path, a link to a folder ships the
folder's tree. A link that leaves both, a dangling link and a link loop are errors (exit 4); so is anything that
is neither a file nor a folder. Nothing is dropped silently.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from lbuild.errors import BuildError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

#: Never shipped, whatever the configuration says (no ``!`` pattern re-includes them): secrets and host byte code.
ALWAYS_EXCLUDED = (".env*", ".git", "__pycache__", "*.pyc")
CONFIG_NAME = "lbuild.toml"


@dataclass(frozen=True)
class SourceFile:
    path: str  # posix, relative to the source root (a link's own path, for a followed link)
    absolute: Path  # where the bytes are read (a followed link's target)
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


#: A pattern that is one name glob (no ``/``, ``!``, ``[``, escape, comment or blank): in gitignore it matches every
#: path with a component it globs, at any depth, and everything under that component.
_NAME_GLOB = re.compile(r"[^/\\\[!#\s]+")


@lru_cache(maxsize=256)
def _spec(patterns: tuple[str, ...]) -> GitIgnoreSpec:
    from pathspec import GitIgnoreSpec  # only for patterns beyond name globs (the defaults are all name globs)

    return GitIgnoreSpec.from_lines(patterns)


@lru_cache(maxsize=256)
def _name_globs(patterns: tuple[str, ...]) -> Callable[[str], bool] | None:
    """For a list of name globs only, whether a path is excluded (as ``GitIgnoreSpec`` decides, file or folder
    alike: some component matches some glob); None when a pattern needs the full gitignore rules."""
    if not all(_NAME_GLOB.fullmatch(p) for p in patterns):
        return None
    if not patterns:
        return lambda path: False
    name = re.compile("|".join(fnmatch.translate(p) for p in patterns))
    return lambda path: any(name.match(part) for part in path.split("/"))


def _folder_matches(spec: GitIgnoreSpec, path: str) -> bool:
    """Whether ``spec`` excludes the folder ``path`` itself, as git decides: the last pattern matching it wins, and
    ``dir/**`` matches what is inside ``dir``, not ``dir`` (so ``dir/**`` + ``!dir/keep`` keeps ``dir/keep``)."""
    excluded = False
    for pattern in spec.patterns:
        if pattern.include is None:
            continue
        probe = path if str(pattern.pattern).rstrip().endswith("/**") else path + "/"
        if pattern.match_file(probe) is not None:
            excluded = pattern.include
    return excluded


def excluded(path: str, patterns: Sequence[str], folder: bool = False) -> bool:
    """Whether the file (or, with ``folder``, the folder) ``path`` is excluded by ``ALWAYS_EXCLUDED`` or
    ``patterns``; the caller skips what is inside an excluded folder."""
    globs = (_name_globs(ALWAYS_EXCLUDED), _name_globs(tuple(patterns)))
    if globs[1] is not None:
        return any(match(path) for match in globs if match is not None)
    specs = (_spec(ALWAYS_EXCLUDED), _spec(tuple(patterns)))
    if folder:
        return any(_folder_matches(spec, path) for spec in specs)
    return any(spec.match_file(path) for spec in specs)


def repository_of(root: Path) -> Path:
    """The nearest folder at or above ``root`` that holds lbuild.toml (``root`` itself when none does)."""
    for folder in (root, *root.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return root


def _inside(path: str, base: str) -> bool:
    return os.path.commonpath([path, base]) == base


class _Walk:
    """One scan: the excludes, the folders a link may point into, and the files found."""

    def __init__(self, root: Path, exclude: Sequence[str], allowed: Sequence[str]) -> None:
        self.root = root
        self.exclude = tuple(exclude)
        self.allowed = tuple(allowed)
        self.files: list[SourceFile] = []

    def error(self, rel: str, what: str, hint: str) -> BuildError:
        return BuildError(what, where=str(self.root / rel), hint=hint)

    def folder(self, real: str, prefix: str, chain: tuple[str, ...]) -> None:
        """Walk the folder at ``real`` (a resolved path) whose files go under ``prefix``."""
        with os.scandir(real) as scanner:
            entries = sorted(scanner, key=lambda e: e.name)
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_symlink():
                self.link(entry.path, rel, chain)
            elif entry.is_dir(follow_symlinks=False):
                if not excluded(rel, self.exclude, folder=True):
                    self.folder(entry.path, rel + "/", (*chain, entry.path))
            elif entry.is_file(follow_symlinks=False):
                if not excluded(rel, self.exclude):
                    self.file(entry.path, rel, entry.stat(follow_symlinks=False))
            elif not excluded(rel, self.exclude):
                raise self.error(rel, f"{rel} in the source is neither a file nor a folder",
                                 "remove it, or exclude it (exclude = [...] in lbuild.toml)")

    def link(self, path: str, rel: str, chain: tuple[str, ...]) -> None:
        """Follow the symbolic link at ``path`` when it stays inside, else raise."""
        shown = os.readlink(path)
        hint = "point the link inside the repository, replace it with what it points to, or exclude it"
        try:
            info = os.stat(path)
        except OSError as exc:
            if excluded(rel, self.exclude) or excluded(rel, self.exclude, folder=True):
                return
            if exc.errno == errno.ELOOP:
                raise self.error(rel, f"symlink {rel} -> {shown} is a link loop", hint) from None
            raise self.error(rel, f"symlink {rel} -> {shown} is dangling: its target does not exist", hint) from None
        is_folder = stat.S_ISDIR(info.st_mode)
        if excluded(rel, self.exclude, folder=is_folder):
            return
        target = os.path.realpath(path)
        if not any(_inside(target, base) for base in self.allowed):
            raise self.error(rel, f"symlink {rel} -> {shown} points outside the repository, to {target}", hint)
        if is_folder:
            if any(_inside(walked, target) for walked in chain):
                raise self.error(rel, f"symlink {rel} -> {shown} is a link loop: {target} holds the link itself",
                                 hint)
            self.folder(target, rel + "/", (*chain, target))
        elif stat.S_ISREG(info.st_mode):
            self.file(target, rel, info)
        else:
            raise self.error(rel, f"symlink {rel} -> {shown} points to something neither a file nor a folder", hint)

    def file(self, real: str, rel: str, info: os.stat_result) -> None:
        mode = 0o755 if info.st_mode & 0o111 else 0o644
        self.files.append(SourceFile(rel, Path(real), mode, info.st_size))


def scan(root: Path, exclude: Sequence[str], repository: Path | None = None) -> SourceTree:
    """Walk ``root`` in sorted order, skipping excluded paths and following links that stay inside
    ``repository`` (default: ``repository_of(root)``) or ``root``; hash as we go."""
    real_root = os.path.realpath(root)
    allowed = (os.path.realpath(repository or repository_of(Path(real_root))), real_root)
    walk = _Walk(root, exclude, allowed)
    walk.folder(real_root, "", (real_root,))
    return _tree(root, walk.files)


def _tree(root: Path, files: Sequence[SourceFile]) -> SourceTree:
    """The files in sorted order and their digest (sha256 over paths, modes, sizes and contents)."""
    ordered = sorted(files, key=lambda f: f.path.encode())
    h = hashlib.sha256()
    for f in ordered:
        h.update(f"{f.path}\0{f.mode:o}\0{f.size}\0".encode())
        h.update(hashlib.sha256(f.absolute.read_bytes()).digest())
    return SourceTree(root, tuple(ordered), h.hexdigest())


def scan_function(source: Path, include: Sequence[Path], exclude: Sequence[str],
                  repository: Path | None = None) -> SourceTree:
    """A function's source tree and each ``include`` directory under its own name, as one tree (one digest);
    a path that two of them give is exit 4."""
    trees = [scan(source, exclude, repository)] + [scan(extra, exclude, repository) for extra in include]
    if len(trees) == 1:
        return trees[0]
    files: dict[str, SourceFile] = {f.path: f for f in trees[0].files}
    for extra, tree in zip(include, trees[1:], strict=True):
        for f in tree.files:
            path = f"{extra.name}/{f.path}"
            if path in files:
                raise BuildError(f"{path} is both in the function's source and in include {extra}",
                                 where=str(source), hint="remove one of them, or rename the included directory")
            files[path] = SourceFile(path, f.absolute, f.mode, f.size)
    return _tree(source, list(files.values()))
