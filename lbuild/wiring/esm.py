"""Wiring family `esm`: event source mappings that poll SQS queues, Kinesis streams and DynamoDB streams.

One ``[[functions.NAME.triggers]]`` table per source (``sqs = "<queue ARN>"``, ``kinesis = "<stream ARN>"``,
``dynamodb = "<stream ARN>"``). AWS allows one mapping per (function, source), so that pair is the identity: a
mapping lbuild recorded (token ``sqs=<ARN>``, ...) is updated in place where AWS allows it, replaced (deleted, then
created) where it does not (``starting_position``), and deleted when lbuild.toml no longer lists its source.
Mappings lbuild did not record are never deleted; one on a source lbuild.toml names is adopted.

Both sides of a comparison pass through ``wanted_settings`` / ``live_settings``, which fill in AWS's defaults and
canonicalise filter patterns, so AWS's spelling, moto's (defaults omitted, the alias stored as its version) and
lbuild.toml's compare equal when they mean the same.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild.errors import AwsError, ConfigError, LimitError
from lbuild.steps import Step, Unchanged
from lbuild.wiring.core import UNWIRE, Apply, Target, WiringStep
from lbuild.wiring.model import Grant, Trigger

if TYPE_CHECKING:
    from lbuild.config import _Reader
    from lbuild.publisher.aws import Aws

KINDS = ("sqs", "kinesis", "dynamodb")
TOKENS: tuple[str, ...] = KINDS
#: [project] keys only this family reads
PROJECT_ONLY: frozenset[str] = frozenset()

# --- AWS's rules (R1-R12 of the research note), as data ----------------------------------------------------

BATCH_SIZE = (1, 10_000)
FIFO_BATCH_SIZE = (1, 10)
SQS_BATCH_WITHOUT_WINDOW = 10  # a larger SQS batch needs batching_window >= 1
DEFAULT_BATCH_SIZE = {"sqs": 10, "kinesis": 100, "dynamodb": 100}
BATCHING_WINDOW = (0, 300)
MAX_CONCURRENCY = (2, 1000)
PARALLELIZATION = (1, 10)
TUMBLING_WINDOW = (0, 900)
RETRIES = (0, 10_000)  # or -1: until the record expires
MAX_RECORD_AGE = (60, 604_800)  # or -1: the stream's retention
MAX_FILTERS = 5  # a quota AWS raises to 10 on request
MAX_PATTERN_CHARS = 4096
POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
VISIBILITY_FACTOR = 6  # AWS's advice: visibility timeout >= 6 x the function timeout (+ the batching window)

_ARN = {
    "sqs": re.compile(r"arn:aws[a-z-]*:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,80}(?:\.fifo)?)"),
    "kinesis": re.compile(r"arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/([A-Za-z0-9_.-]{1,128})"),
    "dynamodb": re.compile(r"arn:aws[a-z-]*:dynamodb:([a-z0-9-]+):(\d{12}):table/([A-Za-z0-9_.-]{3,255})/stream/\S+"),
}
_EXAMPLE = {
    "sqs": 'sqs = "arn:aws:sqs:eu-west-1:123456789012:orders"',
    "kinesis": 'kinesis = "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"',
    "dynamodb": 'dynamodb = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000" '
                "(the table's LatestStreamArn)",
}
_FAILURE_DESTINATION = re.compile(r"arn:aws[a-z-]*:(sqs|sns|s3):")


def _match(kind: str, arn: str) -> re.Match[str] | None:
    return _ARN[kind].fullmatch(arn)


def kind_of(arn: str) -> str | None:
    """The trigger kind an EventSourceArn belongs to (None: a source lbuild does not wire, e.g. Kafka)."""
    return next((kind for kind in KINDS if _match(kind, arn)), None)


def source_region(arn: str) -> str:
    return arn.split(":")[3] if arn.count(":") >= 5 else ""


def label(kind: str, source: str, ident: str | None = None) -> str:
    """``sqs orders``, ``kinesis clicks``, ``dynamodb orders`` (the table): how plan names a mapping."""
    found = _match(kind, source)
    return f"{kind} {ident or (found.group(3) if found else source)}"


# --- what lbuild.toml asks for ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EsmTrigger(Trigger):
    """What every poll-based trigger has; None: AWS's default."""

    batch_size: int | None = None
    batching_window: int | None = None  # MaximumBatchingWindowInSeconds
    enabled: bool = True
    filters: tuple[str, ...] = ()  # FilterCriteria patterns (JSON)
    report_batch_item_failures: bool = False  # FunctionResponseTypes = ["ReportBatchItemFailures"]

    def label(self) -> str:
        return label(self.kind, self.source, self.id)

    @property
    def token(self) -> str:
        return f"{self.kind}={self.source}"


