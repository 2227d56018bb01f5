"""``lbuild plan`` / ``lbuild deploy``: package, read the live state, plan, and (for deploy) execute."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lbuild import rules
from lbuild.builders.package import PackageResult, package
from lbuild.config import Project, select
from lbuild.errors import ConfigError, UsageError
from lbuild.publisher import aws as aws_mod
from lbuild.publisher import images, roles
from lbuild.publisher.execute import Executor, StepResult
from lbuild.publisher.plan import Plan, plan, s3_key, wanted_state

Log = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    """A plan and what it was made from."""

    plan: Plan
    region: str
    packaged: PackageResult
    registry: images.Registry | None = None


def prepare(project: Project, names: Sequence[str], dist: Path, aws: aws_mod.Aws, region: str | None,
            log: Log, locked: bool = False, canary: float | None = None) -> Prepared:
    """Package (from the build cache when nothing changed), read the remote state, plan.

    ``canary`` is the percentage of each alias's traffic a canary release routes to the new versions.
    """
    weight = canary_weight(project, names, canary)
    packaged = package(project, names, dist, log=log, locked=locked)
    chosen = aws.require_region(region or project.region)
    registry = _registry(project, packaged.manifest, aws, chosen)
    layers, functions = wanted_state(project, packaged.manifest, dist, names, registry.host if registry else None)
    artifacts = [(a.sha256, a.zip_bytes) for a in layers] + [(f.sha256, f.zip_bytes) for f in functions]
    big = [s3_key(project, sha) for sha, size in artifacts if size > rules.DIRECT_UPLOAD_ZIP_BYTES]
    _check_vpc_roles(project, names, aws, log)
    roles.check_roles(project, names, aws, log)
    log(f"reading the state of {len(functions)} functions and {len(layers)} layers in {chosen}")
    remote = aws_mod.read_state(aws, layers, functions, project.alias, chosen, project.artifact_bucket, big)
    if registry is not None:
        remote = replace(remote, images={
            f.name: images.remote_digest(f.image.repository, f.image.tag, registry) for f in functions if f.image
        })
    return Prepared(plan(project, layers, functions, remote, project.alias, weight), chosen, packaged, registry)


def canary_weight(project: Project, names: Sequence[str], canary: float | None) -> float | None:
    """Lambda's routing weight for ``--canary PERCENT``, checked before anything is built (None: no canary)."""
    if canary is None:
        return None
    if not 0 < canary < 100:
        raise UsageError(f"--canary {canary:g} is not a percentage between 0 and 100 (exclusive)",
                         where="--canary",
                         hint="e.g. --canary 10 routes 10% of each alias's traffic to the new version")
    if project.alias is None:
        raise UsageError("--canary needs an alias to split traffic on", where="[project].alias in lbuild.toml",
                         hint='set alias = "live" under [project] and point your triggers at the alias')
    edge = [fn.name for fn in select(project, names) if fn.edge is not None]
    if edge:
        raise UsageError(f"Lambda@Edge functions cannot take a canary: {', '.join(edge)}", where="--canary",
                         hint="CloudFront runs one numbered version; deploy the Edge functions on their own, "
                              "without --canary (`lbuild deploy FN ...`)")
    return round(canary / 100, 6)


def _registry(project: Project, manifest: Mapping[str, Any], aws: aws_mod.Aws, region: str) -> images.Registry | None:
    """Where image functions are pushed: ``image_registry``, else the account's ECR in the region."""
    if not any(f["package_type"] == "image" for f in manifest["functions"]):
        return None
    if project.image_registry:
        return images.Registry(project.image_registry)
    return images.ecr_registry(aws_mod.ecr_authorization(aws, region))


def execute(project: Project, prepared: Prepared, aws: aws_mod.Aws, log: Log, wait: bool = False) -> list[StepResult]:
    return Executor(aws, prepared.region, project.artifact_bucket, log, wait=wait,
                    registry=prepared.registry).run(prepared.plan)


def _check_vpc_roles(project: Project, names: Sequence[str], aws: aws_mod.Aws, log: Log) -> None:
    """A VPC function's role must manage network interfaces, or Lambda refuses it at create time."""
    roles = sorted({fn.role for fn in select(project, names) if fn.vpc is not None and fn.role})
    for role in roles:
        missing = aws_mod.missing_vpc_permissions(aws, role)
        if missing is None:
            log(f"warning: could not simulate the IAM policy of {role}; VPC permissions not checked")
        elif missing:
            raise ConfigError(
                f"role {role} may not {', '.join(missing)}, which a function in a VPC needs",
                where="role of the functions with vpc",
                hint="attach the AWS managed policy AWSLambdaVPCAccessExecutionRole to the role, or allow "
                     + ", ".join(aws_mod.VPC_ACTIONS) + ' on "*"',
            )
