"""Pure: split each function's closure into shared layers and its own bundle (a ``LayerPlan``).

Rules:
- A package that at least ``min_functions`` eligible functions need goes into a shared layer; the
  rest goes into each function's bundle. Edge, image and isolated functions are not eligible.
- Shared packages are grouped by the exact set of functions that attach them, so a function attaches
  only layers whose every package is in its closure (it never receives a package it does not need),
  and it sees one version of each package (one resolution per function).
- A function may attach at most ``5 - len(its external layer ARNs)`` layers. While one needs more, the
  cheapest remedy in extra stored bytes (per over-limit function it helps) is applied: either that
  function takes one layer's packages into its bundle, or a layer whose users all attach a second layer
  absorbs the second layer's packages (nesting: those bytes are stored twice, but every one of its users
  saves a layer). A layer left with fewer than ``min_functions`` users is dissolved into bundles.
- Layers are named by their content (target + pinned wheels), so an unchanged layer keeps its name
  whatever else changes in the repository.

Cost: one pass per remedy, each costing the chosen function's own layers (counts, sizes and the order of
over-limit functions are kept incrementally), so planning grows about n log n with the repository
(bench/bench_split.py; ``tests/support/split_reference.py`` is the earlier planner it must match).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lbuild import rules


@dataclass(frozen=True)
class PackageInfo:
    """A locked package as the planner sees it."""

    name: str
    version: str
    sha256: str
    zip_bytes: int


@dataclass(frozen=True)
class SplitFunction:
    """A function as the planner sees it."""

    name: str
    resolution: str
    target: rules.Target
    closure: tuple[str, ...]
    shares: bool  # may take shared layers (zip, not edge, not isolated)
    why_not: str = ""  # why it may not, when it may not
    external_layers: int = 0


@dataclass(frozen=True)
class LayerSpec:
    """A shared layer: its content-addressed name, packages and the functions that attach it."""

    name: str
    resolution: str
    target: rules.Target
    packages: tuple[str, ...]
    functions: tuple[str, ...]
    zip_bytes: int


@dataclass(frozen=True)
class BundleSpec:
    """What one function's own zip holds besides its source, and the layers it attaches."""

    function: str
    resolution: str
    packages: tuple[str, ...]
    layers: tuple[str, ...]


@dataclass(frozen=True)
class LayerPlan:
    layers: tuple[LayerSpec, ...]
    bundles: tuple[BundleSpec, ...]
    reasons: Mapping[str, Mapping[str, str]]  # function -> package -> why it is where it is

    def bundle(self, function: str) -> BundleSpec:
        return self._bundles[function]

    def layer(self, name: str) -> LayerSpec:
        return self._layers[name]

    @functools.cached_property
    def _bundles(self) -> dict[str, BundleSpec]:  # built once: callers look up every function
        return {b.function: b for b in self.bundles}

    @functools.cached_property
    def _layers(self) -> dict[str, LayerSpec]:
        return {layer.name: layer for layer in self.layers}


def layer_name(project: str, target: rules.Target, packages: Sequence[PackageInfo]) -> str:
    """``<project>-<py312-arm64>-<16 hex>``: the hash covers the target and every wheel."""
    h = hashlib.sha256(f"lbuild-layer/1\0{target.id}".encode())
    for package in sorted(packages, key=lambda p: p.name):
        h.update(f"\0{package.name}=={package.version}\0{package.sha256}".encode())
    token = f"py{target.spec.python[0]}{target.spec.python[1]}-{target.architecture.replace('_', '')}"
    return f"{project[:30]}-{token}-{h.hexdigest()[:16]}"


def plan_layers(project: str, functions: Sequence[SplitFunction],
                packages: Mapping[str, Mapping[str, PackageInfo]], min_functions: int = 2) -> LayerPlan:
    """Plan layers and bundles for ``functions``; ``packages`` maps resolution id -> name -> package."""
    layers: list[LayerSpec] = []
    bundles: list[BundleSpec] = []
    reasons: dict[str, dict[str, str]] = {f.name: {} for f in functions}
    by_resolution: dict[str, list[SplitFunction]] = {}
    for fn in functions:
        by_resolution.setdefault(fn.resolution, []).append(fn)
    for resolution in sorted(by_resolution):
        fns = sorted(by_resolution[resolution], key=lambda f: f.name)
        res_layers, res_bundles = _plan_resolution(project, resolution, fns, packages[resolution], min_functions,
                                                   reasons)
        layers += res_layers
        bundles += res_bundles
    return LayerPlan(tuple(sorted(layers, key=lambda layer: layer.name)),
                     tuple(sorted(bundles, key=lambda b: b.function)),
                     {f: dict(sorted(r.items())) for f, r in sorted(reasons.items())})


