"""Pure: (what dist/ holds, what AWS holds) -> the steps that make AWS match, each with its reason.

Nothing here calls AWS. The executor runs the steps in order: layers, then each function's code and
configuration, its version, and last of all the aliases, once every function has its new version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lbuild import rules
from lbuild.config import Function, Project
from lbuild.errors import ConfigError, UsageError
from lbuild.manifest import Manifest
from lbuild.publisher.edge import Association
from lbuild.steps import Step, Unchanged
from lbuild.wiring.core import is_wiring_tag

LAYER_DESCRIPTION = "lbuild project={project} sha256:{sha256}"  # before the project was marked: "lbuild sha256:..."
TAG_PROJECT = "lbuild:project"
#: The user tag keys lbuild set, space-separated (split over ``lbuild:tags``, ``lbuild:tags:2``, ... at AWS's
#: 256-character value limit): a key dropped from lbuild.toml is removed, a key someone else set is left alone.
TAG_MANAGED = "lbuild:tags"
_TAG_VALUE_BYTES = 256
TAG_FUNCTION = "lbuild:function"
_LAYER_DESCRIPTION = re.compile(r"lbuild (?:project=([A-Za-z0-9_-]{1,50}) )?sha256:([0-9a-f]{64})")


def parse_layer_description(text: str) -> tuple[str | None, str] | None:
    """``(project, sha256)`` from a layer version's description; project None in the old form; None if not lbuild's."""
    found = _LAYER_DESCRIPTION.fullmatch(text)
    return None if found is None else (found[1], found[2])


# --- desired and remote state -----------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionConfig:
    """The configuration lbuild carries to Lambda, in a comparable form."""

    runtime: str
    handler: str
    memory: int
    timeout: int
    ephemeral_storage: int
    environment: tuple[tuple[str, str], ...]
    description: str
    role: str
    layers: tuple[str, ...]  # layer version ARNs, in order; "layer:<name>" until published
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    snap_start: bool = False  # SnapStart on published versions
    log_format: str = "Text"  # LoggingConfig: "Text" | "JSON"
    log_level: str = ""  # JSON only (Lambda's default INFO)
    system_log_level: str = ""  # JSON only (Lambda's default INFO)
    log_group: str = ""  # "" = Lambda's default, /aws/lambda/<function name>

    def changed(self, other: FunctionConfig) -> tuple[str, ...]:
        """The names of the fields that differ."""
        return tuple(n for n in self.__dataclass_fields__ if getattr(self, n) != getattr(other, n))

    def differences(self, other: FunctionConfig) -> list[str]:
        """Human lines ``memory 256 -> 512`` for each field that differs (self = remote, other = wanted)."""
        out = []
        for name in self.__dataclass_fields__:
            old, new = getattr(self, name), getattr(other, name)
            if old == new:
                continue
            if name == "environment":  # values may be secrets: name the keys only
                before, after = dict(old), dict(new)
                changes = [f"+{k}" for k in sorted(after.keys() - before.keys())]
                changes += [f"~{k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
                changes += [f"-{k}" for k in sorted(before.keys() - after.keys())]
                out.append(f"environment {' '.join(changes)}")
            else:
                out.append(f"{name} {_show(old)} -> {_show(new)}")
        return out


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, str) and len(value) > 60:
        return value[:57] + "..."
    return str(value) if not isinstance(value, str) else (value or '""')


@dataclass(frozen=True)
class WantedLayer:
    name: str
    file: Path
    sha256: str
    code_sha256: str
    zip_bytes: int
    runtime: str
    architecture: str
    project: str = ""  # the project whose name the published description carries


@dataclass(frozen=True)
class WantedFunction:
    key: str  # the name in lbuild.toml
    name: str  # the Lambda function name
    file: Path
    sha256: str
    code_sha256: str
    zip_bytes: int
    architecture: str
    config: FunctionConfig
    tags: Mapping[str, str]
    layers: tuple[str, ...]  # lbuild layer names, in attach order (resolved into config.layers)
    external_layers: tuple[str, ...]
    region: str | None = None  # None: the project's region; Lambda@Edge functions live in us-east-1
    edge: Association | None = None
    image: WantedImage | None = None  # package_type = "image"


@dataclass(frozen=True)
class WantedImage:
    """A built image and where it goes: ``repository:tag`` in the registry."""

    local_tag: str
    repository: str  # registry host / repository name
    tag: str
    ecr_name: str | None  # the ECR repository to make sure of (None: not ECR)


@dataclass(frozen=True)
class RemoteFunction:
    name: str
    arn: str
    code_sha256: str
    architecture: str
    config: FunctionConfig
    tags: Mapping[str, str]
    alias_version: str | None = None  # version the alias (Edge: the CloudFront association) points at
    alias_code_sha256: str | None = None
    alias_config: FunctionConfig | None = None
    edge_arn: str | None = None  # Edge: the ARN CloudFront has for the association now (any function)
    image_uri: str | None = None  # image functions: Code.ImageUri of $LATEST
    alias_weights: Mapping[str, float] = field(default_factory=dict)  # the alias's AdditionalVersionWeights
    canary_code_sha256: str | None = None  # the version those weights route to (one at most)
    canary_config: FunctionConfig | None = None
    revision_id: str | None = None  # of $LATEST, as read: PublishVersion is conditional on it
    alias_revision_id: str | None = None  # of the alias, as read: UpdateAlias is conditional on it

    @property
    def canary_version(self) -> str | None:
        return next(iter(self.alias_weights), None)


@dataclass(frozen=True)
class RemoteState:
    """What AWS holds for the functions and layers of this deploy."""

    functions: Mapping[str, RemoteFunction | None]  # by Lambda name; None = does not exist
    layers: Mapping[str, str | None]  # layer name -> ARN of a version with our sha256, or None
    objects: frozenset[str] = frozenset()  # S3 keys already in artifact_bucket
    images: Mapping[str, str | None] = field(default_factory=dict)  # function -> digest of its tag, if pushed


# --- steps ------------------------------------------------------------------------------------------


def from_cache(bucket: str | None, key: str | None) -> str:
    """`` from the shared cache s3://BUCKET/KEY`` for a step whose code Lambda reads from the cache, else ``""``."""
    return f" from the shared cache s3://{bucket}/{key}" if bucket and key else ""


