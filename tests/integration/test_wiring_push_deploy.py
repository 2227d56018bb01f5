"""S3, SNS and EventBridge triggers deployed against moto in server mode on 127.0.0.1.

The demo project of test_deploy gets ``[[functions.NAME.triggers]]`` tables appended; each test deploys,
changes lbuild.toml, deploys again and looks at the fake AWS with ordinary boto3 clients. moto does not
check the Lambda permission S3, SNS and EventBridge need (the permissions family adds it), nor S3's overlap
rule; those are unit tests (tests/unit/test_wiring_push.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_deploy import ALIAS, REPO, Demo, Run
from tests.support.moto_server import ACCOUNT, REGION

BUCKET = "shop-uploads"
FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:demo"
#: Someone else's entries on the bucket: lbuild must keep them as they are.
#: (moto takes only lower-case filter rule names; AWS answers "Prefix")
FOREIGN_QUEUE = {"Id": "audit-queue", "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit",
                 "Events": ["s3:ObjectRemoved:*"]}
FOREIGN_LAMBDA = {"Id": "other-team", "LambdaFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:other",
                  "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [{"Name": "prefix",
                                                                                       "Value": "other/"}]}}}
IAM_ACTIONS = {"s3.GetBucketNotificationConfiguration": "s3:GetBucketNotification",
               "s3.PutBucketNotificationConfiguration": "s3:PutBucketNotification"}
PUSH_WRITES = ("s3.PutBucketNotificationConfiguration", "sns.Subscribe", "sns.SetSubscriptionAttributes",
               "sns.Unsubscribe", "eventbridge.PutRule",
               "eventbridge.PutTargets", "eventbridge.RemoveTargets", "eventbridge.DeleteRule")


def _policy_allows(*runs: Run) -> None:
    """templates/iam-policy.json allows every S3-notification, SNS and EventBridge call of ``runs``."""
    policy = json.loads((REPO / "templates" / "iam-policy.json").read_text(encoding="utf-8"))
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    ops = {op for run in runs for op, _ in run.recorder.calls}
    needed = {IAM_ACTIONS.get(op, op.replace("eventbridge.", "events.").replace(".", ":", 1)) for op in ops
              if op.startswith(("sns.", "eventbridge.")) or "BucketNotification" in op}
    assert needed and not needed - allowed, f"templates/iam-policy.json lacks {sorted(needed - allowed)}"


def _triggers(demo: Demo, text: str) -> None:
    """The demo's lbuild.toml with ``text`` (trigger tables) appended."""
    demo.write()
    with (demo.root / "lbuild.toml").open("a", encoding="utf-8") as out:
        out.write("\n" + text)


def _push_writes(run: Run) -> dict[str, int]:
    return {op: n for op, n in run.counts.items() if op in PUSH_WRITES}


def _document(demo: Demo) -> dict[str, Any]:
    raw = demo.aws.s3.get_bucket_notification_configuration(Bucket=BUCKET)
    return {k: v for k, v in raw.items() if k != "ResponseMetadata"}


def _normal(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with its filter rule names in lower case (S3 answers Prefix for prefix)."""
    out = dict(entry)
    if "Filter" in out:
        out["Filter"] = {"Key": {"FilterRules": sorted(({"Name": r["Name"].lower(), "Value": r["Value"]}
                                                        for r in out["Filter"]["Key"]["FilterRules"]),
                                                       key=lambda r: r["Name"])}}
    return out


@pytest.fixture()
def bucket(demo: Demo) -> str:
    """The bucket, with a foreign queue notification and another team's function entry."""
    demo.aws.create_bucket(BUCKET)
    demo.aws.client("sqs").create_queue(QueueName="audit")
    demo.aws.s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [FOREIGN_QUEUE],
                                                  "LambdaFunctionConfigurations": [FOREIGN_LAMBDA]})
    return BUCKET


def _foreign_kept(demo: Demo) -> None:
    document = _document(demo)
    assert [_normal(q) for q in document["QueueConfigurations"]] == [_normal(FOREIGN_QUEUE)]
    others = [e for e in document.get("LambdaFunctionConfigurations", []) if not e["Id"].startswith("lbuild-")]
    assert [_normal(e) for e in others] == [_normal(FOREIGN_LAMBDA)]