@dataclass(frozen=True)
class SqsTrigger(EsmTrigger):
    KIND: ClassVar[str] = "sqs"
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency

    @property
    def fifo(self) -> bool:
        return self.source.endswith(".fifo")


@dataclass(frozen=True)
class StreamTrigger(EsmTrigger):
    """A Kinesis or DynamoDB stream: read from ``starting_position``, retried by the mapping itself."""

    starting_position: str = "LATEST"
    starting_timestamp: datetime | None = None  # with AT_TIMESTAMP (Kinesis)
    parallelization: int | None = None  # ParallelizationFactor, batches per shard
    retries: int | None = None  # MaximumRetryAttempts
    max_record_age: int | None = None  # MaximumRecordAgeInSeconds
    bisect_on_error: bool = False  # BisectBatchOnFunctionError
    tumbling_window: int | None = None  # TumblingWindowInSeconds
    on_failure: str | None = None  # DestinationConfig.OnFailure.Destination


@dataclass(frozen=True)
class KinesisTrigger(StreamTrigger):
    KIND: ClassVar[str] = "kinesis"


@dataclass(frozen=True)
class DynamoDbTrigger(StreamTrigger):
    KIND: ClassVar[str] = "dynamodb"


_COMMON = frozenset({"id", "batch_size", "batching_window", "enabled", "filters", "report_batch_item_failures"})
_SQS_ONLY = frozenset({"max_concurrency"})
_STREAM_ONLY = frozenset({"starting_position", "starting_timestamp", "parallelization", "retries", "max_record_age",
                          "bisect_on_error", "tumbling_window", "on_failure"})
_NOT_APPLICABLE = {
    "sqs": "it applies to kinesis and dynamodb triggers only; an SQS mapping reads the whole queue, and its "
           "retries come from the queue's visibility timeout and redrive policy (maxReceiveCount)",
    "stream": "max_concurrency applies to sqs triggers only; a stream scales with its shards and parallelization "
              "(1-10 batches per shard)",
}


def parse_trigger(r: _Reader, entry: Mapping[str, Any], key: tuple[str, ...], kind: str,
                  project: Mapping[str, Any]) -> EsmTrigger:
    """One ``[[functions.NAME.triggers]]`` table of kind ``sqs``, ``kinesis`` or ``dynamodb``, validated."""
    own = _COMMON | (_SQS_ONLY if kind == "sqs" else _STREAM_ONLY) | {kind}
    for name in entry:
        if name == "on_success":
            raise r.error(f"'on_success' is not supported on {kind} triggers", (*key, name),
                          "event source mappings only send failures: use on_failure on kinesis and dynamodb "
                          "triggers (SQS: the queue's redrive policy)")
        if name in (_SQS_ONLY | _STREAM_ONLY) and name not in own:
            raise r.error(f"'{name}' does not apply to {kind} triggers", (*key, name),
                          _NOT_APPLICABLE["sqs" if kind == "sqs" else "stream"])
    r.check_keys(entry, set(own), key)
    source = r.get(entry, kind, str, key)
    assert source is not None
    if not _match(kind, source):
        raise r.error(f"'{source}' is not the ARN of a {'queue' if kind == 'sqs' else kind + ' stream'}",
                      (*key, kind), f"write it as {_EXAMPLE[kind]}")
    common: dict[str, Any] = {
        "source": source, "where": r.where(*key), "id": r.get(entry, "id", str, key),
        "batch_size": _number(r, entry, "batch_size", key, kind, BATCH_SIZE),
        "batching_window": _number(r, entry, "batching_window", key, kind, BATCHING_WINDOW),
        "enabled": _flag(r, entry, "enabled", key, True),
        "filters": _filters(r, entry, key, kind),
        "report_batch_item_failures": _flag(r, entry, "report_batch_item_failures", key, False),
    }
    if kind == "sqs":
        queue = SqsTrigger(**common, max_concurrency=_number(r, entry, "max_concurrency", key, kind, MAX_CONCURRENCY))
        _check_sqs(r, key, queue)
        return queue
    position, stamp = _position(r, entry, key, kind)
    cls = KinesisTrigger if kind == "kinesis" else DynamoDbTrigger
    on_failure = r.get(entry, "on_failure", str, key)
    if on_failure is not None and not _FAILURE_DESTINATION.match(on_failure):
        raise r.error(f"on_failure '{on_failure}' is not an SQS queue, SNS topic or S3 bucket ARN",
                      (*key, "on_failure"), 'a stream sends the records it gave up on to SQS, SNS or S3, e.g. '
                                            'on_failure = "arn:aws:sqs:eu-west-1:123456789012:clicks-dlq"')
    return cls(**common, starting_position=position, starting_timestamp=stamp,
               parallelization=_number(r, entry, "parallelization", key, kind, PARALLELIZATION),
               retries=_number(r, entry, "retries", key, kind, RETRIES, minus_one="until the record expires"),
               max_record_age=_number(r, entry, "max_record_age", key, kind, MAX_RECORD_AGE,
                                      minus_one="the stream's retention"),
               bisect_on_error=_flag(r, entry, "bisect_on_error", key, False),
               tumbling_window=_number(r, entry, "tumbling_window", key, kind, TUMBLING_WINDOW),
               on_failure=on_failure)


