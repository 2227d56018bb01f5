"""The ``schedule`` family, pure: parsing and every validation message, expression syntax, names, normalisation
of GetSchedule answers (moto's and AWS's spellings) and the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.config import Project, load_project
from lbuild.errors import ConfigError, LbuildError, LimitError
from lbuild.steps import Unchanged
from lbuild.wiring import schedule
from lbuild.wiring.core import SETTINGS, UNWIRE, WIRE, Target
from lbuild.wiring.model import Wiring
from lbuild.wiring.schedule import (
    CreateScheduleGroup,
    DeleteSchedule,
    Group,
    Live,
    PutSchedule,
    ScheduleTrigger,
    Spec,
    expression_problem,
    live_spec,
    wanted_spec,
)

ROLE = "arn:aws:iam::123456789012:role/shop-scheduler"
HEAD = f"""\
[project]
name = "shop"
runtime = "python3.12"
architecture = "arm64"
alias = "live"
scheduler_role = "{ROLE}"

[functions.nightly]
handler = "app.handler"
source = "functions/nightly"
"""


def _load(tmp_path: Path, trigger: str, head: str = HEAD) -> Project:
    source = tmp_path / "functions" / "nightly"
    source.mkdir(parents=True, exist_ok=True)
    (source / "app.py").write_text("def handler(e, c):\n    return 1\n")
    path = tmp_path / "lbuild.toml"
    path.write_text(head + "\n[[functions.nightly.triggers]]\n" + trigger + "\n")
    return load_project(path.resolve(), environ={})


def _error(tmp_path: Path, trigger: str, head: str = HEAD) -> LbuildError:
    with pytest.raises(LbuildError) as info:
        _load(tmp_path, trigger, head)
    return info.value


def _trigger(project: Project) -> ScheduleTrigger:
    (found,) = project.function("nightly").wiring.triggers
    assert isinstance(found, ScheduleTrigger)
    return found


# --- parsing -------------------------------------------------------------------------------------------------


def test_every_key_is_read(tmp_path: Path) -> None:
    trigger = _trigger(_load(tmp_path, 'schedule = "cron(0 3 * * ? *)"\ntimezone = "Europe/Paris"\n'
                                       'input = { job = "nightly", n = 2 }\nenabled = false\nflexible_window = 15\n'
                                       'retries = 3\nmax_age = 3600\nid = "nightly"'))
    assert trigger == ScheduleTrigger("cron(0 3 * * ? *)", trigger.where, "nightly", ROLE, "Europe/Paris",
                                      '{"job":"nightly","n":2}', False, 15, 3, 3600)
    assert "lbuild.toml:12" in trigger.where


@pytest.mark.parametrize(("expression", "problem"), [
    ("rate(1 minutes)", "a rate of 1 takes the singular: rate(1 minute)"),
    ("rate(5 minute)", "a rate of 5 takes the plural: rate(5 minutes)"),
    ("rate(0 minutes)", "a rate must be at least 1"),
    ("rate(2 weeks)", "'weeks' is not a unit of a rate: use minutes, hours or days"),
    ("rate(five minutes)", "a rate is rate(N UNIT) with a whole number N and a unit of minutes, hours or days"),
    ("cron(0 3 * * ?)", "a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), not 5"),
    ("cron(0 3 * * * *)", "exactly one of day-of-month (3rd field) and day-of-week (5th field) must be '?'"),
    ("cron(0 3 ? * ? *)", "exactly one of day-of-month (3rd field) and day-of-week (5th field) must be '?'"),
    ("cron(? 3 * * ? *)", "'?' may stand only for day-of-month or day-of-week"),
    ("cron(0 3 * * ? $)", "cron field '$' has characters cron does not allow"),
    ("cron(0 3 * * ? *", "a cron expression ends with ')'"),
    ("at(2027-01-01 00:00:00)", "a one-time schedule is at(yyyy-mm-ddThh:mm:ss)"),
    ("at(2027-02-30T00:00:00)", "'2027-02-30T00:00:00' is not a date and time"),
    ("every 5 minutes", "a schedule starts with rate(, cron( or at("),
])
def test_a_bad_expression_is_refused_with_what_is_wrong(tmp_path: Path, expression: str, problem: str) -> None:
    assert expression_problem(expression) == problem
    error = _error(tmp_path, f'schedule = "{expression}"')
    assert isinstance(error, ConfigError) and error.exit_code == 2
    assert error.what == f"schedule '{expression}' is not a valid expression: {problem}"
    assert error.where is not None
    assert error.where.endswith("lbuild.toml:13, key functions.nightly.triggers[0].schedule")
    assert error.hint is not None and "rate(5 minutes)" in error.hint


@pytest.mark.parametrize("expression", ["rate(1 minute)", "rate(1 hour)", "rate(1 day)", "rate(15 minutes)",
                                        "rate(2 hours)", "rate(7 days)", "cron(0 3 * * ? *)",
                                        "cron(0/15 9-17 ? * MON-FRI *)", "cron(0 12 L * ? 2027)",
                                        "cron(0 8 ? * 2#1 *)", "at(2027-01-01T00:00:00)"])
def test_good_expressions_pass(expression: str) -> None:
    assert expression_problem(expression) is None


def test_without_a_scheduler_role_the_message_points_at_the_trust_policy(tmp_path: Path) -> None:
    error = _error(tmp_path, 'schedule = "rate(5 minutes)"', HEAD.replace(f'scheduler_role = "{ROLE}"\n', ""))
    assert error.exit_code == 2
    assert error.what.startswith("a schedule trigger needs [project] scheduler_role")
    assert error.hint is not None and "templates/scheduler-trust-policy.json" in error.hint
    assert error.where is not None and error.where.endswith("key functions.nightly.triggers[0].schedule")


def test_the_scheduler_role_must_be_a_role_arn(tmp_path: Path) -> None:
    error = _error(tmp_path, 'schedule = "rate(5 minutes)"', HEAD.replace(ROLE, "shop-scheduler"))
    assert error.exit_code == 2
    assert error.what == "scheduler_role 'shop-scheduler' is not an IAM role ARN"
    assert error.where is not None and error.where.endswith("lbuild.toml:6, key project.scheduler_role")


def test_the_scheduler_role_is_a_project_key_only(tmp_path: Path) -> None:
    head = HEAD.replace('source = "functions/nightly"', f'source = "functions/nightly"\nscheduler_role = "{ROLE}"')
    error = _error(tmp_path, 'schedule = "rate(5 minutes)"', head)
    assert error.exit_code == 2 and error.what == "unknown key 'scheduler_role'"


@pytest.mark.parametrize(("line", "what"), [
    ("flexible_window = 0", "schedule flexible_window 0 is outside 1-1440 minutes"),
    ("flexible_window = 1441", "schedule flexible_window 1441 is outside 1-1440 minutes"),
    ("retries = 186", "schedule retries 186 is outside 0-185 retry attempts"),
    ("max_age = 59", "schedule max_age 59 is outside 60-86400 seconds"),
])
def test_numbers_scheduler_refuses_are_limit_errors(tmp_path: Path, line: str, what: str) -> None:
    error = _error(tmp_path, f'schedule = "rate(5 minutes)"\n{line}')
    assert isinstance(error, LimitError) and error.exit_code == 5
    assert error.what == what
    assert error.where is not None and error.where.endswith(f"lbuild.toml:14, key functions.nightly.triggers[0]."
                                                            f"{line.split()[0]}")


@pytest.mark.parametrize(("line", "what"), [
    ('timezone = "Mars/Olympus"', "'Mars/Olympus' is not a time zone"),
    ('input = "job"', "'input' must be a table, not a string"),
    ('enabled = "yes"', "'enabled' must be true or false, not a string"),
    ("window = 5", "unknown key 'window'"),
])
def test_other_bad_keys_are_config_errors(tmp_path: Path, line: str, what: str) -> None:
    error = _error(tmp_path, f'schedule = "rate(5 minutes)"\n{line}')
    assert error.exit_code == 2 and error.what == what
    assert error.where is not None and "lbuild.toml:14" in error.where


def test_a_function_name_too_long_for_schedule_names_is_refused(tmp_path: Path) -> None:
    long = "n" * 56
    head = HEAD.replace('name = "shop"', 'name = "s"').replace("functions.nightly", f"functions.{long}")
    source = tmp_path / "functions" / "nightly"
    source.mkdir(parents=True)
    (source / "app.py").write_text("def handler(e, c):\n    return 1\n")
    path = tmp_path / "lbuild.toml"
    path.write_text(head + f'\n[[functions.{long}.triggers]]\nschedule = "rate(5 minutes)"\n')
    with pytest.raises(ConfigError) as info:
        load_project(path.resolve(), environ={})
    assert info.value.what == f"function name '{long}' is too long to name its schedules (at most 55 characters)"


# --- names and normalisation -----------------------------------------------------------------------------------


def _target(*triggers: ScheduleTrigger, key: str = "nightly", recorded: frozenset[str] = frozenset(),
            qualifier: str | None = "live") -> Target:
    return Target(key, f"shop-{key}", "shop", "eu-west-1", "123456789012", qualifier, 10, "python3.12", "zip", 512,
                  Wiring(triggers=triggers), recorded)


def _schedule(expression: str = "rate(5 minutes)", **kw: Any) -> ScheduleTrigger:
    return ScheduleTrigger(expression, "lbuild.toml:9", kw.pop("id", None), ROLE, **kw)


def test_names_follow_the_identity_not_the_settings() -> None:
    target = _target()
    one, other = _schedule(timezone="Europe/Paris"), _schedule(enabled=False)
    assert schedule.group_name(target) == "lbuild-shop"
    assert schedule.schedule_name(target, one) == schedule.schedule_name(target, other)
    assert schedule.schedule_name(target, one).startswith("nightly-")
    assert schedule.schedule_name(target, _schedule("rate(6 minutes)")) != schedule.schedule_name(target, one)
    fixed = schedule.schedule_name(target, _schedule("rate(6 minutes)", id="tick"))
    assert fixed == schedule.schedule_name(target, _schedule("rate(1 hour)", id="tick"))


@settings(max_examples=80, deadline=None)
@given(expression=st.sampled_from(["rate(5 minutes)", "cron(0 3 * * ? *)", "at(2027-01-01T00:00:00)"]),
       timezone=st.sampled_from([None, "UTC", "Europe/Paris"]), enabled=st.booleans(),
       window=st.none() | st.integers(1, 1440), retries=st.none() | st.integers(0, 185),
       max_age=st.none() | st.integers(60, 86400),
       event=st.none() | st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5),
                                         min_size=1, max_size=3),
       moto=st.booleans())
def test_a_schedule_as_written_reads_back_equal_in_moto_and_aws_spellings(
        expression: str, timezone: str | None, enabled: bool, window: int | None, retries: int | None,
        max_age: int | None, event: dict[str, Any] | None, moto: bool) -> None:
    text = None if event is None else json.dumps(event, sort_keys=True, separators=(",", ":"))
    trigger = _schedule(expression, timezone=timezone, enabled=enabled, flexible_window=window, retries=retries,
                        max_age=max_age, input=text)
    target = _target(trigger)
    step = PutSchedule("", target.name, "lbuild-shop", "nightly-x", "", wanted_spec(target, trigger))
    sent = schedule._params(step)
    answer: dict[str, Any] = {k: v for k, v in sent.items() if k not in ("Name", "GroupName")}
    answer["Target"] = dict(answer["Target"])
    if moto:  # moto fills in UTC; AWS leaves an unset time zone and the default retry policy out
        answer.setdefault("ScheduleExpressionTimezone", "UTC")
    else:
        if timezone is None:
            del answer["ScheduleExpressionTimezone"]
        if retries is None and max_age is None:
            del answer["Target"]["RetryPolicy"]
    if text is not None:  # whitespace of the stored JSON does not matter
        answer["Target"]["Input"] = json.dumps(json.loads(text), indent=2)
    assert live_spec(answer) == wanted_spec(target, trigger)


def test_changes_name_each_field() -> None:
    live = Spec("rate(5 minutes)", target="arn:f")
    wanted = Spec("rate(5 minutes)", "Europe/Paris", False, 10, target="arn:f:live")
    assert wanted.changes(live) == ["timezone UTC -> Europe/Paris", "enabled true -> false",
                                    "flexible_window off -> 10", "target arn:f -> arn:f:live"]
    assert Spec("rate(5 minutes)", input='{"a":1}').changes(Spec("rate(5 minutes)")) == ['input none -> {"a":1}']


# --- plan ----------------------------------------------------------------------------------------------------


def _live_from(target: Target, *triggers: ScheduleTrigger) -> dict[str, Any]:
    out = {}
    for trigger in triggers:
        step = PutSchedule("", target.name, "lbuild-shop", schedule.schedule_name(target, trigger), "",
                           wanted_spec(target, trigger))
        out[step.name] = {k: v for k, v in schedule._params(step).items() if k != "GroupName"}
    return out


def test_a_missing_group_is_created_in_an_earlier_phase_than_the_schedules() -> None:
    target = _target(_schedule(), _schedule("rate(1 hour)"))
    steps = schedule.plan([target, _target(_schedule(), key="other")], Live({"lbuild-shop": Group(False)}))
    assert [type(s) for s in steps] == [CreateScheduleGroup, PutSchedule, PutSchedule, PutSchedule]
    assert steps[0].describe() == "schedule group lbuild-shop: create"
    assert isinstance(steps[0], CreateScheduleGroup) and steps[0].phase == SETTINGS < WIRE == steps[1].phase


def test_equal_is_unchanged_changed_is_an_update_and_gone_is_a_delete() -> None:
    kept, changed, dropped = _schedule(), _schedule("rate(1 hour)", id="h"), _schedule("rate(2 hours)")
    before = _target(kept, changed, dropped)
    live = _live_from(before, kept, changed, dropped)
    live["other-12345678"] = live[schedule.schedule_name(before, kept)]  # another function's: not ours to judge
    live["nightly"] = live["nightly-manual"] = live["other-12345678"]  # not names lbuild gives: left alone
    after = _target(kept, _schedule("rate(1 hour)", id="h", enabled=False), recorded=frozenset({"schedule"}))
    steps = schedule.plan([after], Live({"lbuild-shop": Group(True, live)}))
    assert [type(s) for s in steps] == [Unchanged, PutSchedule, DeleteSchedule]
    update, delete = steps[1], steps[2]
    assert isinstance(update, PutSchedule) and not update.create and update.changes == ("enabled true -> false",)
    assert update.describe() == f"schedule h ({schedule.schedule_name(after, changed)}): enabled true -> false"
    assert isinstance(delete, DeleteSchedule) and delete.phase == UNWIRE
    assert delete.describe() == f"schedule {schedule.schedule_name(before, dropped)}: delete (rate(2 hours))"


def test_the_last_schedule_removed_is_deleted_and_functions_never_scheduled_are_not_read() -> None:
    gone = _schedule()
    live = _live_from(_target(gone), gone)
    steps = schedule.plan([_target(recorded=frozenset({"schedule"}))], Live({"lbuild-shop": Group(True, live)}))
    assert [type(s) for s in steps] == [DeleteSchedule]
    assert schedule.read(None, "eu-west-1", [_target()]) == Live()  # type: ignore[arg-type]  # no call at all
    assert schedule.tokens(_target(gone)) == {"schedule"} and schedule.tokens(_target()) == set()
    assert schedule.grants(_target(gone)) == []


def test_an_alias_change_retargets_the_schedule() -> None:
    trigger = _schedule()
    live = _live_from(_target(trigger, qualifier=None), trigger)
    (step,) = schedule.plan([_target(trigger)], Live({"lbuild-shop": Group(True, live)}))
    assert isinstance(step, PutSchedule)
    assert step.changes == ("target arn:aws:lambda:eu-west-1:123456789012:function:shop-nightly -> "
                            "arn:aws:lambda:eu-west-1:123456789012:function:shop-nightly:live",)


def test_a_group_name_over_64_characters_is_refused() -> None:
    target = Target("f", "p-f", "p" * 60, "eu-west-1", "123456789012", None, 10, "python3.12", "zip", 512,
                    Wiring(triggers=(_schedule(),)))
    with pytest.raises(ConfigError) as info:
        schedule.plan([target], Live())
    assert info.value.what == f"schedule group name 'lbuild-{'p' * 60}' is longer than 64 characters"


def test_a_scheduler_role_that_is_missing_or_does_not_trust_scheduler_is_refused() -> None:
    target = _target(_schedule())
    with pytest.raises(ConfigError) as info:
        schedule.plan([target], Live(trust={ROLE: None}))
    assert info.value.what == f"scheduler_role {ROLE} does not exist" and info.value.where == "lbuild.toml:9"
    assert info.value.hint is not None and "templates/scheduler-trust-policy.json" in info.value.hint
    with pytest.raises(ConfigError) as info:
        schedule.plan([target], Live(trust={ROLE: frozenset({"lambda.amazonaws.com"})}))
    assert info.value.what == f"scheduler_role {ROLE} does not trust scheduler.amazonaws.com"
    assert info.value.exit_code == 2
    trusted = schedule.plan([target], Live(trust={ROLE: frozenset({"scheduler.amazonaws.com"})}))
    assert [type(s) for s in trusted] == [CreateScheduleGroup, PutSchedule]
    assert [type(s) for s in schedule.plan([target], Live())] == [CreateScheduleGroup, PutSchedule], \
        "a role that could not be read is not judged"


def test_a_stage_sets_its_own_scheduler_role_and_group(tmp_path: Path) -> None:
    prod_role = "arn:aws:iam::210987654321:role/prod-scheduler"
    _load(tmp_path, 'schedule = "rate(1 hour)"')
    path = tmp_path / "lbuild.toml"
    path.write_text(path.read_text() + f'\n[stages.prod]\nscheduler_role = "{prod_role}"\n')
    dev, prod = load_project(path.resolve(), environ={}), load_project(path.resolve(), environ={}, stage="prod")
    assert _trigger(dev).role == ROLE and _trigger(prod).role == prod_role
    assert (dev.deploy_name, prod.deploy_name) == ("shop", "shop-prod")  # groups lbuild-shop and lbuild-shop-prod
