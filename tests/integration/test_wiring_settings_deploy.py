"""Execution settings end to end: ``lbuild deploy`` against moto in server mode on 127.0.0.1 (reserved
concurrency, log retention, async config, function URL, LoggingConfig), and botocore Stubber tests for what
moto 5.2.5 cannot do (each says why): GetAccountSettings, provisioned concurrency, alias-qualified URL and
async configs (moto ignores ``Qualifier``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from lbuild.errors import AwsError
from lbuild.publisher import aws as aws_mod
from lbuild.wiring import settings
from lbuild.wiring.core import Target
from lbuild.wiring.model import AsyncSettings, UrlSettings, Wiring
from lbuild.wiring.settings import Live, PutAsyncConfig, PutUrl, SetConcurrency
from tests.integration.test_deploy import ALIAS, FUNCTIONS, Demo, Run
from tests.integration.test_iam_policy import _allowed
from tests.support.moto_server import ACCOUNT, REGION, MotoAws

#: The calls of the settings family (boto3 names CloudWatch Logs ``cloudwatch-logs``; its IAM prefix is ``logs``).
SETTINGS_OPS = {"lambda.GetFunctionConcurrency", "lambda.PutFunctionConcurrency", "lambda.DeleteFunctionConcurrency",
                "lambda.GetFunctionEventInvokeConfig", "lambda.PutFunctionEventInvokeConfig",
                "lambda.DeleteFunctionEventInvokeConfig", "lambda.GetFunctionUrlConfig",
                "lambda.CreateFunctionUrlConfig", "lambda.UpdateFunctionUrlConfig", "lambda.DeleteFunctionUrlConfig",
                "lambda.GetAccountSettings", "lambda.GetProvisionedConcurrencyConfig",
                "cloudwatch-logs.DescribeLogGroups", "cloudwatch-logs.CreateLogGroup",
                "cloudwatch-logs.PutRetentionPolicy", "cloudwatch-logs.DeleteRetentionPolicy"}
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-failed"


def configure(demo: Demo, function: str, *lines: str) -> None:
    """lbuild.toml as the demo writes it, with ``lines`` in ``[functions.<function>]``."""
    demo.write()
    path = demo.root / "lbuild.toml"
    header = f"[functions.{function}]\n"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(header, header + "".join(f"{line}\n" for line in lines)), encoding="utf-8")


def wiring_tag(demo: Demo, name: str) -> str:
    return str(demo.aws.lambda_.get_function(FunctionName=f"demo-{name}")["Tags"].get("lbuild:wiring", ""))


def said(run: Run) -> str:
    """Every step of a ``deploy --json`` with its outcome, one line each: ``what: status: detail``."""
    return "\n".join(f"{s['what']}: {s['status']}: {s['detail']}" for s in run.json()["steps"])


def writes(run: Run) -> dict[str, int]:
    return {op: n for op, n in run.counts.items() if not op.split(".")[1].startswith(aws_mod._READ_PREFIXES)}


def test_a_project_without_settings_deploys_with_the_same_calls(demo: Demo) -> None:
    first = demo.deploy()
    assert not set(first.counts) & SETTINGS_OPS
    for params in first.params("lambda.CreateFunction"):
        assert "SnapStart" not in params and "LoggingConfig" not in params
    demo.memory = {"orders": 512}
    demo.write()
    changed = demo.deploy()
    assert writes(changed) == {"lambda.UpdateFunctionConfiguration": 1, "lambda.PublishVersion": 1,
                               "lambda.UpdateAlias": 1}
    assert set(changed.params("lambda.UpdateFunctionConfiguration")[0]) == {
        "FunctionName", "Runtime", "Handler", "MemorySize", "Timeout", "EphemeralStorage", "Environment",
        "Description", "Role", "Layers", "VpcConfig"}
    assert not set(changed.counts) & SETTINGS_OPS
    assert demo.deploy().writes == 0


def test_reserved_concurrency_set_changed_and_removed(demo: Demo) -> None:
    demo.deploy()
    demo.aws.lambda_.put_function_concurrency(FunctionName="demo-users", ReservedConcurrentExecutions=3)
    configure(demo, "orders", "reserved_concurrency = 5")
    first = demo.deploy()
    assert writes(first) == {"lambda.PutFunctionConcurrency": 1, "lambda.TagResource": 1}
    assert demo.aws.lambda_.get_function_concurrency(FunctionName="demo-orders")["ReservedConcurrentExecutions"] == 5
    assert wiring_tag(demo, "orders") == "reserved"
    assert first.touched("GetFunctionConcurrency") == {"demo-orders"}, "only the function that wants it is read"
    assert "concurrency of demo-orders: reserved none -> 5" in said(first)

    again = demo.deploy()
    assert again.writes == 0 and again.json()["changes"] == 0

    configure(demo, "orders", "reserved_concurrency = 7")
    changed = demo.deploy()
    assert writes(changed) == {"lambda.PutFunctionConcurrency": 1}
    assert changed.params("lambda.PutFunctionConcurrency") == [
        {"FunctionName": "demo-orders", "ReservedConcurrentExecutions": 7}]

    demo.write()  # reserved_concurrency removed from lbuild.toml
    removed = demo.deploy()
    assert writes(removed) == {"lambda.DeleteFunctionConcurrency": 1, "lambda.UntagResource": 1}
    assert "ReservedConcurrentExecutions" not in demo.aws.lambda_.get_function_concurrency(FunctionName="demo-orders")
    assert wiring_tag(demo, "orders") == ""
    assert demo.aws.lambda_.get_function_concurrency(FunctionName="demo-users")["ReservedConcurrentExecutions"] == 3, \
        "a reservation lbuild did not make is left alone"
    assert demo.deploy().writes == 0


def test_a_reservation_lambda_refuses_is_exit_6_with_aws_words(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto enforces the 100-unreserved minimum when MOTO_LAMBDA_CONCURRENCY_QUOTA is set (its server runs in
    this process); it has no GetAccountSettings, so lbuild's own plan-time check is skipped and AWS's refusal
    is what the user sees."""
    demo.deploy()
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "150")
    configure(demo, "orders", "reserved_concurrency = 60")
    result = demo.run("deploy", "--yes")
    assert result.code == 6, result.stderr
    assert "AWS refused PutFunctionConcurrency" in result.stderr
    assert "below its minimum value of [100]" in result.stderr
    assert wiring_tag(demo, "orders") == "", "nothing recorded for a setting that did not go through"