def _number(r: _Reader, entry: Mapping[str, Any], name: str, key: tuple[str, ...], kind: str,
            bounds: tuple[int, int], minus_one: str | None = None) -> int | None:
    value = r.get(entry, name, int, key)
    if value is None or bounds[0] <= value <= bounds[1] or (minus_one and value == -1):
        return value
    allowed = f"{bounds[0]}-{bounds[1]}" + (f" (or -1: {minus_one})" if minus_one else "")
    raise LimitError(f"{kind} trigger {name} {value} is outside Lambda's range {allowed}", where=r.where(*key, name),
                     hint=f"set {name} to a value in {allowed}")


def _flag(r: _Reader, entry: Mapping[str, Any], name: str, key: tuple[str, ...], default: bool) -> bool:
    return bool(r.get(entry, name, bool, key, default=default))


def _filters(r: _Reader, entry: Mapping[str, Any], key: tuple[str, ...], kind: str) -> tuple[str, ...]:
    patterns = r.strings(entry, "filters", key) or ()
    if len(patterns) > MAX_FILTERS:
        raise LimitError(f"{kind} trigger has {len(patterns)} filters; Lambda allows {MAX_FILTERS}",
                         where=r.where(*key, "filters"),
                         hint="merge patterns (one pattern may list several values per field), or ask AWS to raise "
                              "the quota 'Filters per event source mapping'")
    for n, pattern in enumerate(patterns):
        try:
            loaded = json.loads(pattern)
        except ValueError:
            loaded = None
        if not isinstance(loaded, dict):
            raise r.error(f"filter {n} of the {kind} trigger is not a JSON object", (*key, "filters"),
                          """write each pattern as a JSON object in a string, e.g. filters = ['{"body": {"kind": """
                          """["order"]}}']""")
        if len(pattern) > MAX_PATTERN_CHARS:
            raise LimitError(f"filter {n} of the {kind} trigger is {len(pattern)} characters; Lambda allows "
                             f"{MAX_PATTERN_CHARS}", where=r.where(*key, "filters"),
                             hint="shorten the pattern, or split it over several filters")
    return patterns


def _check_sqs(r: _Reader, key: tuple[str, ...], trigger: SqsTrigger) -> None:
    """R1-R3 for queues: a FIFO queue takes batches of 10 at most and no window; a standard queue needs a window
    for a batch over 10."""
    batch, window = trigger.batch_size, trigger.batching_window
    if trigger.fifo:
        if batch is not None and not FIFO_BATCH_SIZE[0] <= batch <= FIFO_BATCH_SIZE[1]:
            raise LimitError(f"sqs trigger batch_size {batch} is over {FIFO_BATCH_SIZE[1]}, the most a FIFO queue "
                             "allows", where=r.where(*key, "batch_size"),
                             hint=f"set batch_size to {FIFO_BATCH_SIZE[1]} or less")
        if window is not None:
            raise r.error("batching_window is not supported on FIFO queues", (*key, "batching_window"),
                          "remove batching_window: Lambda reads a FIFO queue as messages arrive")
        return
    if batch is not None and batch > SQS_BATCH_WITHOUT_WINDOW and not window:
        raise LimitError(f"sqs trigger batch_size {batch} needs batching_window >= 1",
                         where=r.where(*key, "batch_size"),
                         hint=f"add batching_window = 1 (seconds), or set batch_size to {SQS_BATCH_WITHOUT_WINDOW} "
                              "or less")


