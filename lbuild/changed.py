"""Pure: which functions changed since a git ref (``--changed-since``), and why.

A function is selected when
- a changed path is one of its inputs: a file of its source or of an ``include`` directory (not one its
  excludes leave out), its requirements files (``-r``/``-c`` includes too), a local project it uses, its
  Dockerfile;
- its effective configuration differs from the one lbuild.toml gave it at the base commit (compared as parsed,
  with ``[project]`` keys and the stage's overlay applied, so comments, formatting and key order count for
  nothing), or a ``[project]`` key every function deploys with (region, alias, ...) changed; a function new
  in lbuild.toml is selected too;
- what lbuild.lock gives it changed: its locked closure (a version, a wheel, a local project's source
  tree), or the layers it attaches and the packages of its own bundle, as the layer split of the lock at the
  base commit and of today's lock place them. A shared layer is named by its content, so when one function's
  closure change alters a layer, every function attaching the old or the new layer is selected.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbuild.builders.plan import split_inputs
from lbuild.builders.sources import excluded
from lbuild.config import Function, Project, select
from lbuild.resolver.lockfile import Lock
from lbuild.resolver.split import plan_layers

#: [project] settings every function deploys with (the others reach a function through its own settings or
#: through lbuild.lock)
PROJECT_SETTINGS = ("region", "artifact_bucket", "image_registry", "alias", "deploy_name")


@dataclass(frozen=True)
class FunctionInputs:
    """The files and folders a function is built from (absolute paths), read from today's tree."""

    name: str
    source: Path
    exclude: tuple[str, ...]  # the source's (and includes') exclude patterns
    include: tuple[Path, ...] = ()
    files: tuple[Path, ...] = ()  # requirements files (``-r`` / ``-c`` includes too) and the Dockerfile
    local: tuple[Path, ...] = ()  # local project directories
    dockerfile: Path | None = None


@dataclass(frozen=True)
class Before:
    """lbuild.toml and lbuild.lock at the base commit; a note says why one is missing (did not exist, does not
    parse against today's files)."""

    project: Project | None
    lock: Lock | None
    config_note: str = ""
    lock_note: str = ""


@dataclass(frozen=True)
class Selected:
    name: str
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Selection:
    """The functions that changed since ``ref`` (at commit ``base``), in config order."""

    ref: str
    base: str
    functions: tuple[Selected, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.functions)

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "base": self.base, "functions": [s.as_dict() for s in self.functions]}


def select_changed(project: Project, inputs: Sequence[FunctionInputs], paths: Iterable[Path], before: Before,
                   lock: Lock | None, *, ref: str, base: str, names: Sequence[str] = ()) -> Selection:
    """The functions of ``project`` (of ``names`` only, when given: an intersection) that changed since ``base``:
    ``paths`` changed, ``before`` is lbuild.toml and lbuild.lock there, ``lock`` is today's lbuild.lock."""
    wanted = {fn.name for fn in select(project, names)}
    reasons: dict[str, list[str]] = {fn.name: [] for fn in project.functions}
    skipped = {project.path.resolve(), project.lock_path.resolve()}  # compared by content, below
    changed = [p for p in paths if p not in skipped]
    for fn_inputs in inputs:
        reasons[fn_inputs.name] += path_reasons(fn_inputs, changed, project.root)
    for name, why in config_reasons(project, before).items():
        reasons[name] += why
    for name, why in lock_reasons(project, before, lock).items():
        reasons[name] += why
    chosen = tuple(Selected(fn.name, tuple(reasons[fn.name])) for fn in project.functions
                   if fn.name in wanted and reasons[fn.name])
    return Selection(ref, base, chosen)


# --- files ------------------------------------------------------------------------------------------------


def _under(path: Path, folder: Path) -> str | None:
    """``path`` relative to ``folder`` (posix) when it is inside it."""
    try:
        relative = path.relative_to(folder)
    except ValueError:
        return None
    return relative.as_posix() if relative.parts else None


def _kept(relative: str, exclude: Sequence[str]) -> bool:
    """Whether the source file ``relative`` goes into the bundle: neither it nor a folder above it is excluded."""
    parts = relative.split("/")
    folders = ("/".join(parts[:i]) for i in range(1, len(parts)))
    return not any(excluded(folder, exclude, folder=True) for folder in folders) and not excluded(relative, exclude)


def _shown(path: Path, root: Path) -> str:
    """``path`` relative to the folder of lbuild.toml (``../../libs/common/...`` outside it)."""
    return Path(os.path.relpath(path, root)).as_posix()


