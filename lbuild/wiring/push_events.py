"""EventBridge triggers: one rule per trigger, ``lbuild-<project>-<function>-<digest>``, with one target ``lbuild``.

lbuild's rules are found in one ``ListRules(NamePrefix="lbuild-<project>-")`` sweep per bus; a rule is a
function's when its ``lbuild`` target invokes that function.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild import rules
from lbuild.errors import AwsError, ConfigError, LimitError
from lbuild.steps import Step, Unchanged
from lbuild.wiring.core import UNWIRE, Apply, Target, WiringStep
from lbuild.wiring.model import Grant, Trigger, digest8

if TYPE_CHECKING:
    from lbuild.config import _Reader
    from lbuild.publisher.aws import Aws

KIND = "eventbridge"
TOKEN = "eventbridge"
TARGET_ID = "lbuild"
DEFAULT_BUS = "default"


def normalise(value: Any, ordered: bool = False) -> Any:
    """JSON with object keys sorted and every list in canonical order (patterns and filter policies treat a
    list as a set of alternatives), so AWS's and lbuild's spellings compare equal; a ``numeric`` operand
    list (``[">", 0, "<=", 5]``) keeps its order, which is its meaning."""
    if isinstance(value, dict):
        return {k: normalise(v, k == "numeric") for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [normalise(v) for v in value]
        return items if ordered else sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def canonical(value: Any) -> str:
    return json.dumps(normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_text(text: str | None) -> str | None:
    """A JSON document read from AWS in canonical form (None for none; the text itself if it is not JSON)."""
    if not text:
        return None
    try:
        return canonical(json.loads(text))
    except ValueError:
        return text


@dataclass(frozen=True)
class EventBridgeTrigger(Trigger):
    """``eventbridge = { source = [...], ... }``: a rule on ``bus`` whose event pattern is ``source`` (canonical
    JSON)."""

    KIND: ClassVar[str] = KIND
    bus: str = DEFAULT_BUS

    def identity(self) -> tuple[Any, ...]:
        return (self.kind, self.id) if self.id else (self.kind, self.bus, self.source)

    def label(self) -> str:
        return f"eventbridge {self.id or self.digest}" + (f" on bus {self.bus}" if self.bus != DEFAULT_BUS else "")


def parse(r: _Reader, entry: Mapping[str, Any], key: tuple[str, ...], kind: str,
          project: Mapping[str, Any]) -> EventBridgeTrigger:
    r.check_keys(entry, {"eventbridge", "bus", "id"}, key)
    raw = entry["eventbridge"]
    where = (*key, "eventbridge")
    example = 'eventbridge = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance State-change Notification"] }'
    if isinstance(raw, str):
        try:
            pattern = json.loads(raw)
        except ValueError as exc:
            raise r.error(f"eventbridge pattern is not JSON: {exc}", where,
                          f"write the pattern as a table: {example}") from None
    elif isinstance(raw, dict):
        pattern = raw
    else:
        raise r.error("eventbridge must be an event pattern (a table, or a JSON string)", where, example)
    if not isinstance(pattern, dict) or not pattern:
        raise r.error("eventbridge pattern must be a non-empty object", where, example)
    text = canonical(pattern)
    if len(text) > rules.EVENT_PATTERN_CHARS:
        raise LimitError(f"eventbridge pattern is {len(text)} characters; EventBridge takes at most "
                         f"{rules.EVENT_PATTERN_CHARS}", r.where(*where), "match on fewer values, or split it into "
                                                                          "two triggers")
    bus = r.get(entry, "bus", str, key, default=DEFAULT_BUS) or DEFAULT_BUS
    if not rules.EVENT_BUS_NAME.fullmatch(bus):
        raise r.error(f"'{bus}' is not an event bus name", (*key, "bus"),
                      'use the bus name (letters, digits, ".", "-", "_", "/"), e.g. bus = "orders"')
    return EventBridgeTrigger(text, r.where(*key), entry.get("id"), bus)


# --- names ------------------------------------------------------------------------------------------------------


def sweep_prefix(project: str) -> str:
    return f"lbuild-{project}-"[: rules.RULE_NAME_CHARS - 9]


def rule_name(target: Target, trigger: EventBridgeTrigger) -> str:
    """``lbuild-<project>-<function>-<digest>``; a long one is cut, with a digest over the whole."""
    base = f"lbuild-{target.project}-{target.key}"
    if len(base) + 9 <= rules.RULE_NAME_CHARS:
        return f"{base}-{trigger.digest}"
    return f"{base[: rules.RULE_NAME_CHARS - 9]}-{digest8(target.key, *trigger.identity())}"


def rule_arn(target: Target, bus: str, name: str) -> str:
    path = name if bus == DEFAULT_BUS else f"{bus}/{name}"
    return f"arn:aws:events:{target.region}:{target.account}:rule/{path}"


def _triggers(target: Target) -> list[EventBridgeTrigger]:
    return [t for t in target.wiring.triggers if isinstance(t, EventBridgeTrigger)]


def buses(targets: Sequence[Target]) -> list[str]:
    return sorted({t.bus for target in targets for t in _triggers(target)} |
                  {b for target in targets for b in target.had(TOKEN)})


# --- read and plan -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A rule as read, normalised."""

    name: str
    bus: str
    pattern: str | None
    state: str
    targets: Mapping[str, str]  # target Id -> ARN


