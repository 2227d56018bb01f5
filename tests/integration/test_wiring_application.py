"""A whole application wired at once against moto in server mode: every family on one project with an alias.

Each family has its own deploy tests; this one checks that they work together through the phases (the
permissions family adds the statements the S3, SNS, EventBridge, HTTP and URL families ask for before they
wire), that a second deploy writes nothing, and that taking every trigger and setting out of lbuild.toml
leaves nothing of lbuild's behind while someone else's wiring stays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lbuild.wiring import schedule
from tests.support.moto_server import ACCOUNT, MotoAws
from tests.support.wired_project import ALIAS, WiredProject

REGION = "eu-west-1"
BUCKET = "app-uploads"
FOREIGN_ENTRY = {"Id": "audit-queue", "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit",
                 "Events": ["s3:ObjectRemoved:*"]}
FOREIGN_SID = "partner-team"


@pytest.fixture()
def wired(tmp_path: Path, aws_env: MotoAws, run_cli: Any) -> WiredProject:
    trust = json.loads((Path(__file__).resolve().parents[2] / schedule.TRUST_TEMPLATE).read_text(encoding="utf-8"))
    role = aws_env.iam.create_role(RoleName="app-scheduler", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sqs = aws_env.client("sqs")
    sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "900"})
    sqs.create_queue(QueueName="audit")
    aws_env.client("sns").create_topic(Name="refunds")
    aws_env.create_bucket(BUCKET)
    aws_env.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [FOREIGN_ENTRY]})
    return WiredProject(tmp_path / "app", aws_env, run_cli, name="app", functions=("orders", "thumbs"),
                        project_lines=(f'scheduler_role = "{role}"', "log_retention_days = 14"))


WIRING = {
    "orders": f"""reserved_concurrency = 5
permissions = [{{ principal = "210987654321" }}]

[[functions.orders.triggers]]
sqs = "arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
batch_size = 5

[[functions.orders.triggers]]
http = "POST /orders"

[[functions.orders.triggers]]
schedule = "rate(1 hour)"
""",
    "thumbs": f"""url = {{ auth = "AWS_IAM" }}

[[functions.thumbs.triggers]]
s3 = "{BUCKET}"
prefix = "incoming/"

[[functions.thumbs.triggers]]
sns = "arn:aws:sns:{REGION}:{ACCOUNT}:refunds"

[[functions.thumbs.triggers]]
eventbridge = {{ source = ["app.orders"] }}
""",
}


def _arn(wired: WiredProject, fn: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{wired.function_name(fn)}"


def _policy_sids(wired: WiredProject, fn: str) -> set[str]:
    try:
        text = wired.aws.lambda_.get_policy(FunctionName=wired.function_name(fn), Qualifier=ALIAS)["Policy"]
    except wired.aws.lambda_.exceptions.ResourceNotFoundException:
        return set()
    return {s["Sid"] for s in json.loads(text)["Statement"] if s.get("Resource", "").endswith(f":{ALIAS}")}


def _state(wired: WiredProject) -> dict[str, Any]:
    """What AWS has of lbuild's wiring for the two functions, read with ordinary boto3 clients."""
    aws = wired.aws
    orders, thumbs = _arn(wired, "orders"), _arn(wired, "thumbs")
    mappings = [m for m in aws.lambda_.list_event_source_mappings()["EventSourceMappings"]
                if m["FunctionArn"].startswith(orders)]
    notification = aws.s3.get_bucket_notification_configuration(Bucket=BUCKET)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:refunds"
    subscriptions = aws.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    rules = aws.client("events").list_rules(NamePrefix="lbuild-app-")["Rules"]
    groups = [g["Name"] for g in aws.client("scheduler").list_schedule_groups()["ScheduleGroups"]]
    schedules = aws.client("scheduler").list_schedules(GroupName="lbuild-app")["Schedules"] \
        if "lbuild-app" in groups else []
    apis = [a for a in aws.client("apigatewayv2").get_apis()["Items"] if a["Name"] == "lbuild-app"]
    routes = aws.client("apigatewayv2").get_routes(ApiId=apis[0]["ApiId"])["Items"] if apis else []
    concurrency = aws.lambda_.get_function_concurrency(FunctionName=wired.function_name("orders"))
    try:
        urls = [aws.lambda_.get_function_url_config(FunctionName=wired.function_name("thumbs"), Qualifier=ALIAS)]
    except aws.lambda_.exceptions.ResourceNotFoundException:
        urls = []
    groups_logs = aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/app-")["logGroups"]
    return {
        "mappings": [(m["EventSourceArn"].rsplit(":", 1)[-1], m["BatchSize"]) for m in mappings],
        "s3": [e["Id"] for e in notification.get("LambdaFunctionConfigurations", [])
               if e["LambdaFunctionArn"].startswith(thumbs)],
        "s3_foreign": notification.get("QueueConfigurations", []),
        "sns": [s["Endpoint"] for s in subscriptions if s["Endpoint"].startswith(thumbs)],
        "rules": [r["Name"] for r in rules],
        "schedules": [s["Name"] for s in schedules],
        "routes": sorted(r["RouteKey"] for r in routes),
        "reserved": concurrency.get("ReservedConcurrentExecutions"),
        "url": [u["AuthType"] for u in urls],
        "retention": sorted((g["logGroupName"], g.get("retentionInDays")) for g in groups_logs),
        "orders_sids": _policy_sids(wired, "orders"),
        "thumbs_sids": _policy_sids(wired, "thumbs"),
    }