@dataclass(frozen=True)
class UploadObject(Step):
    bucket: str
    key: str
    file: Path

    def describe(self) -> str:
        return f"upload s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PushImage(Step):
    function: WantedFunction

    def describe(self) -> str:
        assert self.function.image is not None
        return f"push image {self.function.image.repository}:{self.function.image.tag}"


@dataclass(frozen=True)
class PublishLayer(Step):
    layer: WantedLayer
    s3_key: str | None = None
    cache_bucket: str | None = None  # s3_key is in the shared cache's bucket (None: in artifact_bucket)

    def describe(self) -> str:
        return f"publish layer {self.layer.name}" + from_cache(self.cache_bucket, self.s3_key)


@dataclass(frozen=True)
class CreateFunction(Step):
    function: WantedFunction
    s3_key: str | None = None
    publish: bool = False  # publish version 1 with the create (one call instead of two)
    cache_bucket: str | None = None  # s3_key is in the shared cache's bucket (None: in artifact_bucket)

    def describe(self) -> str:
        return f"create function {self.function.name}" + (" and publish its first version" if self.publish else "") \
            + from_cache(self.cache_bucket, self.s3_key)


@dataclass(frozen=True)
class UpdateCode(Step):
    function: WantedFunction
    s3_key: str | None = None
    cache_bucket: str | None = None  # s3_key is in the shared cache's bucket (None: in artifact_bucket)

    def describe(self) -> str:
        return f"update code of {self.function.name}" + from_cache(self.cache_bucket, self.s3_key)


@dataclass(frozen=True)
class UpdateConfig(Step):
    function: WantedFunction
    fields: tuple[str, ...] = ()  # the FunctionConfig fields that differ (SnapStart/LoggingConfig are sent then)

    def describe(self) -> str:
        return f"update configuration of {self.function.name}"


@dataclass(frozen=True)
class TagFunction(Step):
    function: WantedFunction
    arn: str
    add: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"tag {self.function.name}"


@dataclass(frozen=True)
class PublishVersion(Step):
    function: WantedFunction
    revision: str | None = None  # RevisionId of $LATEST as read (used when this deploy writes nothing before it)

    def describe(self) -> str:
        return f"publish a version of {self.function.name}"


