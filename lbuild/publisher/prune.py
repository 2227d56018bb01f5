"""``lbuild prune --keep N``: delete this project's function and layer versions that nothing needs any more.

Kept: every version an alias points at (routing weights included), the N newest versions of each
function, and every layer version that a kept version of this project, or any function's ``$LATEST`` in the
region, attaches. A layer version is a candidate only when its description names this project; one with
the older description (no project), or published less than ``YOUNG_SECONDS`` ago (a running deploy may
not have attached it yet), is left alone. Lambda@Edge versions are never pruned (CloudFront may still hold
replicas), nor any version of a function no longer in lbuild.toml (``lbuild remove`` deletes those), nor any
version of another stage's function in the region (its kept versions' layers are kept too: stages share them).
``plan_prune`` is pure; the reads and deletes go through the Aws wrapper.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lbuild.config import Project
from lbuild.errors import AwsError
from lbuild.publisher import aws as aws_mod
from lbuild.publisher.plan import function_name, parse_layer_description
from lbuild.publisher.removed import find_removed

YOUNG_SECONDS = 900.0  # layer versions younger than this are never deleted


@dataclass(frozen=True)
class FunctionVersions:
    name: str
    versions: Mapping[str, tuple[str, ...]]  # version number -> layer ARNs it attaches ("$LATEST" included)
    aliased: frozenset[str]  # versions aliases point at (routing weights included)
    keep_all: str | None = None  # why every version is kept (a function no longer in lbuild.toml)


@dataclass(frozen=True)
class LayerVersion:
    arn: str
    project: str | None  # the project its description names; None: published before lbuild marked it
    created: datetime | None  # its CreatedDate; None when unreadable (then it counts as young)


@dataclass(frozen=True)
class PruneInputs:
    functions: tuple[FunctionVersions, ...]  # this project's functions (Edge ones left out)
    layers: tuple[LayerVersion, ...]  # versions of the layers named like this project's
    latest: Mapping[str, tuple[str, ...]]  # every function in the region -> layer ARNs its $LATEST attaches
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrunePlan:
    delete_versions: tuple[tuple[str, str], ...]  # (function name, version)
    delete_layers: tuple[str, ...]  # layer version ARNs
    skipped: tuple[str, ...]  # what was left alone, and why

    @property
    def count(self) -> int:
        return len(self.delete_versions) + len(self.delete_layers)

    def as_dict(self) -> dict[str, Any]:
        return {"function_versions": [f"{n}:{v}" for n, v in self.delete_versions],
                "layer_versions": list(self.delete_layers), "skipped": list(self.skipped)}


def _label(arn: str) -> str:
    return ":".join(arn.rsplit(":", 2)[-2:])


def plan_prune(project: str, inputs: PruneInputs, keep: int, now: datetime,
               young_seconds: float | None = None) -> PrunePlan:
    """What to delete (pure). ``now`` must be timezone-aware, like the layers' created dates."""
    young = YOUNG_SECONDS if young_seconds is None else young_seconds
    skipped = list(inputs.skipped)
    deletions: list[tuple[str, str]] = []
    used: set[str] = set()  # attached by this project's kept versions and $LATEST
    for fn in inputs.functions:
        numbered = sorted((v for v in fn.versions if v.isdigit()), key=int, reverse=True)
        kept = set(fn.versions) if fn.keep_all else set(numbered[:keep]) | set(fn.aliased) | {"$LATEST"}
        if fn.keep_all:
            skipped.append(fn.keep_all)
        for version, layers in fn.versions.items():
            if version in kept:
                used.update(layers)
            else:
                deletions.append((fn.name, version))
    ours = {fn.name for fn in inputs.functions}
    elsewhere: dict[str, str] = {}  # attached by another function's $LATEST -> the first such function
    for name, layers in sorted(inputs.latest.items()):
        for arn in layers:
            if name in ours:
                used.add(arn)
            else:
                elsewhere.setdefault(arn, name)
    stale, unmarked = [], 0
    for layer in sorted(inputs.layers, key=lambda lv: lv.arn):
        if layer.project is None:
            unmarked += 1
        elif layer.project != project or layer.arn in used:
            continue
        elif layer.arn in elsewhere:
            skipped.append(f"layer {_label(layer.arn)}: attached by {elsewhere[layer.arn]} ($LATEST)")
        elif layer.created is None:
            skipped.append(f"layer {_label(layer.arn)}: its creation date is unknown, so it may be new")
        elif (age := (now - layer.created).total_seconds()) < young:
            skipped.append(f"layer {_label(layer.arn)}: published {max(age, 0):.0f}s ago (under {young:g}s): "
                           "a running deploy may not have attached it yet")
        else:
            stale.append(layer.arn)
    if unmarked:
        what = "1 layer version" if unmarked == 1 else f"{unmarked} layer versions"
        skipped.append(f"{what} published before lbuild marked its project {'is' if unmarked == 1 else 'are'} "
                       "left alone")
    return PrunePlan(tuple(sorted(deletions, key=lambda d: (d[0], int(d[1])))), tuple(stale), tuple(skipped))