def account_settings(unreserved: int) -> Any:
    """A before-call hook answering GetAccountSettings, which moto 5.2.5 does not implement (404)."""
    def hook(event_name: str, params: Mapping[str, Any], **_: Any) -> Any:
        if event_name != "before-call.lambda.GetAccountSettings":
            return None
        return AWSResponse(params["url"], 200, {}, None), {
            "AccountLimit": {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": unreserved},
            "AccountUsage": {"FunctionCount": 4}}
    return hook


def test_reservations_past_the_account_pool_are_exit_5_before_any_write(demo: Demo) -> None:
    """GetAccountSettings comes from a before-call hook (moto has none); everything else is moto."""
    demo.deploy()
    configure(demo, "orders", "reserved_concurrency = 60")
    path = demo.root / "lbuild.toml"
    line = next(n for n, text in enumerate(path.read_text().splitlines(), start=1)
                if text == "reserved_concurrency = 60")
    refused = demo.run("deploy", "--yes", before_call=(account_settings(159),))
    assert refused.code == 5, refused.stderr
    assert refused.writes == 0
    assert "error: this deploy reserves 60 more concurrency, and the account has 159 unreserved; Lambda keeps at " \
           f"least 100 unreserved ({path.resolve()}:{line}, key functions.orders.reserved_concurrency)" \
           in refused.stderr
    assert "hint: reserve at most 59 more in all" in refused.stderr
    allowed = demo.run("deploy", "--yes", "--json", before_call=(account_settings(160),))
    assert allowed.code == 0, allowed.stderr
    assert allowed.params("lambda.PutFunctionConcurrency") == [
        {"FunctionName": "demo-orders", "ReservedConcurrentExecutions": 60}]


def test_log_retention_creates_the_group_and_is_removed_with_the_key(demo: Demo) -> None:
    logs = demo.aws.client("logs")
    configure(demo, "orders", "log_retention_days = 30")
    first = demo.deploy()
    group = "/aws/lambda/demo-orders"
    assert writes(first)["cloudwatch-logs.CreateLogGroup"] == 1
    assert writes(first)["cloudwatch-logs.PutRetentionPolicy"] == 1
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in found] == [(group, 30)]
    assert wiring_tag(demo, "orders") == "logs"

    again = demo.deploy()
    assert again.writes == 0
    assert again.params("cloudwatch-logs.DescribeLogGroups") == [{"logGroupNamePrefix": "/aws/lambda/demo-"}], \
        "one sweep of the project's groups, not a read per function"

    configure(demo, "orders", "log_retention_days = 7")
    changed = demo.deploy()
    assert writes(changed) == {"cloudwatch-logs.PutRetentionPolicy": 1}, "the group exists: it is not created again"
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 7

    demo.write()
    removed = demo.deploy()
    assert writes(removed) == {"cloudwatch-logs.DeleteRetentionPolicy": 1, "lambda.UntagResource": 1}
    kept = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in kept] == [group] and "retentionInDays" not in kept[0], \
        "the group (and its logs) stays; only the retention lbuild set goes"
    assert demo.deploy().writes == 0


