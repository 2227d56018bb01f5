"""``lbuild deploy`` wiring SQS, Kinesis and DynamoDB event source mappings, against moto in server mode.

The CLI runs in-process (``run_cli`` of test_deploy.py), and every boto3 call lbuild makes is recorded with its
parameters, so the tests count writes and read sweeps exactly. moto stores an alias-qualified FunctionName as
the alias's current version (``...:shop-orders:1``) and omits settings left at their defaults; the second
deploys below prove lbuild's normalisation absorbs both (zero writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_deploy import Run, RunCli
from tests.integration.test_iam_policy import _allowed, _needed
from tests.support.moto_server import ACCOUNT, REGION, MotoAws

FUNCTION = "shop-orders"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"


@dataclass
class Shop:
    """A one-function project (no requirements) whose triggers each test writes."""

    root: Path
    aws: MotoAws
    run_cli: RunCli

    def write(self, *triggers: str, timeout: int = 10) -> None:
        source = self.root / "functions" / "orders"
        source.mkdir(parents=True, exist_ok=True)
        (source / "app.py").write_text("def handler(event, context):\n    return None\n", encoding="utf-8")
        lines = ["[project]", 'name = "shop"', 'runtime = "python3.12"', f'region = "{REGION}"', 'alias = "live"',
                 f'role = "{self.aws.role_arn}"', f"timeout = {timeout}", "",
                 "[functions.orders]", 'handler = "app.handler"', 'source = "functions/orders"']
        for trigger in triggers:
            lines += ["", "[[functions.orders.triggers]]", trigger.strip()]
        (self.root / "lbuild.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(self, *args: str) -> Run:
        return self.run_cli(self.root, *args)

    def deploy(self) -> Run:
        result = self.run("deploy", "--yes", "--json")
        assert result.code == 0, result.stdout + result.stderr
        return result

    def mappings(self) -> list[dict[str, Any]]:
        found = self.aws.lambda_.list_event_source_mappings()["EventSourceMappings"]
        return [m for m in found if m["FunctionArn"].split(":")[6] == FUNCTION]

    def mapping(self, source: str) -> dict[str, Any]:
        (found,) = [m for m in self.mappings() if m["EventSourceArn"] == source]
        return found

    def wiring_tag(self) -> str:
        tags = self.aws.lambda_.list_tags(Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}")["Tags"]
        return " ".join(v for k, v in sorted(tags.items()) if k.startswith("lbuild:wiring"))


@pytest.fixture()
def shop(tmp_path: Path, aws_env: MotoAws, run_cli: RunCli) -> Shop:
    sqs = aws_env.client("sqs")
    sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "120"})
    sqs.create_queue(QueueName="audit", Attributes={"VisibilityTimeout": "120"})
    aws_env.client("kinesis").create_stream(StreamName="clicks", ShardCount=1)
    return Shop(tmp_path / "shop", aws_env, run_cli)


def _writes(run: Run) -> list[str]:
    return [op for op, _ in run.recorder.calls if not op.split(".")[1].startswith(("Get", "List", "Describe"))]


def _policy_allows(*runs: Run) -> None:
    """templates/iam-policy.json lets a deploy identity make every call these runs made (GetCallerIdentity needs
    no permission: AWS allows it to every identity)."""
    missing = sorted(_needed(*runs) - _allowed() - {"sts:GetCallerIdentity"})
    assert missing == [], f"templates/iam-policy.json lacks {missing}"


def _sqs(*extra: str) -> str:
    return "\n".join([f'sqs = "{QUEUE_ARN}"', *extra])


def _kinesis(position: str, *extra: str) -> str:
    return "\n".join([f'kinesis = "{STREAM_ARN}"', f'starting_position = "{position}"', *extra])


# --- create, update in place, second deploy ----------------------------------------------------------------


def test_sqs_mapping_is_created_updated_in_place_and_a_second_deploy_writes_nothing(shop: Shop) -> None:
    shop.write(_sqs("batch_size = 10", "max_concurrency = 5", "report_batch_item_failures = true",
                    """filters = ['{ "body" : { "kind": ["order"] } }']"""))
    first = shop.deploy()
    created = shop.mapping(QUEUE_ARN)
    assert created["BatchSize"] == 10
    assert created["ScalingConfig"] == {"MaximumConcurrency": 5}
    assert created["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert created["FilterCriteria"] == {"Filters": [{"Pattern": '{"body":{"kind":["order"]}}'}]}
    (create,) = first.params("lambda.CreateEventSourceMapping")
    assert create["FunctionName"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}:live"
    assert f"sqs={QUEUE_ARN}" in shop.wiring_tag()
    assert first.counts["lambda.ListEventSourceMappings"] == 1, "one sweep, not one call per function"
    assert first.counts["sqs.GetQueueAttributes"] == 1

    again = shop.deploy()
    assert _writes(again) == [], again.counts
    assert again.json()["changes"] == 0
    assert again.counts["lambda.ListEventSourceMappings"] == 1

    shop.write(_sqs("batch_size = 100", "batching_window = 5", "max_concurrency = 5",
                    "report_batch_item_failures = true", """filters = ['{"body": {"kind": ["order"]}}']"""))
    plan = shop.run("plan")
    assert plan.code == 10, plan.stderr
    assert "sqs orders: batch_size 10 -> 100, batching_window 0 -> 5: updated in place" in plan.stderr
    assert _writes(plan) == []
    updated = shop.deploy()
    assert _writes(updated) == ["lambda.UpdateEventSourceMapping"]
    _policy_allows(first, again, plan, updated)
    (update,) = updated.params("lambda.UpdateEventSourceMapping")
    assert update == {"UUID": created["UUID"], "BatchSize": 100, "MaximumBatchingWindowInSeconds": 5}
    now = shop.mapping(QUEUE_ARN)
    assert (now["UUID"], now["BatchSize"], now["MaximumBatchingWindowInSeconds"]) == (created["UUID"], 100, 5)
    assert _writes(shop.deploy()) == []


def test_new_code_moves_the_alias_and_leaves_the_mapping_alone(shop: Shop) -> None:
    """moto keeps the alias's version in FunctionArn (``:1``) while the alias moves on: still no mapping write."""
    shop.write(_sqs())
    shop.deploy()
    assert shop.mapping(QUEUE_ARN)["FunctionArn"].endswith(f"{FUNCTION}:1")
    (shop.root / "functions" / "orders" / "app.py").write_text("def handler(event, context):\n    return 2\n")
    result = shop.deploy()
    assert "lambda.UpdateAlias" in _writes(result)
    assert [op for op in _writes(result) if "EventSourceMapping" in op] == []


