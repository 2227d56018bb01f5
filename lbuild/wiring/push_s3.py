"""S3 triggers: lbuild's entries in a bucket's one notification document, merged by Id, the rest kept verbatim.

PutBucketNotificationConfiguration replaces the whole document and has no conditional write, so the step
re-reads the document just before it writes, merges lbuild's entries into whatever is there, writes it,
reads it again and fails (exit 6) naming what a concurrent writer took away.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild import rules
from lbuild.errors import AwsError, ConfigError
from lbuild.steps import Step, Unchanged
from lbuild.wiring.core import UNWIRE, Apply, Target, WiringStep
from lbuild.wiring.model import Grant, Trigger

if TYPE_CHECKING:
    from lbuild.config import _Reader
    from lbuild.publisher.aws import Aws

KIND = "s3"
TOKEN = "s3"
DEFAULT_EVENTS = ("s3:ObjectCreated:*",)
#: the keys of the document PutBucketNotificationConfiguration takes (a read also has ResponseMetadata)
DOCUMENT_KEYS = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations",
                 "EventBridgeConfiguration")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Trigger(Trigger):
    """``s3 = "bucket"``: S3 invokes the function for ``events`` on keys with ``prefix`` and ``suffix``."""

    KIND: ClassVar[str] = KIND
    events: tuple[str, ...] = DEFAULT_EVENTS
    prefix: str = ""
    suffix: str = ""

    def identity(self) -> tuple[Any, ...]:
        return (self.kind, self.id) if self.id else (self.kind, self.source, self.prefix, self.suffix)

    def label(self) -> str:
        keys = f" {self.prefix}*{self.suffix}" if self.prefix or self.suffix else ""
        return f"s3 {self.source}{keys}" if not self.id else f"s3 {self.id}"


@dataclass(frozen=True)
class Entry:
    """One LambdaFunctionConfiguration, normalised (events sorted, filter rule names lower case)."""

    id: str
    function_arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def to_aws(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Id": self.id, "LambdaFunctionArn": self.function_arn, "Events": list(self.events)}
        filters = [{"Name": name, "Value": value} for name, value in (("prefix", self.prefix),
                                                                      ("suffix", self.suffix)) if value]
        if filters:
            out["Filter"] = {"Key": {"FilterRules": filters}}
        return out


def entry_from_aws(raw: Mapping[str, Any]) -> Entry:
    """A LambdaFunctionConfiguration as S3 (or moto) returns it, normalised."""
    rules_ = {str(r.get("Name", "")).lower(): str(r.get("Value", ""))
              for r in raw.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
    return Entry(str(raw.get("Id", "")), str(raw.get("LambdaFunctionArn", "")),
                 tuple(sorted(set(raw.get("Events", [])))), rules_.get("prefix", ""), rules_.get("suffix", ""))


# --- parsing -------------------------------------------------------------------------------------------------


@cache
def s3_events() -> tuple[str, ...]:
    """The event types S3 knows (botocore's model)."""
    import botocore.session

    return tuple(botocore.session.get_session().get_service_model("s3").shape_for("Event").enum)


def parse(r: _Reader, entry: Mapping[str, Any], key: tuple[str, ...], kind: str,
          project: Mapping[str, Any]) -> S3Trigger:
    r.check_keys(entry, {"s3", "events", "prefix", "suffix", "id"}, key)
    bucket = r.get(entry, "s3", str, key, required=True)
    assert bucket is not None
    if bucket.startswith("arn:") or bucket.startswith("s3://"):
        raise r.error(f"s3 trigger takes a bucket name, not '{bucket}'", (*key, "s3"),
                      f'write s3 = "{bucket.rsplit(":", 1)[-1].removeprefix("//").split("/")[0]}"')
    if not _BUCKET.fullmatch(bucket):
        raise r.error(f"'{bucket}' is not a valid S3 bucket name", (*key, "s3"),
                      "bucket names are 3-63 lower-case letters, digits, '.' and '-'")
    events = r.strings(entry, "events", key)
    if events is not None:
        if not events:
            raise r.error("s3 trigger events is empty", (*key, "events"), 'e.g. events = ["s3:ObjectCreated:*"]')
        for event in events:
            if event not in s3_events():
                import difflib

                near = difflib.get_close_matches(event, s3_events(), n=1)
                raise r.error(f"'{event}' is not an S3 event type", (*key, "events"),
                              f"did you mean '{near[0]}'?" if near else "e.g. s3:ObjectCreated:* or s3:ObjectRemoved:*")
    prefix = r.get(entry, "prefix", str, key, default="") or ""
    suffix = r.get(entry, "suffix", str, key, default="") or ""
    for name, value in (("prefix", prefix), ("suffix", suffix)):
        if len(value.encode()) > rules.S3_FILTER_VALUE_BYTES:
            raise r.error(f"s3 trigger {name} is {len(value.encode())} bytes; S3 takes at most "
                          f"{rules.S3_FILTER_VALUE_BYTES}", (*key, name), f"shorten the {name}")
    return S3Trigger(bucket, r.where(*key), entry.get("id"), tuple(sorted(set(events or DEFAULT_EVENTS))),
                     prefix, suffix)


def check_overlaps(functions: Iterable[tuple[str, Sequence[Trigger]]]) -> None:
    """Refuse two lbuild S3 triggers on one bucket that S3 would call ambiguous (``functions``: each function's
    name and triggers)."""
    seen: list[tuple[str, S3Trigger]] = []
    for name, triggers in functions:
        for trigger in triggers:
            if not isinstance(trigger, S3Trigger):
                continue
            for other_name, other in seen:
                if other.source == trigger.source and overlaps(other.events, other.prefix, other.suffix,
                                                               trigger.events, trigger.prefix, trigger.suffix):
                    raise ConfigError(
                        f"s3 trigger of function {name} on bucket {trigger.source} overlaps function "
                        f"{other_name}'s at {other.where}: both match the same keys for the same event type",
                        trigger.where, "S3 refuses overlapping prefixes with overlapping suffixes for one event "
                                       "type; make the prefixes or suffixes disjoint, or the event types")
            seen.append((name, trigger))


def _events_overlap(a: str, b: str) -> bool:
    def covers(x: str, y: str) -> bool:
        return x == y or (x.endswith(":*") and y.startswith(x[:-1]))

    return covers(a, b) or covers(b, a)


def overlaps(events_a: Sequence[str], prefix_a: str, suffix_a: str, events_b: Sequence[str], prefix_b: str,
             suffix_b: str) -> bool:
    """Whether two notification rules could both match one event (S3's ambiguity rule)."""
    return (any(_events_overlap(a, b) for a in events_a for b in events_b)
            and (prefix_a.startswith(prefix_b) or prefix_b.startswith(prefix_a))
            and (suffix_a.endswith(suffix_b) or suffix_b.endswith(suffix_a)))


def _foreign_rules(document: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], str, str]]:
    out = []
    for section in DOCUMENT_KEYS[:3]:
        for raw in document.get(section, []):
            entry = entry_from_aws(raw)
            out.append((entry.id or f"(an unnamed entry of {section})", entry.events, entry.prefix, entry.suffix))
    return out