def _position(r: _Reader, entry: Mapping[str, Any], key: tuple[str, ...], kind: str) -> tuple[str, datetime | None]:
    position = r.get(entry, "starting_position", str, key)
    if position is None:
        raise r.error(f"{kind} trigger needs starting_position", key,
                      'add starting_position = "LATEST" (new records only) or "TRIM_HORIZON" (every record the '
                      "stream still holds)" + (', or "AT_TIMESTAMP" with starting_timestamp' if kind == "kinesis"
                                               else ""))
    allowed = POSITIONS if kind == "kinesis" else POSITIONS[:2]
    if position not in allowed:
        raise r.error(f"starting_position '{position}' is not valid for {kind} triggers", (*key, "starting_position"),
                      f"use one of {', '.join(allowed)}" + (" (AT_TIMESTAMP is for Kinesis only)"
                                                            if position == "AT_TIMESTAMP" else ""))
    stamp = entry.get("starting_timestamp")
    if position == "AT_TIMESTAMP" and stamp is None:
        raise r.error("starting_position AT_TIMESTAMP needs starting_timestamp", (*key, "starting_position"),
                      "add starting_timestamp = 2026-12-01T00:00:00Z (a TOML date-time)")
    if stamp is not None and position != "AT_TIMESTAMP":
        raise r.error(f"starting_timestamp applies only with starting_position AT_TIMESTAMP, not {position}",
                      (*key, "starting_timestamp"), 'remove starting_timestamp, or set starting_position = '
                                                    '"AT_TIMESTAMP"')
    if stamp is not None and (not isinstance(stamp, datetime) or stamp.tzinfo is None):
        raise r.error("starting_timestamp must be a TOML date-time with a time zone", (*key, "starting_timestamp"),
                      "write it unquoted, e.g. starting_timestamp = 2026-12-01T00:00:00Z")
    return position, stamp


#: kind key -> parser of one [[functions.NAME.triggers]] table of that kind
PARSERS: Mapping[str, Callable[..., Any]] = {kind: parse_trigger for kind in KINDS}


# --- normalised settings: what is compared ---------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """A mapping's settings with AWS's defaults filled in (None: does not apply to the kind)."""

    batch_size: int
    batching_window: int
    enabled: bool
    filters: tuple[str, ...]
    report_batch_item_failures: bool
    max_concurrency: int | None = None
    starting_position: str | None = None
    starting_timestamp: float | None = None  # epoch seconds
    parallelization: int | None = None
    retries: int | None = None
    max_record_age: int | None = None
    bisect_on_error: bool | None = None
    tumbling_window: int | None = None
    on_failure: str | None = None


#: Fields UpdateEventSourceMapping cannot change: a change of one is a replace.
FIXED = ("starting_position", "starting_timestamp")


def canonical_pattern(pattern: str) -> str:
    try:
        return json.dumps(json.loads(pattern), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return pattern


def _patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(canonical_pattern(p) for p in patterns))


def wanted_settings(trigger: EsmTrigger) -> Settings:
    base = Settings(trigger.batch_size or DEFAULT_BATCH_SIZE[trigger.kind], trigger.batching_window or 0,
                    trigger.enabled, _patterns(trigger.filters), trigger.report_batch_item_failures)
    if isinstance(trigger, SqsTrigger):
        return replace(base, max_concurrency=trigger.max_concurrency)
    assert isinstance(trigger, StreamTrigger)
    stamp = trigger.starting_timestamp.timestamp() if trigger.starting_timestamp else None
    return replace(base, starting_position=trigger.starting_position, starting_timestamp=stamp,
                   parallelization=trigger.parallelization or 1,
                   retries=-1 if trigger.retries is None else trigger.retries,
                   max_record_age=-1 if trigger.max_record_age is None else trigger.max_record_age,
                   bisect_on_error=trigger.bisect_on_error, tumbling_window=trigger.tumbling_window or 0,
                   on_failure=trigger.on_failure)


