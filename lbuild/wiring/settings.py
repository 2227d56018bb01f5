"""Wiring family ``settings``: how a function runs, beyond its configuration.

Reserved concurrency (PutFunctionConcurrency), provisioned concurrency on the alias
(PutProvisionedConcurrencyConfig), asynchronous invocation (PutFunctionEventInvokeConfig on the alias), a
function URL on the alias (Create/UpdateFunctionUrlConfig, with the public permissions ``auth = "NONE"``
needs, granted by the permissions family) and the retention of the log group (CloudWatch Logs, the group
created when missing). SnapStart and the log format, levels and group are part of the function's
configuration instead (``lbuild.publisher.plan.FunctionConfig``): they ride on its version.

Each setting lbuild manages is recorded as a token (``reserved``, ``provisioned``, ``async``, ``url``,
``logs`` or ``logs=<group>``); a setting dropped from lbuild.toml is removed only when its token says lbuild
set it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild.errors import AwsError, LimitError
from lbuild.steps import Step, Unchanged
from lbuild.wiring import keys
from lbuild.wiring.core import SETTINGS, Apply, Target, WiringStep
from lbuild.wiring.model import AsyncSettings, Cors, Grant, LogSettings, UrlSettings

if TYPE_CHECKING:
    from lbuild.config import Function, _Reader
    from lbuild.publisher.aws import Aws

TOKENS: tuple[str, ...] = ("reserved", "provisioned", "async", "url", "logs")
#: kind key -> parser of one [[functions.NAME.triggers]] table of that kind (settings are no triggers)
PARSERS: Mapping[str, Callable[..., Any]] = {}

#: Execution-setting keys [project] may default, and those only a function may set.
OVERRIDABLE = keys.SETTINGS_OVERRIDABLE
FUNCTION_ONLY = keys.SETTINGS_FUNCTION_ONLY
PROJECT_ONLY: frozenset[str] = frozenset()

# --- AWS's rules (research note R15-R20, R29) ---------------------------------------------------------

RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
LOG_FORMATS = ("Text", "JSON")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
ASYNC_RETRIES = (0, 2)
ASYNC_MAX_AGE_S = (60, 21600)
ASYNC_DEFAULTS = (2, 21600)  # what Lambda uses when a key is absent
URL_AUTH = ("AWS_IAM", "NONE")
URL_INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
CORS_METHODS = ("GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "*")
CORS_MAX_METHODS = 6
CORS_MAX_ITEMS = 100
CORS_MAX_AGE_S = (0, 86400)
SNAP_START_MIN_PYTHON = (3, 12)
SNAP_START_MAX_STORAGE_MB = 512
UNRESERVED_MINIMUM = 100  # Lambda keeps at least this much of the account's concurrency unreserved
#: lbuild records a custom log group's name in a tag value: tag characters only, and room left in the tag
_LOG_GROUP = re.compile(r"[A-Za-z0-9._/-]{1,200}")
_ASYNC_KEYS = {"retries", "max_age", "on_success", "on_failure"}
_URL_KEYS = {"auth", "invoke_mode", "cors"}
_CORS_KEYS = {"allow_origins", "allow_methods", "allow_headers", "expose_headers", "allow_credentials", "max_age"}
_ARN = re.compile(r"arn:aws[a-zA-Z-]*:([a-z0-9-]+):([a-z0-9-]*):(\d{12})?:(.+)")


# --- lbuild.toml ------------------------------------------------------------------------------------


def parse_settings(r: _Reader, table: Mapping[str, Any], project: Mapping[str, Any], fkey: tuple[str, ...],
                   fn: Function) -> dict[str, Any]:
    """The execution settings of one function (``Wiring`` fields), project defaults applied, validated.

    Lambda@Edge functions take none of them: [project] defaults do not reach them (parse refuses their own).
    """
    defaults: Mapping[str, Any] = {} if fn.edge is not None else project
    where: dict[str, str] = {}

    def pick(name: str, kind: type) -> tuple[Any, tuple[str, ...]]:
        """(value, key) from the function's table, else from [project] (OVERRIDABLE keys only)."""
        key = fkey if name in table or name not in OVERRIDABLE else ("project",)
        source = table if key == fkey else defaults
        value = r.get(source, name, kind, key)
        if value is not None:
            where[name] = r.where(*key, name)
        return value, (*key, name)

    reserved, reserved_key = pick("reserved_concurrency", int)
    if reserved is not None and reserved < 0:
        raise LimitError(f"reserved_concurrency {reserved} is below 0", where=r.where(*reserved_key),
                         hint="set 0 (the function never runs) or more; omit it to share the unreserved pool")
    provisioned, provisioned_key = pick("provisioned_concurrency", int)
    snap_start, snap_key = pick("snap_start", bool)
    if provisioned is not None:
        if provisioned < 1:
            raise LimitError(f"provisioned_concurrency {provisioned} is below 1", where=r.where(*provisioned_key),
                             hint="set 1 or more, or remove provisioned_concurrency")
        if not project.get("alias"):
            raise r.error("provisioned_concurrency needs [project].alias", provisioned_key,
                          'Lambda provisions an alias or a version, never $LATEST: set alias = "live" in [project]')
        if reserved is not None and provisioned > reserved:
            raise LimitError(f"provisioned_concurrency {provisioned} is more than reserved_concurrency {reserved}",
                             where=r.where(*provisioned_key),
                             hint="Lambda cannot provision more than the function reserves: raise "
                                  "reserved_concurrency or lower provisioned_concurrency")
        if snap_start:
            raise r.error("snap_start cannot be combined with provisioned_concurrency", snap_key,
                          "Lambda refuses SnapStart on a function with provisioned concurrency: keep one of them")
    if snap_start:
        _check_snap_start(r, fn, snap_key)
    return {"reserved_concurrency": reserved, "provisioned_concurrency": provisioned,
            "snap_start": bool(snap_start), "log": _log(r, pick), "async_": _async(r, table, defaults, fkey, where),
            "url": _url(r, table, fkey, where), "where": where}


