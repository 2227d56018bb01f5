"""Checks before a deploy is planned: the ``--canary`` request, the roles of VPC and Lambda@Edge functions,
and where image functions are pushed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from lbuild.config import Project, select
from lbuild.errors import AwsError, ConfigError, UsageError
from lbuild.manifest import Manifest
from lbuild.publisher import aws as aws_mod
from lbuild.publisher import images
from lbuild.publisher.edge import EDGE_PRINCIPALS, TRUST_POLICY
from lbuild.publisher.plan import function_name

Log = Callable[[str], None]


def canary_weight(project: Project, names: Sequence[str], canary: float | None) -> float | None:
    """Pure: Lambda's routing weight for ``--canary PERCENT``, checked before anything is built (None: no canary)."""
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


def registry(project: Project, built: Manifest, aws: aws_mod.Aws, region: str) -> images.Registry | None:
    """Where image functions are pushed: ``image_registry``, else the account's ECR in the region."""
    if not any(f.package_type == "image" for f in built.functions):
        return None
    if project.image_registry:
        return images.Registry(project.image_registry)
    return images.ecr_registry(aws_mod.ecr_authorization(aws, region))


def check_vpc_roles(project: Project, names: Sequence[str], aws: aws_mod.Aws, log: Log) -> None:
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


LAMBDA_PRINCIPAL = "lambda.amazonaws.com"


def check_roles(project: Project, names: Sequence[str], aws: aws_mod.Aws, log: Callable[[str], None]) -> None:
    """Every role of the selected functions exists and trusts lambda.amazonaws.com (Edge: edgelambda too).

    An identity that may not call iam:GetRole gets a warning, not a failure: the deploy itself still works.
    """
    needs: dict[str, set[str]] = {}
    users: dict[str, list[str]] = {}
    for fn in select(project, names):
        if fn.role:
            needs.setdefault(fn.role, set()).update(EDGE_PRINCIPALS if fn.edge is not None else (LAMBDA_PRINCIPAL,))
            users.setdefault(fn.role, []).append(function_name(project, fn))
    try:
        trusted = aws_mod.role_trust(aws, sorted(needs))
    except AwsError as exc:
        log(f"warning: could not read the execution roles ({exc.code}); their trust policies were not checked")
        return
    for role, principals in trusted.items():
        where = f"role of {', '.join(users[role])}"
        if principals is None:
            raise ConfigError(f"role {role} does not exist", where=where,
                              hint="create it (templates/iam-policy.json and the README say what it needs) or fix "
                                   "`role` in lbuild.toml")
        missing = sorted(needs[role] - principals)
        if missing:
            edge = any(p != LAMBDA_PRINCIPAL for p in missing)
            policy = TRUST_POLICY if edge else {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": LAMBDA_PRINCIPAL}, "Action": "sts:AssumeRole"}]}
            raise ConfigError(
                f"role {role} does not trust {' or '.join(missing)}" + (", which Lambda@Edge needs" if edge else ""),
                where=where,
                hint="add the principals to the role's trust policy" +
                     (", as in templates/edge-trust-policy.json" if edge else "") + ": " +
                     json.dumps(policy, separators=(",", ":")))
