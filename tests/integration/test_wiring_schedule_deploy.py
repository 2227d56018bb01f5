"""``schedule = ...`` triggers deployed against moto in server mode (EventBridge Scheduler: all 12 operations in
moto 5.2.5, research note A3, so no Stubber): the group lbuild-<project> is created once, schedules are
created, updated in place (fixed id), replaced (a new expression without an id), deleted, schedules of
other groups are left alone, and a second deploy writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lbuild.wiring import schedule
from tests.integration.test_iam_policy import _allowed, _needed
from tests.support.moto_server import ACCOUNT, MotoAws
from tests.support.wired_project import ALIAS, WiredProject

GROUP = "lbuild-wired"
ROLE_NAME = "wired-scheduler"


@pytest.fixture()
def wired(tmp_path: Path, aws_env: MotoAws, run_cli: Any) -> WiredProject:
    trust = json.loads((Path(__file__).resolve().parents[2] / schedule.TRUST_TEMPLATE).read_text(encoding="utf-8"))
    role = aws_env.iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return WiredProject(tmp_path / "wired", aws_env, run_cli, functions=("orders", "reports"),
                        project_lines=(f'scheduler_role = "{role}"',))


def _triggers(fn: str, *tables: str) -> str:
    return "\n".join(f"\n[[functions.{fn}.triggers]]\n{table}" for table in tables)


def _schedules(wired: WiredProject) -> dict[str, dict[str, Any]]:
    client = wired.aws.client("scheduler")
    names = [s["Name"] for s in client.list_schedules(GroupName=GROUP)["Schedules"]]
    return {name: client.get_schedule(Name=name, GroupName=GROUP) for name in names}


def test_schedules_are_created_updated_replaced_and_deleted_and_a_second_deploy_writes_nothing(
        wired: WiredProject) -> None:
    scheduler = wired.aws.client("scheduler")
    scheduler.create_schedule(Name="orders-foreign1", ScheduleExpression="rate(1 hour)",  # the default group
                              FlexibleTimeWindow={"Mode": "OFF"},
                              Target={"Arn": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:x", "RoleArn": "r"})
    wired.wiring = {
        "orders": _triggers("orders", 'schedule = "cron(0 3 * * ? *)"\nid = "nightly"\ntimezone = "Europe/Paris"\n'
                                      'input = { job = "nightly" }\nflexible_window = 15',
                            'schedule = "rate(5 minutes)"'),
        "reports": _triggers("reports", 'schedule = "rate(1 day)"\nenabled = false\nretries = 3\nmax_age = 3600'),
    }
    first = wired.write().deploy()
    assert first.counts["scheduler.CreateScheduleGroup"] == 1 and first.counts["scheduler.CreateSchedule"] == 3
    found = _schedules(wired)
    assert sorted(name.rsplit("-", 1)[0] for name in found) == ["orders", "orders", "reports"]
    nightly = next(s for s in found.values() if s["ScheduleExpression"].startswith("cron"))
    assert nightly["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert nightly["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert nightly["Target"]["Arn"] == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:wired-orders:{ALIAS}"
    assert nightly["Target"]["RoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
    assert json.loads(nightly["Target"]["Input"]) == {"job": "nightly"}
    daily = next(s for s in found.values() if s["ScheduleExpression"] == "rate(1 day)")
    assert daily["State"] == "DISABLED"
    assert daily["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert "lambda.AddPermission" not in first.counts, "Scheduler invokes with its role, not the function policy"

    again = wired.deploy()
    assert again.writes == 0, again.counts
    assert again.counts["scheduler.ListSchedules"] == 1 and again.counts["scheduler.GetSchedule"] == 3
    assert wired.run("plan").code == 0

    wired.wiring = {
        "orders": _triggers("orders", 'schedule = "cron(30 4 * * ? *)"\nid = "nightly"\ntimezone = "Europe/Paris"\n'
                                      'input = { job = "nightly" }\nflexible_window = 15',
                            'schedule = "rate(10 minutes)"'),
        "reports": "",
    }
    changed = wired.write().deploy()
    assert changed.counts["scheduler.UpdateSchedule"] == 1, "a fixed id: the same schedule, updated in place"
    assert changed.counts["scheduler.CreateSchedule"] == 1, "a new expression without an id: a new schedule"
    assert changed.counts["scheduler.DeleteSchedule"] == 2, "the replaced one and the one reports no longer has"
    assert "scheduler.CreateScheduleGroup" not in changed.counts
    after = _schedules(wired)
    assert sorted(s["ScheduleExpression"] for s in after.values()) == ["cron(30 4 * * ? *)", "rate(10 minutes)"]
    assert [n for n in after if n.startswith("orders-")] == [n for n in after], "reports' schedule is gone"
    assert set(found) & set(after) == {next(n for n, s in found.items() if s is nightly)}
    assert scheduler.get_schedule(Name="orders-foreign1")["ScheduleExpression"] == "rate(1 hour)", "not ours"
    assert wired.deploy().writes == 0

    wired.wiring = {}
    removed = wired.write().deploy()
    assert removed.counts["scheduler.DeleteSchedule"] == 2 and _schedules(wired) == {}
    assert wired.deploy().writes == 0
    # GetCallerIdentity (the account id, for a function that does not exist yet) needs no IAM permission
    missing = sorted(_needed(first, again, changed, removed) - _allowed() - {"sts:GetCallerIdentity"})
    assert missing == [], f"templates/iam-policy.json lacks {missing}"


def test_a_schedule_without_a_scheduler_role_is_refused_before_anything_is_read(wired: WiredProject) -> None:
    wired.project_lines = ()
    wired.wiring = {"orders": _triggers("orders", 'schedule = "rate(5 minutes)"')}
    refused = wired.write().run("deploy", "--yes")
    assert refused.code == 2, refused.stderr
    assert refused.stderr.startswith("error: a schedule trigger needs [project] scheduler_role")
    assert "lbuild.toml:14, key functions.orders.triggers[0].schedule" in refused.stderr
    assert "templates/scheduler-trust-policy.json" in refused.stderr
    assert refused.reads == 0 and refused.writes == 0


def test_a_scheduler_role_that_does_not_trust_scheduler_is_refused_at_plan_time(wired: WiredProject) -> None:
    lambda_only = wired.aws.role_arn  # the execution role: trusts lambda.amazonaws.com only
    wired.project_lines = (f'scheduler_role = "{lambda_only}"',)
    wired.wiring = {"orders": _triggers("orders", 'schedule = "rate(5 minutes)"')}
    refused = wired.write().run("deploy", "--yes")
    assert refused.code == 2, refused.stderr
    assert f"error: scheduler_role {lambda_only} does not trust scheduler.amazonaws.com" in refused.stderr
    assert "key functions.orders.triggers[0]" in refused.stderr
    assert refused.writes == 0 and not wired.aws.lambda_.list_functions()["Functions"]

    wired.project_lines = (f'scheduler_role = "arn:aws:iam::{ACCOUNT}:role/nobody"',)
    missing = wired.write().run("deploy", "--yes")
    assert missing.code == 2 and f"error: scheduler_role arn:aws:iam::{ACCOUNT}:role/nobody does not exist" \
        in missing.stderr
    assert missing.writes == 0


def test_the_trust_policy_template_lets_scheduler_assume_the_role() -> None:
    trust = json.loads((Path(__file__).resolve().parents[2] / schedule.TRUST_TEMPLATE).read_text(encoding="utf-8"))
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"


def test_the_read_is_one_paginated_sweep_of_the_group_and_a_get_per_schedule_of_this_deploy(
        aws_env: MotoAws) -> None:
    """moto pages ListSchedules by 50, as AWS may: 55 schedules of orders and 3 of a function not deployed now."""
    from lbuild.publisher.aws import Aws
    from lbuild.wiring.core import Target
    from lbuild.wiring.model import Wiring

    client = aws_env.client("scheduler")
    client.create_schedule_group(Name=GROUP)
    target = {"Arn": f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:wired-orders", "RoleArn": aws_env.role_arn}
    for name in [f"orders-{n:08x}" for n in range(55)] + [f"reports-{n:08x}" for n in range(3)]:
        client.create_schedule(Name=name, GroupName=GROUP, ScheduleExpression="rate(1 hour)",
                               FlexibleTimeWindow={"Mode": "OFF"}, Target=target)
    orders = Target("orders", "wired-orders", "wired", "eu-west-1", ACCOUNT, None, 10, "python3.12", "zip", 512,
                    Wiring(), frozenset({"schedule"}))
    aws = Aws(region="eu-west-1")
    live = schedule.read(aws, "eu-west-1", [orders])
    assert set(live.groups[GROUP].schedules) == {f"orders-{n:08x}" for n in range(55)}
    assert aws.requests["scheduler.ListSchedules"] == 2 and aws.requests["scheduler.GetSchedule"] == 55
    steps = schedule.plan([orders], live)
    assert len(steps) == 55 and all(isinstance(s, schedule.DeleteSchedule) for s in steps), \
        "orders has no schedule any more; reports' are not this deploy's to judge"
