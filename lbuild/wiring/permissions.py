"""Wiring family `permissions`: the function's resource-based policy (on its alias when there is one).

What is wanted is every ``Grant`` of a target (the other families' ``grants`` plus the user's
``permissions = [...]``, kind ``user``). Statement ids are content-addressed (``Grant.sid``), so the plan is a
Sid-set difference: AddPermission for wanted Sids the policy lacks, RemovePermission for ``lbuild-`` Sids no
longer wanted (also from the alias recorded before, when ``[project].alias`` changed); statements without that
prefix are someone else's and never touched. The size of the policy after the plan is estimated before any
write (Lambda refuses a policy over 20,480 bytes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild.errors import AwsError, LimitError
from lbuild.steps import Step, Unchanged
from lbuild.wiring.core import PERMIT, UNPERMIT, Apply, Target, WiringStep, delete
from lbuild.wiring.model import Grant

if TYPE_CHECKING:
    from lbuild.publisher.aws import Aws

#: ``policy=<alias>`` (bare ``policy``: the unqualified function): the policy lbuild keeps statements in, so the
#: removal of the last one, or an alias change, is still seen.
TOKENS: tuple[str, ...] = ("policy",)
#: kind key -> parser of one [[functions.NAME.triggers]] table of that kind
PARSERS: Mapping[str, Callable[..., Any]] = {}
#: [project] keys only this family reads
PROJECT_ONLY: frozenset[str] = frozenset()

OWNED_PREFIX = "lbuild-"
POLICY_LIMIT = 20480  # bytes, Lambda's limit on one resource-based policy
_READERS = 4  # GetPolicy has its own bucket of 15 requests/s per account and region


# --- normalisation -----------------------------------------------------------------------------------------


def aws_principal(principal: Any) -> Any:
    """A principal as AWS spells it in a policy: ``{"Service": ...}`` for a service, ``{"AWS": ARN}`` for an
    account (an id becomes ``arn:aws:iam::ID:root``) or an IAM ARN, ``"*"`` as it is. moto keeps an account
    id as a plain string; both spellings give the same result."""
    if isinstance(principal, Mapping):
        if len(principal) != 1:
            return {k: aws_principal({k: v})[k] for k, v in sorted(principal.items())}
        (kind, value), = principal.items()
        if kind == "AWS" and isinstance(value, str):
            return {"AWS": _account_arn(value)}
        return {kind: value}
    if not isinstance(principal, str) or principal == "*":
        return principal
    if principal.endswith((".amazonaws.com", ".amazon.com")):
        return {"Service": principal}
    return {"AWS": _account_arn(principal)}


def _account_arn(value: str) -> str:
    return f"arn:aws:iam::{value}:root" if value.isdigit() and len(value) == 12 else value


def principal_text(principal: Any) -> str:
    """One short name for a principal, whatever its spelling: the service, the account id or the ARN."""
    normal = aws_principal(principal)
    if isinstance(normal, Mapping) and len(normal) == 1:
        value = next(iter(normal.values()))
        if isinstance(value, str):
            return value.removeprefix("arn:aws:iam::").removesuffix(":root") if value.endswith(":root") else value
    return json.dumps(normal, sort_keys=True)


def statement(grant: Grant, resource: str) -> dict[str, Any]:
    """The statement AWS stores for ``grant`` on ``resource`` (for the size estimate)."""
    condition: dict[str, dict[str, str]] = {}
    if grant.source_arn:
        condition.setdefault("ArnLike", {})["AWS:SourceArn"] = grant.source_arn
    if grant.source_account:
        condition.setdefault("StringEquals", {})["AWS:SourceAccount"] = grant.source_account
    if grant.url_auth_type:
        condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = grant.url_auth_type
    if grant.invoked_via_url:
        condition.setdefault("Bool", {})["lambda:InvokedViaFunctionUrl"] = "true"
    out: dict[str, Any] = {"Sid": "", "Effect": "Allow", "Principal": aws_principal(grant.principal),
                           "Action": grant.action, "Resource": resource}
    return out | ({"Condition": condition} if condition else {})


def policy_size(statements: Sequence[Mapping[str, Any]]) -> int:
    """Bytes of the policy document holding ``statements`` (compact JSON, principals in AWS's spelling)."""
    normal = [{**s, "Principal": aws_principal(s["Principal"])} if "Principal" in s else dict(s) for s in statements]
    document = {"Version": "2012-10-17", "Id": "default", "Statement": normal}
    return len(json.dumps(document, separators=(",", ":")).encode())


# --- parsing -----------------------------------------------------------------------------------------------

_ACCOUNT = re.compile(r"\d{12}")
_SERVICE = re.compile(r"[a-z0-9.-]+\.amazon(aws)?\.com")


def permission_problem(principal: str, source_arn: str | None, source_account: str | None) -> tuple[str, str] | None:
    """(key, what is wrong) with one ``permissions`` entry, or None: Lambda would refuse these at deploy time."""
    if not (principal == "*" or _ACCOUNT.fullmatch(principal) or _SERVICE.fullmatch(principal)
            or principal.startswith("arn:")):
        return "principal", (f"principal '{principal}' is not a service (name.amazonaws.com), an account id "
                             "(12 digits), an ARN or \"*\"")
    if source_arn is not None and not source_arn.startswith("arn:"):
        return "source_arn", f"source_arn '{source_arn}' is not an ARN"
    if source_account is not None and not _ACCOUNT.fullmatch(source_account):
        return "source_account", f"source_account '{source_account}' is not an account id (12 digits)"
    return None


# --- what is wanted ----------------------------------------------------------------------------------------


def grants(target: Target) -> list[Grant]:
    """The user's ``permissions = [...]`` as grants of kind ``user``."""
    return [Grant("user", p.principal, p.source_arn, p.source_account, p.action) for p in target.wiring.permissions]


def tokens(target: Target) -> set[str]:
    """``policy=<alias>`` (``policy`` unqualified): where lbuild's statements are, so that they are removed
    from there when the last one goes or the alias changes."""
    if not target.grants:
        return set()
    return {f"policy={target.qualifier}" if target.qualifier else "policy"}


def _had(target: Target) -> set[str | None]:
    """The qualifiers (None: the unqualified function) whose policies lbuild recorded statements in."""
    return {None if q == "policy" else q for q in target.had("policy")}


def _policies(target: Target) -> set[str | None]:
    """The policies to read for ``target``: its own when it wants statements, and every one it had."""
    return ({target.qualifier} if target.grants else set()) | _had(target)


def _arn(target: Target, qualifier: str | None) -> str:
    return f"{target.function_arn}:{qualifier}" if qualifier else target.function_arn


# --- read --------------------------------------------------------------------------------------------------

Live = Mapping[str, Mapping[str | None, Sequence[Mapping[str, Any]]]]


def read(aws: Aws, region: str, targets: Sequence[Target]) -> dict[str, dict[str | None, tuple[dict[str, Any], ...]]]:
    """Function name -> qualifier -> the statements of that policy, for the functions that exist and want or
    had lbuild statements (a missing policy, or alias, has none)."""
    jobs = [(t, q) for t in targets if t.exists for q in sorted(_policies(t), key=lambda q: q or "")]
    out: dict[str, dict[str | None, tuple[dict[str, Any], ...]]] = {}
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        for (target, qualifier), found in zip(jobs, pool.map(lambda job: _policy(aws, region, *job), jobs),
                                              strict=True):
            out.setdefault(target.name, {})[qualifier] = found
    return out


def _policy(aws: Aws, region: str, target: Target, qualifier: str | None) -> tuple[dict[str, Any], ...]:
    scope: dict[str, Any] = {"Qualifier": qualifier} if qualifier else {}
    try:
        answer = aws.call("lambda", "get_policy", target.name, region, FunctionName=target.name, **scope)
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return ()
        raise
    return of_resource(json.loads(answer.get("Policy") or "{}"), _arn(target, qualifier))


def of_resource(document: Mapping[str, Any], arn: str) -> tuple[dict[str, Any], ...]:
    """The statements of a policy document that are about ``arn``. AWS keeps one policy per qualifier, so that
    is all of them; moto keeps one per function and answers every qualifier with the statements of all."""
    found = document.get("Statement", [])
    statements = [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, dict)]
    return tuple(s for s in statements if s.get("Resource", arn) == arn
                 or (isinstance(s.get("Resource"), list) and arn in s["Resource"]))


