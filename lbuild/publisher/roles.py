"""Execution roles checked at plan time, before any write: each exists and trusts the services that run it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from lbuild.config import Project, select
from lbuild.errors import AwsError, ConfigError
from lbuild.publisher import aws as aws_mod
from lbuild.publisher.edge import EDGE_PRINCIPALS, TRUST_POLICY
from lbuild.publisher.plan import function_name

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