def test_a_custom_log_group_is_created_with_its_retention(demo: Demo) -> None:
    configure(demo, "users", "log_retention_days = 14", 'log_group = "/demo/users"')
    first = demo.deploy()
    assert first.params("cloudwatch-logs.CreateLogGroup") == [{"logGroupName": "/demo/users"}]
    create = next(p for p in first.params("lambda.CreateFunction") if p["FunctionName"] == "demo-users")
    assert create["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/demo/users"}
    assert wiring_tag(demo, "users") == "logs=/demo/users"
    got = demo.aws.client("logs").describe_log_groups(logGroupNamePrefix="/demo/users")["logGroups"]
    assert got[0]["retentionInDays"] == 14


def test_async_config_created_kept_changed_and_deleted(demo: Demo) -> None:
    configure(demo, "orders", f'async = {{ retries = 1, max_age = 3600, on_failure = "{QUEUE}" }}')
    demo.deploy()
    got = demo.aws.lambda_.get_function_event_invoke_config(FunctionName="demo-orders", Qualifier=ALIAS)
    assert (got["MaximumRetryAttempts"], got["MaximumEventAgeInSeconds"]) == (1, 3600)
    assert got["DestinationConfig"]["OnFailure"] == {"Destination": QUEUE}
    assert wiring_tag(demo, "orders") == "async"

    again = demo.deploy()
    assert again.writes == 0
    assert again.params("lambda.GetFunctionEventInvokeConfig") == [{"FunctionName": "demo-orders",
                                                                    "Qualifier": ALIAS}]

    # moto appends every put and answers the first one forever, so only the call is checked here
    configure(demo, "orders", "async = { retries = 0 }")
    changed = demo.deploy()
    assert changed.params("lambda.PutFunctionEventInvokeConfig") == [
        {"FunctionName": "demo-orders", "Qualifier": ALIAS, "MaximumRetryAttempts": 0,
         "MaximumEventAgeInSeconds": 21600, "DestinationConfig": {"OnSuccess": {}, "OnFailure": {}}}]
    assert "async config of demo-orders on live: retries 1 -> 0, max_age 3600 -> 21600" in said(changed)

    demo.write()
    removed = demo.deploy()
    assert writes(removed) == {"lambda.DeleteFunctionEventInvokeConfig": 1, "lambda.UntagResource": 1}
    with pytest.raises(demo.aws.lambda_.exceptions.ResourceNotFoundException):
        demo.aws.lambda_.get_function_event_invoke_config(FunctionName="demo-orders")