def test_an_application_is_wired_whole_kept_on_a_second_deploy_and_unwired_when_taken_out(
        wired: WiredProject) -> None:
    wired.wiring = WIRING
    first = wired.write().deploy()
    state = _state(wired)
    assert state["mappings"] == [("orders", 5)]
    assert len(state["s3"]) == 1 and state["s3_foreign"] == [FOREIGN_ENTRY]
    assert state["sns"] == [f"{_arn(wired, 'thumbs')}:{ALIAS}"]
    assert len(state["rules"]) == 1 and len(state["schedules"]) == 1
    assert state["routes"] == ["POST /orders"]
    assert state["reserved"] == 5 and state["url"] == ["AWS_IAM"]
    assert state["retention"] == [("/aws/lambda/app-orders", 14), ("/aws/lambda/app-thumbs", 14)]
    # the permissions family added what the others asked for, before they wired
    assert {sid.split("-")[1] for sid in state["orders_sids"]} == {"user", "http"}
    assert {sid.split("-")[1] for sid in state["thumbs_sids"]} == {"s3", "sns", "eventbridge"}
    phases = [op for op, _ in first.recorder.calls if op in ("lambda.AddPermission",
                                                              "s3.PutBucketNotificationConfiguration")]
    assert phases.index("s3.PutBucketNotificationConfiguration") > max(
        i for i, op in enumerate(phases) if op == "lambda.AddPermission"), "permissions first, then the wiring"

    wired.aws.lambda_.add_permission(FunctionName=wired.function_name("thumbs"), Qualifier=ALIAS,
                                     StatementId=FOREIGN_SID, Action="lambda:InvokeFunction",
                                     Principal="events.amazonaws.com")
    again = wired.deploy()
    assert again.writes == 0, again.counts
    plan = wired.run("plan")
    assert plan.code == 0, plan.stdout + plan.stderr

    wired.wiring = {}
    wired.project_lines = wired.project_lines[:1]  # no log_retention_days either
    wired.write().deploy()
    state = _state(wired)
    assert state["mappings"] == [] and state["s3"] == [] and state["sns"] == []
    assert state["rules"] == [] and state["schedules"] == [] and state["routes"] == []
    assert state["reserved"] is None and state["url"] == []
    assert state["retention"] == [("/aws/lambda/app-orders", None), ("/aws/lambda/app-thumbs", None)], \
        "retention lbuild set is removed; the log groups (and their logs) stay"
    assert state["orders_sids"] == set() and state["thumbs_sids"] == {FOREIGN_SID}
    assert state["s3_foreign"] == [FOREIGN_ENTRY], "someone else's notification is kept"
    assert wired.deploy().writes == 0