@dataclass(frozen=True)
class AliasTarget:
    """Where an alias points: its version and its routing weights (``{version: share}``)."""

    version: str
    weights: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MoveAlias(Step):
    function: WantedFunction
    alias: str
    create: bool
    version: str | None = None  # known when no new version is published
    keep: str | None = None  # canary: the version that keeps the rest of the traffic
    weight: float | None = None  # canary: the share routed to ``version`` (or the new version)
    previous: AliasTarget | None = None  # where the alias points now (None: created): a rollback puts it back
    revision: str | None = None  # the alias's RevisionId as read: the move is conditional on it

    def describe(self) -> str:
        if self.weight is not None:
            target = f"version {self.version}" if self.version else "the new version"
            return (f"route {percent(self.weight)} of alias {self.alias} of {self.function.name} to {target} "
                    f"(version {self.keep} keeps the rest)")
        return f"{'create' if self.create else 'move'} alias {self.alias} of {self.function.name}"


def percent(weight: float) -> str:
    """``0.1`` -> ``10%`` (Lambda's routing weight as a user gives it)."""
    return f"{round(weight * 100, 4):g}%"


@dataclass(frozen=True)
class AssociateEdge(Step):
    function: WantedFunction
    association: Association
    old_arn: str | None

    def describe(self) -> str:
        a = self.association
        return f"attach {self.function.name} to distribution {a.distribution} ({a.behaviour()}, {a.event_type})"


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.writes)

    def as_dict(self) -> dict[str, Any]:
        return {"changes": len(self.changes),
                "steps": [{"action": type(s).__name__, "what": s.describe(), "reason": s.reason,
                           "writes": s.writes} for s in self.steps]}


# --- from manifest and config to wanted state ----------------------------------------------------------


def function_name(project: Project, fn: Function) -> str:
    return f"{project.deploy_name}-{fn.name}"


def wanted_state(project: Project, built: Manifest, dist: Path, names: Sequence[str],
                 registry_host: str | None = None) -> tuple[tuple[WantedLayer, ...], tuple[WantedFunction, ...]]:
    """The layers and functions to deploy: artifacts, runtime and architecture from dist/manifest.json, the rest
    of the configuration from lbuild.toml."""
    layers = tuple(
        WantedLayer(entry.name, dist / entry.artifact.file, entry.artifact.sha256, entry.artifact.code_sha256,
                    entry.artifact.zip_bytes, entry.runtime, entry.architecture, project.name)
        for entry in built.layers
    )
    functions = []
    for entry in built.functions:
        if names and entry.name not in names:
            continue
        fn = project.function(entry.name)
        if not fn.role:
            raise ConfigError(f"function {fn.name} has no role", where=f"functions.{fn.name}",
                              hint='set role = "arn:aws:iam::ACCOUNT:role/NAME" in [project] or the function')
        image = None
        if entry.image is not None:
            name = fn.image_repository or function_name(project, fn)
            local_tag = entry.image.tag
            image = WantedImage(local_tag, f"{registry_host}/{name}", local_tag.rsplit(":", 1)[-1],
                                None if project.image_registry else name)
        config = FunctionConfig(
            runtime=entry.runtime if image is None else "", handler=fn.handler if image is None else "",
            memory=fn.memory, timeout=fn.timeout,
            ephemeral_storage=fn.ephemeral_storage, environment=tuple(sorted(fn.environment.items())),
            description=fn.description, role=fn.role,
            layers=tuple(f"layer:{n}" for n in entry.layers) + tuple(fn.layers),
            subnet_ids=tuple(sorted(fn.vpc.subnet_ids)) if fn.vpc else (),
            security_group_ids=tuple(sorted(fn.vpc.security_group_ids)) if fn.vpc else (),
            **_log_and_snap_start(fn, function_name(project, fn)),
        )
        tags = {**fn.tags, **managed_tags(fn.tags), TAG_PROJECT: project.deploy_name, TAG_FUNCTION: fn.name} \
            if fn.edge is None else {}
        association = None if fn.edge is None else Association(fn.edge.distribution, fn.edge.path_pattern,
                                                               fn.edge.event_type, fn.edge.include_body)
        zipped = entry.artifact
        functions.append(WantedFunction(fn.name, function_name(project, fn), dist / (zipped.file if zipped else ""),
                                        zipped.sha256 if zipped else "", zipped.code_sha256 if zipped else "",
                                        zipped.zip_bytes if zipped else 0, entry.architecture, config, tags,
                                        entry.layers, fn.layers, rules.EDGE_REGION if fn.edge else None,
                                        association, image))
    used = {n for f in functions for n in f.layers}
    return tuple(layer for layer in layers if layer.name in used), tuple(functions)