def test_function_url_created_updated_and_deleted(demo: Demo) -> None:
    configure(demo, "reports", 'url = { auth = "AWS_IAM" }')
    first = demo.deploy()
    assert first.params("lambda.CreateFunctionUrlConfig") == [
        {"FunctionName": "demo-reports", "AuthType": "AWS_IAM", "InvokeMode": "BUFFERED", "Qualifier": ALIAS}]
    address = demo.aws.lambda_.get_function_url_config(FunctionName="demo-reports")["FunctionUrl"]
    assert address in said(first), "the deploy says where the function answers"
    assert wiring_tag(demo, "reports") == "url"
    assert demo.deploy().writes == 0, "moto's 'Buffered' reads as BUFFERED"

    configure(demo, "reports", 'url = { auth = "AWS_IAM", cors = { allow_origins = ["https://shop.example"], '
                               'allow_methods = ["GET"], max_age = 300 } }')
    changed = demo.deploy()
    assert writes(changed) == {"lambda.UpdateFunctionUrlConfig": 1}
    cors = demo.aws.lambda_.get_function_url_config(FunctionName="demo-reports")["Cors"]
    assert (cors["AllowOrigins"], cors["AllowMethods"], cors["MaxAge"]) == (["https://shop.example"], ["GET"], 300)
    assert demo.deploy().writes == 0

    demo.write()
    removed = demo.deploy()
    assert writes(removed) == {"lambda.DeleteFunctionUrlConfig": 1, "lambda.UntagResource": 1}
    with pytest.raises(demo.aws.lambda_.exceptions.ResourceNotFoundException):
        demo.aws.lambda_.get_function_url_config(FunctionName="demo-reports")


def test_log_format_json_goes_through_the_function_configuration(demo: Demo) -> None:
    """The create carries LoggingConfig; a later change shows in plan as a configuration difference (the update
    itself, which moto cannot keep, is the next test's)."""
    configure(demo, "orders", 'log_format = "JSON"', 'log_level = "WARN"')
    result = demo.deploy()
    creates = {p["FunctionName"]: p for p in result.params("lambda.CreateFunction")}
    assert creates["demo-orders"]["LoggingConfig"] == {"LogFormat": "JSON", "LogGroup": "/aws/lambda/demo-orders",
                                                       "ApplicationLogLevel": "WARN", "SystemLogLevel": "INFO"}
    assert all("LoggingConfig" not in p and "SnapStart" not in p for n, p in creates.items() if n != "demo-orders")
    assert not set(result.counts) & SETTINGS_OPS, "no settings API is read for a configuration-only setting"

    demo.aws.lambda_.delete_function(FunctionName="demo-orders")
    demo.write()
    demo.deploy()  # orders again, without the key
    configure(demo, "orders", 'log_format = "JSON"', 'log_level = "WARN"')
    plan = demo.run("plan", "--json")
    assert plan.code == 10, plan.stderr
    update = [s for s in plan.json()["steps"] if s["action"] == "UpdateConfig"]
    assert [(s["what"], s["reason"]) for s in update] == [
        ("update configuration of demo-orders",
         'log_format Text -> JSON; log_level "" -> WARN; system_log_level "" -> INFO')]


KEPT = ("LoggingConfig", "SnapStart")


