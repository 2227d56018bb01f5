"""lbuild.lock: the resolved wheels of every target and each function's closure, as deterministic TOML.

Each ``[[resolutions]]`` entry lists its packages in the PEP 751 ``[[packages]]`` layout (name,
version, requires-python, dependencies, wheels with url or path, size and sha256), so other tools can
read them; ``[functions.NAME]`` says which resolution a function uses and which packages it needs.
A local project's package also has ``directory = { path, source-tree }``: its wheel is built by lbuild, its
path is the project's directory and ``source-tree`` the hash of its sources.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lbuild import atomic
from lbuild.errors import ConfigError
from lbuild.rules import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_VERSION = 1
HEADER = "# lbuild.lock: written by `lbuild lock`; do not edit by hand.\n"


@dataclass(frozen=True)
class LockedWheel:
    """One wheel file: where to get it and how to verify it."""

    filename: str
    sha256: str
    size: int
    url: str | None = None
    path: str | None = None  # relative to the project root (find_links inside the project)


@dataclass(frozen=True)
class LockedPackage:
    """A pinned distribution and the one wheel chosen for the target."""

    name: str
    version: str
    wheel: LockedWheel
    requires_python: str | None = None
    dependencies: tuple[str, ...] = ()
    source_tree: str | None = None  # a local project: the hash of its sources (its wheel's path is its directory)

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Resolution:
    """A joint resolution of the functions sharing a target (or of one isolated function)."""

    id: str
    target: Target
    platform: str
    functions: tuple[str, ...]
    inputs: str
    packages: tuple[LockedPackage, ...]

    def package(self, name: str) -> LockedPackage:
        return self._first[name]

    @functools.cached_property
    def by_name(self) -> Mapping[str, LockedPackage]:  # built once: callers look up every function's closure
        return {p.name: p for p in self.packages}

    @functools.cached_property
    def _first(self) -> Mapping[str, LockedPackage]:  # the first package of each name, as a scan would find
        return {p.name: p for p in reversed(self.packages)}


@dataclass(frozen=True)
class FunctionLock:
    """What one function needs: its requirements and the closure of package names."""

    name: str
    resolution: str
    inputs: str
    requirements: tuple[str, ...]
    closure: tuple[str, ...]
    isolated: bool = False


@dataclass(frozen=True)
class Lock:
    """The whole lbuild.lock."""

    inputs: str
    resolutions: tuple[Resolution, ...]
    functions: tuple[FunctionLock, ...]
    version: int = LOCK_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def resolution(self, id: str) -> Resolution:
        return self._resolutions[id]

    def function(self, name: str) -> FunctionLock:
        return self._functions[name]

    @functools.cached_property
    def _resolutions(self) -> Mapping[str, Resolution]:  # first of each id; built once, looked up per function
        return {r.id: r for r in reversed(self.resolutions)}

    @functools.cached_property
    def _functions(self) -> Mapping[str, FunctionLock]:
        return {fn.name: fn for fn in reversed(self.functions)}

    def closure_packages(self, name: str) -> tuple[LockedPackage, ...]:
        """The locked packages one function needs, sorted by name."""
        fn = self.function(name)
        packages = self.resolution(fn.resolution).by_name
        return tuple(packages[n] for n in fn.closure)


# --- writing --------------------------------------------------------------------------------------


def _s(value: str) -> str:
    """A TOML basic string in ASCII: json.dumps's escapes, except that characters outside the BMP become
    ``\\UXXXXXXXX`` (JSON writes them as surrogate pairs, which TOML rejects)."""
    if all(ord(c) <= 0xFFFF for c in value):
        return json.dumps(value, ensure_ascii=True)
    return '"' + "".join(f"\\U{ord(c):08x}" if ord(c) > 0xFFFF else json.dumps(c, ensure_ascii=True)[1:-1]
                         for c in value) + '"'


def _strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(_s(v) for v in values) + "]"


def _multiline(values: Iterable[str]) -> str:
    items = list(values)
    if not items:
        return "[]"
    return "[\n" + "".join(f"    {_s(v)},\n" for v in items) + "]"


def dumps(lock: Lock) -> str:
    """Serialize ``lock`` to TOML: stable order, one value per line where diffs matter."""
    out = [HEADER, f"version = {lock.version}\n", f"inputs = {_s(lock.inputs)}\n"]
    for res in sorted(lock.resolutions, key=lambda r: r.id):
        out.append("\n[[resolutions]]\n")
        out.append(f"id = {_s(res.id)}\n")
        out.append(f"runtime = {_s(res.target.runtime)}\n")
        out.append(f"architecture = {_s(res.target.architecture)}\n")
        out.append(f"python-version = {_s(res.target.python_version)}\n")
        out.append(f"platform = {_s(res.platform)}\n")
        out.append(f"functions = {_strings(res.functions)}\n")
        out.append(f"inputs = {_s(res.inputs)}\n")
        for pkg in sorted(res.packages, key=lambda p: p.name):
            out.append("\n[[resolutions.packages]]\n")
            out.append(f"name = {_s(pkg.name)}\n")
            out.append(f"version = {_s(pkg.version)}\n")
            if pkg.requires_python:
                out.append(f"requires-python = {_s(pkg.requires_python)}\n")
            deps = ", ".join("{ name = " + _s(d) + " }" for d in pkg.dependencies)
            out.append(f"dependencies = [{deps}]\n")
            if pkg.source_tree:
                where = _s(pkg.wheel.path or "")
                out.append(f"directory = {{ path = {where}, source-tree = {_s(pkg.source_tree)} }}\n")
            w = pkg.wheel
            location = f"url = {_s(w.url)}" if w.url else f"path = {_s(w.path or '')}"
            out.append(
                f"wheels = [{{ name = {_s(w.filename)}, {location}, size = {w.size}, "
                f"hashes = {{ sha256 = {_s(w.sha256)} }} }}]\n"
            )
    for fn in sorted(lock.functions, key=lambda f: f.name):
        key = fn.name if re.fullmatch(r"[A-Za-z0-9_-]+", fn.name) else _s(fn.name)
        out.append(f"\n[functions.{key}]\n")
        out.append(f"resolution = {_s(fn.resolution)}\n")
        out.append(f"inputs = {_s(fn.inputs)}\n")
        if fn.isolated:
            out.append("isolated = true\n")
        out.append(f"requirements = {_multiline(fn.requirements)}\n")
        out.append(f"closure = {_multiline(fn.closure)}\n")
    return "".join(out)


def write(lock: Lock, path: Path) -> bool:
    """Write ``lock`` atomically; return False (and touch nothing) when the file already holds it."""
    text = dumps(lock)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except OSError:
        pass
    try:
        atomic.write_text(path, text)
    except IsADirectoryError:
        raise ConfigError(f"{path.name} is a directory, not a lock file", str(path),
                          f"remove or rename the directory {path} (lbuild writes the lock file there)") from None
    except OSError as exc:
        raise ConfigError(f"{path.name} cannot be written: {exc.strerror or exc}", str(path),
                          f"make {path.parent} writable") from None
    return True


# --- reading --------------------------------------------------------------------------------------


def read(path: Path, remember: bool = False) -> Lock | None:
    """Read lbuild.lock; None when it does not exist. A damaged file is a ConfigError. Its parsed form is taken
    from the cache when one of the same bytes is there; ``remember`` (commands that write anyway: lock, package)
    stores it there, while checks and ``plan`` write nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{path.name} is a directory, not a lock file", str(path),
                          f"remove or rename the directory {path} (lbuild writes the lock file there)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})", str(path),
                          "delete it and run `lbuild lock` (or restore it from version control)") from None
    except OSError as exc:
        raise ConfigError(f"{path.name} cannot be read: {exc.strerror or exc}", str(path),
                          "check the file's permissions") from None
    return loads(text, str(path), memo=_memo_file(path), remember=remember)