def _log_and_snap_start(fn: Function, name: str) -> dict[str, Any]:
    """The SnapStart and LoggingConfig fields of FunctionConfig (lbuild.wiring.settings parses them)."""
    log = fn.wiring.log
    return {"snap_start": fn.wiring.snap_start, "log_format": log.format or "Text", "log_level": log.level or "",
            "system_log_level": log.system_level or "",
            "log_group": "" if log.group in (None, f"/aws/lambda/{name}") else log.group}


def managed_tags(user: Mapping[str, str]) -> dict[str, str]:
    """The ``lbuild:tags*`` tags that record which user tag keys lbuild set (keys holding a space are not
    recorded: a space separates them)."""
    keys = sorted(k for k in user if " " not in k)
    values: list[str] = []
    for key in keys:
        if values and len(values[-1]) + 1 + len(key) <= _TAG_VALUE_BYTES:
            values[-1] += " " + key
        else:
            values.append(key)
    return {TAG_MANAGED if n == 0 else f"{TAG_MANAGED}:{n + 1}": value for n, value in enumerate(values)}


def managed_keys(tags: Mapping[str, str]) -> set[str]:
    """The user tag keys a function's ``lbuild:tags*`` tags say lbuild set."""
    return {key for name, value in tags.items() if name == TAG_MANAGED or name.startswith(TAG_MANAGED + ":")
            for key in value.split(" ") if key}


def tag_changes(fn: WantedFunction, current: RemoteFunction) -> tuple[dict[str, str], tuple[str, ...]]:
    """The tags to set and the keys to remove: lbuild's own and the user keys lbuild recorded, never the
    wiring stage's nor a key someone else set."""
    add = {k: v for k, v in fn.tags.items() if current.tags.get(k) != v}
    remove = tuple(sorted(k for k in current.tags if k not in fn.tags and not is_wiring_tag(k)
                          and (k.startswith("lbuild:") or k in managed_keys(current.tags))))
    return add, remove


def s3_key(project: Project, sha256: str) -> str:
    return f"lbuild/{project.name}/{sha256}.zip"


# --- the planner ---------------------------------------------------------------------------------------


