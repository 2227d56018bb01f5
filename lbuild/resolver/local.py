"""Local projects (first-party code of a monorepo) as dependencies: found, hashed, built into wheels.

A local project is a directory with a pyproject.toml named by a requirement (``name @ file:...``, a path
line, ``-e PATH``) or by ``[tool.uv.sources] name = { path = ... }``. It is identified by its directory and
a content hash of its source tree (``tree_hash``), never by its version; lbuild builds it with
``uv build --wheel`` (``uv.build_wheel``) into the wheel store, and the resolver locks that wheel.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lbuild.builders.wheels import WheelRef, WheelStore
from lbuild.config import IndexSettings
from lbuild.errors import ConfigError, ResolutionError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Never part of a wheel: VCS data, caches, build output, virtual environments.
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "build", "dist", ".tox", ".nox",
              ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules"}

if TYPE_CHECKING:
    from packaging.utils import NormalizedName


def canonical(name: str) -> NormalizedName:
    """``name`` normalized as PEP 503 says (packaging is imported only when a name needs it)."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


@dataclass(frozen=True)
class LocalProject:
    name: NormalizedName
    directory: Path  # absolute, resolved
    tree: str  # "sha256:..." over the files that would go into its wheel


@dataclass(frozen=True)
class BuiltProject:
    project: LocalProject
    ref: WheelRef  # in the wheel store


def file_url_to_path(url: str, base: Path) -> Path:
    """``file:///abs`` or ``file:REL`` (relative to ``base``, the directory of the file naming it)."""
    rest = url[len("file:"):]
    if rest.startswith("//"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URL with a host: {url}")
        return Path(urllib.parse.unquote(parsed.path))
    return base / urllib.parse.unquote(rest)


def project_name(directory: Path, where: str) -> NormalizedName:
    """The ``[project].name`` of the local project at ``directory``."""
    data = _pyproject(directory, where)
    table = data.get("project")
    name = table.get("name") if isinstance(table, dict) else None
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{directory} has no [project].name in its pyproject.toml", where,
                          "give the local project a pyproject.toml with [project] name, version and build-system")
    return canonical(name)


def _pyproject(directory: Path, where: str) -> dict[str, object]:
    path = directory / "pyproject.toml"
    if not directory.is_dir():
        raise ConfigError(f"local project {directory} does not exist", where,
                          "a relative path is relative to the file that names it")
    try:
        data: dict[str, object] = tomllib.loads(path.read_text(encoding="utf-8"))
        return data
    except FileNotFoundError:
        raise ConfigError(f"local project {directory} has no pyproject.toml", where,
                          "lbuild builds local projects into wheels (PEP 517): add a pyproject.toml") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", where, "fix the file's TOML syntax") from None


def uv_path_sources(pyproject: Path, data: Mapping[str, object]) -> dict[NormalizedName, Path]:
    """``[tool.uv.sources]`` entries with a ``path`` (relative to the pyproject's directory) or ``workspace = true``
    (a member of the enclosing ``[tool.uv.workspace]``), resolved. Other kinds (git, url, index) are refused: they
    would otherwise fall through to the index under the same name."""
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    sources = uv.get("sources") if isinstance(uv, dict) else None
    out: dict[NormalizedName, Path] = {}
    if not isinstance(sources, dict):
        return out
    for name, value in sources.items():
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            key = canonical(name)
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                out[key] = (pyproject.parent / entry["path"]).resolve()
            elif isinstance(entry, dict) and entry.get("workspace") is True:
                out[key] = _workspace_member(pyproject, key)
            else:
                raise ConfigError(f"[tool.uv.sources] {name}: only path and workspace sources are supported",
                                  str(pyproject), f"write `{name} @ git+https://...` or `{name} @ https://...` in "
                                  "the dependencies, or give a path to a local checkout")
    return out


def _workspace_member(pyproject: Path, name: NormalizedName) -> Path:
    """The directory of workspace member ``name``, from the nearest ``[tool.uv.workspace]`` at or above."""
    for folder in (pyproject.parent.resolve(), *pyproject.parent.resolve().parents):
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        workspace = data.get("tool", {}).get("uv", {}).get("workspace")
        if not isinstance(workspace, dict):
            continue
        excluded = {p.resolve() for pattern in workspace.get("exclude", []) for p in folder.glob(pattern)}
        for pattern in workspace.get("members", []):
            for member in sorted(folder.glob(pattern)):
                if member.resolve() in excluded or not (member / "pyproject.toml").is_file():
                    continue
                try:
                    if project_name(member, str(candidate)) == name:
                        return member.resolve()
                except ConfigError:
                    continue
        raise ConfigError(f"{name} is not a member of the uv workspace at {candidate}", str(pyproject),
                          "add its directory to [tool.uv.workspace] members, or use a path source")
    raise ConfigError(f"{name} = {{ workspace = true }} but no [tool.uv.workspace] encloses {pyproject}",
                      str(pyproject), "use a path source: name = { path = \"../../libs/name\" }")


