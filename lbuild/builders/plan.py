"""Pure: lock + layer plan + config -> the artifacts to build, each keyed by everything that changes its bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from lbuild import __version__
from lbuild.builders.deflate import COMPRESSOR
from lbuild.config import Function, Project
from lbuild.resolver.lockfile import Lock, LockedPackage
from lbuild.resolver.split import LayerPlan, PackageInfo, SplitFunction

LAYOUT_VERSION = "1"
LAYER_PREFIX = "python/"


@dataclass(frozen=True)
class ArtifactSpec:
    """One zip to build: a shared layer or a function bundle."""

    kind: str  # "layer" | "function"
    name: str
    file: str  # path inside dist/
    prefix: str  # where packages go inside the zip
    packages: tuple[LockedPackage, ...]
    function: Function | None = None  # bundles only: whose source goes in
    layers: tuple[str, ...] = ()  # bundles only: layers it attaches

    def key(self, source_digest: str, epoch: int | None, target: str = "") -> str:
        """The build-cache key: every input that changes the zip's bytes, and the target (``Target.id``) the
        binary audit checked them against, so a hit never skips an audit that would fail for another target."""
        h = hashlib.sha256(f"lbuild-artifact/{LAYOUT_VERSION}/{__version__}/{COMPRESSOR}\0{self.kind}\0{self.prefix}"
                           f"\0{epoch}\0{source_digest}\0{target}".encode())
        for package in sorted(self.packages, key=lambda p: p.name):
            h.update(f"\0{package.pin}\0{package.wheel.sha256}".encode())
        return h.hexdigest()


def split_inputs(project: Project, lock: Lock) -> tuple[list[SplitFunction], dict[str, dict[str, PackageInfo]]]:
    """What the layer planner needs, from the config and the lock."""
    functions = []
    for fn in project.functions:
        locked = lock.function(fn.name)
        why = ""
        if fn.edge is not None:
            why = "Lambda@Edge functions cannot use layers"
        elif fn.package_type == "image":
            why = "container image functions cannot use layers"
        elif fn.isolated:
            why = "the function is isolated (resolved on its own)"
        functions.append(SplitFunction(fn.name, locked.resolution, fn.target, locked.closure, not why, why,
                                       len(fn.layers)))
    packages = {
        r.id: {p.name: PackageInfo(p.name, p.version, p.wheel.sha256, p.wheel.size) for p in r.packages}
        for r in lock.resolutions
    }
    return functions, packages


def plan_artifacts(project: Project, lock: Lock, layer_plan: LayerPlan,
                   selected: Sequence[Function]) -> tuple[ArtifactSpec, ...]:
    """The layers the selected zip functions attach, then their bundles, in a stable order."""
    specs: dict[str, ArtifactSpec] = {}
    bundles = []
    for fn in selected:
        if fn.package_type != "zip":
            continue
        bundle = layer_plan.bundle(fn.name)
        resolution = lock.resolution(bundle.resolution).by_name
        for layer_name in bundle.layers:
            if layer_name not in specs:
                layer = layer_plan.layer(layer_name)
                specs[layer_name] = ArtifactSpec("layer", layer_name, f"layers/{layer_name}.zip", LAYER_PREFIX,
                                                 tuple(resolution[n] for n in layer.packages))
        bundles.append(ArtifactSpec("function", fn.name, f"functions/{fn.name}.zip", "",
                                    tuple(resolution[n] for n in bundle.packages), fn, bundle.layers))
    return tuple(sorted(specs.values(), key=lambda s: s.name)) + tuple(bundles)