def plan(project: Project, layers: Sequence[WantedLayer], functions: Sequence[WantedFunction],
         remote: RemoteState, alias: str | None, canary: float | None = None) -> Plan:
    """Every step, in execution order, with its reason. Pure.

    With ``canary`` (a weight in (0, 1)), an alias that already points at a version keeps it and routes that
    share of its traffic to the new version; without it, the alias points at the new version alone (which
    promotes a canary, or drops one whose code is no longer wanted).
    """
    steps: list[Step] = []
    bucket = project.artifact_bucket

    def via_s3(sha256: str, file: Path, size: int) -> str | None:
        if size <= rules.DIRECT_UPLOAD_ZIP_BYTES:
            return None
        assert bucket is not None, "sizes.check guarantees a bucket for big zips"
        key = s3_key(project, sha256)
        if key in remote.objects:
            steps.append(Unchanged(f"s3://{bucket}/{key} already uploaded", f"s3://{bucket}/{key}"))
        else:
            steps.append(UploadObject(f"{size:,} bytes is over the direct-upload limit", bucket, key, file))
        return key

    published: dict[str, str] = {}
    for layer in layers:
        arn = remote.layers.get(layer.name)
        if arn:
            published[layer.name] = arn
            steps.append(Unchanged(f"already published as version {arn.rsplit(':', 1)[-1]}", f"layer {layer.name}"))
        else:
            key = via_s3(layer.sha256, layer.file, layer.zip_bytes)
            steps.append(PublishLayer("no version with this content yet", layer, key))

    moves: list[Step] = []
    for fn in functions:
        config = replace(fn.config, layers=tuple(published.get(a[6:], a) if a.startswith("layer:") else a
                                                 for a in fn.config.layers))
        fn = replace(fn, config=config)  # steps carry the config with known layer ARNs
        current = remote.functions.get(fn.name)
        changed = False
        code_sha256 = fn.code_sha256
        image_uri = None
        if fn.image is not None:
            digest = remote.images.get(fn.name)
            if digest is None:
                steps.append(PushImage(f"tag {fn.image.tag} is not in the registry yet", fn))
            else:
                image_uri = f"{fn.image.repository}@{digest}"
                steps.append(Unchanged(f"already pushed as {digest}", f"image {fn.image.repository}:{fn.image.tag}"))
            code_same = current is not None and image_uri is not None and current.image_uri == image_uri
            code_sha256 = current.code_sha256 if current is not None and code_same else "<new image>"
        else:
            code_same = current is not None and current.code_sha256 == fn.code_sha256
        if current is None:
            key = via_s3(fn.sha256, fn.file, fn.zip_bytes) if fn.image is None else None
            steps.append(CreateFunction("does not exist yet", fn, key))
            changed = True
        else:
            if not code_same or current.architecture != fn.architecture:
                why = f"architecture {current.architecture} -> {fn.architecture}" if code_same else \
                    "image changed (digest differs)" if fn.image else "code changed (CodeSha256 differs)"
                key = via_s3(fn.sha256, fn.file, fn.zip_bytes) if fn.image is None else None
                steps.append(UpdateCode(why, fn, key))
                changed = True
            differences = current.config.differences(config)
            if differences:
                steps.append(UpdateConfig("; ".join(differences), fn, current.config.changed(config)))
                changed = True
            add, remove = tag_changes(fn, current)
            if (add or remove) and fn.edge is None:
                steps.append(TagFunction("tags differ", fn, current.arn, add, remove))
            if not changed:
                what = "image unchanged (same digest)" if fn.image else "code unchanged (CodeSha256 equal)"
                steps.append(Unchanged(f"{what}, configuration equal", f"function {fn.name}"))
        released = current is not None and current.alias_version is not None and \
            current.alias_code_sha256 == code_sha256 and current.alias_config == config
        if fn.edge is not None:
            old_arn = current.edge_arn if current else None
            old = f"version {old_arn.rsplit(':', 1)[-1]}" if old_arn and current and \
                old_arn.startswith(current.arn + ":") else (old_arn or "nothing")
            if changed or not released:
                steps.append(PublishVersion("Lambda@Edge needs a numbered version of the new code", fn))
                moves.append(AssociateEdge(f"{old} -> the new version, after every function has its new version",
                                           fn, fn.edge, old_arn))
            else:
                steps.append(Unchanged(f"CloudFront already runs {old} with this code",
                                       f"association of {fn.name} ({fn.edge.behaviour()}, {fn.edge.event_type})"))
        elif alias is None:
            if changed:
                steps.append(PublishVersion("code or configuration changed", fn))
        else:
            _plan_alias(steps, moves, fn, current, alias, canary, changed=changed, released=released,
                        code_sha256=code_sha256)
    return Plan(tuple(_conditional(s, remote) for s in _publish_with_create(steps) + moves))


def _publish_with_create(steps: list[Step]) -> list[Step]:
    """A new function that needs a version gets it from its CreateFunction (``Publish``), not a second call."""
    created = {s.function.name for s in steps if isinstance(s, CreateFunction)}
    publishing = {s.function.name for s in steps if isinstance(s, PublishVersion)} & created
    return [replace(s, publish=True) if isinstance(s, CreateFunction) and s.function.name in publishing else s
            for s in steps if not (isinstance(s, PublishVersion) and s.function.name in publishing)]


def _conditional(step: Step, remote: RemoteState) -> Step:
    """A step with the RevisionId it was planned at (AWS refuses it if the resource changed since) and, for
    an alias, where the alias points now (a rollback puts it back)."""
    if isinstance(step, PublishVersion):
        latest = remote.functions.get(step.function.name)
        return replace(step, revision=latest.revision_id) if latest is not None else step
    if not isinstance(step, MoveAlias) or step.create:
        return step
    current = remote.functions.get(step.function.name)
    if current is None or current.alias_version is None:
        return step
    return replace(step, previous=AliasTarget(current.alias_version, dict(current.alias_weights)),
                   revision=current.alias_revision_id)


