"""``permissions = [...]`` deployed against moto in server mode: statements added on the alias, a change is a new
Sid added and the old one removed, a foreign statement is kept, the 20 KB refusal writes nothing, a second
deploy writes nothing.

moto accepts a duplicate StatementId where AWS answers ResourceConflictException (research note A3), so the
retried-add path is tested with botocore's Stubber (the last test says so too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from lbuild.errors import AwsError
from lbuild.publisher.aws import Aws
from lbuild.wiring import permissions
from lbuild.wiring.model import Grant
from lbuild.wiring.permissions import AddPermission
from tests.integration.test_iam_policy import _allowed, _needed
from tests.support.moto_server import ACCOUNT, MotoAws
from tests.support.wired_project import ALIAS, WiredProject

SNS = f"arn:aws:sns:eu-west-1:{ACCOUNT}:audit"
FOREIGN = "manual-partner"


@pytest.fixture()
def wired(tmp_path: Path, aws_env: MotoAws, run_cli: Any) -> WiredProject:
    return WiredProject(tmp_path / "wired", aws_env, run_cli)


def _perms(*entries: str) -> str:
    return f"permissions = [{', '.join(entries)}]"


def _policy(wired: WiredProject) -> dict[str, dict[str, Any]]:
    """Sid -> statement of the alias's policy."""
    try:
        text = wired.aws.lambda_.get_policy(FunctionName=wired.function_name(), Qualifier=ALIAS)["Policy"]
    except wired.aws.lambda_.exceptions.ResourceNotFoundException:
        return {}
    return {s["Sid"]: s for s in json.loads(text)["Statement"]}


def _sid(principal: str, source_arn: str | None = None) -> str:
    return Grant("user", principal, source_arn).sid(ALIAS)


def test_permissions_are_added_changed_and_removed_by_sid_and_a_foreign_statement_is_kept(
        wired: WiredProject) -> None:
    wired.wiring = {"orders": _perms(f'{{ principal = "sns.amazonaws.com", source_arn = "{SNS}" }}',
                                     '{ principal = "210987654321" }')}
    first = wired.write().deploy()
    sns_sid, account_sid = _sid("sns.amazonaws.com", SNS), _sid("210987654321")
    policy = _policy(wired)
    assert set(policy) == {sns_sid, account_sid}
    assert policy[sns_sid]["Condition"] == {"ArnLike": {"AWS:SourceArn": SNS}}
    assert first.counts["lambda.AddPermission"] == 2
    assert {p["Qualifier"] for p in first.params("lambda.AddPermission")} == {ALIAS}
    tags = wired.aws.lambda_.list_tags(Resource=wired.aws.lambda_.get_function(
        FunctionName=wired.function_name())["Configuration"]["FunctionArn"])["Tags"]
    assert tags["lbuild:wiring"] == f"policy={ALIAS}"

    wired.aws.lambda_.add_permission(FunctionName=wired.function_name(), Qualifier=ALIAS, StatementId=FOREIGN,
                                     Action="lambda:InvokeFunction", Principal="events.amazonaws.com")
    again = wired.deploy()
    assert again.writes == 0, again.counts
    assert again.counts["lambda.GetPolicy"] == 1
    plan = wired.run("plan")
    assert plan.code == 0, plan.stderr

    wired.wiring = {"orders": _perms(f'{{ principal = "sns.amazonaws.com", source_arn = "{SNS}" }}',
                                     '{ principal = "210987654322" }')}
    changed = wired.write().deploy()
    new_sid = _sid("210987654322")
    assert set(_policy(wired)) == {sns_sid, new_sid, FOREIGN}
    assert [p["StatementId"] for p in changed.params("lambda.AddPermission")] == [new_sid]
    assert [p["StatementId"] for p in changed.params("lambda.RemovePermission")] == [account_sid]
    assert changed.writes == 2, changed.counts

    wired.wiring = {}
    removed = wired.write().deploy()
    assert set(_policy(wired)) == {FOREIGN}, "lbuild's statements go, the foreign one stays"
    assert sorted(p["StatementId"] for p in removed.params("lambda.RemovePermission")) == sorted([sns_sid, new_sid])
    assert wired.deploy().writes == 0
    # GetCallerIdentity (the account id, for a function that does not exist yet) needs no IAM permission
    missing = sorted(_needed(first, again, changed, removed) - _allowed() - {"sts:GetCallerIdentity"})
    assert missing == [], f"templates/iam-policy.json lacks {missing}"