@dataclass
class KeepsConfig:
    """A before-call hook: moto's Lambda with the LoggingConfig and SnapStart that moto 5.2.5 drops (it never
    returns a LoggingConfig, and always SnapStart None), kept the way Lambda keeps them: what CreateFunction or
    UpdateFunctionConfiguration sent is $LATEST's (in GetFunction and ListFunctions alike), and a published
    version keeps $LATEST's at the time. With
    SnapStart a new version answers State "Pending", as Lambda's does while it takes the snapshot. Everything
    else is moto's own answer."""

    moto: MotoAws
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def __call__(self, event_name: str, params: Mapping[str, Any], **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        if not event_name.startswith("before-call.lambda."):
            return None
        path = params["url_path"].split("/")
        body = json.loads(params.get("body") or b"{}") if operation in (
            "CreateFunction", "UpdateFunctionConfiguration", "PublishVersion") else {}
        name = body.get("FunctionName") or (path[3] if len(path) > 3 else "")
        if operation in ("CreateFunction", "UpdateFunctionConfiguration") and set(KEPT) & set(body):
            self.latest[name] = {**self.latest.get(name, {}), **{k: body[k] for k in KEPT if k in body}}
            if body.get("Publish"):
                self.versions[(name, "1")] = self.latest[name]
            return None
        lam = self.moto.lambda_
        if operation == "ListFunctions" and self.latest:  # Lambda lists the same LoggingConfig and SnapStart
            listed = lam.list_functions(**{k: v for k, v in (params.get("query_string") or {}).items()})
            for entry in listed["Functions"]:
                self._fill(entry, self.latest.get(entry["FunctionName"]))
            return AWSResponse(params["url"], 200, {}, None), listed
        if name not in self.latest:
            return None
        if operation == "PublishVersion":
            answer = lam.publish_version(FunctionName=name, **{k: v for k, v in body.items() if k != "FunctionName"})
            self.versions[(name, answer["Version"])] = self.latest[name]
            self._fill(answer, self.latest[name])
            if answer.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions":
                answer["State"] = "Pending"
            return AWSResponse(params["url"], 201, {}, None), answer
        if operation not in ("GetFunction", "GetFunctionConfiguration"):
            return None
        qualifier = (params.get("query_string") or {}).get("Qualifier")
        kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        answer = getattr(lam, "get_function" if operation == "GetFunction" else "get_function_configuration")(**kwargs)
        version = qualifier if qualifier is None or qualifier.isdigit() else \
            lam.get_alias(FunctionName=name, Name=qualifier)["FunctionVersion"]
        kept = self.latest[name] if version in (None, "$LATEST") else self.versions.get((name, version))
        self._fill(answer["Configuration"] if operation == "GetFunction" else answer, kept)
        return AWSResponse(params["url"], 200, {}, None), answer

    @staticmethod
    def _fill(configuration: dict[str, Any], kept: Mapping[str, Any] | None) -> None:
        for key, value in (kept or {}).items():
            configuration[key] = dict(value)
            if key == "SnapStart":
                configuration[key]["OptimizationStatus"] = "On" if value["ApplyOn"] == "PublishedVersions" else "Off"


def test_log_format_json_updates_an_existing_function_once(demo: Demo) -> None:
    """The update path end to end (moto's gap filled by KeepsConfig): one configuration update, a version,
    the alias moved; the next deploy writes nothing; removing the keys sends Lambda's defaults back."""
    keeper = KeepsConfig(demo.aws)
    demo.deploy()
    configure(demo, "orders", 'log_format = "JSON"', 'system_log_level = "WARN"')
    result = demo.run("deploy", "--yes", "--json", before_call=(keeper,))
    assert result.code == 0, result.stderr
    assert writes(result) == {"lambda.UpdateFunctionConfiguration": 1, "lambda.PublishVersion": 1,
                              "lambda.UpdateAlias": 1}
    assert result.params("lambda.UpdateFunctionConfiguration")[0]["LoggingConfig"] == {
        "LogFormat": "JSON", "LogGroup": "/aws/lambda/demo-orders", "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "WARN"}
    again = demo.run("deploy", "--yes", "--json", before_call=(keeper,))
    assert again.code == 0 and again.writes == 0, again.counts

    demo.write()
    back = demo.run("deploy", "--yes", "--json", before_call=(keeper,))
    assert back.code == 0, back.stderr
    assert back.params("lambda.UpdateFunctionConfiguration")[0]["LoggingConfig"] == {
        "LogFormat": "Text", "LogGroup": "/aws/lambda/demo-orders"}
    assert demo.run("deploy", "--yes", "--json", before_call=(keeper,)).writes == 0


def test_snap_start_waits_for_the_snapshot_before_the_alias_moves(demo: Demo) -> None:
    """SnapStart added to a function: one configuration update, and the alias moves only once the new version
    is Active (KeepsConfig answers Pending from PublishVersion, as Lambda does while it snapshots)."""
    keeper = KeepsConfig(demo.aws)
    demo.deploy()
    configure(demo, "users", "snap_start = true")
    result = demo.run("deploy", "--yes", "--json", before_call=(keeper,))
    assert result.code == 0, result.stderr
    assert result.params("lambda.UpdateFunctionConfiguration")[0]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    order = [(op, p.get("Qualifier")) for op, p in result.recorder.calls
             if op in ("lambda.PublishVersion", "lambda.GetFunctionConfiguration", "lambda.UpdateAlias")]
    published = order.index(("lambda.PublishVersion", None))
    assert order[published:] == [("lambda.PublishVersion", None), ("lambda.GetFunctionConfiguration", "2"),
                                 ("lambda.UpdateAlias", None)], "the waiter reads version 2 before the alias moves"
    assert demo.run("deploy", "--yes", "--json", before_call=(keeper,)).writes == 0


def test_snap_start_is_sent_with_the_create(demo: Demo) -> None:
    configure(demo, "users", "snap_start = true")
    result = demo.deploy()
    creates = {p["FunctionName"]: p for p in result.params("lambda.CreateFunction")}
    assert creates["demo-users"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert all("SnapStart" not in p for name, p in creates.items() if name != "demo-users")


def test_settings_in_the_plan_of_every_function_the_project_defaults(demo: Demo) -> None:
    demo.write()
    path = demo.root / "lbuild.toml"
    path.write_text(path.read_text().replace("[project]\n", "[project]\nlog_retention_days = 3\n"))
    demo.deploy()
    groups = demo.aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/demo-")["logGroups"]
    assert {g["logGroupName"]: g["retentionInDays"] for g in groups} == {f"/aws/lambda/demo-{n}": 3 for n in FUNCTIONS}


# --- what moto cannot do: botocore Stubber ------------------------------------------------------------------


def _target(w: Wiring, recorded: frozenset[str] = frozenset()) -> Target:
    return Target("orders", "demo-orders", "demo", REGION, ACCOUNT, ALIAS, 10, "python3.12", "zip", 512, w, recorded)


@pytest.fixture()
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[aws_mod.Aws, Stubber]]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
                        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9")):  # never reached: the stubber answers
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws = aws_mod.Aws(region=REGION)
    stubber = Stubber(aws.client("lambda", REGION))
    stubber.activate()
    yield aws, stubber
    stubber.deactivate()


def test_the_account_pool_is_read_and_checked_before_any_write(stubbed: tuple[aws_mod.Aws, Stubber]) -> None:
    """GetAccountSettings: moto 5.2.5 answers 404 (not implemented)."""
    aws, stub = stubbed
    stub.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 10},
                      {"FunctionName": "demo-orders"})
    stub.add_response("get_account_settings", {"AccountLimit": {"ConcurrentExecutions": 1000,
                                                                "UnreservedConcurrentExecutions": 150}}, {})
    target = _target(Wiring(reserved_concurrency=70, where={"reserved_concurrency": "lbuild.toml:7, key x"}),
                     frozenset({"reserved"}))
    live = settings.read(aws, REGION, [target])
    stub.assert_no_pending_responses()
    assert live.unreserved == 150 and live.reserved == {"demo-orders": 10}
    with pytest.raises(Exception) as info:
        settings.plan([target], live)
    assert getattr(info.value, "exit_code", None) == 5
    assert "reserves 60 more concurrency, and the account has 150 unreserved" in str(info.value)