def path_reasons(fn: FunctionInputs, paths: Iterable[Path], root: Path) -> list[str]:
    """Why the changed ``paths`` touch ``fn``'s inputs (one reason per kind of input, naming the first path)."""
    found: dict[str, str] = {}
    for path in paths:
        kind = None
        if path in fn.files:  # before the source: a requirements.txt in the source is first a requirements file
            kind = "dockerfile" if path == fn.dockerfile else "requirements"
        for folder, what in ((fn.source, "source"), *((extra, "include") for extra in fn.include)):
            relative = _under(path, folder) if kind is None else None
            if relative is not None and _kept(relative, fn.exclude):
                kind = what
                break
        if kind is None and any(_under(path, folder) is not None for folder in fn.local):
            kind = "local project"
        if kind is not None:
            found.setdefault(kind, _shown(path, root))
    return [f"{kind} changed: {path}" for kind, path in found.items()]


# --- lbuild.toml ------------------------------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    """``value`` with every ``where`` (the file:line a setting was read at) left out: a line moved by a comment
    is no change."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, _comparable(getattr(value, f.name)))
                                            for f in dataclasses.fields(value) if f.name != "where" and f.compare))
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _comparable(v)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return tuple(_comparable(v) for v in value)
    return value


def setting_changes(old: Function, new: Function) -> list[str]:
    """The names of ``new``'s settings that differ from ``old``'s (``wiring`` broken down by its fields)."""
    differ = []
    for field in dataclasses.fields(Function):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if _comparable(before) == _comparable(after):
            continue
        if field.name == "wiring":
            differ += [f.name.rstrip("_") for f in dataclasses.fields(after)
                       if f.compare and _comparable(getattr(before, f.name)) != _comparable(getattr(after, f.name))]
        else:
            differ.append(field.name)
    return differ


def config_reasons(project: Project, before: Before) -> dict[str, list[str]]:
    """Why lbuild.toml's changes touch each function (today's ``project`` against ``before.project``)."""
    name = project.path.name
    if before.project is None:
        return {fn.name: [f"{name} {before.config_note or 'was not at the base commit'}"] for fn in project.functions}
    old = before.project
    everyone = [f"[project] {key} changed" for key in PROJECT_SETTINGS if getattr(old, key) != getattr(project, key)]
    olds = {fn.name: fn for fn in old.functions}
    found: dict[str, list[str]] = {}
    for fn in project.functions:
        why = list(everyone)
        if fn.name not in olds:
            why.append(f"new in {name}")
        else:
            differ = setting_changes(olds[fn.name], fn)
            if differ:
                why.append(f"settings changed: {', '.join(differ)}")
        if why:
            found[fn.name] = why
    return found


# --- lbuild.lock ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """What lbuild.lock gives one function: its closure (each package's pin, wheel hash and source tree), the
    layers it attaches (named by content) and the packages of its own bundle."""

    closure: frozenset[tuple[str, str, str]]
    layers: frozenset[str]
    bundle: frozenset[str]


def _placed(project: Project, lock: Lock) -> dict[str, _Placed] | None:
    """Each function's place in ``lock``'s layer split; None when ``lock`` does not cover ``project``."""
    try:
        functions, packages = split_inputs(project, lock)
        plan = plan_layers(project.name, functions, packages, project.min_functions)
        placed = {}
        for fn in project.functions:
            closure = frozenset((p.pin, p.wheel.sha256, p.source_tree or "") for p in lock.closure_packages(fn.name))
            bundle = plan.bundle(fn.name)
            placed[fn.name] = _Placed(closure, frozenset(bundle.layers), frozenset(bundle.packages))
    except KeyError:
        return None
    return placed


def _pins(closure: frozenset[tuple[str, str, str]]) -> set[str]:
    return {pin for pin, _, _ in closure}


def lock_reasons(project: Project, before: Before, lock: Lock | None) -> dict[str, list[str]]:
    """Why the change of lbuild.lock touches each function (its closure, its layers, its bundle)."""
    build = project.build
    now = _placed(build, lock) if lock is not None else None
    if now is None:
        return {fn.name: ["lbuild.lock does not lock it yet"] for fn in project.functions}
    old_project = before.project.build if before.project is not None else None
    then = _placed(old_project, before.lock) if old_project is not None and before.lock is not None else None
    found: dict[str, list[str]] = {}
    for fn in project.functions:
        current, earlier = now[fn.name], (then or {}).get(fn.name)
        why = []
        if earlier is None:
            why.append(f"lbuild.lock {before.lock_note or 'did not lock it at the base commit'}"
                       if then is None else "lbuild.lock did not lock it at the base commit")
        elif current.closure != earlier.closure:
            now_pins, then_pins = _pins(current.closure), _pins(earlier.closure)
            added, removed = now_pins - then_pins, then_pins - now_pins
            detail = ", ".join([*(f"+{p}" for p in sorted(added)), *(f"-{p}" for p in sorted(removed))])
            why.append(f"locked dependencies changed: {detail or 'a wheel or a local project was rebuilt'}")
        elif current.layers != earlier.layers:
            why.append("the shared layers it attaches changed (what it shares with other functions was regrouped)")
        elif current.bundle != earlier.bundle:
            why.append("packages moved between its bundle and the shared layers")
        if why:
            found[fn.name] = why
    return found
