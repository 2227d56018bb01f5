"""Whether lbuild.lock still matches its inputs: the fingerprints of each function's requirements, target and
isolation, of the index settings and of local wheels and projects. Reads only; locking is ``lbuild.resolver.lock``.

Every ``lbuild package``, ``plan`` and ``deploy`` asks this first, so it loads nothing that locking needs (uv,
the closure walker, the index client).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lbuild import atomic, rules
from lbuild.builders import wheels
from lbuild.builders.wheels import WheelStore
from lbuild.cachedir import cache_dir
from lbuild.config import Function, IndexSettings, Project
from lbuild.errors import ConfigError
from lbuild.resolver import local as local_mod
from lbuild.resolver import lockfile
from lbuild.resolver.inputs import RequirementInput, read_input
from lbuild.resolver.lockfile import Lock, LockedWheel

if TYPE_CHECKING:
    from packaging.utils import NormalizedName


@dataclass(frozen=True)
class Group:
    """Functions resolved together: all non-isolated functions of one target, or one isolated function."""

    id: str
    target: rules.Target
    functions: tuple[Function, ...]
    isolated: bool


def plan_groups(functions: Sequence[Function]) -> tuple[Group, ...]:
    """Group functions for joint resolution (pure, deterministic)."""
    shared: dict[rules.Target, list[Function]] = {}
    groups: list[Group] = []
    for fn in functions:
        if fn.isolated:
            groups.append(Group(f"{fn.target.id}+{fn.name}", fn.target, (fn,), True))
        else:
            shared.setdefault(fn.target, []).append(fn)
    groups += [Group(target.id, target, tuple(fns), False) for target, fns in shared.items()]
    return tuple(sorted(groups, key=lambda g: g.id))


def index_fingerprint(index: IndexSettings, root: Path) -> str:
    """``index.fingerprint()`` with find_links inside the project relative to it: a clone elsewhere is not stale."""
    links = []
    for link in index.find_links:
        try:
            links.append(Path(link).relative_to(root).as_posix())
        except ValueError:
            links.append(link)
    # An index_url taken from the environment is a machine's mirror: a lock made through it is not stale elsewhere.
    url = "<environment or default>" if index.from_environment else index.index_url
    return repr((url, index.extra_index_urls, tuple(links), index.no_index))


def local_projects(inputs: Mapping[str, RequirementInput]) -> dict[NormalizedName, local_mod.LocalProject]:
    """Every local project named anywhere in the project: none of these names is ever looked up on an index."""
    out: dict[NormalizedName, local_mod.LocalProject] = {}
    for fn_name in sorted(inputs):
        for name, project in inputs[fn_name].local.items():
            before = out.setdefault(name, project)
            if before.directory != project.directory:
                raise ConfigError(f"local project {name} is at {before.directory} for one function and at "
                                  f"{project.directory} for function {fn_name}", f"function {fn_name}",
                                  "point every reference to one directory (one version of a package per target)")
    return out


def group_fingerprint(group: Group, inputs: Mapping[str, RequirementInput], index: IndexSettings,
                      root: Path) -> str:
    h = hashlib.sha256(f"lbuild-lock/{lockfile.LOCK_VERSION}\0{group.id}\0{index_fingerprint(index, root)}".encode())
    for name, project in sorted(local_projects(inputs).items()):  # they constrain every group
        h.update(f"\0local\0{name}\0{project.tree}".encode())
    for fn in sorted(group.functions, key=lambda f: f.name):
        h.update(f"\0{fn.name}\0{inputs[fn.name].kind}\0{inputs[fn.name].digest}".encode())
    return "sha256:" + h.hexdigest()


def function_fingerprint(fn: Function, source: RequirementInput) -> str:
    text = f"{fn.target.id}\0{fn.isolated}\0{source.kind}\0{source.digest}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def read_inputs(project: Project, *, parse: bool = True) -> dict[str, RequirementInput]:
    """Every function's dependency input; without ``parse``, only what the fingerprints need (``read_input``)."""
    return {fn.name: read_input(fn.requirements, project.root, parse=parse) for fn in project.functions}


