"""Today's layer split, kept verbatim as the reference the production planner must match (issue 17).

This is ``lbuild.resolver.split.plan_layers`` as it was before the split was made incremental: it recomputes
every function's layer count over every layer on each remedy pass (about O(F^3) in practice). Only
``tests/unit/test_split_equivalence.py`` and ``bench/bench_split.py`` use it; never change its choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lbuild import rules
from lbuild.resolver.split import BundleSpec, LayerPlan, LayerSpec, PackageInfo, SplitFunction, layer_name


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
