"""Wiring family `schedule`: ``schedule = "rate(...)" | "cron(...)" | "at(...)"`` triggers through EventBridge
Scheduler.

Every schedule lives in the group ``lbuild-<project>`` (created when missing) as ``<function key>-<digest>``;
the group scopes ownership, so a schedule of a deployed function that lbuild.toml no longer names is deleted.
Scheduler invokes the function (its alias) with ``[project] scheduler_role``, so no resource policy is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild import rules
from lbuild.errors import AwsError, ConfigError, LimitError
from lbuild.steps import Step, Unchanged
from lbuild.wiring import keys
from lbuild.wiring.core import SETTINGS, UNWIRE, WIRE, Apply, Target, WiringStep, delete
from lbuild.wiring.model import Grant, Trigger

if TYPE_CHECKING:
    from lbuild.config import _Reader
    from lbuild.publisher.aws import Aws

TOKENS: tuple[str, ...] = ("schedule",)
#: [project] keys only this family reads
PROJECT_ONLY = keys.SCHEDULE_PROJECT_ONLY

TRUST_TEMPLATE = "templates/scheduler-trust-policy.json"
_KEYS = {"schedule", "id", "timezone", "input", "enabled", "flexible_window", "retries", "max_age"}
_NAME_MAX = 64  # Scheduler's limit on schedule and group names
DEFAULT_RETRIES = 185  # Scheduler's RetryPolicy when none is given
DEFAULT_MAX_AGE = 86400
_READERS = 4


@dataclass(frozen=True)
class ScheduleTrigger(Trigger):
    """``schedule = EXPRESSION``: ``source`` is the expression."""

    KIND: ClassVar[str] = "schedule"
    role: str = ""  # [project] scheduler_role
    timezone: str | None = None
    input: str | None = None  # the event, canonical JSON
    enabled: bool = True
    flexible_window: int | None = None  # minutes; None: off
    retries: int | None = None
    max_age: int | None = None


# --- parsing -----------------------------------------------------------------------------------------------

_RATE = re.compile(r"rate\((\d+) (\w+)\)")
_UNITS = ("minute", "hour", "day")
_CRON_FIELD = re.compile(r"[0-9A-Za-z,*/?#-]+")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_FORMS = "rate(5 minutes), rate(1 hour), cron(0 3 * * ? *) or at(2027-01-01T00:00:00)"


def expression_problem(expression: str) -> str | None:
    """What is wrong with a Scheduler expression, or None when its syntax is valid."""
    if expression.startswith("rate("):
        match = _RATE.fullmatch(expression)
        if not match:
            return "a rate is rate(N UNIT) with a whole number N and a unit of minutes, hours or days"
        n, unit = int(match[1]), match[2]
        if unit.rstrip("s") not in _UNITS:
            return f"'{unit}' is not a unit of a rate: use minutes, hours or days"
        if n < 1:
            return "a rate must be at least 1"
        singular = unit in _UNITS
        if n == 1 and not singular:
            return f"a rate of 1 takes the singular: rate(1 {unit.rstrip('s')})"
        if n > 1 and singular:
            return f"a rate of {n} takes the plural: rate({n} {unit}s)"
        return None
    if expression.startswith("cron("):
        if not expression.endswith(")"):
            return "a cron expression ends with ')'"
        parts = expression[5:-1].split()
        if len(parts) != 6:
            return (f"a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), "
                    f"not {len(parts)}")
        bad = next((p for p in parts if not _CRON_FIELD.fullmatch(p)), None)
        if bad is not None:
            return f"cron field '{bad}' has characters cron does not allow"
        if "?" in (parts[0], parts[1], parts[3], parts[5]):
            return "'?' may stand only for day-of-month or day-of-week"
        if (parts[2] == "?") == (parts[4] == "?"):
            return "exactly one of day-of-month (3rd field) and day-of-week (5th field) must be '?'"
        return None
    if expression.startswith("at("):
        match = _AT.fullmatch(expression)
        if not match:
            return "a one-time schedule is at(yyyy-mm-ddThh:mm:ss)"
        try:
            datetime.fromisoformat(match[1])
        except ValueError:
            return f"'{match[1]}' is not a date and time"
        return None
    return "a schedule starts with rate(, cron( or at("


def _timezone_known(name: str) -> bool:
    import zoneinfo

    known = zoneinfo.available_timezones()
    return not known or name in known  # without any time zone data on this machine, AWS is the judge


def parse_schedule(r: _Reader, table: Mapping[str, Any], key: tuple[str, ...], kind: str,
                   project: Mapping[str, Any]) -> ScheduleTrigger:
    """One ``schedule = ...`` trigger table, validated (exit 2, or 5 for a number Scheduler refuses)."""
    r.check_keys(table, _KEYS, key)
    expression = r.get(table, kind, str, key)
    assert expression is not None
    problem = expression_problem(expression)
    if problem:
        raise r.error(f"schedule '{expression}' is not a valid expression: {problem}", (*key, kind),
                      f"write one of {_FORMS}")
    timezone = r.get(table, "timezone", str, key)
    if timezone is not None and not _timezone_known(timezone):
        raise r.error(f"'{timezone}' is not a time zone", (*key, "timezone"),
                      'use an IANA name such as "Europe/Paris" or "UTC"')
    raw_input = r.get(table, "input", dict, key)
    enabled = r.get(table, "enabled", bool, key, default=True)
    window = _bounded(r, table, "flexible_window", key, 1, 1440, "minutes")
    retries = _bounded(r, table, "retries", key, 0, 185, "retry attempts")
    max_age = _bounded(r, table, "max_age", key, 60, 86400, "seconds")
    function = key[1]
    if len(function) + 9 > _NAME_MAX:
        raise r.error(f"function name '{function}' is too long to name its schedules (at most "
                      f"{_NAME_MAX - 9} characters)", key[:2], "give the function a shorter name")
    role = r.get(project, "scheduler_role", str, ("project",))
    if role is None:
        raise r.error("a schedule trigger needs [project] scheduler_role (the role EventBridge Scheduler "
                      "invokes the function with)", (*key, kind),
                      f"create a role that trusts scheduler.amazonaws.com ({TRUST_TEMPLATE}) and may "
                      "lambda:InvokeFunction, and set scheduler_role = \"arn:aws:iam::ACCOUNT:role/NAME\"")
    if not rules.ROLE_ARN.match(role):
        raise r.error(f"scheduler_role '{role}' is not an IAM role ARN", ("project", "scheduler_role"),
                      'write it as "arn:aws:iam::123456789012:role/NAME"')
    text = None if raw_input is None else json.dumps(raw_input, sort_keys=True, separators=(",", ":"), default=str)
    return ScheduleTrigger(expression, r.where(*key), table.get("id"), role, timezone, text, bool(enabled), window,
                           retries, max_age)


def _bounded(r: _Reader, table: Mapping[str, Any], name: str, key: tuple[str, ...], low: int, high: int,
             unit: str) -> int | None:
    value = r.get(table, name, int, key)
    if value is not None and not low <= value <= high:
        raise LimitError(f"schedule {name} {value} is outside {low}-{high} {unit}", where=r.where(*key, name),
                         hint=f"set {name} between {low} and {high}, or leave it out")
    return value


#: kind key -> parser of one [[functions.NAME.triggers]] table of that kind
PARSERS: Mapping[str, Callable[..., Any]] = {"schedule": parse_schedule}


# --- names, wanted and live, normalised ----------------------------------------------------------------------


def group_name(target: Target) -> str:
    return f"lbuild-{target.project}"


def schedule_name(target: Target, trigger: Trigger) -> str:
    return f"{target.key}-{trigger.digest}"


_NAMED = re.compile(r"(.+)-[0-9a-f]{8}")


def _owner(name: str) -> str | None:
    """The function key a schedule name ``<key>-<digest>`` belongs to (None: not a name lbuild gives)."""
    match = _NAMED.fullmatch(name)
    return match[1] if match else None


@dataclass(frozen=True)
class Spec:
    """One schedule as compared: both sides pass through ``wanted_spec`` / ``live_spec``."""

    expression: str
    timezone: str = "UTC"
    enabled: bool = True
    flexible_window: int | None = None
    input: str | None = None
    target: str = ""
    role: str = ""
    retries: int = DEFAULT_RETRIES
    max_age: int = DEFAULT_MAX_AGE

    def changes(self, live: Spec) -> list[str]:
        return [f"{f.name} {_show(f.name, getattr(live, f.name))} -> {_show(f.name, getattr(self, f.name))}"
                for f in fields(self) if getattr(live, f.name) != getattr(self, f.name)]


def _show(name: str, value: Any) -> str:
    if value is None:
        return "off" if name == "flexible_window" else "none"
    return json.dumps(value) if isinstance(value, bool) else str(value)


def wanted_spec(target: Target, trigger: ScheduleTrigger) -> Spec:
    return Spec(trigger.source, trigger.timezone or "UTC", trigger.enabled, trigger.flexible_window, trigger.input,
                target.arn, trigger.role, DEFAULT_RETRIES if trigger.retries is None else trigger.retries,
                DEFAULT_MAX_AGE if trigger.max_age is None else trigger.max_age)


def _canonical(text: Any) -> str | None:
    if text is None or text == "":
        return None
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(text)


def live_spec(schedule: Mapping[str, Any]) -> Spec:
    """A GetSchedule answer in the compared form (AWS omits what moto fills in with defaults, and back)."""
    target = schedule.get("Target") or {}
    retry = target.get("RetryPolicy") or {}
    window = schedule.get("FlexibleTimeWindow") or {}
    return Spec(str(schedule.get("ScheduleExpression", "")), schedule.get("ScheduleExpressionTimezone") or "UTC",
                schedule.get("State", "ENABLED") != "DISABLED",
                window.get("MaximumWindowInMinutes") if window.get("Mode") == "FLEXIBLE" else None,
                _canonical(target.get("Input")), str(target.get("Arn", "")), str(target.get("RoleArn", "")),
                int(retry.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
                int(retry.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE)))


def _schedules(target: Target) -> list[ScheduleTrigger]:
    return [t for t in target.wiring.triggers if isinstance(t, ScheduleTrigger)]


def _concerned(target: Target) -> bool:
    return bool(_schedules(target)) or "schedule" in target.recorded


def tokens(target: Target) -> set[str]:
    return {"schedule"} if _schedules(target) else set()


def grants(target: Target) -> list[Grant]:
    return []  # Scheduler invokes with its role, not through the function's policy


# --- read --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """What a schedule group holds of the deployed functions: schedule name -> GetSchedule answer."""

    exists: bool
    schedules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Live:
    groups: Mapping[str, Group] = field(default_factory=dict)
    #: scheduler role -> the service principals it trusts (None: no such role); roles not read are absent
    trust: Mapping[str, frozenset[str] | None] = field(default_factory=dict)


def read(aws: Aws, region: str, targets: Sequence[Target]) -> Live:
    """The scheduler roles' trust, then per group: one GetScheduleGroup, one ListSchedules sweep (pages), and
    GetSchedule for each schedule of a function of this deploy."""
    from lbuild.publisher import aws as aws_mod

    roles = sorted({t.role for target in targets for t in _schedules(target)})
    try:
        trust = {role: None if found is None else frozenset(found)
                 for role, found in aws_mod.role_trust(aws, roles).items()}
    except AwsError:
        trust = {}  # an identity that may not read roles: AWS judges the role when a schedule fires
    groups: dict[str, Group] = {}
    for group in sorted({group_name(t) for t in targets if _concerned(t)}):
        try:
            aws.call("scheduler", "get_schedule_group", group, region, Name=group)
        except AwsError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            groups[group] = Group(False)
            continue
        keys = {t.key for t in targets if group_name(t) == group}
        found = [s["Name"] for s in aws.pages("scheduler", "list_schedules", "Schedules", group, region,
                                               GroupName=group) if _owner(str(s.get("Name", ""))) in keys]
        with ThreadPoolExecutor(max_workers=_READERS) as pool:
            answers = pool.map(lambda name, g=group: aws.call("scheduler", "get_schedule", f"schedule {name}",
                                                              region, Name=name, GroupName=g), found)
            groups[group] = Group(True, dict(zip(found, answers, strict=True)))
    return Live(groups, trust)


SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"


def check_roles(targets: Sequence[Target], trust: Mapping[str, frozenset[str] | None]) -> None:
    """Each scheduler role exists and trusts scheduler.amazonaws.com (exit 2), as far as it could be read."""
    for role in sorted({t.role for target in targets for t in _schedules(target)}):
        if role not in trust:
            continue
        where = next(t.where for target in targets for t in _schedules(target) if t.role == role)
        principals = trust[role]
        if principals is None:
            raise ConfigError(f"scheduler_role {role} does not exist", where=where,
                              hint=f"create it with the trust policy of {TRUST_TEMPLATE} and allow it "
                                   "lambda:InvokeFunction on the functions, or fix [project] scheduler_role")
        if SCHEDULER_PRINCIPAL not in principals:
            raise ConfigError(f"scheduler_role {role} does not trust {SCHEDULER_PRINCIPAL}", where=where,
                              hint=f"add {SCHEDULER_PRINCIPAL} to the role's trust policy, as in {TRUST_TEMPLATE}")


# --- plan --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateScheduleGroup(WiringStep):
    PHASE: ClassVar[int] = SETTINGS  # before the schedules (one phase's steps run in parallel)
    group: str = ""

    def describe(self) -> str:
        return f"schedule group {self.group}: create"


@dataclass(frozen=True)
class PutSchedule(WiringStep):
    PHASE: ClassVar[int] = WIRE
    group: str = ""
    name: str = ""
    label: str = ""
    spec: Spec = field(default_factory=lambda: Spec(""))
    create: bool = True
    changes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.create:
            zone = f", {self.spec.timezone}" if self.spec.timezone != "UTC" else ""
            return f"{self.label} ({self.name}): create ({self.spec.expression}{zone})"
        return f"{self.label} ({self.name}): {', '.join(self.changes)}"


@dataclass(frozen=True)
class DeleteSchedule(WiringStep):
    PHASE: ClassVar[int] = UNWIRE
    group: str = ""
    name: str = ""
    expression: str = ""

    def describe(self) -> str:
        return f"schedule {self.name}: delete ({self.expression})"


def plan(targets: Sequence[Target], live: Live) -> list[Step]:
    """Create the group when missing, then each schedule that is missing or differs; delete the schedules of
    these functions that lbuild.toml no longer has. Refuses (exit 2) a scheduler role that cannot work."""
    check_roles(targets, live.trust)
    steps: list[Step] = []
    created: set[str] = set()
    for target in targets:
        if not _concerned(target):
            continue
        group = group_name(target)
        if len(group) > _NAME_MAX:
            raise ConfigError(f"schedule group name '{group}' is longer than {_NAME_MAX} characters",
                              where="[project].name", hint="give the project (or stage) a shorter name")
        state = live.groups.get(group, Group(False))
        mine = {name: s for name, s in state.schedules.items() if _owner(name) == target.key}
        wanted = {schedule_name(target, t): t for t in _schedules(target)}
        if wanted and not state.exists and group not in created:
            created.add(group)
            steps.append(CreateScheduleGroup("schedules of this project live in it", target.name, group))
        for name, trigger in wanted.items():
            spec = wanted_spec(target, trigger)
            if name not in mine:
                steps.append(PutSchedule("new in lbuild.toml", target.name, group, name, trigger.label(), spec))
                continue
            changes = spec.changes(live_spec(mine[name]))
            if changes:
                steps.append(PutSchedule("changed in lbuild.toml", target.name, group, name, trigger.label(), spec,
                                         False, tuple(changes)))
            else:
                steps.append(Unchanged(f"schedule {name} as in lbuild.toml", f"{trigger.label()} of {target.name}"))
        for name in sorted(set(mine) - set(wanted)):
            steps.append(DeleteSchedule("no longer in lbuild.toml", target.name, group, name,
                                        str(mine[name].get("ScheduleExpression", ""))))
    return steps


# --- apply -------------------------------------------------------------------------------------------------


def apply_group(aws: Aws, region: str, step: CreateScheduleGroup) -> str:
    try:
        aws.call("scheduler", "create_schedule_group", step.group, region, Name=step.group)
    except AwsError as exc:
        if exc.code != "ConflictException":
            raise
        return "already there"
    return ""


def _params(step: PutSchedule) -> dict[str, Any]:
    s = step.spec
    target: dict[str, Any] = {"Arn": s.target, "RoleArn": s.role,
                              "RetryPolicy": {"MaximumRetryAttempts": s.retries, "MaximumEventAgeInSeconds": s.max_age}}
    if s.input is not None:
        target["Input"] = s.input
    window = {"Mode": "OFF"} if s.flexible_window is None else {"Mode": "FLEXIBLE",
                                                                "MaximumWindowInMinutes": s.flexible_window}
    return {"Name": step.name, "GroupName": step.group, "ScheduleExpression": s.expression,
            "ScheduleExpressionTimezone": s.timezone, "State": "ENABLED" if s.enabled else "DISABLED",
            "FlexibleTimeWindow": window, "Target": target}


def apply_put(aws: Aws, region: str, step: PutSchedule) -> str:
    what = f"schedule {step.name}"
    if not step.create:
        aws.call("scheduler", "update_schedule", what, region, **_params(step))
        return ""
    try:
        aws.call("scheduler", "create_schedule", what, region, **_params(step))
    except AwsError as exc:
        if exc.code != "ConflictException":  # a retried create whose first attempt landed
            raise
        aws.call("scheduler", "update_schedule", what, region, **_params(step))
    return ""


def apply_delete(aws: Aws, region: str, step: DeleteSchedule) -> str:
    return delete(aws, "scheduler", "delete_schedule", f"schedule {step.name}", region, Name=step.name,
                  GroupName=step.group)


APPLY: Mapping[type[WiringStep], Apply] = {CreateScheduleGroup: apply_group, PutSchedule: apply_put,
                                           DeleteSchedule: apply_delete}