def live_settings(kind: str, item: Mapping[str, Any]) -> Settings:
    """A ListEventSourceMappings entry, normalised (moto omits what is at its default; AWS spells it out)."""
    def value(name: str, default: Any) -> Any:
        found = item.get(name)
        return default if found is None else found

    base = Settings(int(value("BatchSize", DEFAULT_BATCH_SIZE[kind])), int(value("MaximumBatchingWindowInSeconds", 0)),
                    str(value("State", "Enabled")) not in ("Disabled", "Disabling"),
                    _patterns([f.get("Pattern", "") for f in (value("FilterCriteria", {}).get("Filters") or [])]),
                    "ReportBatchItemFailures" in value("FunctionResponseTypes", []))
    if kind == "sqs":
        return replace(base, max_concurrency=value("ScalingConfig", {}).get("MaximumConcurrency"))
    stamp = item.get("StartingPositionTimestamp")
    if isinstance(stamp, datetime):
        stamp = stamp.timestamp()
    failure = (value("DestinationConfig", {}).get("OnFailure") or {}).get("Destination") or None
    return replace(base, starting_position=item.get("StartingPosition"),
                   starting_timestamp=None if stamp is None else float(stamp),
                   parallelization=int(value("ParallelizationFactor", 1)),
                   retries=int(value("MaximumRetryAttempts", -1)),
                   max_record_age=int(value("MaximumRecordAgeInSeconds", -1)),
                   bisect_on_error=bool(value("BisectBatchOnFunctionError", False)),
                   tumbling_window=int(value("TumblingWindowInSeconds", 0)), on_failure=failure)


def differences(wanted: Settings, live: Settings) -> list[str]:
    """The names of the fields that differ. moto does not return StartingPositionTimestamp: an absent live
    timestamp is taken as the one wanted."""
    out = []
    for f in fields(Settings):
        before, after = getattr(live, f.name), getattr(wanted, f.name)
        if f.name == "starting_timestamp" and before is None:
            continue
        if before != after:
            out.append(f.name)
    return out


def _show(name: str, value: Any) -> str:
    if name == "filters":
        shown = "[" + ", ".join(value) + "]"
        return shown if len(shown) <= 80 else f"{len(value)} pattern(s)"
    if name == "starting_timestamp" and value is not None:
        return _utc(value).isoformat()
    return "unset" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _utc(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, tz=timezone.utc)


def change(name: str, before: Any, after: Any) -> str:
    return f"{name} {_show(name, before)} -> {_show(name, after)}"


_PARAMS: Mapping[str, Callable[[Any], dict[str, Any]]] = {
    "batch_size": lambda v: {"BatchSize": v},
    "batching_window": lambda v: {"MaximumBatchingWindowInSeconds": v},
    "enabled": lambda v: {"Enabled": v},
    "filters": lambda v: {"FilterCriteria": {"Filters": [{"Pattern": p} for p in v]} if v else {}},
    "report_batch_item_failures": lambda v: {"FunctionResponseTypes": ["ReportBatchItemFailures"] if v else []},
    "max_concurrency": lambda v: {"ScalingConfig": {"MaximumConcurrency": v} if v else {}},
    "starting_position": lambda v: {"StartingPosition": v},
    "starting_timestamp": lambda v: {} if v is None else {"StartingPositionTimestamp": _utc(v)},
    "parallelization": lambda v: {"ParallelizationFactor": v},
    "retries": lambda v: {"MaximumRetryAttempts": v},
    "max_record_age": lambda v: {"MaximumRecordAgeInSeconds": v},
    "bisect_on_error": lambda v: {"BisectBatchOnFunctionError": v},
    "tumbling_window": lambda v: {"TumblingWindowInSeconds": v},
    "on_failure": lambda v: {"DestinationConfig": {"OnFailure": {"Destination": v} if v else {}}},
}
_EMPTY_ON_CREATE: tuple[Any, ...] = ({}, [], {"OnFailure": {}})
_BASE_FIELDS = ("batch_size", "batching_window", "enabled", "filters", "report_batch_item_failures")
FIELDS = {"sqs": (*_BASE_FIELDS, "max_concurrency"),
          "stream": (*_BASE_FIELDS, "starting_position", "starting_timestamp", "parallelization", "retries",
                     "max_record_age", "bisect_on_error", "tumbling_window", "on_failure")}


def api_params(kind: str, settings: Settings, names: Sequence[str] | None = None) -> dict[str, Any]:
    """CreateEventSourceMapping parameters (``names`` None: every field of the kind, empty ones left out), or
    UpdateEventSourceMapping ones (only the fields ``names``, empty values sent: they clear the setting)."""
    create = names is None
    out: dict[str, Any] = {}
    for name in FIELDS["sqs" if kind == "sqs" else "stream"]:
        if not create and (name in FIXED or name not in (names or ())):
            continue
        for param, value in _PARAMS[name](getattr(settings, name)).items():
            if not (create and value in _EMPTY_ON_CREATE):
                out[param] = value
    return out