# --- identity and ownership -----------------------------------------------------------------------------------


def entry_id(target: Target, trigger: S3Trigger) -> str:
    return f"lbuild-{target.project}-{target.key}-{trigger.digest}"


def wanted_entry(target: Target, trigger: S3Trigger) -> Entry:
    return Entry(entry_id(target, trigger), target.arn, trigger.events, trigger.prefix, trigger.suffix)


def owned(target: Target, raw: Mapping[str, Any]) -> bool:
    """Whether a bucket's entry is one lbuild made for ``target``: its Id is lbuild's for this function and it
    invokes this function (any qualifier)."""
    ident = str(raw.get("Id", ""))
    arn = str(raw.get("LambdaFunctionArn", ""))
    return (re.fullmatch(rf"lbuild-{re.escape(target.project)}-{re.escape(target.key)}-[0-9a-f]{{8}}", ident)
            is not None and target.invokes(arn))


def _triggers(target: Target) -> list[S3Trigger]:
    return [t for t in target.wiring.triggers if isinstance(t, S3Trigger)]


def buckets(targets: Sequence[Target]) -> list[str]:
    """Every bucket a target wants or had an S3 trigger on."""
    return sorted({t.source for target in targets for t in _triggers(target)} |
                  {b for target in targets for b in target.had(TOKEN)})