def test_provisioned_concurrency_is_read_on_the_alias_and_lowered_before_the_reservation(
        stubbed: tuple[aws_mod.Aws, Stubber]) -> None:
    """Provisioned concurrency: moto 5.2.5 implements none of its calls."""
    aws, stub = stubbed
    stub.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 20},
                      {"FunctionName": "demo-orders"})
    stub.add_response("get_provisioned_concurrency_config",
                      {"RequestedProvisionedConcurrentExecutions": 10, "Status": "READY"},
                      {"FunctionName": "demo-orders", "Qualifier": ALIAS})
    stub.add_response("get_account_settings", {"AccountLimit": {"UnreservedConcurrentExecutions": 900}}, {})
    target = _target(Wiring(reserved_concurrency=5, provisioned_concurrency=2),
                     frozenset({"reserved", "provisioned"}))
    live = settings.read(aws, REGION, [target])
    steps = settings.plan([target], live)
    assert steps == [SetConcurrency(steps[0].reason, "demo-orders", ALIAS, (20, 5), (10, 2))]
    # lowered: the alias's provisioned concurrency first, or Lambda refuses a reservation below it
    alias = {"FunctionName": "demo-orders", "Name": ALIAS}
    stub.add_response("get_alias", {"Name": ALIAS, "FunctionVersion": "3"}, alias)
    stub.add_response("put_provisioned_concurrency_config", {"Status": "IN_PROGRESS"},
                      {"FunctionName": "demo-orders", "Qualifier": ALIAS, "ProvisionedConcurrentExecutions": 2})
    stub.add_response("put_function_concurrency", {"ReservedConcurrentExecutions": 5},
                      {"FunctionName": "demo-orders", "ReservedConcurrentExecutions": 5})
    settings.apply_concurrency(aws, REGION, steps[0])  # type: ignore[arg-type]
    # raised: the reservation first
    stub.add_response("get_alias", {"Name": ALIAS, "FunctionVersion": "3"}, alias)
    stub.add_response("put_function_concurrency", {"ReservedConcurrentExecutions": 40},
                      {"FunctionName": "demo-orders", "ReservedConcurrentExecutions": 40})
    stub.add_response("put_provisioned_concurrency_config", {"Status": "IN_PROGRESS"},
                      {"FunctionName": "demo-orders", "Qualifier": ALIAS, "ProvisionedConcurrentExecutions": 30})
    detail = settings.apply_concurrency(aws, REGION, SetConcurrency("", "demo-orders", ALIAS, (5, 40), (2, 30)))
    assert detail == "Lambda allocates provisioned concurrency in the background"
    # removed: both deleted, the provisioned concurrency first
    stub.add_response("get_alias", {"Name": ALIAS, "FunctionVersion": "3"}, alias)
    stub.add_response("delete_provisioned_concurrency_config", {},
                      {"FunctionName": "demo-orders", "Qualifier": ALIAS})
    stub.add_response("delete_function_concurrency", {}, {"FunctionName": "demo-orders"})
    settings.apply_concurrency(aws, REGION, SetConcurrency("", "demo-orders", ALIAS, (40, None), (30, None)))
    stub.assert_no_pending_responses()