def _check_snap_start(r: _Reader, fn: Function, key: tuple[str, ...]) -> None:
    version = tuple(int(n) for n in re.findall(r"\d+", fn.runtime)[:2])
    if version < SNAP_START_MIN_PYTHON:
        raise r.error(f"snap_start needs python3.12 or later, not {fn.runtime}", key,
                      'set runtime = "python3.12" (or later), or remove snap_start')
    if fn.package_type != "zip":
        raise r.error("snap_start works with zip functions only, not container images", key,
                      'remove snap_start, or use package_type = "zip"')
    if fn.ephemeral_storage > SNAP_START_MAX_STORAGE_MB:
        raise r.error(f"snap_start needs ephemeral_storage {SNAP_START_MAX_STORAGE_MB} MB, not "
                      f"{fn.ephemeral_storage} MB", key,
                      f"set ephemeral_storage = {SNAP_START_MAX_STORAGE_MB}, or remove snap_start")


def _log(r: _Reader, pick: Callable[[str, type], tuple[Any, tuple[str, ...]]]) -> LogSettings:
    retention: int | None = None
    raw, key = pick("log_retention_days", object)
    if raw is not None:
        if raw == "never":
            retention = 0
        elif isinstance(raw, int) and not isinstance(raw, bool) and raw in RETENTION_DAYS:
            retention = raw
        else:
            raise r.error(f"log_retention_days {raw!r} is not a retention CloudWatch Logs accepts", key,
                          f'use one of {", ".join(map(str, RETENTION_DAYS))}, or "never"')
    fmt_raw, fmt_key = pick("log_format", str)
    fmt = None
    if fmt_raw is not None:
        fmt = next((f for f in LOG_FORMATS if f.lower() == fmt_raw.lower()), None)
        if fmt is None:
            raise r.error(f"log_format '{fmt_raw}' is not one Lambda knows", fmt_key, 'use "Text" or "JSON"')
    levels = []
    for name, allowed in (("log_level", LOG_LEVELS), ("system_log_level", SYSTEM_LOG_LEVELS)):
        value, key = pick(name, str)
        if value is not None:
            if fmt != "JSON":
                raise r.error(f"{name} needs log_format = \"JSON\"", key,
                              'Lambda filters by level only for JSON logs: add log_format = "JSON", or remove '
                              f"{name}")
            if value.upper() not in allowed:
                raise r.error(f"{name} '{value}' is not one Lambda knows", key, f"use one of {', '.join(allowed)}")
            value = value.upper()
        levels.append(value if value is not None else ("INFO" if fmt == "JSON" else None))
    group, group_key = pick("log_group", str)
    if group is not None and not _LOG_GROUP.fullmatch(group):
        raise r.error(f"log_group '{group}' is not a log group name lbuild can manage", group_key,
                      "use 1-200 letters, digits, '.', '-', '_' or '/' (e.g. \"/shop/orders\")")
    return LogSettings(retention, fmt, levels[0], levels[1], group)


def _merged(r: _Reader, table: Mapping[str, Any], defaults: Mapping[str, Any], name: str, fkey: tuple[str, ...],
            allowed: set[str]) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]] | None:
    """A settings table: [project]'s, then the function's keys over it; each key with where it was set."""
    merged: dict[str, Any] = {}
    keys: dict[str, tuple[str, ...]] = {}
    found = False
    for source, key in ((defaults, ("project",)), (table, fkey)):
        if name not in source:
            continue
        found = True
        value = r.get(source, name, dict, key) or {}
        r.check_keys(value, allowed, (*key, name))
        for k, v in value.items():
            merged[k] = v
            keys[k] = (*key, name, k)
    return (merged, keys) if found else None