def _ours(demo: Demo) -> list[dict[str, Any]]:
    return [_normal(e) for e in _document(demo).get("LambdaFunctionConfigurations", [])
            if e["Id"].startswith("lbuild-")]


def test_s3_create_update_delete_keeps_foreign_entries(demo: Demo, bucket: str) -> None:
    _triggers(demo, f'[[functions.orders.triggers]]\ns3 = "{bucket}"\nprefix = "incoming/"\nsuffix = ".jpg"\n')
    first = demo.deploy()
    assert _push_writes(first) == {"s3.PutBucketNotificationConfiguration": 1}
    ours = _ours(demo)
    assert len(ours) == 1 and ours[0]["Id"].startswith("lbuild-demo-orders-")
    assert ours[0]["LambdaFunctionArn"] == f"{FN}-orders:{ALIAS}"
    assert ours[0]["Events"] == ["s3:ObjectCreated:*"]
    assert ours[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"},
                                                       {"Name": "suffix", "Value": ".jpg"}]
    _foreign_kept(demo)
    tags = demo.aws.lambda_.list_tags(Resource=f"{FN}-orders")["Tags"]
    assert f"s3={bucket}" in tags["lbuild:wiring"].split()

    again = demo.deploy()
    assert again.writes == 0, again.counts

    # events changed: the same entry (its Id is the identity: bucket, prefix, suffix) updated in place
    _triggers(demo, f'[[functions.orders.triggers]]\ns3 = "{bucket}"\nprefix = "incoming/"\nsuffix = ".jpg"\n'
                    'events = ["s3:ObjectCreated:Post", "s3:ObjectCreated:Put"]\n')
    plan = demo.run("plan")
    assert plan.code == 10, plan.stderr
    assert f"s3 {bucket}: update notification {ours[0]['Id']} (2 other notifications kept)" \
        in plan.stderr + plan.stdout
    updated = demo.deploy()
    assert _push_writes(updated) == {"s3.PutBucketNotificationConfiguration": 1}
    assert [(e["Id"], e["Events"]) for e in _ours(demo)] == \
        [(ours[0]["Id"], ["s3:ObjectCreated:Post", "s3:ObjectCreated:Put"])]
    _foreign_kept(demo)

    # a second function on the bucket, disjoint prefix: one write for the bucket
    _triggers(demo, f'[[functions.orders.triggers]]\ns3 = "{bucket}"\nprefix = "incoming/"\nsuffix = ".jpg"\n'
                    'events = ["s3:ObjectCreated:Post", "s3:ObjectCreated:Put"]\n'
                    f'[[functions.users.triggers]]\ns3 = "{bucket}"\nprefix = "users/"\n')
    both = demo.deploy()
    assert _push_writes(both) == {"s3.PutBucketNotificationConfiguration": 1}
    assert both.counts["s3.GetBucketNotificationConfiguration"] == 3, "plan, just before the write, after it"
    assert sorted(e["LambdaFunctionArn"] for e in _ours(demo)) == [f"{FN}-orders:{ALIAS}", f"{FN}-users:{ALIAS}"]
    noop = demo.deploy()
    assert noop.writes == 0 and noop.counts["s3.GetBucketNotificationConfiguration"] == 1, "once per bucket"

    # removed from lbuild.toml: lbuild's entries go, the foreign ones stay
    demo.write()
    removed = demo.deploy()
    assert _push_writes(removed) == {"s3.PutBucketNotificationConfiguration": 1}
    assert _ours(demo) == []
    _foreign_kept(demo)
    assert "lbuild:wiring" not in demo.aws.lambda_.list_tags(Resource=f"{FN}-orders")["Tags"]
    assert demo.deploy().writes == 0
    _policy_allows(first, updated, removed)