def _plan_resolution(
    project: str, resolution: str, fns: list[SplitFunction], packages: Mapping[str, PackageInfo],
    min_functions: int, reasons: dict[str, dict[str, str]],
) -> tuple[list[LayerSpec], list[BundleSpec]]:
    eligible = [f for f in fns if f.shares]
    limit = {f.name: rules.MAX_LAYERS - f.external_layers for f in eligible}
    users: dict[str, set[str]] = {}
    for fn in eligible:
        for name in fn.closure:
            users.setdefault(name, set()).add(fn.name)
    # layers: users -> packages. A function attaches every layer whose users include it; the layers it
    # attaches hold disjoint packages, all in its closure. A package may sit in two layers (nesting).
    layers: dict[frozenset[str], frozenset[str]] = {}
    for name, who in users.items():
        if len(who) >= min_functions:
            key = frozenset(who)
            layers[key] = layers.get(key, frozenset()) | {name}
    moved = _fit_layer_limits(layers, limit, packages, min_functions)

    # Layers with the same packages (and, by the invariant, disjoint users) are one layer.
    by_content: dict[frozenset[str], frozenset[str]] = {}
    for key, names in layers.items():
        by_content[names] = by_content.get(names, frozenset()) | key
    target = fns[0].target
    out_layers = []
    attached_by: dict[str, list[LayerSpec]] = {}
    for names, key in sorted(by_content.items(), key=lambda kv: (sorted(kv[0]), sorted(kv[1]))):
        infos = [packages[n] for n in names]
        spec = LayerSpec(layer_name(project, target, infos), resolution, target, tuple(sorted(names)),
                         tuple(sorted(key)), sum(i.zip_bytes for i in infos))
        out_layers.append(spec)
        for fn_name in key:
            attached_by.setdefault(fn_name, []).append(spec)

    out_bundles = []
    for fn in fns:
        in_layers = {n: spec for spec in attached_by.get(fn.name, []) for n in spec.packages}
        bundle_packages = []
        for name in fn.closure:
            shared = in_layers.get(name)
            if shared is not None:
                reasons[fn.name][name] = f"shared layer {shared.name} (used by {len(shared.functions)} functions)"
                continue
            bundle_packages.append(name)
            if not fn.shares:
                reasons[fn.name][name] = f"bundle: {fn.why_not}"
            elif (fn.name, name) in moved:
                reasons[fn.name][name] = f"bundle: {moved[(fn.name, name)]}"
            else:
                count = len(users.get(name, ()))
                reasons[fn.name][name] = (f"bundle: needed by {count} function{'s' if count != 1 else ''} "
                                          f"that can share layers (min_functions = {min_functions})")
        layers_of_fn = tuple(sorted(spec.name for spec in attached_by.get(fn.name, [])))
        out_bundles.append(BundleSpec(fn.name, resolution, tuple(sorted(bundle_packages)), layers_of_fn))
    return out_layers, out_bundles


def _fit_layer_limits(layers: dict[frozenset[str], frozenset[str]], limit: Mapping[str, int],
                      packages: Mapping[str, PackageInfo], min_functions: int) -> dict[tuple[str, str], str]:
    """Apply the cheapest remedy, one at a time, until no function attaches more layers than it may.

    Edits ``layers`` (users -> packages) in place; returns (function, package) -> why it went to the bundle.
    Each pass takes the function furthest over its limit (ties: by name) and tries drops, then nests, in the
    order of its layers' sorted contents; the first cheapest option wins. Counts only fall, so the state is
    kept incrementally: a layer keeps its id when only its users shrink, and a pass costs the chosen
    function's own layers plus the functions whose count it lowers (each count falls a bounded number of
    times), not a scan of every function over every layer.
    """
    state = _Layers(layers, limit, packages, min_functions)
    moved: dict[tuple[str, str], str] = {}
    while (fn_name := state.furthest_over()) is not None:
        cost, action, inner, outer = state.cheapest_remedy(fn_name)
        if action == "drop":
            names, rest = state.content[outer], state.users[outer] - {fn_name}
            state.replace(outer, rest)
            for name in names:
                moved[(fn_name, name)] = (f"moved out of a shared layer so that '{fn_name}' stays within "
                                          f"{limit[fn_name]} layers (cheapest choice: {int(cost)} more bytes stored)")
                if len(rest) < min_functions:
                    for other in rest:
                        moved[(other, name)] = (f"its layer was dissolved when '{fn_name}' left it (fewer than "
                                                f"{min_functions} functions remained)")
        else:
            outer_names, rest = state.content[outer], state.users[outer] - state.users[inner]
            state.absorb(inner, outer_names)
            state.replace(outer, rest)
            if len(rest) < min_functions:
                for other in rest:
                    for name in outer_names:
                        moved[(other, name)] = ("its layer was dissolved when the functions that also need "
                                                "another layer took its packages into that one")
    layers.clear()
    layers.update({state.users[i]: state.content[i] for i in state.users})
    return moved