def _async(r: _Reader, table: Mapping[str, Any], defaults: Mapping[str, Any], fkey: tuple[str, ...],
           where: dict[str, str]) -> AsyncSettings | None:
    found = _merged(r, table, defaults, "async", fkey, _ASYNC_KEYS)
    if found is None:
        return None
    values, keys = found
    where["async"] = r.where(*next(iter(keys.values()))[:-1]) if keys else r.where(*fkey, "async")
    numbers: dict[str, int | None] = {}
    for name, (low, high), unit in (("retries", ASYNC_RETRIES, ""), ("max_age", ASYNC_MAX_AGE_S, " s")):
        value = values.get(name)
        if value is None:
            numbers[name] = None
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise r.error(f"'async.{name}' must be an integer", keys[name], f"write it as {name} = {low}")
        if not low <= value <= high:
            raise LimitError(f"async.{name} {value}{unit} is outside Lambda's range {low}-{high}{unit}",
                             where=r.where(*keys[name]), hint=f"set {name} between {low} and {high}")
        numbers[name] = value
    destinations: dict[str, str | None] = {}
    for name in ("on_success", "on_failure"):
        value = values.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise r.error(f"'async.{name}' must be a string", keys[name], 'write it as "arn:aws:sqs:..."')
            _check_destination(r, value, name, keys[name])
        destinations[name] = value
    return AsyncSettings(numbers["retries"], numbers["max_age"], destinations["on_success"],
                         destinations["on_failure"])


def _check_destination(r: _Reader, arn: str, name: str, key: tuple[str, ...]) -> None:
    found = _ARN.fullmatch(arn)
    service, resource = (found[1], found[4]) if found else ("", "")
    kinds = {"sqs": "an SQS queue", "sns": "an SNS topic", "lambda": "a Lambda function"}
    ok = service in kinds or (service == "events" and resource.startswith("event-bus/")) or \
        (service == "s3" and name == "on_failure")
    if not ok:
        if service == "s3":
            raise r.error("an S3 bucket can only be an on_failure destination", key,
                          "use an SQS queue, SNS topic, Lambda function or EventBridge bus for on_success")
        raise r.error(f"async.{name} '{arn}' is not a destination Lambda accepts", key,
                      "use the ARN of an SQS queue, SNS topic, Lambda function, EventBridge bus"
                      + (" or S3 bucket" if name == "on_failure" else ""))
    if service in ("sqs", "sns") and resource.endswith(".fifo"):
        raise r.error(f"async.{name} is a FIFO {'queue' if service == 'sqs' else 'topic'}, which Lambda cannot "
                      "deliver to", key, "use a standard queue or topic")


def _url(r: _Reader, table: Mapping[str, Any], fkey: tuple[str, ...], where: dict[str, str]) -> UrlSettings | None:
    if "url" not in table:
        return None
    key = (*fkey, "url")
    value = r.get(table, "url", dict, fkey) or {}
    r.check_keys(value, _URL_KEYS, key)
    where["url"] = r.where(*key)
    choices = {}
    for name, allowed, default in (("auth", URL_AUTH, "AWS_IAM"), ("invoke_mode", URL_INVOKE_MODES, "BUFFERED")):
        found = r.get(value, name, str, key)
        given = default if found is None else found
        if given.upper() not in allowed:
            raise r.error(f"url.{name} '{given}' is not one Lambda knows", (*key, name),
                          f"use {' or '.join(repr(a).replace(chr(39), chr(34)) for a in allowed)}")
        choices[name] = given.upper()
    cors = _cors(r, value, key) if "cors" in value else None
    return UrlSettings(choices["auth"], choices["invoke_mode"], cors)


def _cors(r: _Reader, url: Mapping[str, Any], key: tuple[str, ...]) -> Cors | None:
    ckey = (*key, "cors")
    table = r.get(url, "cors", dict, key) or {}
    r.check_keys(table, _CORS_KEYS, ckey)
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("allow_origins", "allow_methods", "allow_headers", "expose_headers"):
        items = r.strings(table, name, ckey) or ()
        limit = CORS_MAX_METHODS if name == "allow_methods" else CORS_MAX_ITEMS
        if len(items) > limit:
            raise LimitError(f"url.cors.{name} lists {len(items)} values; Lambda allows {limit}",
                             where=r.where(*ckey, name), hint=f"list at most {limit}")
        if name == "allow_methods":
            items = tuple(m.upper() for m in items)
            wrong = [m for m in items if m not in CORS_METHODS]
            if wrong:
                raise r.error(f"url.cors.allow_methods has '{wrong[0]}', not an HTTP method Lambda knows",
                              (*ckey, name), f"use {', '.join(CORS_METHODS)}")
        lists[name] = tuple(sorted(set(items)))
    max_age = r.get(table, "max_age", int, ckey) or 0
    low, high = CORS_MAX_AGE_S
    if not low <= max_age <= high:
        raise LimitError(f"url.cors.max_age {max_age} s is outside Lambda's range {low}-{high} s",
                         where=r.where(*ckey, "max_age"), hint=f"set max_age between {low} and {high}")
    cors = Cors(lists["allow_origins"], lists["allow_methods"], lists["allow_headers"], lists["expose_headers"],
                bool(r.get(table, "allow_credentials", bool, ckey)), max_age)
    return None if cors == Cors() else cors