def _memo_file(path: Path) -> Path | None:
    """Where the parsed form of the lock at ``path`` is remembered (one file per lock path), or None."""
    from lbuild.cachedir import cache_dir

    try:
        name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    except OSError:
        return None
    return cache_dir() / "parsed-locks" / f"{name}.json"


def _parse(text: str, memo: Path | None, remember: bool) -> Any:
    """``tomllib.loads(text)``, remembered in ``memo`` by the sha256 of ``text``: TOML is parsed in pure Python
    (about 0.4 s for a 500-function lock), JSON is not; a memo of other bytes is ignored and replaced."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    if memo is not None:
        try:
            known = json.loads(memo.read_text(encoding="utf-8"))
            if isinstance(known, dict) and known.get("sha256") == digest and isinstance(known.get("data"), dict):
                return known["data"]
        except (OSError, ValueError):
            pass
    data = tomllib.loads(text)
    if memo is not None and remember:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(memo, json.dumps({"sha256": digest, "data": data}, separators=(",", ":")))
        except (OSError, TypeError, ValueError):
            with contextlib.suppress(OSError):
                os.unlink(memo)  # only a cache: an unwritable or unrepresentable memo is no memo
    return data


def loads(text: str, where: str = "lbuild.lock", memo: Path | None = None, remember: bool = False) -> Lock:
    """Parse lock text (``memo``: where its parsed form is remembered, written only with ``remember``)."""
    try:
        data = _parse(text, memo, remember)
        if data.get("version") != LOCK_VERSION:
            raise ConfigError(f"{where} has lock version {data.get('version')!r}; this lbuild reads {LOCK_VERSION}",
                              where, "run `lbuild lock` to rewrite it")
        resolutions = tuple(_resolution(r) for r in data.get("resolutions", []))
        functions = tuple(
            FunctionLock(name, f["resolution"], f["inputs"], tuple(f["requirements"]), tuple(f["closure"]),
                         bool(f.get("isolated", False)))
            for name, f in data.get("functions", {}).items()
        )
        return Lock(data["inputs"], resolutions, functions)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"{where} is damaged ({exc})", where,
                          "delete it and run `lbuild lock` (or restore it from version control)") from None


def _resolution(r: Mapping[str, Any]) -> Resolution:
    packages = []
    for p in r.get("packages", []):
        w = p["wheels"][0]
        wheel = LockedWheel(w["name"], w["hashes"]["sha256"], int(w["size"]), w.get("url"), w.get("path"))
        directory = p.get("directory")
        packages.append(LockedPackage(p["name"], p["version"], wheel, p.get("requires-python"),
                                      tuple(d["name"] for d in p.get("dependencies", [])),
                                      directory["source-tree"] if directory else None))
    return Resolution(r["id"], Target(r["runtime"], r["architecture"]), r["platform"], tuple(r["functions"]),
                      r["inputs"], tuple(packages))