# --- what AWS has ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveMapping:
    uuid: str
    kind: str
    source: str
    function: str  # the function's name
    qualifier: str | None  # from FunctionArn: alias, version (moto stores an alias as its version) or None
    settings: Settings


@dataclass(frozen=True)
class Queue:
    visibility_timeout: int


@dataclass(frozen=True)
class Live:
    mappings: tuple[LiveMapping, ...] = ()
    queues: Mapping[str, Queue] = field(default_factory=dict)


def parse_function_arn(arn: str) -> tuple[str, str | None]:
    """``arn:aws:lambda:R:A:function:NAME[:QUALIFIER]`` -> (NAME, QUALIFIER)."""
    parts = arn.split(":")
    return (parts[6], parts[7] if len(parts) > 7 else None) if len(parts) > 6 else (arn, None)


def live_mapping(item: Mapping[str, Any]) -> LiveMapping | None:
    """One ListEventSourceMappings entry (None: not a kind lbuild wires, or on its way out)."""
    source = str(item.get("EventSourceArn") or "")
    kind = kind_of(source)
    if kind is None or item.get("State") == "Deleting":
        return None
    name, qualifier = parse_function_arn(str(item.get("FunctionArn", "")))
    return LiveMapping(str(item["UUID"]), kind, source, name, qualifier, live_settings(kind, item))


def _wanted(target: Target) -> tuple[EsmTrigger, ...]:
    return tuple(t for t in target.wiring.of_kind(*KINDS) if isinstance(t, EsmTrigger))


def _had(target: Target) -> list[tuple[str, str]]:
    return [(kind, source) for kind in KINDS for source in target.had(kind)]


def queue_url(arn: str) -> str:
    """The URL of the queue ``arn`` (the form GetQueueUrl answers), without a call."""
    _, partition, _, region, account, name = arn.split(":", 5)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


def read(aws: Aws, region: str, targets: Sequence[Target]) -> Live:
    """One unfiltered ListEventSourceMappings sweep (alias-bound mappings are invisible to a FunctionName filter),
    kept to the targets' functions; one GetQueueAttributes per queue lbuild.toml names."""
    mine = [t for t in targets if _wanted(t) or _had(t)]
    if not mine:
        return Live()
    names = {t.name for t in mine}
    items = aws.pages("lambda", "list_event_source_mappings", "EventSourceMappings", "event source mappings", region)
    mappings = tuple(m for m in map(live_mapping, items) if m is not None and m.function in names)
    where: dict[str, str] = {}
    for t in mine:
        for trigger in _wanted(t):
            if trigger.kind == "sqs" and source_region(trigger.source) == region:
                where.setdefault(trigger.source, trigger.where)
    queues = {arn: _read_queue(aws, arn, where[arn]) for arn in sorted(where)}
    return Live(mappings, queues)


def _read_queue(aws: Aws, arn: str, where: str) -> Queue:
    try:
        got = aws.call("sqs", "get_queue_attributes", arn, source_region(arn), QueueUrl=queue_url(arn),
                       AttributeNames=["VisibilityTimeout"])
    except AwsError as exc:
        if exc.code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise ConfigError(f"queue {arn} does not exist", where=where,
                              hint="create the queue first, or fix the sqs ARN (aws sqs get-queue-attributes "
                                   "--attribute-names QueueArn shows it)") from None
        raise
    return Queue(int(got.get("Attributes", {}).get("VisibilityTimeout", 30)))


# --- the steps --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateMapping(WiringStep):
    label: str
    kind: str
    source: str
    function_arn: str
    settings: Settings

    def describe(self) -> str:
        return f"{self.label}: create mapping"


@dataclass(frozen=True)
class UpdateMapping(WiringStep):
    label: str
    uuid: str
    kind: str
    settings: Settings
    names: tuple[str, ...]  # the settings fields to send
    changes: tuple[str, ...]  # as plan shows them
    function_arn: str | None = None  # a new target (alias added or removed)

    def describe(self) -> str:
        return f"{self.label}: {', '.join(self.changes)}"


@dataclass(frozen=True)
class ReplaceMapping(WiringStep):
    label: str
    uuid: str
    kind: str
    source: str
    function_arn: str
    settings: Settings

    def describe(self) -> str:
        return f"{self.label}: replace"