# --- normalised forms: AWS's (or moto's) answers and lbuild.toml compare equal ------------------------------


def wanted_async(settings: AsyncSettings) -> AsyncSettings:
    """``settings`` with Lambda's defaults filled in (what GetFunctionEventInvokeConfig answers)."""
    retries, max_age = ASYNC_DEFAULTS
    return AsyncSettings(retries if settings.retries is None else settings.retries,
                         max_age if settings.max_age is None else settings.max_age,
                         settings.on_success or None, settings.on_failure or None)


def async_from_aws(got: Mapping[str, Any]) -> AsyncSettings:
    """GetFunctionEventInvokeConfig's answer, normalised."""
    destinations = got.get("DestinationConfig") or {}
    return wanted_async(AsyncSettings(
        got.get("MaximumRetryAttempts"), got.get("MaximumEventAgeInSeconds"),
        (destinations.get("OnSuccess") or {}).get("Destination"),
        (destinations.get("OnFailure") or {}).get("Destination")))


def normal_url(url: UrlSettings) -> UrlSettings:
    """Enums upper-case (moto answers ``Buffered``), CORS lists as sets (headers are case-insensitive), an
    all-default CORS as none."""
    cors = url.cors or Cors()
    cors = Cors(tuple(sorted(set(cors.allow_origins))), tuple(sorted({m.upper() for m in cors.allow_methods})),
                tuple(sorted({h.lower() for h in cors.allow_headers})),
                tuple(sorted({h.lower() for h in cors.expose_headers})), cors.allow_credentials, cors.max_age)
    return UrlSettings(url.auth.upper(), url.invoke_mode.upper(), None if cors == Cors() else cors)


def url_from_aws(got: Mapping[str, Any]) -> UrlSettings:
    """GetFunctionUrlConfig's answer, normalised."""
    cors = got.get("Cors") or {}
    return normal_url(UrlSettings(
        str(got.get("AuthType") or "AWS_IAM"), str(got.get("InvokeMode") or "BUFFERED"),
        Cors(tuple(cors.get("AllowOrigins") or ()), tuple(cors.get("AllowMethods") or ()),
             tuple(cors.get("AllowHeaders") or ()), tuple(cors.get("ExposeHeaders") or ()),
             bool(cors.get("AllowCredentials")), int(cors.get("MaxAge") or 0))))


def cors_to_aws(cors: Cors | None) -> dict[str, Any]:
    cors = cors or Cors()
    return {"AllowOrigins": list(cors.allow_origins), "AllowMethods": list(cors.allow_methods),
            "AllowHeaders": list(cors.allow_headers), "ExposeHeaders": list(cors.expose_headers),
            "AllowCredentials": cors.allow_credentials, "MaxAge": cors.max_age}


def log_group(target: Target) -> str:
    """The log group the function writes to (and lbuild keeps the retention of)."""
    return target.wiring.log.group or f"/aws/lambda/{target.name}"


def _recorded_groups(target: Target) -> set[str]:
    return {f"/aws/lambda/{target.name}" if value == "logs" else value for value in target.had("logs")}


def _wants(target: Target, token: str) -> bool:
    w = target.wiring
    return {"reserved": w.reserved_concurrency is not None,
            "provisioned": w.provisioned_concurrency is not None and target.qualifier is not None,
            "async": w.async_ is not None, "url": w.url is not None,
            "logs": w.log.retention_days is not None}[token]


def _involved(target: Target, token: str) -> bool:
    """Whether lbuild wants ``token``'s setting on ``target`` or recorded it there before."""
    return _wants(target, token) or bool(target.had(token))


# --- what AWS has -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """The settings AWS has, normalised, for the functions that want or had them (missing: none there)."""

    reserved: Mapping[str, int | None] = field(default_factory=dict)
    provisioned: Mapping[str, int | None] = field(default_factory=dict)  # requested, on the alias
    async_: Mapping[str, AsyncSettings | None] = field(default_factory=dict)
    url: Mapping[str, UrlSettings | None] = field(default_factory=dict)
    groups: Mapping[str, int] = field(default_factory=dict)  # log group that exists -> retention days (0: never)
    unreserved: int | None = None  # the account's UnreservedConcurrentExecutions (None: not read / unknown)