# --- plan --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddPermission(WiringStep):
    PHASE: ClassVar[int] = PERMIT
    qualifier: str | None = None
    sid: str = ""
    grant: Grant = field(default_factory=lambda: Grant("user", ""))

    def describe(self) -> str:
        source = self.grant.source_arn or self.grant.source_account
        what = principal_text(self.grant.principal) + (f" from {source}" if source else "")
        return f"permission {self.sid} on {_on(self.target, self.qualifier)}: add ({what}, {self.grant.action})"


@dataclass(frozen=True)
class RemovePermission(WiringStep):
    PHASE: ClassVar[int] = UNPERMIT
    qualifier: str | None = None
    sid: str = ""
    principal: str = ""

    def describe(self) -> str:
        who = f" ({self.principal})" if self.principal else ""
        return f"permission {self.sid} on {_on(self.target, self.qualifier)}: remove{who}"


def _on(name: str, qualifier: str | None) -> str:
    return f"{name}:{qualifier}" if qualifier else name


def plan(targets: Sequence[Target], live: Live) -> list[Step]:
    """Add the wanted Sids the policy lacks, remove lbuild's that are no longer wanted (from the alias's policy,
    and from the policy of an alias it had before); refuse (exit 5) a policy that would outgrow Lambda's limit,
    before anything is written."""
    steps: list[Step] = []
    for target in targets:
        policies = live.get(target.name, {})
        for qualifier in sorted(_policies(target), key=lambda q: q or ""):
            steps += _plan_policy(target, qualifier, list(policies.get(qualifier, ())))
    return steps


