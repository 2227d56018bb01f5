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
"""

from __future__ import annotations

import hashlib
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
        for bundle in self.bundles:
            if bundle.function == function:
                return bundle
        raise KeyError(function)

    def layer(self, name: str) -> LayerSpec:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


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
    moved: dict[tuple[str, str], str] = {}  # (function, package) -> why it is in the bundle, not a layer

    def size(names: frozenset[str]) -> int:
        return sum(packages[n].zip_bytes for n in names)

    def put(key: frozenset[str], names: frozenset[str]) -> None:
        if len(key) >= min_functions:
            layers[key] = layers.get(key, frozenset()) | names

    while True:
        counts = {f: sum(1 for key in layers if f in key) for f in limit}
        over = {f for f in counts if counts[f] > limit[f]}
        if not over:
            break
        fn_name = min(over, key=lambda f: (limit[f] - counts[f], f))
        mine = sorted((key for key in layers if fn_name in key), key=lambda k: (sorted(layers[k]), sorted(k)))
        options: list[tuple[float, int, str, tuple[frozenset[str], ...]]] = []
        for key in mine:  # take this layer's packages into the function's own bundle
            remaining = len(key) - 1
            extra = size(layers[key]) * (remaining if remaining < min_functions else 1)
            options.append((extra, len(options), "drop", (key,)))
        for inner in mine:  # nest: a layer whose users all use another layer too absorbs that layer's packages
            for outer in mine:
                if inner < outer:
                    rest = outer - inner
                    extra = size(layers[outer]) * (len(rest) if len(rest) < min_functions else 1)
                    gain = len(inner & over)
                    options.append((extra / gain, len(options), "nest", (inner, outer)))
        cost, _, action, keys = min(options)
        if action == "drop":
            (key,) = keys
            names = layers.pop(key)
            rest = key - {fn_name}
            put(rest, names)
            for name in names:
                moved[(fn_name, name)] = (f"moved out of a shared layer so that '{fn_name}' stays within "
                                          f"{limit[fn_name]} layers (cheapest choice: {int(cost)} more bytes stored)")
                if len(rest) < min_functions:
                    for other in rest:
                        moved[(other, name)] = (f"its layer was dissolved when '{fn_name}' left it (fewer than "
                                                f"{min_functions} functions remained)")
        else:
            inner, outer = keys
            outer_names = layers.pop(outer)
            layers[inner] = layers[inner] | outer_names
            rest = outer - inner
            put(rest, outer_names)
            if len(rest) < min_functions:
                for other in rest:
                    for name in outer_names:
                        moved[(other, name)] = ("its layer was dissolved when the functions that also need "
                                                "another layer took its packages into that one")

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