def read(aws: Aws, region: str, targets: Sequence[Target]) -> Live:
    """Per target only the settings it wants or had; log groups in one sweep per prefix."""
    from lbuild.publisher import aws as aws_mod

    def absent(exc: AwsError) -> bool:
        return aws_mod.not_found(exc) or exc.code == "ProvisionedConcurrencyConfigNotFoundException"

    def get(t: Target, operation: str, qualified: bool = True) -> Mapping[str, Any] | None:
        qualifier: dict[str, Any] = {"Qualifier": t.qualifier} if qualified and t.qualifier else {}
        try:
            answer: Mapping[str, Any] = aws.call("lambda", operation, f"function {t.name}", t.region,
                                                 FunctionName=t.name, **qualifier)
            return answer
        except AwsError as exc:
            if absent(exc):
                return None
            raise

    def one(t: Target) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if _involved(t, "reserved"):
            out["reserved"] = (get(t, "get_function_concurrency", qualified=False) or {}).get(
                "ReservedConcurrentExecutions")
        if _involved(t, "provisioned") and t.qualifier:
            pc = get(t, "get_provisioned_concurrency_config")
            out["provisioned"] = None if pc is None else pc.get("RequestedProvisionedConcurrentExecutions")
        if _involved(t, "async"):
            invoke = get(t, "get_function_event_invoke_config")
            out["async_"] = None if invoke is None else async_from_aws(invoke)
        if _involved(t, "url"):
            url = get(t, "get_function_url_config")
            out["url"] = None if url is None else url_from_aws(url)
        return out

    existing = [t for t in targets if t.exists]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(zip((t.name for t in existing), pool.map(one, existing), strict=True))
    parts: dict[str, dict[str, Any]] = {"reserved": {}, "provisioned": {}, "async_": {}, "url": {}}
    for name, answer in answers.items():
        for part, value in answer.items():
            parts[part][name] = value
    return Live(parts["reserved"], parts["provisioned"], parts["async_"], parts["url"],
                _read_groups(aws, region, targets), _read_unreserved(aws, region, targets))


def _read_groups(aws: Aws, region: str, targets: Sequence[Target]) -> dict[str, int]:
    """The log groups of the targets that want or had a retention: ``/aws/lambda/<project>-*`` in one paginated
    sweep, a custom group by its own name."""
    wanted: set[str] = set()
    for t in targets:
        if _wants(t, "logs"):
            wanted.add(log_group(t))
        wanted |= _recorded_groups(t)
    if not wanted:
        return {}
    prefixes = {f"/aws/lambda/{t.project}-" for t in targets}
    prefixes |= {g for g in wanted if not any(g.startswith(p) for p in prefixes)}
    found: dict[str, int] = {}
    for prefix in sorted(prefixes):
        for group in aws.pages("logs", "describe_log_groups", "logGroups", f"log groups {prefix}*", region,
                               logGroupNamePrefix=prefix):
            if group.get("logGroupName") in wanted:
                found[group["logGroupName"]] = int(group.get("retentionInDays") or 0)
    return found


def _read_unreserved(aws: Aws, region: str, targets: Sequence[Target]) -> int | None:
    """The account's unreserved concurrency, when a target reserves or provisions any (None when the endpoint
    has no GetAccountSettings, as moto)."""
    if not any(_wants(t, "reserved") or _wants(t, "provisioned") for t in targets):
        return None
    try:
        got = aws.call("lambda", "get_account_settings", "the account's Lambda settings", region)
    except AwsError as exc:
        if exc.code == "404":  # no such endpoint (an emulator): the check is skipped
            return None
        raise
    value = (got.get("AccountLimit") or {}).get("UnreservedConcurrentExecutions")
    return None if value is None else int(value)


# --- steps --------------------------------------------------------------------------------------------


def _on(name: str, qualifier: str | None) -> str:
    return f"{name} on {qualifier}" if qualifier else name


def _show(value: Any) -> str:
    return "none" if value is None else str(value)


@dataclass(frozen=True)
class SetConcurrency(WiringStep):
    """Reserved concurrency of the function and provisioned concurrency of its alias, in the order Lambda
    accepts (a lowered provisioned concurrency first, else the reservation first)."""

    PHASE: ClassVar[int] = SETTINGS
    qualifier: str | None = None
    reserved: tuple[int | None, int | None] | None = None  # (AWS now, wanted); None: unchanged
    provisioned: tuple[int | None, int | None] | None = None

    def describe(self) -> str:
        parts = [f"reserved {_show(self.reserved[0])} -> {_show(self.reserved[1])}"] if self.reserved else []
        if self.provisioned:
            parts.append(f"provisioned on {self.qualifier} {_show(self.provisioned[0])} -> "
                         f"{_show(self.provisioned[1])}")
        return f"concurrency of {self.target}: {', '.join(parts)}"


@dataclass(frozen=True)
class PutAsyncConfig(WiringStep):
    PHASE: ClassVar[int] = SETTINGS
    qualifier: str | None = None
    settings: AsyncSettings = field(default_factory=AsyncSettings)
    before: AsyncSettings | None = None

    def describe(self) -> str:
        return f"async config of {_on(self.target, self.qualifier)}: {_changes(self.before, self.settings)}"