def _plan_policy(target: Target, qualifier: str | None, current: list[Mapping[str, Any]]) -> list[Step]:
    steps: list[Step] = []
    have = {str(s.get("Sid")) for s in current}
    wanted = {g.sid(qualifier): g for g in target.grants} if qualifier == target.qualifier else {}
    add = [(sid, g) for sid, g in sorted(wanted.items()) if sid not in have]
    gone = sorted(sid for sid in have if sid.startswith(OWNED_PREFIX) and sid not in wanted)
    kept = [s for s in current if s.get("Sid") not in gone]
    size = policy_size(kept + [{**statement(g, target.arn), "Sid": sid} for sid, g in add])
    if add and size > POLICY_LIMIT:
        raise _too_big(target, size, len(kept) + len(add))
    for sid, grant in add:
        reason = "lbuild.toml permissions" if grant.kind == "user" else f"the {grant.kind} trigger invokes it"
        steps.append(AddPermission(reason, target.name, qualifier, sid, grant))
    by_sid = {str(s.get("Sid")): s for s in current}
    why = "no longer in lbuild.toml" if qualifier == target.qualifier else \
        f"triggers now invoke {_on(target.name, target.qualifier)}"
    for sid in gone:
        who = principal_text(by_sid[sid].get("Principal", ""))
        steps.append(RemovePermission(why, target.name, qualifier, sid, who))
    if wanted and not add:
        kinds = ", ".join(sorted({g.kind for g in wanted.values()}))
        steps.append(Unchanged(f"{len(wanted)} statement(s) for {kinds} present",
                               f"permissions of {_on(target.name, qualifier)}"))
    return steps


def _too_big(target: Target, size: int, count: int) -> LimitError:
    where = next((p.where for p in target.wiring.permissions if p.where), None)
    return LimitError(
        f"the resource policy of function {target.key} ({_on(target.name, target.qualifier)}) would be about "
        f"{size} bytes with {count} statements, over Lambda's limit of {POLICY_LIMIT}", where=where,
        hint="grant fewer, wider permissions (one source_arn pattern or account instead of one statement per "
             "source), or remove statements someone else added to this function")


# --- apply -------------------------------------------------------------------------------------------------


def apply_add(aws: Aws, region: str, step: AddPermission) -> str:
    g = step.grant
    params: dict[str, Any] = {"FunctionName": step.target, "StatementId": step.sid, "Action": g.action,
                              "Principal": g.principal}
    optional = {"Qualifier": step.qualifier, "SourceArn": g.source_arn, "SourceAccount": g.source_account,
                "FunctionUrlAuthType": g.url_auth_type, "InvokedViaFunctionUrl": g.invoked_via_url or None}
    params |= {k: v for k, v in optional.items() if v is not None}
    try:
        aws.call("lambda", "add_permission", step.target, region, **params)
    except AwsError as exc:
        # a retried add whose first attempt landed: the Sid names the content, so it is the same statement
        if exc.code != "ResourceConflictException" or not _has_sid(aws, region, step):
            raise
        return "already present"
    return ""


def _has_sid(aws: Aws, region: str, step: AddPermission) -> bool:
    qualifier: dict[str, Any] = {"Qualifier": step.qualifier} if step.qualifier else {}
    try:
        answer = aws.call("lambda", "get_policy", step.target, region, FunctionName=step.target, **qualifier)
    except AwsError:
        return False
    return any(s.get("Sid") == step.sid for s in json.loads(answer.get("Policy") or "{}").get("Statement", []))


def apply_remove(aws: Aws, region: str, step: RemovePermission) -> str:
    qualifier: dict[str, Any] = {"Qualifier": step.qualifier} if step.qualifier else {}
    return delete(aws, "lambda", "remove_permission", step.target, region, FunctionName=step.target,
                  StatementId=step.sid, **qualifier)


APPLY: Mapping[type[WiringStep], Apply] = {AddPermission: apply_add, RemovePermission: apply_remove}