def overall_fingerprint(fingerprints: Mapping[str, str]) -> str:
    text = "\0".join(f"{k}={v}" for k, v in sorted(fingerprints.items()))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def stale_reasons(project: Project, previous: Lock | None) -> list[str]:
    """Why lbuild.lock does not match the inputs (empty: it is up to date)."""
    if previous is None:
        return [f"{project.lock_path.name} does not exist"]
    inputs = read_inputs(project, parse=False)  # the fingerprints hash the files; they need no parsed requirement
    groups = plan_groups(project.functions)
    fingerprints = {g.id: group_fingerprint(g, inputs, project.index, project.root) for g in groups}
    changed = changed_local_wheels(previous, project.root, remember=False)  # a check writes nothing
    if previous.inputs == overall_fingerprint(fingerprints) and not changed:
        return []
    reasons = [f"wheel {filename} changed on disk since it was locked" for filename in sorted(changed)]
    current = local_projects(inputs)
    locked_trees = {p.name: p for r in previous.resolutions for p in r.packages if p.source_tree}
    for name, pkg in sorted(locked_trees.items()):
        now = current.get(local_mod.canonical(name))
        if now is not None and now.tree != pkg.source_tree:
            reasons.append(f"local project {name} ({pkg.wheel.path}): its sources changed")
    locked = {f.name: f for f in previous.functions}
    for fn in project.functions:
        old = locked.pop(fn.name, None)
        if old is None:
            reasons.append(f"function '{fn.name}' is not in the lock")
        elif old.inputs != function_fingerprint(fn, inputs[fn.name]):
            reasons.append(f"function '{fn.name}': its requirements, target or isolation changed")
    reasons += [f"function '{name}' was removed from lbuild.toml" for name in sorted(locked)]
    return reasons or ["index settings in lbuild.toml changed"]


def local_wheel_file(wheel: LockedWheel, root: Path) -> Path | None:
    if wheel.path:
        return root / wheel.path
    if wheel.url and wheel.url.startswith("file:"):
        return wheels.file_url_path(wheel.url)
    return None


def changed_local_wheels(previous: Lock, root: Path, remember: bool = True) -> dict[str, str]:
    """Locked wheel files on this machine (find_links, ``file:`` references) whose bytes are no longer the locked
    ones, ``{filename: resolution id}``: a wheel rebuilt at the same version must re-lock, not ship the old code."""
    out: dict[str, str] = {}
    memo = HashMemo()
    for resolution in previous.resolutions:
        for pkg in resolution.packages:
            path = None if pkg.source_tree else local_wheel_file(pkg.wheel, root)
            if path is None or not path.is_file():
                continue  # a missing file fails when it is fetched, naming it
            if path.stat().st_size != pkg.wheel.size or memo.sha256(path) != pkg.wheel.sha256:
                out[pkg.wheel.filename] = resolution.id
    if remember:
        memo.save()
    return out


class HashMemo:
    """sha256 of local wheel files, remembered in the cache by (path, size, mtime): `lock --check` reads big
    find_links wheels once, not at every run. Read once; ``save`` writes what was hashed anew (checks and `plan`
    never call it: they write nothing)."""

    FILE = "local-file-hashes.json"

    def __init__(self) -> None:
        self.path = cache_dir() / self.FILE
        try:
            known = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        self.known: dict[str, str] = {k: v for k, v in known.items() if isinstance(v, str)} \
            if isinstance(known, dict) else {}
        self.new: dict[str, str] = {}

    def sha256(self, path: Path) -> str:
        stat = path.stat()
        resolved = str(path.resolve())
        key = f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_ino}"
        if key in self.known:
            return self.known[key]
        digest = self.known[key] = self.new[resolved] = wheels.file_sha256(path)
        self.known = {k: v for k, v in self.known.items() if k == key or not k.startswith(f"{resolved}\0")}
        return digest

    def save(self) -> None:
        if not self.new:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(self.path, json.dumps(self.known, sort_keys=True))
        except OSError:
            pass  # only a cache


def local_file_sha256(path: Path) -> str:
    """sha256 of one local wheel file through the memo, remembering it."""
    memo = HashMemo()
    digest = memo.sha256(path)
    memo.save()
    return digest


def ensure_local_wheels(project: Project, lock: Lock, store: WheelStore) -> None:
    """Build the wheels of the locked local projects the store lacks (a fresh cache): same sources, same wheel."""
    wanted = {(p.name, p.wheel.path or "", p.source_tree, p.wheel.filename, p.wheel.sha256)
              for r in lock.resolutions for p in r.packages if p.source_tree}
    local_mod.ensure_built(project.root, sorted(wanted), project.index, store)