class _Layers:
    """The split's layers while remedies are applied: ids, users, contents and every function's count."""

    def __init__(self, layers: Mapping[frozenset[str], frozenset[str]], limit: Mapping[str, int],
                 packages: Mapping[str, PackageInfo], min_functions: int) -> None:
        self.limit, self.packages, self.min_functions = limit, packages, min_functions
        self.users: dict[int, frozenset[str]] = {}
        self.content: dict[int, frozenset[str]] = {}
        self.size: dict[int, int] = {}
        self.order: dict[int, tuple[str, ...]] = {}  # sorted content: the order a function's layers are tried in
        self.by_users: dict[frozenset[str], int] = {}
        self.attached: dict[str, set[int]] = {f: set() for f in limit}
        for i, (key, names) in enumerate(layers.items()):
            self.users[i], self.by_users[key] = key, i
            self._set_content(i, names)
            for f in key:
                self.attached[f].add(i)
        self.over = {f for f in limit if len(self.attached[f]) > limit[f]}
        self.heap = [(limit[f] - len(self.attached[f]), f) for f in self.over]
        heapq.heapify(self.heap)

    def furthest_over(self) -> str | None:
        """The function with the most layers beyond its limit (ties: the first name), or None."""
        while self.heap:
            slack, fn_name = self.heap[0]
            if fn_name in self.over and slack == self.limit[fn_name] - len(self.attached[fn_name]):
                return fn_name
            heapq.heappop(self.heap)  # stale: pushed before the function's count fell again
        return None

    def cheapest_remedy(self, fn_name: str) -> tuple[float, str, int, int]:
        """(extra bytes per over-limit function helped, "drop" | "nest", inner, outer): the first cheapest."""
        mine = sorted(self.attached[fn_name], key=self.order.__getitem__)
        if any(self.order[a] == self.order[b] for a, b in itertools.pairwise(mine)):  # equal contents: by users
            mine.sort(key=lambda i: (self.order[i], tuple(sorted(self.users[i]))))
        best: tuple[float, str, int, int] | None = None
        for i in mine:  # take this layer's packages into the function's own bundle
            remaining = len(self.users[i]) - 1
            extra = self.size[i] * (remaining if remaining < self.min_functions else 1)
            if best is None or extra < best[0]:
                best = (extra, "drop", i, i)
        for inner in mine:  # nest: a layer whose users all use another layer too absorbs that layer's packages
            inner_users, gain = self.users[inner], 0
            for outer in mine:
                if inner_users < self.users[outer]:
                    rest = len(self.users[outer]) - len(inner_users)
                    extra = self.size[outer] * (rest if rest < self.min_functions else 1)
                    gain = gain or len(inner_users & self.over)
                    cost = extra / gain
                    if best is None or cost < best[0]:
                        best = (cost, "nest", inner, outer)
        assert best is not None, "a function over its limit attaches at least one layer"
        return best

    def absorb(self, i: int, names: frozenset[str]) -> None:
        self._set_content(i, self.content[i] | names)

    def replace(self, i: int, rest: frozenset[str]) -> None:
        """Layer ``i`` now serves only ``rest``: kept (same id), merged into rest's layer, or dissolved."""
        old = self.users[i]
        del self.by_users[old]
        merge_into = self.by_users.get(rest) if len(rest) >= self.min_functions else None
        if len(rest) >= self.min_functions and merge_into is None:
            self.users[i], self.by_users[rest] = rest, i
            self._lower(old - rest, i)
            return
        if merge_into is not None:
            self.absorb(merge_into, self.content[i])
        for table in (self.users, self.content, self.size, self.order):
            del table[i]
        self._lower(old, i)

    def _lower(self, fns: frozenset[str], i: int) -> None:
        """``fns`` no longer attach layer ``i``: one layer fewer each."""
        for f in fns:
            self.attached[f].discard(i)
            if len(self.attached[f]) > self.limit[f]:
                heapq.heappush(self.heap, (self.limit[f] - len(self.attached[f]), f))
            else:
                self.over.discard(f)

    def _set_content(self, i: int, names: frozenset[str]) -> None:
        self.content[i] = names
        self.size[i] = sum(self.packages[n].zip_bytes for n in names)
        self.order[i] = tuple(sorted(names))