@dataclass(frozen=True)
class DeleteMapping(WiringStep):
    PHASE: ClassVar[int] = UNWIRE
    label: str
    uuid: str

    def describe(self) -> str:
        return f"{self.label}: delete mapping {self.uuid[:8]}"


# --- planning (pure) --------------------------------------------------------------------------------------


def _same_target(live: str | None, wanted: str | None) -> bool:
    """Whether a mapping's FunctionArn qualifier is the target's; a version number stands for the alias (moto
    stores an alias-qualified FunctionName as the alias's version; lbuild itself never maps a version)."""
    if live in (None, "$LATEST"):
        return wanted is None
    return wanted is not None and (live == wanted or live.isdigit())


def plan(targets: Sequence[Target], live: Live | None) -> list[Step]:
    live = live or Live()
    steps: list[Step] = []
    for target in targets:
        steps += _plan_target(target, live)
    return steps


def _plan_target(target: Target, live: Live) -> list[Step]:
    steps: list[Step] = []
    on_function = [m for m in live.mappings if m.function == target.name]
    wanted = _wanted(target)
    sources: dict[str, EsmTrigger] = {}
    for trigger in wanted:
        first = sources.setdefault(trigger.source, trigger)
        if first is not trigger:
            raise ConfigError(f"function {target.key} has two triggers on {trigger.source} ({first.where})",
                              where=trigger.where, hint="AWS allows one event source mapping per function and "
                                                        "source: merge the two tables")
        if source_region(trigger.source) != target.region:
            raise ConfigError(f"{trigger.label()} is in {source_region(trigger.source)}, function {target.name} in "
                              f"{target.region}", where=trigger.where,
                              hint="an event source mapping reads a queue or stream of the function's own region")
        if isinstance(trigger, SqsTrigger):
            steps += _check_queue(target, trigger, live.queues.get(trigger.source))
        elif isinstance(trigger, StreamTrigger) and trigger.retries in (None, -1) and trigger.on_failure is None \
                and trigger.max_record_age in (None, -1):
            steps.append(Unchanged(f"warning: {trigger.label()} retries a failing batch until its records expire "
                                   "and has no on_failure: one bad record holds back its shard that long (set "
                                   "retries, max_record_age or on_failure)", f"{trigger.label()} retries"))
        same = [m for m in on_function if m.kind == trigger.kind and m.source == trigger.source]
        match = next((m for m in same if _same_target(m.qualifier, target.qualifier)), same[0] if same else None)
        steps.append(_plan_mapping(target, trigger, match))
    keep = {(t.kind, t.source) for t in wanted}
    for kind, source in sorted(set(_had(target)) - keep):
        for m in on_function:
            if m.kind == kind and m.source == source:
                steps.append(DeleteMapping("no longer in lbuild.toml", target.name, label(kind, source), m.uuid))
    return steps


def _plan_mapping(target: Target, trigger: EsmTrigger, found: LiveMapping | None) -> Step:
    wanted = wanted_settings(trigger)
    name = trigger.label()
    if found is None:
        return CreateMapping(f"new in lbuild.toml (on {_target_name(target.qualifier)})", target.name, name,
                             trigger.kind, trigger.source, target.arn, wanted)
    adopted = "" if trigger.token in target.recorded else " (a mapping lbuild had not recorded: adopted)"
    names = differences(wanted, found.settings)
    fixed = [n for n in names if n in FIXED]
    if fixed:
        what = " and ".join(fixed)
        detail = ", ".join(change(n, getattr(found.settings, n), getattr(wanted, n)) for n in fixed)
        if len(fixed) == 1:
            detail = detail.removeprefix(fixed[0] + " ")
        consequence = "; the new mapping reads from the new position" if trigger.kind != "sqs" else ""
        return ReplaceMapping(f"{what} cannot be updated ({detail}){consequence}{adopted}", target.name, name,
                              found.uuid, trigger.kind, trigger.source, target.arn, wanted)
    changes = [change(n, getattr(found.settings, n), getattr(wanted, n)) for n in names]
    retarget = not _same_target(found.qualifier, target.qualifier)
    if retarget:
        changes.append(f"target {_target_name(found.qualifier)} -> {_target_name(target.qualifier)}")
    if not changes:
        return Unchanged(f"mapping {found.uuid[:8]}{adopted}", name)
    return UpdateMapping(f"updated in place (mapping {found.uuid[:8]}){adopted}", target.name, name, found.uuid,
                         trigger.kind, wanted, tuple(names), tuple(changes), target.arn if retarget else None)