# --- reads and deletes ------------------------------------------------------------------------------


def _created(text: str) -> datetime | None:
    """Lambda's ``2024-05-01T12:00:00.000+0000``."""
    for form in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, form)
        except ValueError:
            pass
    return None


def _versions(aws: aws_mod.Aws, name: str, region: str, keep_all: str | None = None) -> FunctionVersions | None:
    try:
        versions = aws.pages("lambda", "list_versions_by_function", "Versions", f"function {name}", region,
                         FunctionName=name)
        aliases = aws.pages("lambda", "list_aliases", "Aliases", f"function {name}", region, FunctionName=name)
    except AwsError as exc:
        if aws_mod.not_found(exc):
            return None
        raise
    aliased = {a["FunctionVersion"] for a in aliases}
    for a in aliases:
        aliased.update(((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).keys())
    return FunctionVersions(
        name, {v["Version"]: tuple(layer["Arn"] for layer in v.get("Layers") or ()) for v in versions},
        frozenset(aliased), keep_all)


def read_inputs(aws: aws_mod.Aws, project: Project, region: str) -> PruneInputs:
    """The project's function versions and aliases, its layers' versions, and every $LATEST's layers."""

    listed = aws.pages("lambda", "list_functions", "Functions", "functions", region)
    latest = {str(f["FunctionName"]): tuple(layer["Arn"] for layer in f.get("Layers") or ()) for f in listed}
    functions, skipped = [], []
    for fn in project.functions:
        name = function_name(project, fn)
        if fn.edge is not None:
            skipped.append(f"{name}: Lambda@Edge versions are never pruned (CloudFront may hold replicas)")
        elif name in latest and (found := _versions(aws, name, region)) is not None:
            functions.append(found)
    for stage, deploy_name in project.stage_names.items():  # the stages share layers: keep what theirs attach
        if deploy_name == project.deploy_name:
            continue
        for fn in project.functions:
            other = f"{deploy_name}-{fn.name}"
            why = f"{other}: stage {stage}'s function, its versions are kept and so are the layers they attach " \
                  f"(`lbuild prune --stage {stage}` prunes it)"
            if other in latest and (found := _versions(aws, other, region, why)) is not None:
                functions.append(found)
    for gone in find_removed(aws, project, region, listed):
        why = f"{gone.name}: no longer in lbuild.toml, every version is kept (`lbuild remove {gone.key}` deletes it)"
        if (found := _versions(aws, gone.name, region, why)) is not None:
            functions.append(found)
    named = re.compile(rf"{re.escape(project.name[:30])}-py\d+-[a-z0-9]+-[0-9a-f]{{16}}")  # split.layer_name
    layers = []
    for layer in aws.pages("lambda", "list_layers", "Layers", "layers", region):
        if not named.fullmatch(layer["LayerName"]):
            continue
        for version in aws.pages("lambda", "list_layer_versions", "LayerVersions", f"layer {layer['LayerName']}",
                             region, LayerName=layer["LayerName"]):
            marked = parse_layer_description(version.get("Description") or "")
            if marked is not None:  # a description lbuild did not write: not lbuild's
                layers.append(LayerVersion(version["LayerVersionArn"], marked[0],
                                           _created(version.get("CreatedDate") or "")))
    return PruneInputs(tuple(functions), tuple(layers), latest, tuple(skipped))


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
