"""Lambda and Lambda@Edge facts as data, and pure functions over them.

Every number here comes from ``shared/lambda-facts.md``; keep such tables in this one place.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

# --- runtimes ---------------------------------------------------------------------------------

#: When the runtime dates below were last checked, and where. AWS moves them (python3.9's and python3.10's blocks
#: were pushed from 2026 to 2027-02-01 / 2027-03-03); check the page again before trusting a date past this one.
RUNTIME_TABLE_AS_OF = _dt.date(2026, 12, 3)
RUNTIME_TABLE_SOURCE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html#runtimes-supported (as mirrored by "
    "cfn-lint's LmbdRuntimeLifecycle.json after aws-cloudformation/cfn-lint#4532, 2026-06-02)"
)


@dataclass(frozen=True)
class Runtime:
    """A managed Python runtime of Lambda."""

    name: str
    python: tuple[int, int]
    os: str
    glibc: tuple[int, int]
    deprecation: _dt.date
    block_create: _dt.date
    block_update: _dt.date
    edge: bool

    @property
    def python_version(self) -> str:
        return f"{self.python[0]}.{self.python[1]}"

    @property
    def abi(self) -> str:
        return f"cp{self.python[0]}{self.python[1]}"


def _d(text: str) -> _dt.date:
    return _dt.date.fromisoformat(text)


_AL2023 = ("Amazon Linux 2023", (2, 34))
_AL2 = ("Amazon Linux 2", (2, 26))

RUNTIMES: Mapping[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("python3.14", (3, 14), *_AL2023, _d("2029-06-30"), _d("2029-07-31"), _d("2029-08-31"), True),
        Runtime("python3.13", (3, 13), *_AL2023, _d("2029-06-30"), _d("2029-07-31"), _d("2029-08-31"), True),
        Runtime("python3.12", (3, 12), *_AL2023, _d("2028-10-31"), _d("2028-11-30"), _d("2029-01-10"), True),
        Runtime("python3.11", (3, 11), *_AL2, _d("2027-06-30"), _d("2027-07-31"), _d("2027-08-31"), True),
        Runtime("python3.10", (3, 10), *_AL2, _d("2026-10-31"), _d("2027-02-01"), _d("2027-03-03"), True),
        Runtime("python3.9", (3, 9), *_AL2, _d("2025-12-15"), _d("2027-02-01"), _d("2027-03-03"), False),
    )
}

#: lbuild.toml architecture -> the machine name used by wheel tags, markers and ELF headers.
ARCHITECTURES: Mapping[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}

#: glibc levels uv accepts in ``--python-platform`` (``<machine>-manylinux_2_N``).
_UV_GLIBC_LEVELS = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)


def runtime_status(runtime: Runtime, today: _dt.date) -> str | None:
    """A warning when ``runtime`` is deprecated or blocked on ``today``, else None; it says how old the table is."""
    table = f"(Lambda's runtime table as of {RUNTIME_TABLE_AS_OF})"
    if today >= runtime.block_update:
        return f"{runtime.name}: Lambda blocks updates since {runtime.block_update} {table}"
    if today >= runtime.block_create:
        return (f"{runtime.name}: Lambda blocks new functions since {runtime.block_create}, and updates from "
                f"{runtime.block_update} {table}")
    if today >= runtime.deprecation:
        return (f"{runtime.name} is deprecated since {runtime.deprecation}: Lambda blocks new functions from "
                f"{runtime.block_create} and updates from {runtime.block_update} {table}")
    return None


# --- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Target:
    """What a function runs on: a Python runtime on one architecture, with the runtime's glibc."""

    runtime: str
    architecture: str

    @property
    def id(self) -> str:
        return f"{self.runtime}-{self.architecture}"

    @property
    def spec(self) -> Runtime:
        return RUNTIMES[self.runtime]

    @property
    def machine(self) -> str:
        return ARCHITECTURES[self.architecture]

    @property
    def python_version(self) -> str:
        return self.spec.python_version

    @property
    def glibc(self) -> tuple[int, int]:
        return self.spec.glibc

    def describe(self) -> str:
        glibc = ".".join(map(str, self.glibc))
        return f"{self.runtime} {self.architecture} (glibc {glibc})"


def uv_platform(target: Target) -> str:
    """The ``--python-platform`` value for uv: the highest manylinux level uv knows <= the runtime's glibc.

    uv has no 2_26 level, so Amazon Linux 2 targets resolve as manylinux_2_17 (wheels tagged only
    ``manylinux_2_24``..``2_26`` are not considered there).
    """
    major, minor = target.glibc
    level = max(n for n in _UV_GLIBC_LEVELS if (2, n) <= (major, minor))
    return f"{target.machine}-manylinux_2_{level}"