def _target_name(qualifier: str | None) -> str:
    return f"alias {qualifier}" if qualifier else "the unqualified function"


def _check_queue(target: Target, trigger: SqsTrigger, queue: Queue | None) -> list[Step]:
    """R4 (visibility timeout >= function timeout, exit 5) and R5 (>= 6 x timeout + window, a warning)."""
    if queue is None:
        return []
    visibility, timeout = queue.visibility_timeout, target.timeout
    name = trigger.source.rsplit(":", 1)[-1]
    advised = VISIBILITY_FACTOR * timeout + (trigger.batching_window or 0)
    if visibility < timeout:
        raise LimitError(f"queue {name} visibility timeout {visibility} s is less than the timeout {timeout} s of "
                         f"function {target.key}", where=trigger.where,
                         hint=f"raise the queue's VisibilityTimeout to at least {advised} s ({VISIBILITY_FACTOR} x "
                              "the function timeout, plus the batching window), or lower the function's timeout")
    if visibility < advised:
        return [Unchanged(f"warning: queue {name} visibility timeout {visibility} s is under {VISIBILITY_FACTOR} x "
                          f"the function timeout {timeout} s + batching window ({advised} s): throttled batches may "
                          "become visible again before Lambda retries them", f"{trigger.label()} queue")]
    return []


def tokens(target: Target) -> set[str]:
    return {t.token for t in _wanted(target)}


def grants(target: Target) -> list[Grant]:
    """None: Lambda polls with the function's execution role; no resource-policy statement is needed."""
    return []


# --- applying ----------------------------------------------------------------------------------------------

DELETE_WAIT_SECONDS = 120.0
_POLL_SECONDS = 2.0


def _create(aws: Aws, region: str, kind: str, source: str, function_arn: str, settings: Settings, what: str) -> str:
    got = aws.call("lambda", "create_event_source_mapping", what, region, EventSourceArn=source,
                   FunctionName=function_arn, **api_params(kind, settings))
    return f"mapping {got['UUID']}"


def apply_create(aws: Aws, region: str, step: CreateMapping) -> str:
    return _create(aws, region, step.kind, step.source, step.function_arn, step.settings, step.label)


def apply_update(aws: Aws, region: str, step: UpdateMapping) -> str:
    extra: dict[str, Any] = {"FunctionName": step.function_arn} if step.function_arn else {}
    aws.call("lambda", "update_event_source_mapping", step.label, region, UUID=step.uuid,
             **api_params(step.kind, step.settings, step.names), **extra)
    return f"mapping {step.uuid}"


def _delete(aws: Aws, region: str, uuid: str, what: str) -> bool:
    """Delete a mapping; False when it was already gone."""
    try:
        aws.call("lambda", "delete_event_source_mapping", what, region, UUID=uuid)
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return False
        raise
    return True


def _wait_gone(aws: Aws, region: str, uuid: str, what: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """AWS deletes a mapping asynchronously (State Deleting); a new one on the same source conflicts until then."""
    deadline = time.monotonic() + DELETE_WAIT_SECONDS
    while True:
        try:
            aws.call("lambda", "get_event_source_mapping", what, region, UUID=uuid)
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return
            raise
        if time.monotonic() > deadline:
            raise AwsError(f"mapping {uuid} was still being deleted after {DELETE_WAIT_SECONDS:.0f} s", where=what,
                           hint="run `lbuild deploy` again when it is gone", code="Timeout",
                           operation="GetEventSourceMapping")
        sleep(_POLL_SECONDS)


def apply_replace(aws: Aws, region: str, step: ReplaceMapping) -> str:
    _delete(aws, region, step.uuid, step.label)
    _wait_gone(aws, region, step.uuid, step.label)
    return f"mapping {step.uuid} deleted, " + _create(aws, region, step.kind, step.source, step.function_arn,
                                                        step.settings, step.label) + " created"


def apply_delete(aws: Aws, region: str, step: DeleteMapping) -> str:
    return f"mapping {step.uuid}" + ("" if _delete(aws, region, step.uuid, step.label) else " (already gone)")


APPLY: Mapping[type[WiringStep], Apply] = {CreateMapping: apply_create, UpdateMapping: apply_update,
                                           ReplaceMapping: apply_replace, DeleteMapping: apply_delete}
