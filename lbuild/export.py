"""``lbuild export``: one function's locked closure as a hashed requirements file or a PEP 751 pylock.toml.

Pure renderers over ``lbuild.lock`` (``requirements``, ``pylock``); ``export`` reads the lock, refuses a
missing or stale one as ``plan`` does, and picks the function.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lbuild import __version__
from lbuild.config import Project
from lbuild.errors import ChangesPending, UsageError
from lbuild.resolver import freshness, lockfile
from lbuild.resolver.lockfile import Lock, LockedPackage, Resolution

FORMATS = ("requirements", "pylock")
PYLOCK_VERSION = "1.0"


def _header(lock: Lock, function: str) -> tuple[Resolution, tuple[LockedPackage, ...]]:
    fn = lock.function(function)
    return lock.resolution(fn.resolution), lock.closure_packages(function)


def requirements(lock: Lock, function: str) -> str:
    """pip-tools' hashed format: ``name==version \\`` then ``--hash=sha256:...``, one package per entry, sorted.

    ``pip install --require-hashes --no-deps -r FILE`` installs exactly the locked wheels (the closure is
    complete, so ``--no-deps`` loses nothing). A local project is pinned to the wheel lbuild built from it.
    """
    resolution, packages = _header(lock, function)
    target = resolution.target
    out = [f"# Exported by lbuild {__version__} from lbuild.lock: function {function}, {target.runtime} "
           f"{target.architecture} ({resolution.platform}).",
           "# Install with: pip install --require-hashes --no-deps -r FILE", ""]
    for package in sorted(packages, key=lambda p: p.name):
        if package.source_tree is not None:
            out.append(f"# {package.name}: the local project {package.wheel.path}, built by lbuild")
        out += [f"{package.pin} \\", f"    --hash=sha256:{package.wheel.sha256}"]
    return "\n".join(out) + "\n"


def _toml(value: str) -> str:
    return lockfile._s(value)


def pylock(lock: Lock, function: str, root: Path, out_dir: Path) -> str:
    """A PEP 751 ``pylock.toml`` (lock-version 1.0) of the closure: each package with its one locked wheel.

    Paths (wheels inside the project, local projects' directories) are made relative to ``out_dir``, where the
    file goes, as the PEP says; ``root`` is the project folder lbuild.lock's paths are relative to.
    """
    resolution, packages = _header(lock, function)
    target = resolution.target
    lines = [f"# Exported by lbuild {__version__} from lbuild.lock: function {function}.",
             f"lock-version = {_toml(PYLOCK_VERSION)}",
             f"created-by = {_toml('lbuild')}",
             f"requires-python = {_toml(f'=={target.python_version}.*')}"]
    for package in sorted(packages, key=lambda p: p.name):
        lines += ["", "[[packages]]", f"name = {_toml(package.name)}"]
        if package.source_tree is not None:  # a source tree: the PEP leaves its version out
            where = _relative(root / (package.wheel.path or ""), out_dir)
            lines.append(f"directory = {{ path = {_toml(where)} }}")
            continue
        lines.append(f"version = {_toml(package.version)}")
        if package.requires_python:
            lines.append(f"requires-python = {_toml(package.requires_python)}")
        wheel = package.wheel
        location = (f"url = {_toml(wheel.url)}" if wheel.url else
                    f"path = {_toml(_relative(root / (wheel.path or ''), out_dir))}")
        lines.append(f"wheels = [{{ name = {_toml(wheel.filename)}, {location}, size = {wheel.size}, "
                     f"hashes = {{ sha256 = {_toml(wheel.sha256)} }} }}]")
    lines += ["", "[tool.lbuild]", f"function = {_toml(function)}", f"runtime = {_toml(target.runtime)}",
              f"architecture = {_toml(target.architecture)}", f"platform = {_toml(resolution.platform)}"]
    return "\n".join(lines) + "\n"


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def current_lock(project: Project) -> Lock:
    """lbuild.lock when it is up to date; ChangesPending (exit 10) when it is missing or stale, as for plan."""
    previous = lockfile.read(project.lock_path)
    reasons = freshness.stale_reasons(project, previous)
    name = project.lock_path.name
    if previous is None or reasons:
        what = f"{name} does not exist" if previous is None else f"{name} is stale: {'; '.join(reasons)}"
        raise ChangesPending(what, where=str(project.lock_path), hint="run `lbuild lock` first")
    return previous


def chosen_function(project: Project, given: str | None) -> str:
    """``given``, or the only function; exit 2 for an unknown name or a choice left open."""
    names: Sequence[str] = [fn.name for fn in project.functions]
    if given is None:
        if len(names) == 1:
            return names[0]
        raise UsageError(f"lbuild.toml has {len(names)} functions; name the one to export",
                         where="lbuild export", hint=f"the functions are: {', '.join(names)}")
    return project.function(given).name  # an unknown name: exit 2, as for every command


def export(project: Project, function: str | None, fmt: str, out_dir: Path) -> str:
    """The exported text (``fmt`` one of FORMATS) for ``function`` (or the only one)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", where="--format", hint=f"use one of: {', '.join(FORMATS)}")
    project = project.build
    name = chosen_function(project, function)
    lock = current_lock(project)
    return requirements(lock, name) if fmt == "requirements" else pylock(lock, name, project.root, out_dir)