@dataclass(frozen=True)
class DeleteAsyncConfig(WiringStep):
    PHASE: ClassVar[int] = SETTINGS
    qualifier: str | None = None

    def describe(self) -> str:
        return f"async config of {_on(self.target, self.qualifier)}: delete (Lambda's defaults apply again)"


@dataclass(frozen=True)
class PutUrl(WiringStep):
    PHASE: ClassVar[int] = SETTINGS
    qualifier: str | None = None
    settings: UrlSettings = field(default_factory=UrlSettings)
    before: UrlSettings | None = None

    def describe(self) -> str:
        return f"function URL of {_on(self.target, self.qualifier)}: {_changes(self.before, self.settings)}"


@dataclass(frozen=True)
class DeleteUrl(WiringStep):
    PHASE: ClassVar[int] = SETTINGS
    qualifier: str | None = None

    def describe(self) -> str:
        return f"function URL of {_on(self.target, self.qualifier)}: delete"


@dataclass(frozen=True)
class SetLogRetention(WiringStep):
    PHASE: ClassVar[int] = SETTINGS
    group: str = ""
    days: int = 0
    before: int | None = None  # None: the group does not exist (it is created)

    def describe(self) -> str:
        if self.before is None:
            return f"log group {self.group} of {self.target}: create it, retention {_days(self.days)}"
        return f"log group {self.group} of {self.target}: retention {_days(self.before)} -> {_days(self.days)}"


@dataclass(frozen=True)
class DeleteLogRetention(WiringStep):
    PHASE: ClassVar[int] = SETTINGS
    group: str = ""
    before: int = 0

    def describe(self) -> str:
        return f"log group {self.group} of {self.target}: retention {_days(self.before)} -> never expire"


def _days(days: int) -> str:
    return f"{days} days" if days else "never expire"


def _changes(before: Any, after: Any) -> str:
    """``retries 2 -> 1, auth AWS_IAM -> NONE`` between two settings of one kind; ``create (...)`` from none."""
    fields = list(type(after).__dataclass_fields__)
    if before is None:
        return "create (" + ", ".join(f"{n} {_field(getattr(after, n))}" for n in fields
                                      if getattr(after, n) is not None) + ")"
    return ", ".join(f"{n} {_field(getattr(before, n))} -> {_field(getattr(after, n))}" for n in fields
                     if getattr(before, n) != getattr(after, n))


def _field(value: Any) -> str:
    if isinstance(value, Cors):
        return "{" + ", ".join(f"{n} {_field(getattr(value, n))}" for n in value.__dataclass_fields__
                               if getattr(value, n) != getattr(Cors(), n)) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    return _show(value)


# --- planning (pure) ------------------------------------------------------------------------------------


def plan(targets: Sequence[Target], live: Live) -> list[Step]:
    """The steps that make AWS's settings what lbuild.toml says; raises LimitError (exit 5) when the
    reservations would leave the account less unreserved concurrency than Lambda's minimum."""
    _check_pool(targets, live)
    steps: list[Step] = []
    for t in targets:
        steps += _plan_concurrency(t, live) + _plan_async(t, live) + _plan_url(t, live) + _plan_logs(t, live)
    return steps


def _why(name: str, wanted: Any, current: Any) -> str:
    if wanted is None:
        return f"{name} is no longer in lbuild.toml (lbuild set it)"
    return f"lbuild.toml sets {name}" + ("" if current is None else ", AWS has another value")


def _plan_concurrency(t: Target, live: Live) -> list[Step]:
    changes: dict[str, tuple[int | None, int | None] | None] = {"reserved": None, "provisioned": None}
    wanted = {"reserved": t.wiring.reserved_concurrency,
              "provisioned": t.wiring.provisioned_concurrency if t.qualifier else None}
    current = {"reserved": live.reserved.get(t.name), "provisioned": live.provisioned.get(t.name)}
    managed = False
    reasons = []
    for token in ("reserved", "provisioned"):
        if not _involved(t, token) or (token == "provisioned" and not t.qualifier):
            continue
        managed = True
        if wanted[token] != current[token]:
            changes[token] = (current[token], wanted[token])
            reasons.append(_why(f"{token}_concurrency", wanted[token], current[token]))
    if changes["reserved"] or changes["provisioned"]:
        return [SetConcurrency("; ".join(reasons), t.name, t.qualifier, changes["reserved"], changes["provisioned"])]
    return [Unchanged("as lbuild.toml says", f"concurrency of {t.name}")] if managed else []


def _plan_async(t: Target, live: Live) -> list[Step]:
    if not _involved(t, "async"):
        return []
    current = live.async_.get(t.name)
    if t.wiring.async_ is None:
        return [] if current is None else [DeleteAsyncConfig(_why("async", None, current), t.name, t.qualifier)]
    wanted = wanted_async(t.wiring.async_)
    if wanted == current:
        return [Unchanged("as lbuild.toml says", f"async config of {_on(t.name, t.qualifier)}")]
    return [PutAsyncConfig(_why("async", wanted, current), t.name, t.qualifier, wanted, current)]


