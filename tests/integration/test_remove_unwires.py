"""``lbuild remove`` unwires before it deletes, against moto in server mode on 127.0.0.1.

A function with every kind of trigger lbuild wires (an S3 notification on a bucket that also has someone
else's entry, an SNS subscription, an EventBridge rule, a schedule in the lbuild group, an HTTP route, an SQS
mapping) is dropped from lbuild.toml and removed: none of what lbuild wired for it may be left behind (AWS
deletes neither mappings nor other services' triggers with a function, and moto 5.2.5 keeps them too), the
foreign entry stays, and nothing is deleted when the unwiring fails (fault proxy in front of moto).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lbuild.wiring import schedule
from tests.integration.test_iam_policy import _allowed, _needed
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.moto_server import ACCOUNT, REGION, MotoAws
from tests.support.wired_project import ALIAS, WiredProject

BUCKET = "wired-uploads"
FOREIGN = {"Id": "other-team", "LambdaFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other",
           "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [{"Name": "prefix",
                                                                                "Value": "other/"}]}}}
GROUP = "lbuild-wired"
API = "lbuild-wired"
ORDERS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:wired-orders"
#: What each family plans for the removed function (the HTTP route and its integration are one step).
UNWIRE_ACTIONS = {"UnwireBucketNotifications", "Unsubscribe", "DeleteRule", "DeleteSchedule", "DeleteHttpRoute",
                  "DeleteMapping", "RemovePermission"}


@pytest.fixture()
def wired(tmp_path: Path, aws_env: MotoAws, run_cli: Any) -> WiredProject:
    """Two functions; ``orders`` wired every way lbuild can, ``reports`` not at all."""
    trust = json.loads((Path(__file__).resolve().parents[2] / schedule.TRUST_TEMPLATE).read_text(encoding="utf-8"))
    role = aws_env.iam.create_role(RoleName="wired-scheduler", AssumeRolePolicyDocument=json.dumps(trust))
    aws_env.create_bucket(BUCKET)
    aws_env.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"LambdaFunctionConfigurations": [FOREIGN]})
    topic = aws_env.client("sns").create_topic(Name="orders")["TopicArn"]
    queue = aws_env.client("sqs").create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "120"})
    queue_arn = aws_env.client("sqs").get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])
    triggers = [f's3 = "{BUCKET}"\nprefix = "incoming/"', f'sns = "{topic}"',
                'eventbridge = { source = ["shop.orders"] }\nid = "placed"', 'schedule = "rate(5 minutes)"',
                'http = "GET /orders"', f'sqs = "{queue_arn["Attributes"]["QueueArn"]}"']
    return WiredProject(tmp_path / "wired", aws_env, run_cli, functions=("orders", "reports"),
                        project_lines=(f'scheduler_role = "{role["Role"]["Arn"]}"',),
                        wiring={"orders": "log_retention_days = 7\nreserved_concurrency = 5\n" +
                                "".join(f"\n[[functions.orders.triggers]]\n{t}\n" for t in triggers)})


def _ours(aws: MotoAws, function_arn: str = ORDERS) -> dict[str, list[str]]:
    """Everything in the fake AWS that invokes ``function_arn`` (any qualifier), by kind."""
    def invokes(arn: str) -> bool:
        return arn == function_arn or arn.startswith(function_arn + ":")

    sns, events, scheduler = aws.client("sns"), aws.client("events"), aws.client("scheduler")
    api = aws.client("apigatewayv2")
    found: dict[str, list[str]] = {
        "s3": [e["Id"] for e in aws.s3.get_bucket_notification_configuration(Bucket=BUCKET)
               .get("LambdaFunctionConfigurations", []) if invokes(e["LambdaFunctionArn"])],
        "sns": [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"] if invokes(s["Endpoint"])],
        "eventbridge": [r["Name"] for r in events.list_rules()["Rules"]
                        if any(invokes(t["Arn"]) for t in events.list_targets_by_rule(Rule=r["Name"])["Targets"])],
        "schedule": [s["Name"] for s in scheduler.list_schedules(GroupName=GROUP)["Schedules"]
                     if invokes(scheduler.get_schedule(Name=s["Name"], GroupName=GROUP)["Target"]["Arn"])],
        "sqs": [m["UUID"] for m in aws.lambda_.list_event_source_mappings()["EventSourceMappings"]
                if invokes(m["FunctionArn"])],
        "http": [],
    }
    for item in api.get_apis()["Items"]:
        if item["Name"] == API:
            integrations = api.get_integrations(ApiId=item["ApiId"])["Items"]
            found["http"] = [i["IntegrationId"] for i in integrations if function_arn in i["IntegrationUri"]]
    return found


def _iam(action: str) -> str:
    """The IAM action of an API call as boto3 names it (``service:Operation``)."""
    service, operation = action.split(":", 1)
    if service == "apigatewayv2":  # API Gateway's IAM actions are the HTTP verbs
        return "apigateway:" + ("GET" if operation.startswith("Get") else operation[:6].upper())
    renamed = {"eventbridge": "events", "cloudwatch-logs": "logs"}
    return f"{renamed.get(service, service)}:{operation.removesuffix('Configuration')}"


def _retention(aws: MotoAws) -> int | None:
    """The retention of the removed function's log group (KeyError when the group is gone)."""
    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/wired-orders")["logGroups"]
    return {g["logGroupName"]: g.get("retentionInDays") for g in groups}["/aws/lambda/wired-orders"]


