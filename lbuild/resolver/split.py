"""Pure: split each function's closure into shared layers and its own bundle (a ``LayerPlan``).

Rules:
- A package that at least ``min_functions`` eligible functions need goes into a shared layer; the
  rest goes into each function's bundle. Edge, image and isolated functions are not eligible.
- Shared packages are grouped by the exact set of functions that attach them, so a function attaches
  only layers whose every package is in its closure (it never receives a package it does not need),
  and it sees one version of each package (one resolution per function).
- A function may attach at most ``5 - len(its external layer ARNs)`` layers. While one needs more,
  the cheapest (function, layer) pair in extra stored bytes is undone: that function takes the layer's
  packages into its bundle; a layer left with fewer than ``min_functions`` users is dissolved.
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
    attach: dict[str, frozenset[str]] = {
        name: frozenset(u) if len(u) >= min_functions else frozenset() for name, u in users.items()
    }
    moved: dict[tuple[str, str], str] = {}  # (function, package) -> why it left a layer

    while True:
        groups = _groups(attach)
        counts = {f: sum(1 for key in groups if f in key) for f in limit}
        over = sorted((f for f in counts if counts[f] > limit[f]), key=lambda f: (limit[f] - counts[f], f))
        if not over:
            break
        fn_name = over[0]
        options = []
        for key, names in groups.items():
            if fn_name not in key:
                continue
            size = sum(packages[n].zip_bytes for n in names)
            remaining = len(key) - 1
            # Dissolving moves the layer's bytes into every user's bundle (one copy was stored before).
            extra = size * remaining if remaining < min_functions else size
            options.append((extra, sorted(names), key, names))
        extra, _, key, names = min(options, key=lambda o: (o[0], o[1]))
        remaining_users = key - {fn_name}
        dissolve = len(remaining_users) < min_functions
        for name in names:
            attach[name] = frozenset() if dissolve else frozenset(remaining_users)
            why = (f"moved out of a shared layer so that '{fn_name}' stays within {limit[fn_name]} layers "
                   f"(cheapest choice: {extra} more bytes stored)")
            moved[(fn_name, name)] = why
            if dissolve:
                for other in remaining_users:
                    moved[(other, name)] = f"its layer was dissolved when '{fn_name}' left it (fewer than " \
                                           f"{min_functions} functions remained)"

    layer_of: dict[str, LayerSpec] = {}
    out_layers = []
    for key, names in sorted(_groups(attach).items(), key=lambda kv: sorted(kv[1])):
        infos = [packages[n] for n in names]
        target = fns[0].target
        spec = LayerSpec(layer_name(project, target, infos), resolution, target, tuple(sorted(names)),
                         tuple(sorted(key)), sum(i.zip_bytes for i in infos))
        out_layers.append(spec)
        for name in names:
            layer_of[name] = spec

    out_bundles = []
    for fn in fns:
        bundle_packages = []
        attached: set[str] = set()
        for name in fn.closure:
            shared = layer_of.get(name)
            if shared is not None and fn.name in shared.functions:
                attached.add(shared.name)
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
        out_bundles.append(BundleSpec(fn.name, resolution, tuple(sorted(bundle_packages)), tuple(sorted(attached))))
    return out_layers, out_bundles


def _groups(attach: Mapping[str, frozenset[str]]) -> dict[frozenset[str], list[str]]:
    groups: dict[frozenset[str], list[str]] = {}
    for name in sorted(attach):
        if attach[name]:
            groups.setdefault(attach[name], []).append(name)
    return groups
