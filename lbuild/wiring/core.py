"""The wiring stage: read what AWS has, plan the steps (pure), apply them after the release.

A *family* is one module that owns some kinds of wiring (``esm``: SQS, Kinesis and DynamoDB mappings;
``push``: S3, SNS and EventBridge; ``schedule``; ``http``; ``settings``: concurrency, async, URL, logs;
``permissions``: the resource policy). Each one offers the same three parts:

- ``read(aws, region, targets) -> live``: one sweep of the state it compares against (pages, not calls
  per function where AWS allows), only for the targets that want or had something of its kinds;
- ``plan(targets, live) -> steps``: pure; a write step only where the normalised wanted and live differ,
  ``Unchanged`` otherwise;
- ``APPLY``: for each of its step types, the function that carries one step out (idempotent).

Ownership without a state file: what lbuild wired on a function is recorded in its ``lbuild:wiring`` tags
(tokens such as ``sqs=<queue ARN>``, ``s3=<bucket>``, ``reserved``); a family removes only what the
tokens (or its ``lbuild-`` names) say is lbuild's, and leaves everything else alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from lbuild.steps import Step
from lbuild.wiring.model import Grant, Wiring

if TYPE_CHECKING:
    from lbuild.publisher.aws import Aws

#: Phases, in the order the executor runs them (each phase's steps in parallel, the next phase after).
SETTINGS = 0  # reserved/provisioned concurrency, async config, URL, log group retention (after the alias moved)
PERMIT = 1  # AddPermission: S3 validates it before it accepts a notification; SNS and EventBridge need it
WIRE = 2  # create or update mappings, notifications, subscriptions, rules, schedules, routes
UNWIRE = 3  # removals, unwiring first ...
UNPERMIT = 4  # ... then the permissions, so no event reaches a function that may not be invoked
RECORD = 5  # the lbuild:wiring tags, last: they only ever claim what exists

TAG_WIRING = "lbuild:wiring"
_TAG_VALUE_BYTES = 256


@dataclass(frozen=True)
class Target:
    """A function as the wiring stage sees it."""

    key: str  # the name in lbuild.toml
    name: str  # the Lambda function name
    project: str  # [project].name: lbuild's names for rules, schedules, notifications start with it
    region: str
    account: str
    qualifier: str | None  # [project].alias: triggers and alias-scoped settings point at it
    timeout: int
    runtime: str
    package_type: str
    ephemeral_storage: int
    wiring: Wiring
    recorded: frozenset[str] = frozenset()  # the lbuild:wiring tokens AWS has on the function now
    exists: bool = True  # False: created by this deploy
    tags: Mapping[str, str] = field(default_factory=dict)  # the function's tags as read
    grants: tuple[Grant, ...] = ()  # the resource-policy statements its wiring needs (every family's ``grants``)

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    @property
    def arn(self) -> str:
        """The ARN events invoke: the alias when there is one."""
        return f"{self.function_arn}:{self.qualifier}" if self.qualifier else self.function_arn

    def invokes(self, arn: str) -> bool:
        """Whether ``arn`` names this function (unqualified, or with any version or alias)."""
        return arn == self.function_arn or arn.startswith(self.function_arn + ":")

    def had(self, prefix: str) -> list[str]:
        """The values of recorded tokens ``prefix=VALUE`` (or ``[prefix]`` for a bare token)."""
        out = [t.split("=", 1)[1] for t in self.recorded if t.startswith(prefix + "=")]
        return out + ([prefix] if prefix in self.recorded else [])


@dataclass(frozen=True)
class WiringStep(Step):
    """A step of the wiring stage, on one function (``target`` is its Lambda name)."""

    PHASE: ClassVar[int] = WIRE
    target: str

    @property
    def phase(self) -> int:
        return self.PHASE


Apply = Callable[["Aws", str, Any], str]  # (aws, region, step) -> what was done, for the log


def delete(aws: Aws, service: str, operation: str, what: str, region: str, **params: Any) -> str:
    """One idempotent delete: "" when done, "already gone" when AWS no longer has it (a retried or raced step)."""
    from lbuild.errors import AwsError
    from lbuild.publisher.aws import not_found

    try:
        aws.call(service, operation, what, region, **params)
    except AwsError as exc:
        if not not_found(exc):
            raise
        return "already gone"
    return ""


class Family(Protocol):
    """A module owning some kinds of wiring (see the module docstring)."""

    TOKENS: tuple[str, ...]  # the lbuild:wiring token prefixes it records
    APPLY: Mapping[type[WiringStep], Apply]

    def read(self, aws: Aws, region: str, targets: Sequence[Target]) -> Any: ...

    def plan(self, targets: Sequence[Target], live: Any) -> list[Step]: ...

    def tokens(self, target: Target) -> set[str]:
        """The lbuild:wiring tokens this family's wanted state records on ``target`` after a deploy."""
        ...

    def grants(self, target: Target) -> list[Grant]:
        """The resource-policy statements this family's wiring of ``target`` needs (the permissions family
        adds and removes them)."""
        ...


# --- the lbuild:wiring tags ------------------------------------------------------------------------------


def recorded(tags: Mapping[str, str]) -> frozenset[str]:
    """The tokens a function's ``lbuild:wiring*`` tags hold."""
    return frozenset(token for name, value in tags.items() if name == TAG_WIRING or name.startswith(TAG_WIRING + ":")
                     for token in value.split(" ") if token)


def wiring_tags(tokens: Sequence[str] | set[str] | frozenset[str]) -> dict[str, str]:
    """The tags that record ``tokens`` (split over ``lbuild:wiring``, ``lbuild:wiring:2``, ... at 256 characters)."""
    values: list[str] = []
    for token in sorted(tokens):
        if values and len(values[-1]) + 1 + len(token) <= _TAG_VALUE_BYTES:
            values[-1] += " " + token
        else:
            values.append(token)
    return {TAG_WIRING if n == 0 else f"{TAG_WIRING}:{n + 1}": value for n, value in enumerate(values)}


def is_wiring_tag(key: str) -> bool:
    return key == TAG_WIRING or key.startswith(TAG_WIRING + ":")


@dataclass(frozen=True)
class RecordWiring(WiringStep):
    """Rewrite a function's lbuild:wiring tags to what lbuild now manages on it."""

    PHASE: ClassVar[int] = RECORD
    arn: str = ""
    add: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"record what lbuild wired on {self.target} (tags {TAG_WIRING}*)"


def plan_record(target: Target, tokens: set[str]) -> Step | None:
    """The tag write that makes the recorded tokens ``tokens``; None when they already are."""
    if frozenset(tokens) == target.recorded:
        return None
    wanted = wiring_tags(tokens)
    current = {k: v for k, v in target.tags.items() if is_wiring_tag(k)}
    add = {k: v for k, v in wanted.items() if current.get(k) != v}
    remove = tuple(sorted(k for k in current if k not in wanted))
    gained, lost = sorted(tokens - target.recorded), sorted(target.recorded - tokens)
    why = "; ".join(filter(None, [f"now also {', '.join(gained)}" if gained else "",
                                  f"no longer {', '.join(lost)}" if lost else ""]))
    return RecordWiring(why, target.name, target.function_arn, add, remove)


def apply_record(aws: Aws, region: str, step: RecordWiring) -> str:
    if step.remove:
        aws.call("lambda", "untag_resource", step.target, region, Resource=step.arn, TagKeys=list(step.remove))
    if step.add:
        aws.call("lambda", "tag_resource", step.target, region, Resource=step.arn, Tags=dict(step.add))
    return ""