def _plan_alias(steps: list[Step], moves: list[Step], fn: WantedFunction, current: RemoteFunction | None,
                alias: str, canary: float | None, *, changed: bool, released: bool, code_sha256: str) -> None:
    """The version and alias steps of one (non-Edge) function."""
    config = fn.config
    where = f"alias {alias} of {fn.name}"
    exists = current is not None and current.alias_version is not None
    routed = current.canary_version if current is not None else None
    canary_released = current is not None and routed is not None and current.canary_code_sha256 == code_sha256 \
        and current.canary_config == config
    last = "moved last, after every function has its new version"
    if canary is None or not exists or released:
        if released and not changed:
            assert current is not None
            if routed is None:
                steps.append(Unchanged(f"alias {alias} already points at version {current.alias_version}", where))
            else:
                moves.append(MoveAlias(f"version {current.alias_version} has this code: the canary routing to "
                                       f"version {routed} is dropped", fn, alias, create=False,
                                       version=current.alias_version))
        elif canary_released and not changed:
            assert current is not None
            weight = percent(current.alias_weights[routed or ""])
            moves.append(MoveAlias(f"promote version {routed} (canary at {weight}) to all traffic", fn, alias,
                                   create=False, version=routed))
        else:
            steps.append(PublishVersion("code or configuration changed" if changed
                                        else f"alias {alias} does not point at the current code", fn))
            why = last if canary is None or exists else f"{last}; no earlier version to keep, so no canary"
            moves.append(MoveAlias(why, fn, alias, create=not exists))
        return
    assert current is not None and current.alias_version is not None and current.alias_config is not None
    if current.alias_config.role != config.role:
        raise UsageError(
            f"a canary needs one execution role for both versions: alias {alias} runs version "
            f"{current.alias_version} with role {current.alias_config.role}, the new version has {config.role}",
            where=f"function {fn.name}",
            hint="deploy without --canary (the alias then moves at once), or keep the role for this release",
        )
    if canary_released and not changed:
        assert routed is not None
        if current.alias_weights[routed] == canary:
            steps.append(Unchanged(f"alias {alias} already routes {percent(canary)} to version {routed}", where))
        else:
            moves.append(MoveAlias(f"canary weight {percent(current.alias_weights[routed])} -> {percent(canary)}",
                                   fn, alias, create=False, version=routed, keep=current.alias_version,
                                   weight=canary))
        return
    steps.append(PublishVersion("code or configuration changed" if changed
                                else f"alias {alias} does not point at the current code", fn))
    moves.append(MoveAlias(f"canary: {last}", fn, alias, create=False, keep=current.alias_version, weight=canary))


def config_from_aws(configuration: Mapping[str, Any]) -> FunctionConfig:
    """A FunctionConfig from GetFunction's ``Configuration``."""
    vpc = configuration.get("VpcConfig") or {}
    logging = configuration.get("LoggingConfig") or {}
    json_logs = str(logging.get("LogFormat") or "Text").upper() == "JSON"
    group = logging.get("LogGroup") or ""
    return FunctionConfig(
        runtime=configuration.get("Runtime", ""),
        handler=configuration.get("Handler", ""),
        memory=int(configuration.get("MemorySize", 128)),
        timeout=int(configuration.get("Timeout", 3)),
        ephemeral_storage=int((configuration.get("EphemeralStorage") or {}).get("Size", 512)),
        environment=tuple(sorted(((configuration.get("Environment") or {}).get("Variables") or {}).items())),
        description=configuration.get("Description", "") or "",
        role=configuration.get("Role", ""),
        layers=tuple(layer["Arn"] for layer in configuration.get("Layers") or ()),
        subnet_ids=tuple(sorted(vpc.get("SubnetIds") or ())),
        security_group_ids=tuple(sorted(vpc.get("SecurityGroupIds") or ())),
        snap_start=(configuration.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions",
        log_format="JSON" if json_logs else "Text",
        log_level=str(logging.get("ApplicationLogLevel") or "INFO").upper() if json_logs else "",
        system_log_level=str(logging.get("SystemLogLevel") or "INFO").upper() if json_logs else "",
        log_group="" if _default_log_group(group, configuration.get("FunctionName", "")) else group,
    )


def _default_log_group(group: str, name: str) -> bool:
    """Lambda's own group for the function: ``/aws/lambda/<name>`` (a Lambda@Edge replica's
    ``/aws/lambda/<region>.<name>`` too), or none given."""
    return not group or group == f"/aws/lambda/{name}" or re.fullmatch(rf"/aws/lambda/[a-z0-9-]+\.{re.escape(name)}",
                                                                        group) is not None