def _functions(aws: MotoAws) -> set[str]:
    return {f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"]}


def _foreign_kept(aws: MotoAws) -> None:
    document = aws.s3.get_bucket_notification_configuration(Bucket=BUCKET)
    others = [e for e in document.get("LambdaFunctionConfigurations", []) if not e["Id"].startswith("lbuild-")]
    assert [(e["Id"], e["LambdaFunctionArn"]) for e in others] == [(FOREIGN["Id"], FOREIGN["LambdaFunctionArn"])]


def _wired_everything(wired: WiredProject) -> None:
    wired.write().deploy()
    ours = _ours(wired.aws)
    assert all(len(found) == 1 for found in ours.values()), ours
    assert wired.aws.lambda_.get_policy(FunctionName="wired-orders", Qualifier=ALIAS)["Policy"]
    assert _retention(wired.aws) == 7
    wired.functions = ("reports",)  # orders dropped from lbuild.toml
    wired.write()
    assert wired.run("package").code == 0
    planned = wired.run("plan", "--json")  # deploy and plan only name it: nothing is unwired or deleted yet
    assert planned.json()["removed"] == ["wired-orders"]
    assert any("`lbuild remove --all-removed` unwires and deletes it" in n for n in planned.json()["notes"])
    assert all(len(found) == 1 for found in _ours(wired.aws).values())


def test_remove_unwires_every_trigger_before_it_deletes_and_keeps_the_foreign_s3_entry(wired: WiredProject) -> None:
    _wired_everything(wired)

    dry = wired.run("remove", "orders", "--dry-run", "--json")
    assert dry.code == 10, dry.stderr
    shown = dry.json()
    assert shown["deleted"] is False and [f["function"] for f in shown["functions"]] == ["orders"]
    assert {step["action"] for step in shown["unwire"]} == UNWIRE_ACTIONS
    assert all(step["reason"] for step in shown["unwire"])
    assert f"s3 {BUCKET}" in " ".join(step["what"] for step in shown["unwire"])
    assert dry.writes == 0 and all(len(found) == 1 for found in _ours(wired.aws).values())

    human = wired.run("remove", "orders", "--dry-run")
    assert human.code == 10
    assert "unwire first (what lbuild wired for them):" in human.stderr
    assert "then delete:\n - wired-orders (aliases: live)" in human.stderr
    assert f"1 function(s) to delete, after {len(shown['unwire'])} unwiring step(s)" in human.stderr

    done = wired.run("remove", "orders", "--yes", "--json")
    assert done.code == 0, done.stderr
    assert done.json()["deleted"] is True and done.json()["unwire"] == shown["unwire"]
    order = [op for op, _ in done.recorder.calls if not op.split(".")[1].startswith(("Get", "List", "Describe"))]
    assert order.index("lambda.DeleteFunction") == len(order) - 1, order
    assert order.index("lambda.RemovePermission") > max(
        order.index(op) for op in ("s3.PutBucketNotificationConfiguration", "sns.Unsubscribe",
                                   "eventbridge.DeleteRule", "scheduler.DeleteSchedule",
                                   "apigatewayv2.DeleteRoute", "lambda.DeleteEventSourceMapping")), \
        "triggers unwired before the permissions go"
    assert "lambda.TagResource" not in order and "lambda.UntagResource" not in order, "no tag rewrite"
    assert not [op for op in order if "Concurrency" in op or op.startswith("logs.")], \
        "the reservation goes with the function; the log group is left alone"
    assert _retention(wired.aws) == 7
    assert _ours(wired.aws) == {"s3": [], "sns": [], "eventbridge": [], "schedule": [], "sqs": [], "http": []}
    assert _functions(wired.aws) == {"wired-reports"}
    _foreign_kept(wired.aws)
    missing = sorted({_iam(action) for action in _needed(dry, done)} - _allowed() - {"sts:GetCallerIdentity"})
    assert not missing, f"templates/iam-policy.json lacks {missing}"

    # the bucket takes the next deploy's notifications: nothing of the deleted function is left on it
    wired.wiring = {"reports": f'\n[[functions.reports.triggers]]\ns3 = "{BUCKET}"\nprefix = "reports/"\n'}
    wired.write().deploy()
    entries = wired.aws.s3.get_bucket_notification_configuration(Bucket=BUCKET)["LambdaFunctionConfigurations"]
    assert sorted(e["LambdaFunctionArn"] for e in entries) == sorted(
        [FOREIGN["LambdaFunctionArn"], f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:wired-reports:{ALIAS}"])


def test_a_failed_unwiring_deletes_nothing_and_a_second_remove_finishes(
        wired: WiredProject, fault_proxy: FaultProxy, fast_backoff: float) -> None:
    _wired_everything(wired)
    fault_proxy.add(Rule("err500", service="sns", op="^Unsubscribe$"))

    failed = wired.run("remove", "orders", "--yes")
    assert failed.code == 6, failed.stderr
    assert "error: remove stopped: " in failed.stderr
    assert "hint: " in failed.stderr and \
        "no function was deleted; `lbuild remove orders` unwires what is left, then deletes" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert _functions(wired.aws) == {"wired-orders", "wired-reports"}, "nothing deleted"
    assert len(_ours(wired.aws)["sns"]) == 1
    assert wired.aws.lambda_.get_policy(FunctionName="wired-orders", Qualifier=ALIAS)["Policy"], \
        "the permissions stay while a trigger may still invoke the function"
    assert not any(op in ("lambda.DeleteFunction", "lambda.DeleteAlias", "lambda.RemovePermission")
                   for op, _ in failed.recorder.calls)

    fault_proxy.clear()
    again = wired.run("remove", "orders", "--yes", "--json")
    assert again.code == 0, again.stderr
    assert "Unsubscribe" in {step["action"] for step in again.json()["unwire"]}
    assert _ours(wired.aws) == {"s3": [], "sns": [], "eventbridge": [], "schedule": [], "sqs": [], "http": []}
    assert _functions(wired.aws) == {"wired-reports"}
    _foreign_kept(wired.aws)