def test_s3_concurrent_writer_replacing_the_document_is_exit_6(demo: Demo, bucket: str) -> None:
    """Another writer puts its own document between lbuild's write and lbuild's re-read: lbuild says what
    was lost and exits 6 (the hook writes just before the third GetBucketNotificationConfiguration: plan,
    the late re-read, the check)."""
    _triggers(demo, f'[[functions.orders.triggers]]\ns3 = "{bucket}"\nprefix = "in/"\n')
    gets = []

    def other_writer(event_name: str, **_: Any) -> None:
        if event_name == "before-call.s3.GetBucketNotificationConfiguration":
            gets.append(1)
            if len(gets) == 3:
                demo.aws.s3.put_bucket_notification_configuration(
                    Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [FOREIGN_QUEUE]})

    result = demo.run("deploy", "--yes", before_call=(other_writer,))
    assert result.code == 6, result.stderr
    assert "another writer changed the notification configuration of bucket shop-uploads" in result.stderr
    assert "lbuild-demo-orders-" in result.stderr and "(missing)" in result.stderr
    assert "lbuild:wiring" not in demo.aws.lambda_.list_tags(Resource=f"{FN}-orders")["Tags"]


def test_s3_overlap_with_a_foreign_entry_is_refused_before_any_write(demo: Demo, bucket: str) -> None:
    _triggers(demo, f'[[functions.orders.triggers]]\ns3 = "{bucket}"\nprefix = "other/x"\n')
    result = demo.run("deploy", "--yes")
    assert result.code == 2, result.stderr
    assert "s3 trigger on bucket shop-uploads overlaps its notification other-team" in result.stderr
    assert "lbuild.toml:" in result.stderr and "functions.orders.triggers[0]" in result.stderr
    assert _push_writes(result) == {} and result.writes == 0 and demo.functions() == set(), "nothing written"


def test_sns_subscribe_filter_update_and_unsubscribe(demo: Demo) -> None:
    sns = demo.aws.client("sns")
    topic = sns.create_topic(Name="orders")["TopicArn"]
    other = sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=f"{FN}-foreign",
                          ReturnSubscriptionArn=True)["SubscriptionArn"]
    _triggers(demo, f'[[functions.orders.triggers]]\nsns = "{topic}"\n')
    first = demo.deploy()
    assert _push_writes(first) == {"sns.Subscribe": 1}

    def ours() -> list[dict[str, str]]:
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        return [sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"]
                for s in subs if s["Endpoint"].startswith(f"{FN}-orders")]

    assert [a["Endpoint"] for a in ours()] == [f"{FN}-orders:{ALIAS}"]
    assert "FilterPolicy" not in ours()[0]
    assert demo.deploy().writes == 0

    _triggers(demo, f'[[functions.orders.triggers]]\nsns = "{topic}"\nfilter_policy = {{ kind = ["refund", "b"] }}\n')
    plan = demo.run("plan")
    assert plan.code == 10, plan.stderr
    assert 'sns orders: filter policy none -> {"kind":["b","refund"]} on MessageAttributes' in plan.stdout + plan.stderr
    filtered = demo.deploy()
    assert _push_writes(filtered) == {"sns.SetSubscriptionAttributes": 1}
    (attributes,) = ours()
    assert json.loads(attributes["FilterPolicy"]) == {"kind": ["b", "refund"]}
    assert demo.deploy().writes == 0, "the filter policy read back compares equal"

    _triggers(demo, f'[[functions.orders.triggers]]\nsns = "{topic}"\nfilter_policy = \'{{"n": [{{"numeric": '
                    '[">", 5]}]}\'\nfilter_policy_scope = "MessageBody"\n')
    body = demo.deploy()
    assert _push_writes(body) == {"sns.SetSubscriptionAttributes": 2}
    (attributes,) = ours()
    assert attributes["FilterPolicyScope"] == "MessageBody"
    assert demo.deploy().writes == 0

    demo.write()
    gone = demo.deploy()
    assert _push_writes(gone) == {"sns.Unsubscribe": 1}
    assert ours() == []
    remaining = [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]
    assert remaining == [other]
    assert demo.deploy().writes == 0
    _policy_allows(first, filtered, body, gone)