def _plan_url(t: Target, live: Live) -> list[Step]:
    if not _involved(t, "url"):
        return []
    current = live.url.get(t.name)
    if t.wiring.url is None:
        return [] if current is None else [DeleteUrl(_why("url", None, current), t.name, t.qualifier)]
    wanted = normal_url(t.wiring.url)
    if wanted == current:
        return [Unchanged("as lbuild.toml says", f"function URL of {_on(t.name, t.qualifier)}")]
    warnings = ["warning: auth NONE: anyone on the internet can invoke it"] if wanted.auth == "NONE" else []
    if wanted.invoke_mode == "RESPONSE_STREAM" and t.runtime.startswith("python"):  # R21
        warnings.append(f"warning: the {t.runtime} managed runtime does not stream responses (a custom runtime "
                        "or the Lambda Web Adapter does)")
    return [PutUrl("; ".join([_why("url", wanted, current), *warnings]), t.name, t.qualifier, wanted, current)]


def _plan_logs(t: Target, live: Live) -> list[Step]:
    steps: list[Step] = []
    days = t.wiring.log.retention_days
    group = log_group(t) if days is not None else None
    if group is not None and days is not None:
        current = live.groups.get(group)
        if days and current != days:
            steps.append(SetLogRetention(_why("log_retention_days", days, current), t.name, group, days, current))
        elif not days and current:
            steps.append(DeleteLogRetention('lbuild.toml sets log_retention_days = "never"', t.name, group, current))
        else:
            steps.append(Unchanged("as lbuild.toml says", f"log group {group}"))
    for old in sorted(_recorded_groups(t) - {group}):
        if live.groups.get(old):
            why = "log_retention_days is no longer in lbuild.toml (lbuild set it)" if group is None else \
                f"the function logs to {group} now (lbuild set this retention)"
            steps.append(DeleteLogRetention(why, t.name, old, live.groups[old]))
    return steps


def _check_pool(targets: Sequence[Target], live: Live) -> None:
    """Reserved (or, without a reservation, provisioned) concurrency this deploy adds, against the account's
    unreserved pool less the 100 Lambda keeps (research note R17, R18)."""
    if live.unreserved is None:
        return
    more = 0
    first: Target | None = None
    for t in targets:
        reserved = t.wiring.reserved_concurrency
        if reserved is not None or t.had("reserved"):
            taken, had = reserved or 0, live.reserved.get(t.name) or 0
        elif t.qualifier:
            taken, had = t.wiring.provisioned_concurrency or 0, live.provisioned.get(t.name) or 0
        else:
            continue
        more += taken - had
        if taken > had and first is None:
            first = t
    room = live.unreserved - UNRESERVED_MINIMUM
    if more > room and first is not None:
        key = "reserved_concurrency" if first.wiring.reserved_concurrency is not None else "provisioned_concurrency"
        raise LimitError(f"this deploy reserves {more} more concurrency, and the account has "
                         f"{live.unreserved} unreserved; Lambda keeps at least {UNRESERVED_MINIMUM} unreserved",
                         where=first.wiring.where.get(key, f"functions.{first.key}.{key}"),
                         hint=f"reserve at most {max(room, 0)} more in all, or ask AWS for a higher "
                              "concurrent-executions quota")


def tokens(target: Target) -> set[str]:
    out = {token for token in ("reserved", "provisioned", "async", "url") if _wants(target, token)}
    if _wants(target, "logs"):
        out.add("logs" if not target.wiring.log.group or log_group(target) == f"/aws/lambda/{target.name}"
                else f"logs={target.wiring.log.group}")
    return out


def grants(target: Target) -> list[Grant]:
    """A public URL (``auth = "NONE"``) needs both statements Lambda requires since October 2025 (R20)."""
    url = target.wiring.url
    if url is None or url.auth != "NONE":
        return []
    return [Grant("url", "*", action="lambda:InvokeFunctionUrl", url_auth_type="NONE"),
            Grant("url", "*", action="lambda:InvokeFunction", invoked_via_url=True)]


# --- applying -------------------------------------------------------------------------------------------


def _qualifier(qualifier: str | None) -> dict[str, Any]:
    return {"Qualifier": qualifier} if qualifier else {}