def test_a_disabled_mapping_and_a_cleared_setting_are_updates(shop: Shop) -> None:
    shop.write(_sqs("max_concurrency = 5"))
    shop.deploy()
    shop.write(_sqs("enabled = false"))
    result = shop.deploy()
    (update,) = result.params("lambda.UpdateEventSourceMapping")
    assert update["Enabled"] is False and update["ScalingConfig"] == {}
    assert shop.mapping(QUEUE_ARN)["State"] == "Disabled"
    assert _writes(shop.deploy()) == []


# --- replace ----------------------------------------------------------------------------------------------


def test_kinesis_mapping_is_replaced_when_starting_position_changes(shop: Shop) -> None:
    shop.write(_kinesis("TRIM_HORIZON", "retries = 3", "bisect_on_error = true", "parallelization = 2",
                        f'on_failure = "{QUEUE_ARN}"'))
    shop.deploy()
    old = shop.mapping(STREAM_ARN)
    assert (old["StartingPosition"], old["MaximumRetryAttempts"], old["ParallelizationFactor"]) == \
        ("TRIM_HORIZON", 3, 2)
    assert old["DestinationConfig"] == {"OnFailure": {"Destination": QUEUE_ARN}}
    assert _writes(shop.deploy()) == [], "moto's omitted defaults compare equal to AWS's"

    shop.write(_kinesis("LATEST", "retries = 3", "bisect_on_error = true", "parallelization = 2",
                        f'on_failure = "{QUEUE_ARN}"'))
    plan = shop.run("plan")
    assert "kinesis clicks: replace: starting_position cannot be updated (TRIM_HORIZON -> LATEST)" in plan.stderr
    result = shop.deploy()
    assert _writes(result) == ["lambda.DeleteEventSourceMapping", "lambda.CreateEventSourceMapping"]
    new = shop.mapping(STREAM_ARN)
    assert new["UUID"] != old["UUID"] and new["StartingPosition"] == "LATEST"
    assert new["MaximumRetryAttempts"] == 3
    _policy_allows(plan, result)
    assert _writes(shop.deploy()) == []


def test_a_kinesis_mapping_at_a_timestamp_round_trips(shop: Shop) -> None:
    """moto does not return StartingPositionTimestamp: a second deploy still plans nothing."""
    shop.write(_kinesis("AT_TIMESTAMP", "starting_timestamp = 2026-12-01T00:00:00Z"))
    first = shop.deploy()
    (create,) = first.params("lambda.CreateEventSourceMapping")
    assert create["StartingPosition"] == "AT_TIMESTAMP"
    assert create["StartingPositionTimestamp"] == "<datetime>"  # the recorder's placeholder for a datetime
    assert shop.mapping(STREAM_ARN)["StartingPosition"] == "AT_TIMESTAMP"
    assert _writes(shop.deploy()) == []


# --- delete, and what lbuild does not own ---------------------------------------------------------------------