def test_an_alias_change_adds_on_the_new_alias_and_removes_from_the_old(wired: WiredProject) -> None:
    wired.wiring = {"orders": _perms('{ principal = "210987654321" }')}
    wired.write().deploy()
    wired.aws.lambda_.add_permission(FunctionName=wired.function_name(), Qualifier=ALIAS, StatementId=FOREIGN,
                                     Action="lambda:InvokeFunction", Principal="events.amazonaws.com")
    (wired.root / "lbuild.toml").write_text((wired.root / "lbuild.toml").read_text().replace(
        f'alias = "{ALIAS}"', 'alias = "prod"'))
    moved = wired.deploy()
    assert [(p["Qualifier"], p["StatementId"]) for p in moved.params("lambda.AddPermission")] == \
        [("prod", Grant("user", "210987654321").sid("prod"))]
    assert [(p["Qualifier"], p["StatementId"]) for p in moved.params("lambda.RemovePermission")] == \
        [(ALIAS, _sid("210987654321"))]
    statements = json.loads(wired.aws.lambda_.get_policy(FunctionName=wired.function_name())["Policy"])["Statement"]
    assert {(s["Sid"], s["Resource"].rsplit(":", 1)[1]) for s in statements} == {
        (Grant("user", "210987654321").sid("prod"), "prod"), (FOREIGN, ALIAS)}, "the foreign one stays on live"
    tags = wired.aws.lambda_.get_function(FunctionName=wired.function_name())["Tags"]
    assert tags["lbuild:wiring"] == "policy=prod"
    assert wired.deploy().writes == 0


def _topics(n: int) -> str:
    return _perms(*(f'{{ principal = "sns.amazonaws.com", source_arn = "arn:aws:sns:eu-west-1:{ACCOUNT}:'
                    f'topic-with-a-rather-long-name-{i:04d}" }}' for i in range(n)))


def test_a_policy_over_20_kb_is_refused_with_exit_5_before_anything_is_written(wired: WiredProject) -> None:
    wired.wiring = {"orders": _topics(120)}
    refused = wired.write().run("deploy", "--yes")
    assert refused.code == 5, refused.stderr
    assert "error: the resource policy of function orders (wired-orders:live) would be about " in refused.stderr
    assert "over Lambda's limit of 20480" in refused.stderr
    assert "lbuild.toml:" in refused.stderr and "key functions.orders.permissions[0]" in refused.stderr
    assert refused.writes == 0 and not wired.aws.lambda_.list_functions()["Functions"]

    wired.wiring = {"orders": _topics(2)}
    wired.write().deploy()
    for i in range(60):  # someone else's statements fill most of the policy
        wired.aws.lambda_.add_permission(FunctionName=wired.function_name(), Qualifier=ALIAS,
                                         StatementId=f"{FOREIGN}-{i}", Action="lambda:InvokeFunction",
                                         Principal="sns.amazonaws.com",
                                         SourceArn=f"arn:aws:sns:eu-west-1:{ACCOUNT}:foreign-{i:04d}-" + "x" * 120)
    before = _policy(wired)
    wired.wiring = {"orders": _topics(40)}
    (wired.root / "functions" / "orders" / "app.py").write_text("def handler(e, c):\n    return 2\n")
    again = wired.write().run("deploy", "--yes")
    assert again.code == 5, again.stderr
    assert "statements, over Lambda's limit of 20480" in again.stderr
    assert again.writes == 0, "refused at plan time: not even the new code went out"
    assert _policy(wired) == before


def test_a_retried_add_whose_first_attempt_landed_is_done_and_a_real_conflict_fails(aws_env: MotoAws) -> None:
    """Stubber: moto accepts a duplicate StatementId (AWS refuses it with ResourceConflictException, research
    note A3), so AWS's answer to a retried AddPermission can only be staged."""
    aws = Aws(region="eu-west-1")
    client = aws.session.client("lambda", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    aws._clients[("lambda", "eu-west-1", True)] = client
    grant = Grant("user", "210987654321")
    step = AddPermission("", "wired-orders", ALIAS, grant.sid(ALIAS), grant)
    policy = json.dumps({"Statement": [{"Sid": step.sid}]})
    with Stubber(client) as stub:
        stub.add_client_error("add_permission", "ResourceConflictException", "The statement id provided exists")
        stub.add_response("get_policy", {"Policy": policy, "RevisionId": "1"},
                          {"FunctionName": "wired-orders", "Qualifier": ALIAS})
        assert permissions.apply_add(aws, "eu-west-1", step) == "already present"
        stub.add_client_error("add_permission", "ResourceConflictException", "An update is in progress")
        stub.add_response("get_policy", {"Policy": json.dumps({"Statement": []}), "RevisionId": "1"})
        with pytest.raises(AwsError) as info:
            permissions.apply_add(aws, "eu-west-1", step)
        assert info.value.code == "ResourceConflictException" and info.value.exit_code == 6
        stub.assert_no_pending_responses()
