"""The push family (S3, SNS, EventBridge triggers), pure parts: lbuild.toml parsing and every validation
message, normalisation, identity and names, the S3 document merge (property-tested: foreign entries and
EventBridgeConfiguration kept, idempotent), the overlap rule, planning against a given live state, tokens
and grants."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.errors import ConfigError, LimitError
from lbuild.steps import Unchanged
from lbuild.wiring import push, push_events, push_s3, push_sns
from lbuild.wiring.core import UNWIRE, WIRE, Target
from lbuild.wiring.model import Grant, Wiring
from lbuild.wiring.push_events import EventBridgeTrigger
from lbuild.wiring.push_s3 import Entry, S3Trigger
from lbuild.wiring.push_sns import SnsTrigger
from tests.unit.test_config import config_text, fail, line_of, load, where

TOPIC = "arn:aws:sns:eu-west-1:123456789012:orders"
ACCOUNT = "123456789012"


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    from tests.unit.test_config import make_function

    make_function(tmp_path)
    make_function(tmp_path, "other")
    return tmp_path


def _text(*tables: str, other: str = "") -> str:
    """The base config with ``[[functions.hello.triggers]]`` tables (and ones of function other)."""
    body = "".join(f"\n[[functions.hello.triggers]]\n{t}" for t in tables)
    if other:
        body += '\n[functions.other]\nhandler = "app.handler"\nsource = "functions/other"\n' + \
                f"\n[[functions.other.triggers]]\n{other}"
    return config_text(extra=body)


def _triggers(site: Path, *tables: str) -> tuple[Any, ...]:
    return load(site, _text(*tables)).function("hello").wiring.triggers


def _refused(site: Path, text: str, needle: str, key: str, kind: type[ConfigError | LimitError] = ConfigError
             ) -> ConfigError | LimitError:
    err = fail(site, text, kind)
    assert err.where == where(site, line_of(text, needle), key)
    return err  # type: ignore[return-value]


# --- parsing ------------------------------------------------------------------------------------------------


def test_s3_trigger_defaults_and_keys(site: Path) -> None:
    (plain, filtered) = _triggers(site, 's3 = "shop-uploads"\n',
                                  's3 = "shop-uploads"\nprefix = "in/"\nsuffix = ".jpg"\n'
                                  'events = ["s3:ObjectRestore:Post", "s3:ObjectRemoved:*", "s3:ObjectRestore:Post"]\n')
    assert isinstance(plain, S3Trigger) and plain.source == "shop-uploads"
    assert plain.events == ("s3:ObjectCreated:*",) and plain.prefix == plain.suffix == ""
    assert filtered.events == ("s3:ObjectRemoved:*", "s3:ObjectRestore:Post")
    assert (filtered.prefix, filtered.suffix) == ("in/", ".jpg")
    assert plain.identity() != filtered.identity(), "prefix and suffix are part of an S3 trigger's identity"


def test_sns_and_eventbridge_triggers(site: Path) -> None:
    sns, table, text = _triggers(
        site, f'sns = "{TOPIC}"\nfilter_policy = {{ kind = ["refund", "order"] }}\n',
        'eventbridge = { "detail-type" = ["paid"], source = ["shop"] }\n',
        'eventbridge = \'{"source": ["shop"],   "detail-type": ["paid"]}\'\nbus = "orders"\n')
    assert isinstance(sns, SnsTrigger) and sns.filter() == ('{"kind":["order","refund"]}', "MessageAttributes")
    assert isinstance(table, EventBridgeTrigger) and table.source == '{"detail-type":["paid"],"source":["shop"]}'
    assert text.source == table.source and (table.bus, text.bus) == ("default", "orders")
    assert table.identity() != text.identity(), "the bus is part of the identity"


@pytest.mark.parametrize(("table", "needle", "key", "what", "hint"), [
    ('s3 = "arn:aws:s3:::shop-uploads"\n', "s3 =", "s3", "s3 trigger takes a bucket name, not "
     "'arn:aws:s3:::shop-uploads'", 'write s3 = "shop-uploads"'),
    ('s3 = "Shop_Uploads"\n', "s3 =", "s3", "'Shop_Uploads' is not a valid S3 bucket name",
     "bucket names are 3-63 lower-case letters, digits, '.' and '-'"),
    ('s3 = "shop-uploads"\nevents = ["s3:ObjectCreated:Puts"]\n', "events", "events",
     "'s3:ObjectCreated:Puts' is not an S3 event type", "did you mean 's3:ObjectCreated:Put'?"),
    ('s3 = "shop-uploads"\nevents = []\n', "events", "events", "s3 trigger events is empty",
     'e.g. events = ["s3:ObjectCreated:*"]'),
    ('s3 = "shop-uploads"\nfilter = "x"\n', "filter", "filter", "unknown key 'filter'", None),
    ('s3 = "shop-uploads"\nbus = "x"\n', "bus", "bus", "unknown key 'bus'", None),
    ('sns = "orders"\n', "sns =", "sns", "'orders' is not an SNS topic ARN",
     'write the topic ARN, e.g. sns = "arn:aws:sns:eu-west-1:123456789012:orders"'),
    (f'sns = "{TOPIC}.fifo"\n', "sns =", "sns", f"Lambda cannot subscribe to the FIFO topic {TOPIC}.fifo",
     "subscribe an SQS FIFO queue to it and trigger the function from that queue"),
    (f'sns = "{TOPIC}"\nfilter_policy = "{{nope"\n', "filter_policy", "filter_policy",
     "sns filter_policy is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
     'write it as a table: filter_policy = { kind = ["refund"] }'),
    (f'sns = "{TOPIC}"\nfilter_policy = {{}}\n', "filter_policy", "filter_policy",
     "sns filter_policy must be a non-empty table", 'filter_policy = { kind = ["refund"] }'),
    (f'sns = "{TOPIC}"\nfilter_policy_scope = "MessageBody"\n', "filter_policy_scope", "filter_policy_scope",
     "filter_policy_scope without filter_policy", "add filter_policy = { ... }, or remove filter_policy_scope"),
    (f'sns = "{TOPIC}"\nfilter_policy = {{ a = ["b"] }}\nfilter_policy_scope = "Body"\n', "filter_policy_scope",
     "filter_policy_scope", "filter_policy_scope 'Body' is not one of MessageAttributes, MessageBody",
     'use "MessageAttributes" (the default) or "MessageBody"'),
    ('eventbridge = "{nope"\n', "eventbridge", "eventbridge",
     "eventbridge pattern is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
     None),
    ("eventbridge = {}\n", "eventbridge", "eventbridge", "eventbridge pattern must be a non-empty object", None),
    ("eventbridge = 3\n", "eventbridge", "eventbridge",
     "eventbridge must be an event pattern (a table, or a JSON string)", None),
    ('eventbridge = { source = ["a"] }\nbus = "no spaces"\n', "bus", "bus", "'no spaces' is not an event bus name",
     'use the bus name (letters, digits, ".", "-", "_", "/"), e.g. bus = "orders"'),
])
def test_validation_messages(site: Path, table: str, needle: str, key: str, what: str, hint: str | None) -> None:
    text = _text(table)
    err = _refused(site, text, needle, f"functions.hello.triggers[0].{key}")
    assert err.what == what
    if hint is not None:
        assert err.hint == hint


def test_a_long_event_pattern_is_a_limit_error(site: Path) -> None:
    text = _text(f'eventbridge = {{ source = ["{"x" * 2100}"] }}\n')
    err = _refused(site, text, "eventbridge", "functions.hello.triggers[0].eventbridge", LimitError)
    assert err.exit_code == 5
    assert err.what == "eventbridge pattern is 2115 characters; EventBridge takes at most 2048"


def test_a_long_prefix_is_refused(site: Path) -> None:
    text = _text(f's3 = "shop-uploads"\nprefix = "{"p" * 1025}"\n')
    err = _refused(site, text, "prefix", "functions.hello.triggers[0].prefix")
    assert err.what == "s3 trigger prefix is 1025 bytes; S3 takes at most 1024"


def test_the_same_topic_twice_in_a_function_is_refused(site: Path) -> None:
    text = _text(f'sns = "{TOPIC}"\n', f'sns = "{TOPIC}"\n')
    err = fail(site, text)
    assert err.what == "triggers 0 and 1 of function hello are the same sns orders"


# --- overlap (S3 refuses ambiguous rules) --------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ((["s3:ObjectCreated:*"], "", ""), (["s3:ObjectCreated:Put"], "in/", ".jpg"), True),
    ((["s3:ObjectCreated:*"], "in/", ""), (["s3:ObjectCreated:Put"], "out/", ""), False),
    ((["s3:ObjectCreated:*"], "in/", ".jpg"), (["s3:ObjectCreated:*"], "in/", ".png"), False),
    ((["s3:ObjectCreated:*"], "in/", "jpg"), (["s3:ObjectCreated:*"], "in/a", ".jpg"), True),
    ((["s3:ObjectCreated:*"], "", ""), (["s3:ObjectRemoved:*"], "", ""), False),
    ((["s3:ObjectCreated:Put"], "", ""), (["s3:ObjectCreated:Post"], "", ""), False),
])
def test_overlaps(a: tuple[list[str], str, str], b: tuple[list[str], str, str], overlap: bool) -> None:
    assert push_s3.overlaps(*a, *b) is overlap
    assert push_s3.overlaps(*b, *a) is overlap


def test_two_functions_overlapping_on_one_bucket_are_refused_at_parse(site: Path) -> None:
    text = _text('s3 = "shop-uploads"\nprefix = "in/"\n', other='s3 = "shop-uploads"\nprefix = "in/x"\n')
    err = fail(site, text)
    first = where(site, line_of(text, "[[functions.hello.triggers]]"), "functions.hello.triggers[0]")
    assert err.what == (f"s3 trigger of function other on bucket shop-uploads overlaps function hello's at {first}: "
                        "both match the same keys for the same event type")
    assert err.where == where(site, line_of(text, "[[functions.other.triggers]]"), "functions.other.triggers[0]")
    assert err.hint.startswith("S3 refuses overlapping prefixes")  # type: ignore[union-attr]


def test_disjoint_triggers_on_one_bucket_are_fine(site: Path) -> None:
    text = _text('s3 = "shop-uploads"\nprefix = "in/"\n', other='s3 = "shop-uploads"\nprefix = "out/"\n')
    project = load(site, text)
    assert len(project.function("other").wiring.triggers) == 1


# --- the S3 document ----------------------------------------------------------------------------------------

_names = st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)
_rules = st.lists(st.fixed_dictionaries({"Name": st.sampled_from(["Prefix", "prefix", "Suffix", "suffix"]),
                                         "Value": _names}), max_size=2)
_foreign_lambda = st.fixed_dictionaries({
    "Id": _names.map(lambda n: f"team-{n}"),
    "LambdaFunctionArn": _names.map(lambda n: f"arn:aws:lambda:x:1:function:{n}"),
    "Events": st.lists(st.sampled_from(push_s3.s3_events()), min_size=1, max_size=3),
}, optional={"Filter": _rules.map(lambda r: {"Key": {"FilterRules": r}})})
_queue = st.fixed_dictionaries({"Id": _names, "QueueArn": _names.map(lambda n: f"arn:aws:sqs:x:1:{n}"),
                                "Events": st.just(["s3:ObjectRemoved:*"])})
_documents = st.fixed_dictionaries({}, optional={
    "LambdaFunctionConfigurations": st.lists(_foreign_lambda, max_size=3),
    "QueueConfigurations": st.lists(_queue, max_size=2),
    "TopicConfigurations": st.lists(_queue.map(lambda q: {"Id": q["Id"], "TopicArn": q["QueueArn"],
                                                          "Events": q["Events"]}), max_size=2),
    "EventBridgeConfiguration": st.just({}),
    "ResponseMetadata": st.just({"HTTPStatusCode": 200}),
})
_event_sets = st.lists(st.sampled_from(push_s3.s3_events()), min_size=1).map(lambda e: tuple(sorted(set(e))))
_entries = st.lists(st.builds(Entry, _names.map(lambda n: f"lbuild-shop-fn-{n}"),
                              st.just("arn:aws:lambda:x:1:function:f"), _event_sets, _names, st.just("")),
                    max_size=3, unique_by=lambda e: e.id)


@settings(max_examples=200, deadline=None)
@given(document=_documents, wanted=_entries, drop=st.lists(_names.map(lambda n: f"lbuild-shop-fn-{n}"), max_size=3))
def test_merge_keeps_every_foreign_entry_and_is_idempotent(document: dict[str, Any], wanted: list[Entry],
                                                           drop: list[str]) -> None:
    merged = push_s3.merge(document, wanted, drop)
    assert "ResponseMetadata" not in merged
    for section in ("QueueConfigurations", "TopicConfigurations", "EventBridgeConfiguration"):
        assert merged.get(section) == document.get(section), f"{section} kept verbatim"
    foreign = [e for e in document.get("LambdaFunctionConfigurations", [])]
    assert [e for e in merged.get("LambdaFunctionConfigurations", []) if e["Id"].startswith("team-")] == foreign
    assert {push_s3.entry_from_aws(e) for e in merged.get("LambdaFunctionConfigurations", [])
            if e["Id"].startswith("lbuild-")} == set(wanted)
    assert push_s3.merge(merged, wanted, drop) == merged, "merging again changes nothing"
    assert push_s3.lost(merged, wanted, drop) == []
    json.dumps(merged)  # what PutBucketNotificationConfiguration is given is plain data


@settings(max_examples=100, deadline=None)
@given(entries=_entries, spelling=st.sampled_from([str.lower, str.title, str.upper]))
def test_s3_and_lbuild_spellings_of_an_entry_normalise_equal(entries: list[Entry], spelling: Any) -> None:
    for entry in entries:
        raw = entry.to_aws()
        for rule in raw.get("Filter", {}).get("Key", {}).get("FilterRules", []):
            rule["Name"] = spelling(rule["Name"])
        raw["Events"] = list(reversed(raw["Events"]))
        assert push_s3.entry_from_aws(raw) == entry


def test_lost_names_what_a_concurrent_writer_took() -> None:
    ours = Entry("lbuild-shop-a-00000000", "arn:f", ("s3:ObjectCreated:*",), "in/")
    assert push_s3.lost({}, [ours], []) == ["lbuild-shop-a-00000000 (missing)"]
    changed = {"LambdaFunctionConfigurations": [replace(ours, prefix="x/").to_aws()]}
    assert push_s3.lost(changed, [ours], []) == ["lbuild-shop-a-00000000 (changed)"]
    stale = {"LambdaFunctionConfigurations": [replace(ours, id="lbuild-shop-a-11111111").to_aws()]}
    assert push_s3.lost(stale, [], ["lbuild-shop-a-11111111"]) == ["lbuild-shop-a-11111111 (still there)"]


# --- planning against a live state (pure) -------------------------------------------------------------------


def _target(key: str = "thumbs", *triggers: Any, recorded: frozenset[str] = frozenset(),
            qualifier: str | None = "live") -> Target:
    return Target(key, f"shop-{key}", "shop", "eu-west-1", ACCOUNT, qualifier, 30, "python3.12", "Zip", 512,
                  Wiring(tuple(triggers)), recorded)


S3 = S3Trigger("shop-uploads", "lbuild.toml:9, key functions.thumbs.triggers[0]", None, ("s3:ObjectCreated:*",),
               "in/")
FOREIGN = {"QueueConfigurations": [{"Id": "q", "QueueArn": "arn:aws:sqs:x:1:q", "Events": ["s3:ObjectRemoved:*"]}],
           "EventBridgeConfiguration": {}}


def test_s3_plan_adds_then_is_unchanged_then_removes() -> None:
    target = _target("thumbs", S3)
    (step,) = push_s3.plan([target], {"shop-uploads": FOREIGN})
    assert isinstance(step, push_s3.PutBucketNotifications) and step.phase == WIRE
    ident = f"lbuild-shop-thumbs-{S3.digest}"
    assert step.describe() == f"s3 shop-uploads: add notification {ident} (1 other notifications kept)"
    merged = push_s3.merge(FOREIGN, step.wanted, step.drop)
    assert merged["EventBridgeConfiguration"] == {} and merged["QueueConfigurations"] == FOREIGN["QueueConfigurations"]
    assert merged["LambdaFunctionConfigurations"][0]["LambdaFunctionArn"] == target.arn

    (same,) = push_s3.plan([target], {"shop-uploads": merged})
    assert isinstance(same, Unchanged) and not same.writes

    gone = _target("thumbs", recorded=frozenset({"s3=shop-uploads"}))
    (removal,) = push_s3.plan([gone], {"shop-uploads": merged})
    assert isinstance(removal, push_s3.UnwireBucketNotifications) and removal.phase == UNWIRE
    assert push_s3.merge(merged, removal.wanted, removal.drop) == FOREIGN


def test_s3_plan_leaves_lookalike_ids_of_other_functions_and_projects_alone() -> None:
    target = _target("a", recorded=frozenset({"s3=shop-uploads"}))
    lookalikes = {"LambdaFunctionConfigurations": [
        {"Id": "lbuild-shop-a-b-12345678", "LambdaFunctionArn": "arn:aws:lambda:eu-west-1:1:function:shop-a-b",
         "Events": ["s3:ObjectCreated:*"]},  # function a-b of project shop
        {"Id": "lbuild-shop-a-12345678", "LambdaFunctionArn": "arn:aws:lambda:eu-west-1:1:function:elsewhere",
         "Events": ["s3:ObjectCreated:*"]},  # right Id shape, another function
    ]}
    assert push_s3.plan([target], {"shop-uploads": lookalikes}) == []


def test_s3_overlap_with_a_foreign_entry_names_it() -> None:
    foreign = {"LambdaFunctionConfigurations": [{"Id": "theirs", "LambdaFunctionArn": "arn:x",
                                                 "Events": ["s3:ObjectCreated:Put"]}]}
    with pytest.raises(ConfigError) as info:
        push_s3.plan([_target("thumbs", S3)], {"shop-uploads": foreign})
    assert info.value.what == ("s3 trigger on bucket shop-uploads overlaps its notification theirs, which lbuild "
                               "does not manage")
    assert info.value.where == S3.where


def test_sns_plan_subscribe_filter_unsubscribe() -> None:
    trigger = SnsTrigger(TOPIC, "w", None, '{"kind":["refund"]}', None)
    target = _target("notify", trigger)
    (subscribe,) = push_sns.plan([target], {TOPIC: []})
    assert isinstance(subscribe, push_sns.Subscribe) and subscribe.endpoint == target.arn
    assert (subscribe.policy, subscribe.scope) == ('{"kind":["refund"]}', "MessageAttributes")
    live = push_sns.Subscription("arn:sub", TOPIC, target.arn, *push_sns.normal_filter('{ "kind": [ "refund" ] }',
                                                                                      "MessageAttributes"))
    (same,) = push_sns.plan([target], {TOPIC: [live]})
    assert isinstance(same, Unchanged)
    (change,) = push_sns.plan([target], {TOPIC: [replace(live, policy=None, scope=None)]})
    assert isinstance(change, push_sns.SetFilterPolicy)
    assert change.describe() == 'sns orders: filter policy none -> {"kind":["refund"]} on MessageAttributes'
    # the qualifier moved: the old subscription goes (it was recorded), a new one comes
    moved = replace(live, arn="arn:old", endpoint=target.function_arn)
    steps = push_sns.plan([replace(target, recorded=frozenset({f"sns={TOPIC}"}))], {TOPIC: [moved]})
    assert [type(s).__name__ for s in steps] == ["Unsubscribe", "Subscribe"]
    # not recorded: someone else's subscription of the same function is left alone
    assert [type(s).__name__ for s in push_sns.plan([target], {TOPIC: [moved]})] == ["Subscribe"]
    (unsubscribe,) = push_sns.plan([_target("notify", recorded=frozenset({f"sns={TOPIC}"}))], {TOPIC: [live]})
    assert isinstance(unsubscribe, push_sns.Unsubscribe) and unsubscribe.phase == UNWIRE


@settings(max_examples=100, deadline=None)
@given(policy=st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True),
                              st.lists(st.one_of(st.text(max_size=4), st.integers()), min_size=1, max_size=4),
                              min_size=1, max_size=4), data=st.data())
def test_a_filter_policy_or_pattern_in_any_order_and_spacing_normalises_equal(policy: dict[str, list[Any]],
                                                                           data: st.DataObject) -> None:
    shuffled = {k: data.draw(st.permutations(v)) for k, v in data.draw(st.permutations(list(policy.items())))}
    spaced = json.dumps(shuffled, indent=data.draw(st.sampled_from([None, 1, 4])))
    assert push_events.canonical_text(spaced) == push_events.canonical(policy)
    assert push_sns.normal_filter(spaced, None) == push_sns.normal_filter(push_events.canonical(policy),
                                                                          "MessageAttributes")


def test_eventbridge_names_plan_and_delete() -> None:
    trigger = EventBridgeTrigger('{"source":["shop"]}', "w")
    target = _target("orders", trigger)
    name = push_events.rule_name(target, trigger)
    assert name == f"lbuild-shop-orders-{trigger.digest}"
    long_target = replace(target, key="k" * 80)
    assert len(push_events.rule_name(long_target, trigger)) == 64
    assert push_events.rule_name(long_target, trigger) != push_events.rule_name(replace(target, key="k" * 81), trigger)
    (create,) = push_events.plan([target], {"default": []})
    assert isinstance(create, push_events.PutRule) and create.create and create.describe() == \
        f"eventbridge {trigger.digest}: create rule {name}"
    live = push_events.Rule(name, "default", push_events.canonical_text('{"source": ["shop"]}'), "ENABLED",
                            {"lbuild": target.arn})
    assert isinstance(push_events.plan([target], {"default": [live]})[0], Unchanged)
    (disabled,) = push_events.plan([target], {"default": [replace(live, state="DISABLED")]})
    assert isinstance(disabled, push_events.PutRule) and disabled.rule and not disabled.target_
    assert disabled.reason == "state DISABLED -> ENABLED"
    stranger = push_events.Rule("lbuild-shop-x-1", "default", None, "ENABLED", {"lbuild": "arn:aws:lambda:x"})
    (delete,) = push_events.plan([_target("orders", recorded=frozenset({"eventbridge=default"}))],
                                 {"default": [live, stranger]})
    assert isinstance(delete, push_events.DeleteRule) and delete.name == name and delete.phase == UNWIRE


# --- tokens and grants --------------------------------------------------------------------------------------


def test_tokens_and_grants() -> None:
    other_s3 = replace(S3, prefix="out/")
    rule = EventBridgeTrigger('{"source":["shop"]}', "w", None, "orders")
    target = _target("thumbs", S3, other_s3, SnsTrigger(TOPIC, "w"), rule)
    assert push.tokens(target) == {"s3=shop-uploads", f"sns={TOPIC}", "eventbridge=orders"}
    name = push_events.rule_name(target, rule)
    assert push.grants(target) == [
        Grant("s3", "s3.amazonaws.com", "arn:aws:s3:::shop-uploads", ACCOUNT),  # one per bucket
        Grant("sns", "sns.amazonaws.com", TOPIC),
        Grant("eventbridge", "events.amazonaws.com", f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/orders/{name}"),
    ]
    default_bus = replace(rule, bus="default")
    assert push_events.grants(_target("t", default_bus))[0].source_arn == \
        f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/{push_events.rule_name(_target('t'), default_bus)}"
    assert push.grants(_target("none")) == [] and push.tokens(_target("none")) == set()


def test_apply_keeps_the_eventbridge_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts EventBridgeConfiguration but never returns it (research A3), so this read-merge-write-check
    runs against botocore's Stubber: the exact document written keeps it, with the foreign queue."""
    from botocore.stub import Stubber

    from lbuild.publisher.aws import Aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    target = _target("thumbs", S3)
    (step,) = push_s3.plan([target], {"shop-uploads": FOREIGN})
    assert isinstance(step, push_s3.PutBucketNotifications)
    written = {**FOREIGN, "LambdaFunctionConfigurations": [e.to_aws() for e in step.wanted]}
    aws = Aws()
    stub = Stubber(aws.client("s3", "eu-west-1"))
    stub.add_response("get_bucket_notification_configuration", FOREIGN, {"Bucket": "shop-uploads"})
    stub.add_response("put_bucket_notification_configuration", {},
                      {"Bucket": "shop-uploads", "NotificationConfiguration": written})
    stub.add_response("get_bucket_notification_configuration", written, {"Bucket": "shop-uploads"})
    with stub:
        assert push_s3.apply_put(aws, "eu-west-1", step) == "1 lbuild entries, 0 other function entries kept"
    stub.assert_no_pending_responses()


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    from tests.unit.test_config import PROJECT, make_function

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("#### Asynchronous triggers"):]
    block = section[section.index("```toml\n") + 8:section.index("```\n", section.index("```toml"))]
    functions = ""
    for name in ("thumbs", "notify"):
        make_function(tmp_path, name)
        functions += f'[functions.{name}]\nhandler = "app.handler"\nsource = "functions/{name}"\n\n'
    project = load(tmp_path, PROJECT + "\n" + functions + block)
    (s3,) = project.function("thumbs").wiring.triggers
    sns, rule = project.function("notify").wiring.triggers
    assert isinstance(s3, S3Trigger) and (s3.prefix, s3.suffix) == ("incoming/", ".jpg")
    assert isinstance(sns, SnsTrigger) and sns.filter() == ('{"kind":["refund"]}', "MessageBody")
    assert isinstance(rule, EventBridgeTrigger) and rule.id == "placed" and rule.bus == "default"


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.text("ab", max_size=3), min_size=4, max_size=4),
       keys=st.lists(st.text("ab", max_size=7), max_size=30))
def test_overlap_is_exactly_some_key_matching_both_rules(parts: list[str], keys: list[str]) -> None:
    """Two rules overlap iff one object key matches both (the longer prefix followed by the longer suffix
    always does); so no key ever matches two rules lbuild calls disjoint."""
    prefix_a, suffix_a, prefix_b, suffix_b = parts
    events = ["s3:ObjectCreated:*"]

    def both(key: str) -> bool:
        return all(key.startswith(p) and key.endswith(s) for p, s in ((prefix_a, suffix_a), (prefix_b, suffix_b)))

    witness = max(prefix_a, prefix_b, key=len) + max(suffix_a, suffix_b, key=len)
    overlap = push_s3.overlaps(events, prefix_a, suffix_a, events, prefix_b, suffix_b)
    assert overlap == both(witness)
    if not overlap:
        assert not any(both(k) for k in keys)


def test_a_numeric_range_keeps_its_order() -> None:
    pattern = {"detail": {"n": [{"numeric": [">=", 0, "<", 10]}, 3]}, "source": ["b", "a"]}
    assert push_events.canonical(pattern) == '{"detail":{"n":[3,{"numeric":[">=",0,"<",10]}]},"source":["a","b"]}'