def read(aws: Aws, region: str, targets: Sequence[Target]) -> dict[str, list[Rule]]:
    """Per bus: every rule named like lbuild's for this project (one ListRules sweep), with its targets."""
    out: dict[str, list[Rule]] = {}
    prefixes = sorted({sweep_prefix(t.project) for t in targets})
    for bus in buses(targets):
        found: list[Rule] = []
        for prefix in prefixes:
            try:
                listed = aws.pages("events", "list_rules", "Rules", f"event bus {bus}", region, NamePrefix=prefix,
                                   EventBusName=bus)
            except AwsError as exc:
                users = [t for target in targets for t in _triggers(target) if t.bus == bus]
                if exc.code != "ResourceNotFoundException":
                    raise
                if users:
                    raise ConfigError(f"event bus {bus} does not exist in {region}", users[0].where,
                                      "create the bus first, or fix bus = ...") from None
                continue
            for raw in listed:
                name = str(raw["Name"])
                rule_targets = aws.pages("events", "list_targets_by_rule", "Targets", f"rule {name}", region,
                                         Rule=name, EventBusName=bus)
                found.append(Rule(name, bus, canonical_text(raw.get("EventPattern")), str(raw.get("State", "")),
                                  {str(t["Id"]): str(t["Arn"]) for t in rule_targets}))
        out[bus] = found
    return out


@dataclass(frozen=True)
class PutRule(WiringStep):
    """Create or update one rule (PutRule) and its ``lbuild`` target (PutTargets): both are upserts."""

    name: str = ""
    bus: str = DEFAULT_BUS
    pattern: str = ""
    arn: str = ""  # what the target invokes
    rule: bool = True  # PutRule needed
    target_: bool = True  # PutTargets needed
    label: str = ""
    create: bool = False

    def describe(self) -> str:
        what = "create rule" if self.create else "update rule"
        return f"{self.label}: {what} {self.name}" + (f" on bus {self.bus}" if self.bus != DEFAULT_BUS else "")


@dataclass(frozen=True)
class DeleteRule(WiringStep):
    """RemoveTargets, then DeleteRule."""

    PHASE: ClassVar[int] = UNWIRE
    name: str = ""
    bus: str = DEFAULT_BUS
    target_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"eventbridge: delete rule {self.name}" + (f" on bus {self.bus}" if self.bus != DEFAULT_BUS else "")


def plan(targets: Sequence[Target], live: Mapping[str, Sequence[Rule]]) -> list[Step]:
    steps: list[Step] = []
    for target in targets:
        wanted = {(t.bus, rule_name(target, t)): t for t in _triggers(target)}
        for (bus, name), trigger in wanted.items():
            rule = next((r for r in live.get(bus, ()) if r.name == name), None)
            if rule is None:
                steps.append(PutRule("new in lbuild.toml", target.name, name, bus, trigger.source, target.arn,
                                     label=trigger.label(), create=True))
                continue
            pattern = rule.pattern != trigger.source or rule.state != "ENABLED"
            invokes = rule.targets.get(TARGET_ID) != target.arn
            if not pattern and not invokes:
                steps.append(Unchanged("", f"{trigger.label()} on {target.key}"))
                continue
            why = ", ".join(filter(None, ["event pattern changed" if rule.pattern != trigger.source else "",
                                          f"state {rule.state} -> ENABLED" if rule.state != "ENABLED" else "",
                                          "target changed" if invokes else ""]))
            steps.append(PutRule(why, target.name, name, bus, trigger.source, target.arn, pattern, invokes,
                                 trigger.label()))
        for bus in buses([target]):
            for rule in live.get(bus, ()):
                if (bus, rule.name) in wanted or not target.invokes(rule.targets.get(TARGET_ID, "")):
                    continue
                steps.append(DeleteRule("no longer in lbuild.toml", target.name, rule.name, bus,
                                        tuple(sorted(rule.targets))))
    return steps


def apply_put(aws: Aws, region: str, step: PutRule) -> str:
    if step.rule:
        aws.call("events", "put_rule", f"rule {step.name}", region, Name=step.name, EventBusName=step.bus,
                 EventPattern=step.pattern, State="ENABLED", Description=f"lbuild: invokes {step.target}")
    if step.target_:
        out = aws.call("events", "put_targets", f"rule {step.name}", region, Rule=step.name, EventBusName=step.bus,
                       Targets=[{"Id": TARGET_ID, "Arn": step.arn}])
        if out.get("FailedEntryCount"):
            failed = out.get("FailedEntries", [{}])[0]
            raise AwsError(f"EventBridge did not add the target of rule {step.name}: {failed.get('ErrorMessage')}",
                           f"rule {step.name}", code=str(failed.get("ErrorCode")), operation="PutTargets")
    return ""


def apply_delete(aws: Aws, region: str, step: DeleteRule) -> str:
    try:
        if step.target_ids:
            aws.call("events", "remove_targets", f"rule {step.name}", region, Rule=step.name, EventBusName=step.bus,
                     Ids=list(step.target_ids))
        aws.call("events", "delete_rule", f"rule {step.name}", region, Name=step.name, EventBusName=step.bus)
    except AwsError as exc:
        if exc.code != "ResourceNotFoundException":
            raise
        return "already gone"
    return ""


APPLY: Mapping[type[WiringStep], Apply] = {PutRule: apply_put, DeleteRule: apply_delete}


def tokens(target: Target) -> set[str]:
    return {f"{TOKEN}={t.bus}" for t in _triggers(target)}


def grants(target: Target) -> list[Grant]:
    return [Grant("eventbridge", "events.amazonaws.com", rule_arn(target, t.bus, rule_name(target, t)))
            for t in _triggers(target)]
