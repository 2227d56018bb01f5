"""Pure: each function's dependency closure within a joint resolution, with markers evaluated for the target.

The joint resolution pins one version of every package a target's functions need; a function's
closure is what pip would install for that function alone given those pins: its requirements, their
``Requires-Dist`` (extras included), recursively, with every marker evaluated for the target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


class Walker:
    """Computes closures within one resolution under one marker environment.

    Each requirement string is parsed, checked against its pin and evaluated once per set of extras, however
    many functions reach it: forty functions of one target share most of their ``Requires-Dist`` lines.
    """

    def __init__(self, nodes: Mapping[NormalizedName, Node], env: Mapping[str, str]) -> None:
        self._nodes = nodes
        self._env = dict(env)
        self._parsed: dict[str, tuple[Requirement, NormalizedName]] = {}
        self._applies: dict[tuple[str, frozenset[str]], bool] = {}
        self._pinned_ok: dict[str, bool] = {}

    def _parse(self, text: str) -> tuple[Requirement, NormalizedName]:
        parsed = self._parsed.get(text)
        if parsed is None:
            req = Requirement(text)
            parsed = self._parsed[text] = (req, canonicalize_name(req.name))
        return parsed

    def _on(self, text: str, extras: frozenset[str]) -> bool:
        """Whether requirement ``text`` applies to the target when the parent was asked for ``extras``."""
        key = (text, extras)
        result = self._applies.get(key)
        if result is None:
            marker = self._parse(text)[0].marker
            result = marker is None or any(marker.evaluate({**self._env, "extra": extra})
                                           for extra in ("", *sorted(extras)))
            self._applies[key] = result
        return result

    def _check_pin(self, text: str, parent: str) -> Node:
        req, name = self._parse(text)
        node = self._nodes.get(name)
        ok = self._pinned_ok.get(text)
        if ok is None:
            ok = node is not None and (not req.specifier
                                       or req.specifier.contains(Version(node.version), prereleases=True))
            self._pinned_ok[text] = ok
        if not ok or node is None:
            raise MissingPin(str(req), parent, node.version if node else None)
        return node

    def closure(self, roots: Iterable[str]) -> Closure:
        """Walk from ``roots`` (PEP 508 strings) through the pinned nodes."""
        required_by: dict[NormalizedName, set[str]] = {}
        extras_seen: dict[NormalizedName, frozenset[str]] = {}
        queue: list[tuple[str, str]] = [(r, ROOT) for r in roots]
        while queue:
            text, parent = queue.pop()
            parent_extras = extras_seen.get(canonicalize_name(parent), frozenset()) if parent != ROOT else frozenset()
            if not self._on(text, parent_extras):
                continue
            node = self._check_pin(text, parent)
            req, name = self._parse(text)
            first_visit = name not in required_by
            required_by.setdefault(name, set()).add(parent)
            before = extras_seen.get(name, frozenset())
            new_extras = frozenset(canonicalize_name(e) for e in req.extras) - before
            if not first_visit and not new_extras:
                continue
            known = extras_seen[name] = before | new_extras
            for dep in node.requires_dist:
                # On a later visit only the edges that the newly requested extras switch on are new.
                newly_on = first_visit or (self._parse(dep)[0].marker is not None and not self._on(dep, before))
                if newly_on and self._on(dep, known):
                    queue.append((dep, name))
        return Closure({name: frozenset(parents) for name, parents in required_by.items()})


def compute_closure(roots: Iterable[str], nodes: Mapping[NormalizedName, Node], env: Mapping[str, str]) -> Closure:
    """Walk from ``roots`` (PEP 508 strings) through ``nodes`` under marker environment ``env``."""
    return Walker(nodes, env).closure(roots)