def platform_tags(target: Target) -> list[str]:
    """Linux platform tags a wheel may carry for ``target``, most specific first."""
    machine = target.machine
    _, top = target.glibc
    tags = [f"manylinux_2_{n}_{machine}" for n in range(top, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for level, alias in legacy.items():
        if machine == "x86_64" or level >= 17:
            tags.insert(tags.index(f"manylinux_2_{level}_{machine}") + 1, f"{alias}_{machine}")
    if machine != "x86_64":
        tags = [t for t in tags if not re.match(r"manylinux_2_(1[0-6]|[5-9])_", t)]
    return tags


def wheel_tags(target: Target) -> list[str]:
    """Every ``python-abi-platform`` tag a wheel may carry for ``target``, best first: pip's order, from
    ``packaging.tags`` (``cpython_tags`` then ``compatible_tags``) on ``platform_tags(target)``."""
    return list(_wheel_tags(target))


@cache
def _wheel_tags(target: Target) -> tuple[str, ...]:
    from packaging import tags  # imported on first use: every command imports this module, few need tags

    version, abi, platforms = target.spec.python, target.spec.abi, platform_tags(target)
    found = [*tags.cpython_tags(version, [abi], platforms), *tags.compatible_tags(version, abi, platforms)]
    return tuple(str(tag) for tag in found)


def marker_environment(target: Target) -> dict[str, str]:
    """PEP 508 marker values of ``target`` (never of the host)."""
    version = target.python_version
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{version}.0",
        "os_name": "posix",
        "platform_machine": target.machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"{version}.0",
        "python_version": version,
        "sys_platform": "linux",
    }


# --- function limits ----------------------------------------------------------------------------

MEMORY_MB = (128, 10_240)
TIMEOUT_S = (1, 900)
EPHEMERAL_STORAGE_MB = (512, 10_240)
MAX_LAYERS = 5
UNZIPPED_BYTES = 262_144_000
DIRECT_UPLOAD_ZIP_BYTES = 52_428_800
IMAGE_BYTES = 10 * 1024**3
ENVIRONMENT_BYTES = 4_096
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: An IAM role ARN as Lambda's CreateFunction accepts it (any partition; path and name of IAM's characters).
ROLE_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")
ALIAS_NAME = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$")
ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]+$")
HANDLER = re.compile(r"^[^\s]{1,128}$")
RESERVED_ENV_KEYS = frozenset(
    (
        "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    )
)


def environment_bytes(environment: Mapping[str, str]) -> int:
    """Size of the environment as Lambda counts it: compact JSON of the map, in UTF-8 bytes."""
    if not environment:
        return 0
    return len(json.dumps(dict(environment), separators=(",", ":"), ensure_ascii=False).encode())


# --- Lambda@Edge --------------------------------------------------------------------------------

EDGE_REGION = "us-east-1"
EDGE_EVENT_TYPES = ("viewer-request", "viewer-response", "origin-request", "origin-response")


@dataclass(frozen=True)
class EdgeLimits:
    """Limits of one CloudFront event type."""

    memory_mb: int
    timeout_s: int
    zip_bytes: int


EDGE_LIMITS: Mapping[str, EdgeLimits] = {
    "viewer-request": EdgeLimits(128, 5, 1024 * 1024),
    "viewer-response": EdgeLimits(128, 5, 1024 * 1024),
    "origin-request": EdgeLimits(10_240, 30, 50 * 1024 * 1024),
    "origin-response": EdgeLimits(10_240, 30, 50 * 1024 * 1024),
}


# --- wiring: triggers and execution settings (research note triggers-and-scale.md, rules R1-R32) ----------

# esm: SQS, Kinesis and DynamoDB event source mappings

# push: S3 notifications, SNS subscriptions, EventBridge rules
S3_FILTER_VALUE_BYTES = 1_024  # a prefix or suffix filter rule's value
EVENT_PATTERN_CHARS = 2_048  # an EventBridge rule's event pattern (R27)
RULE_NAME_CHARS = 64  # an EventBridge rule's name
EVENT_BUS_NAME = re.compile(r"^[/.\-_A-Za-z0-9]{1,256}$")
SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
SNS_FILTER_SCOPES = ("MessageAttributes", "MessageBody")

# schedule: EventBridge Scheduler

# http: HTTP API routes

# settings: concurrency, async invocation, function URL, logs, SnapStart

# permissions: the function's resource-based policy