def test_provisioned_concurrency_waits_while_the_alias_routes_a_canary(stubbed: tuple[aws_mod.Aws, Stubber]) -> None:
    """Provisioned concurrency (moto has none of its calls): Lambda manages none on an alias with a routing
    configuration, so a change waits for the deploy that promotes the canary, and a removal is refused."""
    aws, stub = stubbed
    routed = {"Name": ALIAS, "FunctionVersion": "3", "RoutingConfig": {"AdditionalVersionWeights": {"4": 0.1}}}
    stub.add_response("get_alias", routed, {"FunctionName": "demo-orders", "Name": ALIAS})
    stub.add_response("put_function_concurrency", {"ReservedConcurrentExecutions": 9},
                      {"FunctionName": "demo-orders", "ReservedConcurrentExecutions": 9})
    detail = settings.apply_concurrency(aws, REGION, SetConcurrency("", "demo-orders", ALIAS, (5, 9), (2, 4)))
    assert detail == "provisioned concurrency 4 deferred: alias live routes a canary; the deploy that promotes " \
                     "it applies it"
    stub.add_response("get_alias", routed, {"FunctionName": "demo-orders", "Name": ALIAS})
    with pytest.raises(AwsError) as info:
        settings.apply_concurrency(aws, REGION, SetConcurrency("", "demo-orders", ALIAS, None, (2, None)))
    assert info.value.exit_code == 6
    assert info.value.what == "provisioned concurrency of alias live of demo-orders cannot be removed while the " \
                              "alias routes a canary"
    stub.assert_no_pending_responses()


