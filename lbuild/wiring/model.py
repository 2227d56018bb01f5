"""What lbuild.toml asks of a function beyond its code: triggers, permissions and execution settings.

Frozen and pure: ``lbuild.wiring.parse`` builds these from lbuild.toml, the planners compare them with AWS.
Each trigger kind subclasses ``Trigger`` in its own module (``lbuild.wiring.esm``, ``push``, ...).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


def digest8(*parts: Any) -> str:
    """Eight hex digits of sha256 over ``parts`` in canonical JSON: stable across runs, hosts and Python versions."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Trigger:
    """One ``[[functions.NAME.triggers]]`` table: ``kind`` names the source, ``source`` is that key's value."""

    KIND: ClassVar[str] = ""
    source: str
    where: str  # "lbuild.toml:42, key functions.orders.triggers[0]"
    id: str | None = None  # a user-fixed identity (``id = "name"``): the hash in ids, rule and schedule names

    @property
    def kind(self) -> str:
        return self.KIND

    def identity(self) -> tuple[Any, ...]:
        """What makes this trigger the same trigger from one deploy to the next (a change of it is a replace)."""
        return (self.kind, self.id) if self.id else (self.kind, self.source)

    @property
    def digest(self) -> str:
        return digest8(*self.identity())

    def label(self) -> str:
        """``sqs orders``: the kind and the last part of the source, as plan shows it."""
        tail = self.source.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if self.kind in _ARN_KINDS else self.source
        return f"{self.kind} {self.id or tail}"


_ARN_KINDS = ("sqs", "kinesis", "dynamodb", "sns")


@dataclass(frozen=True)
class AsyncSettings:
    """Asynchronous invocation (S3, SNS, EventBridge, schedules): PutFunctionEventInvokeConfig on the alias."""

    retries: int | None = None  # 0-2, AWS default 2
    max_age: int | None = None  # 60-21600 s, AWS default 21600
    on_success: str | None = None  # destination ARN
    on_failure: str | None = None


@dataclass(frozen=True)
class Cors:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    allow_credentials: bool = False
    max_age: int = 0


@dataclass(frozen=True)
class UrlSettings:
    """A function URL on the alias (or the unqualified function), with the permission its auth type needs."""

    auth: str = "AWS_IAM"  # "AWS_IAM" | "NONE"
    invoke_mode: str = "BUFFERED"  # | "RESPONSE_STREAM"
    cors: Cors | None = None


@dataclass(frozen=True)
class LogSettings:
    """Where and how the function logs: retention on its log group, LoggingConfig on the function."""

    retention_days: int | None = None  # None: lbuild does not manage retention; 0: never expire
    format: str | None = None  # "Text" | "JSON"
    level: str | None = None  # application log level (JSON only)
    system_level: str | None = None  # (JSON only)
    group: str | None = None  # default /aws/lambda/<function name>


@dataclass(frozen=True)
class Permission:
    """A caller lbuild does not wire itself (``permissions = [...]``): one resource-policy statement."""

    principal: str  # a service ("events.amazonaws.com"), an account id or an ARN
    source_arn: str | None = None
    source_account: str | None = None
    action: str = "lambda:InvokeFunction"
    where: str = ""


@dataclass(frozen=True)
class Wiring:
    """Everything beyond code and configuration that lbuild deploys for one function."""

    triggers: tuple[Trigger, ...] = ()
    permissions: tuple[Permission, ...] = ()
    reserved_concurrency: int | None = None  # None: not managed (shares the unreserved pool)
    provisioned_concurrency: int | None = None  # on the alias
    async_: AsyncSettings | None = None
    url: UrlSettings | None = None
    snap_start: bool = False  # SnapStart on published versions (python3.12+, zip)
    log: LogSettings = field(default_factory=LogSettings)
    #: execution-setting key -> where lbuild.toml sets it ("lbuild.toml:12, key ..."), for plan-time errors
    where: Mapping[str, str] = field(default_factory=dict, compare=False)

    def of_kind(self, *kinds: str) -> tuple[Trigger, ...]:
        return tuple(t for t in self.triggers if t.kind in kinds)

    @property
    def empty(self) -> bool:
        return self == Wiring()


@dataclass(frozen=True)
class Grant:
    """One statement lbuild keeps in a function's resource policy (on its alias when there is one).

    Its statement id is content-addressed: a changed grant is a new Sid (added, then the old one removed), so
    comparing Sid sets is comparing statements, whatever shape AWS (or moto) gives them back in.
    """

    kind: str  # what it is for: "s3", "sns", "eventbridge", "http", "url", "user"
    principal: str
    source_arn: str | None = None
    source_account: str | None = None
    action: str = "lambda:InvokeFunction"
    url_auth_type: str | None = None  # FunctionUrlAuthType, for lambda:InvokeFunctionUrl
    invoked_via_url: bool = False  # InvokedViaFunctionUrl, for lambda:InvokeFunction behind a public URL

    def sid(self, qualifier: str | None) -> str:
        return f"lbuild-{self.kind}-" + digest8(self.principal, self.source_arn, self.source_account, self.action,
                                                self.url_auth_type, self.invoked_via_url, qualifier)