# --- the document, pure ---------------------------------------------------------------------------------------


def document_of(response: Mapping[str, Any]) -> dict[str, Any]:
    """What GetBucketNotificationConfiguration returned, as PutBucketNotificationConfiguration takes it."""
    return {k: response[k] for k in DOCUMENT_KEYS if k in response}


def merge(document: Mapping[str, Any], wanted: Sequence[Entry], drop: Collection[str]) -> dict[str, Any]:
    """``document`` with lbuild's entries ``drop`` (Ids) taken out and ``wanted`` put in by Id; every other
    entry and section (queues, topics, other functions, EventBridgeConfiguration) exactly as it was."""
    out = document_of(document)
    ids = set(drop) | {e.id for e in wanted}
    lambdas = [raw for raw in document.get("LambdaFunctionConfigurations", []) if raw.get("Id") not in ids]
    lambdas += [e.to_aws() for e in sorted(wanted, key=lambda e: e.id)]
    if lambdas:
        out["LambdaFunctionConfigurations"] = lambdas
    else:
        out.pop("LambdaFunctionConfigurations", None)
    return out


def lost(document: Mapping[str, Any], wanted: Sequence[Entry], drop: Collection[str]) -> list[str]:
    """What a write of ``merge(..., wanted, drop)`` should have left that ``document`` (read after it) lacks."""
    live = {e.id: e for e in map(entry_from_aws, document.get("LambdaFunctionConfigurations", []))}
    wanted_ids = {e.id for e in wanted}
    missing = [f"{e.id} (missing)" if e.id not in live else f"{e.id} (changed)"
               for e in wanted if live.get(e.id) != e]
    back = [f"{i} (still there)" for i in sorted(set(drop) - wanted_ids) if i in live]
    return missing + back


# --- steps ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PutBucketNotifications(WiringStep):
    """Write lbuild's entries into one bucket's notification document (one step per bucket: it is shared)."""

    bucket: str = ""
    region: str = ""
    wanted: tuple[Entry, ...] = ()  # every lbuild entry the bucket should have, for the targets of this deploy
    drop: tuple[str, ...] = ()  # lbuild's Ids on the bucket when planned
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: int = 0  # entries that are not lbuild's for these functions

    def describe(self) -> str:
        parts = [f"{verb} notification {', '.join(ids)}" for verb, ids in
                 (("add", self.added), ("update", self.changed), ("remove", self.removed)) if ids]
        return f"s3 {self.bucket}: {'; '.join(parts)} ({self.kept} other notifications kept)"


@dataclass(frozen=True)
class UnwireBucketNotifications(PutBucketNotifications):
    """Only removals: run with the other unwiring, before permissions are revoked."""

    PHASE: ClassVar[int] = UNWIRE


def read_document(aws: Aws, bucket: str, region: str) -> dict[str, Any]:
    return document_of(aws.call("s3", "get_bucket_notification_configuration", f"s3://{bucket}", region,
                                Bucket=bucket))


def read(aws: Aws, region: str, targets: Sequence[Target]) -> dict[str, dict[str, Any]]:
    """One GetBucketNotificationConfiguration per bucket."""
    out = {}
    for bucket in buckets(targets):
        try:
            out[bucket] = read_document(aws, bucket, region)
        except AwsError as exc:
            if exc.code != "NoSuchBucket":
                raise
            users = [t for target in targets for t in _triggers(target) if t.source == bucket]
            if users:
                raise ConfigError(f"bucket {bucket} does not exist (or is not in {region})", users[0].where,
                                  "lbuild never creates buckets: create it first, or fix the name") from None
            out[bucket] = {}
    return out