def test_url_and_async_config_are_read_and_written_on_the_alias(stubbed: tuple[aws_mod.Aws, Stubber]) -> None:
    """Alias-qualified URL and async configs: moto 5.2.5 ignores Qualifier, so only a stub can check that each
    call names the alias (and that an answer for the alias is what the plan compares)."""
    aws, stub = stubbed
    on_alias = {"FunctionName": "demo-orders", "Qualifier": ALIAS}
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:demo-orders:{ALIAS}"
    stub.add_response("get_function_event_invoke_config", {"FunctionArn": arn, "MaximumRetryAttempts": 2,
                                                           "MaximumEventAgeInSeconds": 21600}, on_alias)
    stub.add_client_error("get_function_url_config", "ResourceNotFoundException", "no URL", 404,
                          expected_params=on_alias)
    target = _target(Wiring(async_=AsyncSettings(retries=1), url=UrlSettings("NONE")))
    live = settings.read(aws, REGION, [target])
    assert live == Live(async_={"demo-orders": AsyncSettings(2, 21600)}, url={"demo-orders": None})
    put_async, put_url = settings.plan([target], live)
    assert isinstance(put_async, PutAsyncConfig) and isinstance(put_url, PutUrl)
    stub.add_response("put_function_event_invoke_config", {"FunctionArn": arn},
                      {**on_alias, "MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 21600,
                       "DestinationConfig": {"OnSuccess": {}, "OnFailure": {}}})
    stub.add_response("create_function_url_config",
                      {"FunctionUrl": "https://abc.lambda-url.eu-west-1.on.aws/", "FunctionArn": arn,
                       "AuthType": "NONE", "CreationTime": "2026-12-03T00:00:00Z"},
                      {**on_alias, "AuthType": "NONE", "InvokeMode": "BUFFERED"})
    settings.apply_put_async(aws, REGION, put_async)
    assert settings.apply_put_url(aws, REGION, put_url) == "https://abc.lambda-url.eu-west-1.on.aws/"
    stub.assert_no_pending_responses()
    assert json.dumps([g.sid(ALIAS) for g in settings.grants(target)]).count("lbuild-url-") == 2



# --- templates/iam-policy.json ------------------------------------------------------------------------------


def test_the_policy_allows_every_call_of_the_settings_family(demo: Demo) -> None:
    """Statement LbuildWiringSettings covers what these deploys call (boto3's ``cloudwatch-logs`` is IAM's
    ``logs``); provisioned concurrency, which moto cannot run, is checked by name against the same statement."""
    configure(demo, "orders", "reserved_concurrency = 5", "log_retention_days = 30",
              f'async = {{ on_failure = "{QUEUE}" }}', 'url = { auth = "AWS_IAM" }')
    runs = [demo.deploy(), demo.deploy(), demo.run("plan")]
    configure(demo, "orders", "reserved_concurrency = 6", 'url = { auth = "AWS_IAM", cors = { max_age = 5 } }')
    runs.append(demo.deploy())
    demo.write()
    runs.append(demo.deploy())
    ops = {op for run in runs for op, _ in run.recorder.calls} & SETTINGS_OPS
    assert len(ops) >= 13, sorted(ops)
    needed = {op.replace("cloudwatch-logs.", "logs.").replace(".", ":", 1) for op in ops}
    needed |= {f"lambda:{verb}ProvisionedConcurrencyConfig" for verb in ("Get", "Put", "Delete")}
    missing = sorted(needed - _allowed())
    assert missing == [], f"templates/iam-policy.json lacks {missing}"