def apply_concurrency(aws: Aws, region: str, step: SetConcurrency) -> str:
    what = f"function {step.target}"
    deferred = ""
    if step.provisioned is not None and step.qualifier and _routes_a_canary(aws, region, step.target, step.qualifier):
        # Lambda manages no provisioned concurrency on an alias with a routing configuration (R18)
        if step.provisioned[1] is None:
            raise AwsError(f"provisioned concurrency of alias {step.qualifier} of {step.target} cannot be removed "
                           "while the alias routes a canary", where=what, code="Conflict",
                           hint="promote the canary (`lbuild deploy` without --canary), then deploy again")
        deferred = f"provisioned concurrency {step.provisioned[1]} deferred: alias {step.qualifier} routes a " \
                   "canary; the deploy that promotes it applies it"
        step = replace(step, provisioned=None)

    def reserved() -> None:
        if step.reserved is None:
            return
        if step.reserved[1] is None:
            aws.call("lambda", "delete_function_concurrency", what, region, FunctionName=step.target)
        else:
            aws.call("lambda", "put_function_concurrency", what, region, FunctionName=step.target,
                     ReservedConcurrentExecutions=step.reserved[1])

    def provisioned() -> None:
        if step.provisioned is None:
            return
        if step.provisioned[1] is None:
            aws.call("lambda", "delete_provisioned_concurrency_config", what, region, FunctionName=step.target,
                     **_qualifier(step.qualifier))
        else:
            aws.call("lambda", "put_provisioned_concurrency_config", what, region, FunctionName=step.target,
                     ProvisionedConcurrentExecutions=step.provisioned[1], **_qualifier(step.qualifier))

    lowered = step.provisioned is not None and (step.provisioned[1] or 0) < (step.provisioned[0] or 0)
    for part in (provisioned, reserved) if lowered else (reserved, provisioned):
        part()
    return deferred or ("Lambda allocates provisioned concurrency in the background" if step.provisioned and
                        step.provisioned[1] else "")


def _routes_a_canary(aws: Aws, region: str, name: str, alias: str) -> bool:
    got = aws.call("lambda", "get_alias", f"alias {alias} of {name}", region, FunctionName=name, Name=alias)
    return bool((got.get("RoutingConfig") or {}).get("AdditionalVersionWeights"))


def apply_put_async(aws: Aws, region: str, step: PutAsyncConfig) -> str:
    s = step.settings
    aws.call("lambda", "put_function_event_invoke_config", f"function {step.target}", region,
             FunctionName=step.target, MaximumRetryAttempts=s.retries, MaximumEventAgeInSeconds=s.max_age,
             DestinationConfig={"OnSuccess": {"Destination": s.on_success} if s.on_success else {},
                                "OnFailure": {"Destination": s.on_failure} if s.on_failure else {}},
             **_qualifier(step.qualifier))
    return ""


def apply_delete_async(aws: Aws, region: str, step: DeleteAsyncConfig) -> str:
    _ignore_missing(lambda: aws.call("lambda", "delete_function_event_invoke_config", f"function {step.target}",
                                     region, FunctionName=step.target, **_qualifier(step.qualifier)))
    return ""


def apply_put_url(aws: Aws, region: str, step: PutUrl) -> str:
    s = step.settings
    kwargs: dict[str, Any] = {"FunctionName": step.target, "AuthType": s.auth, "InvokeMode": s.invoke_mode,
                              **_qualifier(step.qualifier)}
    if step.before is None:
        if s.cors is not None:
            kwargs["Cors"] = cors_to_aws(s.cors)
        answer = aws.call("lambda", "create_function_url_config", f"function {step.target}", region, **kwargs)
    else:
        answer = aws.call("lambda", "update_function_url_config", f"function {step.target}", region,
                          Cors=cors_to_aws(s.cors), **kwargs)
    return str(answer.get("FunctionUrl", ""))


def apply_delete_url(aws: Aws, region: str, step: DeleteUrl) -> str:
    _ignore_missing(lambda: aws.call("lambda", "delete_function_url_config", f"function {step.target}", region,
                                     FunctionName=step.target, **_qualifier(step.qualifier)))
    return ""


def apply_retention(aws: Aws, region: str, step: SetLogRetention) -> str:
    if step.before is None:
        try:
            aws.call("logs", "create_log_group", f"log group {step.group}", region, logGroupName=step.group)
        except AwsError as exc:
            if exc.code != "ResourceAlreadyExistsException":
                raise
    aws.call("logs", "put_retention_policy", f"log group {step.group}", region, logGroupName=step.group,
             retentionInDays=step.days)
    return ""


def apply_delete_retention(aws: Aws, region: str, step: DeleteLogRetention) -> str:
    _ignore_missing(lambda: aws.call("logs", "delete_retention_policy", f"log group {step.group}", region,
                                     logGroupName=step.group))
    return ""


def _ignore_missing(call: Callable[[], Any]) -> None:
    """A delete whose target is already gone has done its job."""
    from lbuild.publisher import aws as aws_mod

    try:
        call()
    except AwsError as exc:
        if not aws_mod.not_found(exc):
            raise


APPLY: Mapping[type[WiringStep], Apply] = {
    SetConcurrency: apply_concurrency, PutAsyncConfig: apply_put_async, DeleteAsyncConfig: apply_delete_async,
    PutUrl: apply_put_url, DeleteUrl: apply_delete_url, SetLogRetention: apply_retention,
    DeleteLogRetention: apply_delete_retention,
}