def test_eventbridge_rule_create_pattern_update_replace_and_delete(demo: Demo) -> None:
    events = demo.aws.client("events")
    events.put_rule(Name="lbuild-demo-someone-else", EventPattern='{"source": ["x"]}')  # not targeting us
    events.create_event_bus(Name="orders")
    _triggers(demo, '[[functions.orders.triggers]]\neventbridge = { source = ["shop.orders"] }\nid = "placed"\n'
                    '[[functions.users.triggers]]\neventbridge = \'{"source": ["shop.users"]}\'\nbus = "orders"\n')
    first = demo.deploy()
    assert _push_writes(first) == {"eventbridge.PutRule": 2, "eventbridge.PutTargets": 2}

    def ours(bus: str = "default") -> dict[str, tuple[Any, list[str]]]:
        found = events.list_rules(NamePrefix="lbuild-demo-", EventBusName=bus)["Rules"]
        return {r["Name"]: (json.loads(r["EventPattern"]),
                            [t["Arn"] for t in events.list_targets_by_rule(Rule=r["Name"], EventBusName=bus)
                             ["Targets"]]) for r in found if r["Name"] != "lbuild-demo-someone-else"}

    (name, (pattern, arns)), = ours().items()
    assert name.startswith("lbuild-demo-orders-") and len(name) <= 64
    assert pattern == {"source": ["shop.orders"]} and arns == [f"{FN}-orders:{ALIAS}"]
    ((users_rule, (users_pattern, _)),) = ours("orders").items()
    assert users_rule.startswith("lbuild-demo-users-") and users_pattern == {"source": ["shop.users"]}
    assert "eventbridge=orders" in demo.aws.lambda_.list_tags(Resource=f"{FN}-users")["Tags"]["lbuild:wiring"]
    assert demo.deploy().writes == 0

    # a fixed id: the pattern changes in place (PutRule on the same name, the target stays)
    # without one: the identity is the pattern, so a new rule replaces the old
    _triggers(demo, '[[functions.orders.triggers]]\neventbridge = { source = ["shop.orders"], "detail-type" = '
                    '["placed", "paid"] }\nid = "placed"\n'
                    '[[functions.users.triggers]]\neventbridge = \'{"source": ["shop.users2"]}\'\nbus = "orders"\n')
    changed = demo.deploy()
    assert _push_writes(changed) == {"eventbridge.PutRule": 2, "eventbridge.PutTargets": 1,
                                     "eventbridge.RemoveTargets": 1, "eventbridge.DeleteRule": 1}
    assert ours() == {name: ({"detail-type": ["paid", "placed"], "source": ["shop.orders"]},
                             [f"{FN}-orders:{ALIAS}"])}
    ((new_rule, (new_pattern, _)),) = ours("orders").items()
    assert new_rule != users_rule and new_pattern == {"source": ["shop.users2"]}
    assert demo.deploy().writes == 0

    demo.write()
    gone = demo.deploy()
    assert _push_writes(gone) == {"eventbridge.RemoveTargets": 2, "eventbridge.DeleteRule": 2}
    assert ours() == {} and ours("orders") == {}
    assert [r["Name"] for r in events.list_rules(NamePrefix="lbuild-demo-")["Rules"]] == ["lbuild-demo-someone-else"]
    assert demo.deploy().writes == 0
    _policy_allows(first, changed, gone)


@pytest.mark.parametrize(("table", "what"), [
    (f'sns = "arn:aws:sns:{REGION}:{ACCOUNT}:nope"\n', f"SNS topic arn:aws:sns:{REGION}:{ACCOUNT}:nope does not exist"),
    ('s3 = "no-such-bucket"\n', f"bucket no-such-bucket does not exist (or is not in {REGION})"),
    ('eventbridge = { source = ["x"] }\nbus = "nope"\n', f"event bus nope does not exist in {REGION}"),
])
def test_a_missing_source_is_a_config_error_before_any_write(demo: Demo, table: str, what: str) -> None:
    _triggers(demo, f"[[functions.orders.triggers]]\n{table}")
    result = demo.run("deploy", "--yes")
    assert result.code == 2, result.stderr
    assert f"error: {what} (" in result.stderr
    assert "functions.orders.triggers[0]" in result.stderr
    assert _push_writes(result) == {} and result.writes == 0 and demo.functions() == set(), "nothing written"