def test_removed_trigger_is_deleted_and_a_foreign_mapping_is_left_alone(shop: Shop) -> None:
    shop.write(_sqs(), _kinesis("LATEST"))
    shop.deploy()
    audit = f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit"
    foreign = shop.aws.lambda_.create_event_source_mapping(EventSourceArn=audit, FunctionName=FUNCTION)["UUID"]
    assert _writes(shop.deploy()) == [], "a mapping lbuild did not record is not lbuild's to change"

    shop.write(_sqs())
    plan = shop.run("plan")
    assert "kinesis clicks: delete mapping" in plan.stderr and "no longer in lbuild.toml" in plan.stderr
    result = shop.deploy()
    assert _writes(result) == ["lambda.DeleteEventSourceMapping", "lambda.TagResource"]
    assert {m["EventSourceArn"] for m in shop.mappings()} == {QUEUE_ARN, audit}
    assert shop.mapping(audit)["UUID"] == foreign
    assert f"kinesis={STREAM_ARN}" not in shop.wiring_tag() and f"sqs={QUEUE_ARN}" in shop.wiring_tag()
    _policy_allows(plan, result)

    shop.write()  # no triggers at all: lbuild removes its own, still never the foreign one
    shop.deploy()
    assert [m["UUID"] for m in shop.mappings()] == [foreign]
    assert _writes(shop.deploy()) == []


def test_a_mapping_on_a_source_lbuild_toml_names_is_adopted_not_duplicated(shop: Shop) -> None:
    shop.write()
    shop.deploy()
    existing = shop.aws.lambda_.create_event_source_mapping(EventSourceArn=QUEUE_ARN, FunctionName=FUNCTION,
                                                            BatchSize=10)["UUID"]
    shop.write(_sqs("batch_size = 5"))
    result = shop.deploy()
    assert _writes(result) == ["lambda.UpdateEventSourceMapping", "lambda.TagResource"]
    (update,) = result.params("lambda.UpdateEventSourceMapping")
    assert update == {"UUID": existing, "BatchSize": 5,
                      "FunctionName": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}:live"}
    assert [m["UUID"] for m in shop.mappings()] == [existing]
    assert f"sqs={QUEUE_ARN}" in shop.wiring_tag()
    assert _writes(shop.deploy()) == []


def test_a_dynamodb_stream_mapping_round_trips(shop: Shop) -> None:
    table = shop.aws.client("dynamodb").create_table(
        TableName="carts", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    stream = table["TableDescription"]["LatestStreamArn"]
    shop.write(f'dynamodb = "{stream}"\nstarting_position = "TRIM_HORIZON"\nmax_record_age = 3600\n'
               "tumbling_window = 60")
    shop.deploy()
    got = shop.mapping(stream)
    assert (got["StartingPosition"], got["MaximumRecordAgeInSeconds"], got["TumblingWindowInSeconds"]) == \
        ("TRIM_HORIZON", 3600, 60)
    assert _writes(shop.deploy()) == []


# --- plan-time checks against the queue ----------------------------------------------------------------------


def test_visibility_timeout_below_the_function_timeout_is_exit_5_and_nothing_is_written(shop: Shop) -> None:
    shop.aws.client("sqs").create_queue(QueueName="slow", Attributes={"VisibilityTimeout": "5"})
    shop.write(f'sqs = "arn:aws:sqs:{REGION}:{ACCOUNT}:slow"')
    result = shop.run("deploy", "--yes")
    assert result.code == 5, result.stderr
    assert "error: queue slow visibility timeout 5 s is less than the timeout 10 s of function orders" in result.stderr
    assert "lbuild.toml:13, key functions.orders.triggers[0]" in result.stderr
    assert "hint: raise the queue's VisibilityTimeout to at least 60 s" in result.stderr
    assert _writes(result) == []
    assert shop.aws.lambda_.list_functions()["Functions"] == []


def test_visibility_timeout_under_six_times_the_timeout_is_a_warning(shop: Shop) -> None:
    shop.aws.client("sqs").create_queue(QueueName="tight", Attributes={"VisibilityTimeout": "30"})
    shop.write(f'sqs = "arn:aws:sqs:{REGION}:{ACCOUNT}:tight"')
    assert shop.run("package").code == 0
    plan = shop.run("plan")
    assert plan.code == 10, plan.stderr
    assert ("= sqs tight queue: unchanged: warning: queue tight visibility timeout 30 s is under 6 x the function "
            "timeout 10 s + batching window (60 s)") in plan.stderr
    shop.deploy()
    assert shop.mapping(f"arn:aws:sqs:{REGION}:{ACCOUNT}:tight")["BatchSize"] == 10


def test_a_queue_that_does_not_exist_is_exit_2_naming_the_trigger(shop: Shop) -> None:
    shop.write(f'sqs = "arn:aws:sqs:{REGION}:{ACCOUNT}:missing"')
    result = shop.run("deploy", "--yes")
    assert result.code == 2, result.stderr
    assert f"error: queue arn:aws:sqs:{REGION}:{ACCOUNT}:missing does not exist" in result.stderr
    assert "key functions.orders.triggers[0]" in result.stderr
    assert _writes(result) == []

