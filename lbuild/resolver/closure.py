"""Pure: each function's dependency closure within a joint resolution, with markers evaluated for the target.

The joint resolution pins one version of every package a target's functions need; a function's
closure is what pip would install for that function alone given those pins: its requirements, their
``Requires-Dist`` (extras included), recursively, with every marker evaluated for the target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version


@dataclass(frozen=True)
class Node:
    """A pinned package and what its metadata requires."""

    name: NormalizedName
    version: str
    requires_dist: tuple[str, ...]


@dataclass(frozen=True)
class Closure:
    """A function's closure: each package with the packages (or ``<root>``) that pulled it in."""

    required_by: Mapping[NormalizedName, frozenset[str]]

    @property
    def names(self) -> tuple[NormalizedName, ...]:
        return tuple(sorted(self.required_by))


class MissingPin(Exception):
    """A requirement reached in the closure has no pin in the resolution (or a pin it rejects)."""

    def __init__(self, requirement: str, parent: str, pinned: str | None) -> None:
        super().__init__(requirement)
        self.requirement = requirement
        self.parent = parent
        self.pinned = pinned


ROOT = "<root>"


def _applies(marker: Marker | None, env: Mapping[str, str], extras: Iterable[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


def compute_closure(roots: Iterable[str], nodes: Mapping[NormalizedName, Node], env: Mapping[str, str]) -> Closure:
    """Walk from ``roots`` (PEP 508 strings) through ``nodes`` under marker environment ``env``."""
    required_by: dict[NormalizedName, set[str]] = {}
    extras_seen: dict[NormalizedName, set[str]] = {}
    queue: list[tuple[Requirement, str]] = [(Requirement(r), ROOT) for r in roots]
    while queue:
        req, parent = queue.pop()
        parent_extras = extras_seen.get(canonicalize_name(parent), set()) if parent != ROOT else set()
        if not _applies(req.marker, env, parent_extras):
            continue
        name = canonicalize_name(req.name)
        node = nodes.get(name)
        if node is None or (req.specifier and not req.specifier.contains(Version(node.version), prereleases=True)):
            raise MissingPin(str(req), parent, node.version if node else None)
        first_visit = name not in required_by
        required_by.setdefault(name, set()).add(parent)
        known = extras_seen.setdefault(name, set())
        new_extras = {canonicalize_name(e) for e in req.extras} - known
        if not first_visit and not new_extras:
            continue
        known |= new_extras
        before = known - new_extras
        for dep in node.requires_dist:
            dep_req = Requirement(dep)
            # On a later visit only the edges that the newly requested extras switch on are new.
            newly_on = first_visit or (dep_req.marker is not None and not _applies(dep_req.marker, env, before))
            if newly_on and _applies(dep_req.marker, env, known):
                queue.append((dep_req, name))
    return Closure({name: frozenset(parents) for name, parents in required_by.items()})
