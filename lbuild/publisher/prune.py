"""``lbuild prune --keep N``: delete function versions and layer versions nothing needs any more.

Kept: every version an alias points at (routing weights included), the N newest versions of each
function, and every layer version that ``$LATEST`` or a kept version attaches. Lambda@Edge functions
are never pruned: CloudFront may still hold replicas of their old versions, which cannot be deleted.
The planning function is pure; the reads and deletes go through ``aws.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lbuild.config import Project
from lbuild.errors import AwsError
from lbuild.publisher import aws as aws_mod
from lbuild.publisher.plan import function_name


@dataclass(frozen=True)
class FunctionVersions:
    name: str
    versions: Mapping[str, tuple[str, ...]]  # version number -> layer ARNs it attaches ("$LATEST" included)
    aliased: frozenset[str]  # versions aliases point at


@dataclass(frozen=True)
class PrunePlan:
    delete_versions: tuple[tuple[str, str], ...]  # (function name, version)
    delete_layers: tuple[str, ...]  # layer version ARNs
    skipped: tuple[str, ...]  # what was left alone, and why

    def as_dict(self) -> dict[str, Any]:
        return {"function_versions": [f"{n}:{v}" for n, v in self.delete_versions],
                "layer_versions": list(self.delete_layers), "skipped": list(self.skipped)}


def plan_prune(functions: Sequence[FunctionVersions], layer_versions: Sequence[str], keep: int,
               skipped: Sequence[str] = ()) -> PrunePlan:
    """What to delete (pure)."""
    deletions: list[tuple[str, str]] = []
    used_layers: set[str] = set()
    for fn in functions:
        numbered = sorted((v for v in fn.versions if v.isdigit()), key=int, reverse=True)
        kept = set(numbered[:keep]) | set(fn.aliased) | {"$LATEST"}
        for version, layers in fn.versions.items():
            if version in kept:
                used_layers.update(layers)
            else:
                deletions.append((fn.name, version))
    stale_layers = tuple(sorted(arn for arn in layer_versions if arn not in used_layers))
    return PrunePlan(tuple(sorted(deletions, key=lambda d: (d[0], int(d[1])))), stale_layers, tuple(skipped))


def _pages(aws: aws_mod.Aws, operation: str, resource: str, region: str, key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    marker = None
    while True:
        page = aws.call("lambda", operation, resource, region, **kwargs, **({"Marker": marker} if marker else {}))
        items += page.get(key, [])
        marker = page.get("NextMarker")
        if not marker:
            return items


def read_versions(
    aws: aws_mod.Aws, project: Project, region: str
) -> tuple[list[FunctionVersions], list[str], list[str]]:
    """Versions and aliases of the project's functions, and the project's layer versions."""
    functions, skipped = [], []
    for fn in project.functions:
        name = function_name(project, fn)
        if fn.edge is not None:
            skipped.append(f"{name}: Lambda@Edge versions are never pruned (CloudFront may hold replicas)")
            continue
        try:
            versions = _pages(aws, "list_versions_by_function", f"function {name}", region, "Versions",
                              FunctionName=name)
        except AwsError as exc:
            if "ResourceNotFound" in exc.what:
                continue
            raise
        aliases = _pages(aws, "list_aliases", f"function {name}", region, "Aliases", FunctionName=name)
        aliased = {a["FunctionVersion"] for a in aliases}
        for a in aliases:
            aliased.update(((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).keys())
        functions.append(FunctionVersions(
            name, {v["Version"]: tuple(layer["Arn"] for layer in v.get("Layers") or ()) for v in versions},
            frozenset(aliased)))
    prefix = f"{project.name[:30]}-py"
    layer_arns = []
    for layer in _pages(aws, "list_layers", "layers", region, "Layers"):
        name = layer["LayerName"]
        if name.startswith(prefix):
            versions = _pages(aws, "list_layer_versions", f"layer {name}", region, "LayerVersions", LayerName=name)
            layer_arns += [v["LayerVersionArn"] for v in versions]
    return functions, layer_arns, skipped


def execute_prune(aws: aws_mod.Aws, plan: PrunePlan, region: str, log: Callable[[str], None]) -> None:
    for name, version in plan.delete_versions:
        aws.call("lambda", "delete_function", f"function {name}:{version}", region, FunctionName=name,
                 Qualifier=version)
        log(f"deleted {name}:{version}")
    for arn in plan.delete_layers:
        layer_name, number = arn.rsplit(":", 2)[-2:]
        aws.call("lambda", "delete_layer_version", f"layer {layer_name}:{number}", region, LayerName=layer_name,
                 VersionNumber=int(number))
        log(f"deleted layer {layer_name}:{number}")