def tree_hash(directory: Path) -> str:
    """A content hash of the files under ``directory`` that can go into its wheel (sorted, paths and bytes)."""
    h = hashlib.sha256(b"lbuild-local-tree/1")
    files: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(directory, followlinks=True):  # a backend packs what a link points to
        real = os.path.realpath(folder)
        if real in seen:  # a link cycle
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        for name in names:
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(folder) / name
            files.append((path.relative_to(directory).as_posix(), path))
    for rel, path in sorted(files):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return "sha256:" + h.hexdigest()


def discover(declared: Mapping[NormalizedName, Path], where: str) -> dict[NormalizedName, LocalProject]:
    """The local projects ``declared``, plus those their own ``[tool.uv.sources]`` name (transitively)."""
    out: dict[NormalizedName, LocalProject] = {}
    todo = list(declared.items())
    while todo:
        name, directory = todo.pop()
        directory = directory.resolve()
        if name in out:
            if out[name].directory != directory:
                raise ConfigError(f"local project {name} is declared at two places: {out[name].directory} and "
                                  f"{directory}", where, "point every reference to one directory")
            continue
        data = _pyproject(directory, where)
        real = project_name(directory, where)
        if real != name:
            raise ConfigError(f"{directory} is the project {real}, not {name}", where,
                              f"write `{real} @ file:...` or fix the path")
        out[name] = LocalProject(name, directory, tree_hash(directory))
        todo += list(uv_path_sources(directory / "pyproject.toml", data).items())
    return out


def build(project: LocalProject, index: IndexSettings, store: WheelStore) -> BuiltProject:
    """Build ``project``'s wheel (reproducibly) and put it into the wheel store."""
    from lbuild.resolver import uv

    with tempfile.TemporaryDirectory(prefix="lbuild-build-") as tmp:
        wheel = normalize_wheel(uv.build_wheel(project.directory, Path(tmp) / "out", index), Path(tmp))
        ref = WheelRef(wheel.name, _sha256(wheel), path=wheel, size=wheel.stat().st_size)
        stored = store.fetch(ref)
    return BuiltProject(project, WheelRef(ref.filename, ref.sha256, path=stored, size=ref.size))


def build_all(projects: Iterable[LocalProject], index: IndexSettings, store: WheelStore
              ) -> dict[NormalizedName, BuiltProject]:
    return {p.name: build(p, index, store) for p in sorted(projects, key=lambda p: p.name)}


def ensure_built(root: Path, packages: Iterable[tuple[str, str, str, str, str]], index: IndexSettings,
                 store: WheelStore) -> None:
    """Rebuild the locked local projects whose wheel is not in the store (a fresh cache, CI).

    ``packages``: (name, project-relative directory, tree hash, wheel filename, wheel sha256).
    """
    for name, rel, tree, filename, sha256 in packages:
        if store.has(WheelRef(filename, sha256)):
            continue
        directory = (root / rel).resolve()
        project = LocalProject(canonical(name), directory, tree_hash(directory))
        if project.tree != tree:
            raise ResolutionError(f"local project {name} ({rel}) changed since lbuild.lock was written",
                                  where=rel, hint="run `lbuild lock`")
        built = build(project, index, store)
        if built.ref.sha256 != sha256 or built.ref.filename != filename:
            raise ResolutionError(
                f"the wheel of local project {name} built from the same sources differs from the locked one "
                f"({built.ref.filename} sha256 {built.ref.sha256}, locked {filename} sha256 {sha256})",
                where=rel, hint="its build backend is not reproducible (SOURCE_DATE_EPOCH is fixed by lbuild); "
                                "use one that is, e.g. hatchling, or run `lbuild lock` on this machine")


def normalize_wheel(wheel: Path, workdir: Path) -> Path:
    """The wheel rewritten so that its bytes depend on its members only, whatever the backend and the host:
    members sorted (``.dist-info`` last), RECORD lines sorted, one timestamp, modes 0644/0755, stored
    uncompressed (no dependence on the host's zlib)."""
    with zipfile.ZipFile(wheel) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist() if not info.is_dir()]
    out = workdir / wheel.name
    stamp = (1980, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for info, data in sorted(members, key=lambda m: (".dist-info/" in m[0].filename, m[0].filename)):
            if info.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line + b"\n" for line in sorted(data.splitlines()) if line)
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.external_attr = (0o755 if (info.external_attr >> 16) & 0o111 else 0o644) << 16
            entry.create_system = 3
            archive.writestr(entry, data)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