def plan(targets: Sequence[Target], live: Mapping[str, Mapping[str, Any]]) -> list[Step]:
    steps: list[Step] = []
    for bucket in buckets(targets):
        document = live.get(bucket, {})
        involved = [t for t in targets if bucket in t.had(TOKEN) or any(x.source == bucket for x in _triggers(t))]
        wanted = {wanted_entry(t, x): x for t in involved for x in _triggers(t) if x.source == bucket}
        entries = document.get("LambdaFunctionConfigurations", [])
        ours = {str(raw.get("Id")): entry_from_aws(raw) for raw in entries if any(owned(t, raw) for t in involved)}
        foreign = merge(document, [], ours)
        for entry, trigger in wanted.items():
            for ident, events, prefix, suffix in _foreign_rules(foreign):
                if overlaps(entry.events, entry.prefix, entry.suffix, events, prefix, suffix):
                    raise ConfigError(f"s3 trigger on bucket {bucket} overlaps its notification {ident}, which "
                                      "lbuild does not manage", trigger.where,
                                      "S3 refuses overlapping prefixes with overlapping suffixes for one event "
                                      "type; narrow prefix/suffix/events, or remove that notification")
        by_id = {e.id: e for e in wanted}
        if set(by_id.values()) == set(ours.values()) and len(ours) == len(by_id):
            steps += [Unchanged("", f"{x.label()} on {e.function_arn.split(':')[6]}") for e, x in wanted.items()]
            continue
        added = tuple(sorted(i for i in by_id if i not in ours))
        changed = tuple(sorted(i for i in by_id if i in ours and ours[i] != by_id[i]))
        removed = tuple(sorted(i for i in ours if i not in by_id))
        why = "lbuild.toml " + ("wants" if added or changed else "no longer wants") + " these notifications"
        step = UnwireBucketNotifications if not added and not changed else PutBucketNotifications
        names = ",".join(sorted({t.name for t in involved}))
        kept = len(_foreign_rules(foreign))
        steps.append(step(why, names, bucket, involved[0].region, tuple(sorted(wanted, key=lambda e: e.id)),
                          tuple(sorted(ours)), added, changed, removed, kept))
    return steps


def apply_put(aws: Aws, region: str, step: PutBucketNotifications) -> str:
    """Read the document again, merge, write it whole, read it back: fail if a concurrent writer won."""
    current = read_document(aws, step.bucket, step.region or region)
    merged = merge(current, step.wanted, step.drop)
    aws.call("s3", "put_bucket_notification_configuration", f"s3://{step.bucket}", step.region or region,
             Bucket=step.bucket, NotificationConfiguration=merged)
    gone = lost(read_document(aws, step.bucket, step.region or region), step.wanted, step.drop)
    if gone:
        raise AwsError(f"another writer changed the notification configuration of bucket {step.bucket} while "
                       f"lbuild wrote it; lbuild's entries lost: {', '.join(gone)}", f"s3://{step.bucket}",
                       "deploy again once the other writer is done (lbuild merges into whatever the bucket has); "
                       "if a tool owns the whole document (CloudFormation, Terraform's aws_s3_bucket_notification), "
                       "declare this trigger there instead", code="ConcurrentModification",
                       operation="PutBucketNotificationConfiguration")
    others = len(merged.get("LambdaFunctionConfigurations", [])) - len(step.wanted)
    return f"{len(step.wanted)} lbuild entries, {others} other function entries kept"


APPLY: Mapping[type[WiringStep], Apply] = {PutBucketNotifications: apply_put, UnwireBucketNotifications: apply_put}


def tokens(target: Target) -> set[str]:
    return {f"{TOKEN}={t.source}" for t in _triggers(target)}


def grants(target: Target) -> list[Grant]:
    return [Grant("s3", "s3.amazonaws.com", f"arn:aws:s3:::{bucket}", target.account)
            for bucket in sorted({t.source for t in _triggers(target)})]



