"""Unit tests of the esm wiring family: parsing and every validation message, normalisation (AWS's and moto's
spellings compare equal), identity stability, and the pure planner."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.config import load_project
from lbuild.errors import ConfigError, LbuildError, LimitError
from lbuild.steps import Unchanged
from lbuild.wiring import esm
from lbuild.wiring.core import UNWIRE, WIRE, Target
from lbuild.wiring.esm import (
    CreateMapping,
    DeleteMapping,
    DynamoDbTrigger,
    EsmTrigger,
    KinesisTrigger,
    Live,
    LiveMapping,
    Queue,
    ReplaceMapping,
    SqsTrigger,
    UpdateMapping,
)
from lbuild.wiring.model import Wiring

REGION = "eu-west-1"
ACCOUNT = "123456789012"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
FIFO = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders.fifo"
STREAM = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
TABLE_STREAM = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/carts/stream/2026-12-03T05:45:12.723"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shop-orders"

HEAD = """\
[project]
name = "shop"
runtime = "python3.12"

[functions.orders]
handler = "app.handler"
source = "functions/orders"

[[functions.orders.triggers]]
"""
HEADER_LINE = 9  # the line of [[functions.orders.triggers]]
TRIGGER_LINE = 10  # the line of the first key of the trigger table


def _load(tmp_path: Path, body: str) -> tuple[Any, ...]:
    source = tmp_path / "functions" / "orders"
    source.mkdir(parents=True, exist_ok=True)
    (source / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "lbuild.toml").write_text(HEAD + body)
    return load_project(tmp_path / "lbuild.toml", environ={}).function("orders").wiring.triggers


def _error(tmp_path: Path, body: str) -> LbuildError:
    with pytest.raises(LbuildError) as caught:
        _load(tmp_path, body)
    return caught.value


# --- parsing -------------------------------------------------------------------------------------------------


def test_an_sqs_trigger_with_every_key(tmp_path: Path) -> None:
    (trigger,) = _load(tmp_path, f'sqs = "{QUEUE}"\nbatch_size = 100\nbatching_window = 5\nmax_concurrency = 20\n'
                                 "report_batch_item_failures = true\nenabled = false\n"
                                 """filters = ['{"body": {"kind": ["order"]}}']\nid = "main"\n""")
    assert trigger == SqsTrigger(QUEUE, trigger.where, "main", 100, 5, False, ('{"body": {"kind": ["order"]}}',),
                                 True, 20)
    assert trigger.where.endswith(f"lbuild.toml:{HEADER_LINE}, key functions.orders.triggers[0]")
    assert trigger.label() == "sqs main" and trigger.token == f"sqs={QUEUE}"


def test_stream_triggers_with_every_key(tmp_path: Path) -> None:
    kinesis, dynamodb = _load(tmp_path, f'kinesis = "{STREAM}"\nstarting_position = "AT_TIMESTAMP"\n'
                                        "starting_timestamp = 2026-12-01T00:00:00Z\nbatch_size = 500\n"
                                        "batching_window = 1\nparallelization = 2\nretries = 3\nmax_record_age = -1\n"
                                        "bisect_on_error = true\ntumbling_window = 30\n"
                                        f'on_failure = "{QUEUE}"\nreport_batch_item_failures = true\n'
                                        f'\n[[functions.orders.triggers]]\ndynamodb = "{TABLE_STREAM}"\n'
                                        'starting_position = "TRIM_HORIZON"\n')
    assert isinstance(kinesis, KinesisTrigger) and isinstance(dynamodb, DynamoDbTrigger)
    assert kinesis.starting_timestamp == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert (kinesis.batch_size, kinesis.batching_window, kinesis.parallelization, kinesis.retries,
            kinesis.max_record_age, kinesis.bisect_on_error, kinesis.tumbling_window, kinesis.on_failure) == \
        (500, 1, 2, 3, -1, True, 30, QUEUE)
    assert kinesis.label() == "kinesis clicks"
    assert dynamodb.label() == "dynamodb carts", "a DynamoDB stream is named by its table"
    assert dynamodb.starting_position == "TRIM_HORIZON" and dynamodb.retries is None


def _where(line: int, key: str) -> str:
    return f"lbuild.toml:{line}, key functions.orders.triggers[0]{key}"


#: (trigger table body, error type, message, key the message points at, a phrase of the hint)
INVALID: list[tuple[str, type[LbuildError], str, str, str]] = [
    ('sqs = "orders"', ConfigError, "'orders' is not the ARN of a queue", ".sqs", "arn:aws:sqs:"),
    ('kinesis = "arn:aws:kinesis:eu-west-1:123456789012:clicks"\nstarting_position = "LATEST"', ConfigError,
     "is not the ARN of a kinesis stream", ".kinesis", "stream/clicks"),
    (f'dynamodb = "arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/carts"\nstarting_position = "LATEST"', ConfigError,
     "is not the ARN of a dynamodb stream", ".dynamodb", "LatestStreamArn"),
    (f'sqs = "{QUEUE}"\nbatch_size = 0', LimitError, "sqs trigger batch_size 0 is outside Lambda's range 1-10000",
     ".batch_size", "1-10000"),
    (f'kinesis = "{STREAM}"\nstarting_position = "LATEST"\nbatch_size = 10001', LimitError,
     "kinesis trigger batch_size 10001 is outside Lambda's range 1-10000", ".batch_size", "1-10000"),
    (f'sqs = "{QUEUE}"\nbatch_size = 100', LimitError, "sqs trigger batch_size 100 needs batching_window >= 1",
     ".batch_size", "add batching_window = 1 (seconds), or set batch_size to 10 or less"),
    (f'sqs = "{FIFO}"\nbatch_size = 11\nbatching_window = 1', LimitError,
     "sqs trigger batch_size 11 is over 10, the most a FIFO queue allows", ".batch_size", "10 or less"),
    (f'sqs = "{FIFO}"\nbatching_window = 1', ConfigError, "batching_window is not supported on FIFO queues",
     ".batching_window", "remove batching_window"),
    (f'sqs = "{QUEUE}"\nbatching_window = 301', LimitError,
     "sqs trigger batching_window 301 is outside Lambda's range 0-300", ".batching_window", "0-300"),
    (f'sqs = "{QUEUE}"\nmax_concurrency = 1', LimitError,
     "sqs trigger max_concurrency 1 is outside Lambda's range 2-1000", ".max_concurrency", "2-1000"),
    (f'sqs = "{QUEUE}"\nstarting_position = "LATEST"', ConfigError,
     "'starting_position' does not apply to sqs triggers", ".starting_position", "reads the whole queue"),
    (f'sqs = "{QUEUE}"\nretries = 3', ConfigError, "'retries' does not apply to sqs triggers", ".retries",
     "redrive policy"),
    (f'kinesis = "{STREAM}"\nstarting_position = "LATEST"\nmax_concurrency = 5', ConfigError,
     "'max_concurrency' does not apply to kinesis triggers", ".max_concurrency", "parallelization"),
    (f'sqs = "{QUEUE}"\non_success = "{QUEUE}"', ConfigError, "'on_success' is not supported on sqs triggers",
     ".on_success", "only send failures"),
    (f'sqs = "{QUEUE}"\nbatch = 5', ConfigError, "unknown key 'batch'", ".batch", "did you mean 'batch_size'?"),
    (f'sqs = "{QUEUE}"\nbatch_size = "10"', ConfigError, "'batch_size' must be an integer, not a string",
     ".batch_size", "whole number"),
    (f'sqs = "{QUEUE}"\nenabled = "yes"', ConfigError, "'enabled' must be true or false", ".enabled", "true or false"),
    (f'kinesis = "{STREAM}"', ConfigError, "kinesis trigger needs starting_position", "",
     'add starting_position = "LATEST"'),
    (f'dynamodb = "{TABLE_STREAM}"', ConfigError, "dynamodb trigger needs starting_position", "", "TRIM_HORIZON"),
    (f'kinesis = "{STREAM}"\nstarting_position = "EARLIEST"', ConfigError,
     "starting_position 'EARLIEST' is not valid for kinesis triggers", ".starting_position",
     "TRIM_HORIZON, LATEST, AT_TIMESTAMP"),
    (f'dynamodb = "{TABLE_STREAM}"\nstarting_position = "AT_TIMESTAMP"\nstarting_timestamp = 2026-01-01T00:00:00Z',
     ConfigError, "starting_position 'AT_TIMESTAMP' is not valid for dynamodb triggers", ".starting_position",
     "AT_TIMESTAMP is for Kinesis only"),
    (f'kinesis = "{STREAM}"\nstarting_position = "AT_TIMESTAMP"', ConfigError,
     "starting_position AT_TIMESTAMP needs starting_timestamp", ".starting_position",
     "starting_timestamp = 2026-12-01T00:00:00Z"),
    (f'kinesis = "{STREAM}"\nstarting_position = "LATEST"\nstarting_timestamp = 2026-01-01T00:00:00Z', ConfigError,
     "starting_timestamp applies only with starting_position AT_TIMESTAMP, not LATEST", ".starting_timestamp",
     'starting_position = "AT_TIMESTAMP"'),
    (f'kinesis = "{STREAM}"\nstarting_position = "AT_TIMESTAMP"\nstarting_timestamp = 2026-01-01T00:00:00',
     ConfigError, "starting_timestamp must be a TOML date-time with a time zone", ".starting_timestamp", "Z"),
    (f'kinesis = "{STREAM}"\nstarting_position = "AT_TIMESTAMP"\nstarting_timestamp = "2026-01-01"',
     ConfigError, "starting_timestamp must be a TOML date-time with a time zone", ".starting_timestamp", "unquoted"),
    (f'kinesis = "{STREAM}"\nstarting_position = "LATEST"\nparallelization = 11', LimitError,
     "kinesis trigger parallelization 11 is outside Lambda's range 1-10", ".parallelization", "1-10"),
    (f'kinesis = "{STREAM}"\nstarting_position = "LATEST"\ntumbling_window = 901', LimitError,
     "kinesis trigger tumbling_window 901 is outside Lambda's range 0-900", ".tumbling_window", "0-900"),
    (f'kinesis = "{STREAM}"\nstarting_position = "LATEST"\nretries = -2', LimitError,
     "kinesis trigger retries -2 is outside Lambda's range 0-10000 (or -1: until the record expires)", ".retries",
     "-1"),
    (f'dynamodb = "{TABLE_STREAM}"\nstarting_position = "LATEST"\nmax_record_age = 59', LimitError,
     "dynamodb trigger max_record_age 59 is outside Lambda's range 60-604800 (or -1: the stream's retention)",
     ".max_record_age", "60-604800"),
    (f'kinesis = "{STREAM}"\nstarting_position = "LATEST"\non_failure = "arn:aws:lambda:{REGION}:{ACCOUNT}:'
     'function:x"', ConfigError, "is not an SQS queue, SNS topic or S3 bucket ARN", ".on_failure", "clicks-dlq"),
    (f'sqs = "{QUEUE}"\nfilters = "{{}}"', ConfigError, "'filters' must be a list, not a string", ".filters", "["),
    (f'sqs = "{QUEUE}"\nfilters = [1]', ConfigError, "'filters' must be a list of strings", ".filters", '["a"'),
    (f"sqs = \"{QUEUE}\"\nfilters = ['not json']", ConfigError, "filter 0 of the sqs trigger is not a JSON object",
     ".filters", "filters = ['{\"body\""),
    (f"sqs = \"{QUEUE}\"\nfilters = ['[1]']", ConfigError, "filter 0 of the sqs trigger is not a JSON object",
     ".filters", "JSON object"),
    (f"sqs = \"{QUEUE}\"\nfilters = [{', '.join(repr('{}') for _ in range(6))}]", LimitError,
     "sqs trigger has 6 filters; Lambda allows 5", ".filters", "raise the quota"),
    (f"sqs = \"{QUEUE}\"\nfilters = ['{{\"a\": \"{'x' * 4100}\"}}']", LimitError,
     "filter 0 of the sqs trigger is 4109 characters; Lambda allows 4096", ".filters", "shorten"),
]


@pytest.mark.parametrize(("body", "kind", "message", "key", "hint"), INVALID, ids=[i[2][:60] for i in INVALID])
def test_every_invalid_trigger_is_one_clear_error(tmp_path: Path, body: str, kind: type[LbuildError], message: str,
                                                  key: str, hint: str) -> None:
    error = _error(tmp_path, body + "\n")
    assert type(error) is kind and error.exit_code == (5 if kind is LimitError else 2)
    assert message in error.what
    lines = body.splitlines()
    name = key.lstrip(".")
    line = HEADER_LINE if not name else TRIGGER_LINE + next(n for n, text in enumerate(lines)
                                                           if text.startswith(name + " "))
    assert error.where is not None and error.where.endswith(_where(line, key)), error.where
    assert error.hint is not None and hint in error.hint, error.hint


def test_two_triggers_on_one_source_are_refused(tmp_path: Path) -> None:
    error = _error(tmp_path, f'sqs = "{QUEUE}"\n\n[[functions.orders.triggers]]\nsqs = "{QUEUE}"\n')
    assert isinstance(error, ConfigError)
    assert "triggers 0 and 1 of function orders are the same sqs orders" in error.what


# --- normalisation ---------------------------------------------------------------------------------------------


def _aws_item(kind: str, s: esm.Settings, qualifier: str | None = "live") -> dict[str, Any]:
    """How AWS answers: every default spelled out, state words, DestinationConfig always present."""
    arn = FUNCTION_ARN + (f":{qualifier}" if qualifier else "")
    item: dict[str, Any] = {"UUID": "u-1", "EventSourceArn": {"sqs": QUEUE, "kinesis": STREAM}.get(kind, TABLE_STREAM),
                            "FunctionArn": arn, "BatchSize": s.batch_size,
                            "MaximumBatchingWindowInSeconds": s.batching_window,
                            "State": "Enabled" if s.enabled else "Disabled",
                            "FunctionResponseTypes": ["ReportBatchItemFailures"] * s.report_batch_item_failures,
                            "FilterCriteria": {"Filters": [{"Pattern": p.replace(":", ": ")} for p in s.filters]}}
    if kind == "sqs":
        if s.max_concurrency:
            item["ScalingConfig"] = {"MaximumConcurrency": s.max_concurrency}
        return item
    item.update({"StartingPosition": s.starting_position, "ParallelizationFactor": s.parallelization,
                 "MaximumRetryAttempts": s.retries, "MaximumRecordAgeInSeconds": s.max_record_age,
                 "BisectBatchOnFunctionError": s.bisect_on_error, "TumblingWindowInSeconds": s.tumbling_window,
                 "DestinationConfig": {"OnFailure": {"Destination": s.on_failure} if s.on_failure else {}}})
    if s.starting_timestamp is not None:
        item["StartingPositionTimestamp"] = datetime.fromtimestamp(s.starting_timestamp, tz=timezone.utc)
    return item


def _moto_item(kind: str, s: esm.Settings) -> dict[str, Any]:
    """How moto answers: what is at its default left out, the alias stored as its version, no timestamp."""
    defaults = {"BatchSize": esm.DEFAULT_BATCH_SIZE[kind], "MaximumBatchingWindowInSeconds": 0, "State": "Enabled",
                "FunctionResponseTypes": [], "FilterCriteria": {"Filters": []}, "ParallelizationFactor": 1,
                "MaximumRetryAttempts": -1, "MaximumRecordAgeInSeconds": -1, "BisectBatchOnFunctionError": False,
                "TumblingWindowInSeconds": 0, "DestinationConfig": {"OnFailure": {}}}
    item = {k: v for k, v in _aws_item(kind, s, "7").items() if defaults.get(k, object()) != v}
    item.pop("StartingPositionTimestamp", None)
    return item


_pattern = st.dictionaries(st.sampled_from(["body", "attributes", "kind"]),
                           st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
                           min_size=1, max_size=2)
_common = {
    "batch_size": st.none() | st.integers(1, 10), "enabled": st.booleans(),
    "filters": st.lists(_pattern.map(json.dumps), max_size=5, unique=True).map(tuple),
    "report_batch_item_failures": st.booleans(), "id": st.none() | st.sampled_from(["a", "b"]),
}
_sqs = st.builds(SqsTrigger, source=st.just(QUEUE), where=st.just("w"), batching_window=st.none() | st.integers(0, 300),
                 max_concurrency=st.none() | st.integers(2, 1000), **_common)
_streams = st.builds(KinesisTrigger, source=st.just(STREAM), where=st.just("w"),
                     batching_window=st.none() | st.integers(0, 300),
                     starting_position=st.sampled_from(esm.POSITIONS),
                     starting_timestamp=st.none() | st.datetimes(
                         min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                         timezones=st.just(timezone.utc)),
                     parallelization=st.none() | st.integers(1, 10), retries=st.none() | st.integers(-1, 10_000),
                     max_record_age=st.none() | st.just(-1) | st.integers(60, 604_800),
                     bisect_on_error=st.booleans(), tumbling_window=st.none() | st.integers(0, 900),
                     on_failure=st.none() | st.just(QUEUE), **_common)
_triggers: st.SearchStrategy[EsmTrigger] = _sqs | _streams


@settings(max_examples=200, deadline=None)
@given(trigger=_triggers)
def test_aws_and_moto_spellings_normalise_to_what_lbuild_toml_asks(trigger: EsmTrigger) -> None:
    wanted = esm.wanted_settings(trigger)
    for item in (_aws_item(trigger.kind, wanted), _moto_item(trigger.kind, wanted)):
        mapping = esm.live_mapping(item)
        assert mapping is not None and mapping.function == "shop-orders"
        assert esm.differences(wanted, mapping.settings) == [], item
    # and what lbuild sends at create reads back as the same settings
    sent = esm.api_params(trigger.kind, wanted)
    echoed = {**sent, "UUID": "u", "EventSourceArn": trigger.source, "FunctionArn": FUNCTION_ARN,
              "State": "Enabled" if sent.get("Enabled", True) else "Disabled"}
    assert esm.differences(wanted, esm.live_settings(trigger.kind, echoed)) == []


@settings(max_examples=100, deadline=None)
@given(trigger=_triggers, other=_triggers)
def test_identity_is_the_source_or_the_id_never_the_settings(trigger: EsmTrigger, other: EsmTrigger) -> None:
    same_source = replace(other, source=trigger.source, id=trigger.id) if type(other) is type(trigger) else None
    if same_source is not None:
        assert same_source.identity() == trigger.identity() and same_source.digest == trigger.digest
    assert trigger.digest == replace(trigger, where="elsewhere").digest


def test_identity_digests_are_stable_across_runs_and_hosts() -> None:
    assert SqsTrigger(QUEUE, "w").digest == "e08dec03"
    assert SqsTrigger(QUEUE, "w").digest == hashlib.sha256(json.dumps(["sqs", QUEUE]).replace(" ", "").encode()) \
        .hexdigest()[:8]
    assert KinesisTrigger(STREAM, "w", id="clicks").digest == \
        hashlib.sha256(b'["kinesis","clicks"]').hexdigest()[:8]


def test_filter_patterns_compare_by_meaning() -> None:
    assert esm.canonical_pattern('{ "b": [1], "a": {"x": ["y"]} }') == '{"a":{"x":["y"]},"b":[1]}'
    assert esm.canonical_pattern("not json") == "not json"


def test_the_states_of_a_mapping() -> None:
    for state, enabled in (("Enabled", True), ("Enabling", True), ("Creating", True), ("Updating", True),
                           ("Disabled", False), ("Disabling", False)):
        assert esm.live_settings("sqs", {"State": state}).enabled is enabled
    assert esm.live_mapping({"UUID": "u", "EventSourceArn": QUEUE, "FunctionArn": FUNCTION_ARN,
                             "State": "Deleting"}) is None
    kafka = {"UUID": "u", "EventSourceArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/c/1", "FunctionArn": "x"}
    assert esm.live_mapping(kafka) is None


def test_update_parameters_clear_what_was_removed() -> None:
    s = esm.wanted_settings(SqsTrigger(QUEUE, "w"))
    assert esm.api_params("sqs", s, ["max_concurrency", "filters", "report_batch_item_failures"]) == \
        {"ScalingConfig": {}, "FilterCriteria": {}, "FunctionResponseTypes": []}
    k = esm.wanted_settings(KinesisTrigger(STREAM, "w", starting_position="LATEST"))
    assert esm.api_params("kinesis", k, ["on_failure", "starting_position"]) == \
        {"DestinationConfig": {"OnFailure": {}}}, "the starting position is never sent to an update"
    assert esm.api_params("kinesis", k) == {
        "BatchSize": 100, "MaximumBatchingWindowInSeconds": 0, "Enabled": True, "StartingPosition": "LATEST",
        "ParallelizationFactor": 1, "MaximumRetryAttempts": -1, "MaximumRecordAgeInSeconds": -1,
        "BisectBatchOnFunctionError": False, "TumblingWindowInSeconds": 0}


def test_queue_urls_come_from_the_arn() -> None:
    assert esm.queue_url(QUEUE) == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders"
    assert esm.queue_url("arn:aws-cn:sqs:cn-north-1:123456789012:q") == \
        "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q"


# --- planning --------------------------------------------------------------------------------------------------


def _target(*triggers: EsmTrigger, recorded: frozenset[str] = frozenset(), qualifier: str | None = "live",
            timeout: int = 10) -> Target:
    return Target("orders", "shop-orders", "shop", REGION, ACCOUNT, qualifier, timeout, "python3.12", "Zip", 512,
                  Wiring(triggers=triggers), recorded)


def _live(trigger: EsmTrigger, uuid: str = "11111111-aaaa", qualifier: str | None = "7",
          **changes: Any) -> LiveMapping:
    return LiveMapping(uuid, trigger.kind, trigger.source, "shop-orders", qualifier,
                       replace(esm.wanted_settings(trigger), **changes))


_QUEUES: Mapping[str, Queue] = {QUEUE: Queue(120)}
_LIVE_STREAM = KinesisTrigger(STREAM, "w", starting_position="TRIM_HORIZON")


def test_plan_creates_what_is_new_on_the_alias() -> None:
    trigger = SqsTrigger(QUEUE, "w")
    (step,) = esm.plan([_target(trigger)], Live((), _QUEUES))
    assert isinstance(step, CreateMapping) and step.phase == WIRE
    assert step.function_arn == f"{FUNCTION_ARN}:live"
    assert step.describe() == "sqs orders: create mapping" and step.reason == "new in lbuild.toml (on alias live)"
    assert esm.tokens(_target(trigger)) == {f"sqs={QUEUE}"} and esm.grants(_target(trigger)) == []


def test_plan_leaves_an_equal_mapping_unchanged_and_updates_a_changed_one() -> None:
    trigger = SqsTrigger(QUEUE, "w", batch_size=100, batching_window=5)
    recorded = frozenset({trigger.token})
    (same,) = esm.plan([_target(trigger, recorded=recorded)], Live((_live(trigger),), _QUEUES))
    assert isinstance(same, Unchanged) and not same.writes
    (step,) = esm.plan([_target(trigger, recorded=recorded)],
                       Live((_live(trigger, batch_size=10, batching_window=0),), _QUEUES))
    assert isinstance(step, UpdateMapping)
    assert step.describe() == "sqs orders: batch_size 10 -> 100, batching_window 0 -> 5"
    assert step.reason == "updated in place (mapping 11111111)"
    assert esm.api_params(step.kind, step.settings, step.names) == {"BatchSize": 100,
                                                                    "MaximumBatchingWindowInSeconds": 5}


def test_plan_moves_a_mapping_to_a_new_target_in_place() -> None:
    trigger = SqsTrigger(QUEUE, "w")
    (step,) = esm.plan([_target(trigger, recorded=frozenset({trigger.token}))],
                       Live((_live(trigger, qualifier=None),), _QUEUES))
    assert isinstance(step, UpdateMapping) and step.function_arn == f"{FUNCTION_ARN}:live"
    assert step.describe() == "sqs orders: target the unqualified function -> alias live"
    (back,) = esm.plan([_target(trigger, qualifier=None)], Live((_live(trigger, qualifier="live"),), _QUEUES))
    assert isinstance(back, UpdateMapping) and back.function_arn == FUNCTION_ARN


def test_plan_replaces_a_stream_whose_starting_position_changed() -> None:
    trigger = KinesisTrigger(STREAM, "w", starting_position="LATEST", retries=3)
    (step,) = esm.plan([_target(trigger, recorded=frozenset({trigger.token}))],
                       Live((_live(_LIVE_STREAM),), _QUEUES))
    assert isinstance(step, ReplaceMapping) and step.phase == WIRE
    assert step.describe() == "kinesis clicks: replace"
    assert step.reason == "starting_position cannot be updated (TRIM_HORIZON -> LATEST); the new mapping reads " \
                          "from the new position"


def test_a_timestamp_moto_does_not_return_is_no_change_but_one_aws_returns_is() -> None:
    stamp = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trigger = KinesisTrigger(STREAM, "w", starting_position="AT_TIMESTAMP", starting_timestamp=stamp, retries=5)
    target = _target(trigger, recorded=frozenset({trigger.token}))
    (same,) = esm.plan([target], Live((_live(trigger, starting_timestamp=None),)))
    assert isinstance(same, Unchanged)
    (step,) = esm.plan([target], Live((_live(trigger, starting_timestamp=stamp.timestamp() - 60),)))
    assert isinstance(step, ReplaceMapping)
    assert step.reason.startswith("starting_timestamp cannot be updated (2025-12-31T23:59:00+00:00 -> "
                                  "2026-01-01T00:00:00+00:00)")


def test_plan_deletes_only_what_lbuild_recorded() -> None:
    gone = KinesisTrigger(STREAM, "w", starting_position="LATEST")
    foreign = SqsTrigger(f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit", "w")
    live = Live((_live(gone, uuid="22222222-bbbb"), _live(foreign, uuid="33333333-cccc"),
                 replace(_live(gone, uuid="44444444-dddd"), function="shop-other")))
    (step,) = esm.plan([_target(recorded=frozenset({gone.token}))], live)
    assert isinstance(step, DeleteMapping) and step.phase == UNWIRE and step.uuid == "22222222-bbbb"
    assert step.describe() == "kinesis clicks: delete mapping 22222222"
    assert step.reason == "no longer in lbuild.toml"
    assert esm.plan([_target()], live) == [], "nothing recorded: nothing of lbuild's to delete"


def test_a_mapping_lbuild_did_not_record_on_a_wanted_source_is_adopted() -> None:
    trigger = SqsTrigger(QUEUE, "w", batch_size=5)
    (step,) = esm.plan([_target(trigger)], Live((_live(trigger, batch_size=10),), _QUEUES))
    assert isinstance(step, UpdateMapping)
    assert step.reason.endswith("(a mapping lbuild had not recorded: adopted)")


def test_visibility_timeout_rules() -> None:
    trigger = SqsTrigger(QUEUE, "lbuild.toml:12, key functions.orders.triggers[0]", batching_window=5,
                         batch_size=20)
    with pytest.raises(LimitError) as caught:
        esm.plan([_target(trigger, timeout=30)], Live((), {QUEUE: Queue(29)}))
    error = caught.value
    assert error.what == "queue orders visibility timeout 29 s is less than the timeout 30 s of function orders"
    assert error.where == trigger.where and error.exit_code == 5
    assert error.hint is not None and "at least 185 s" in error.hint
    warning, create = esm.plan([_target(trigger, timeout=30)], Live((), {QUEUE: Queue(184)}))
    assert isinstance(warning, Unchanged) and isinstance(create, CreateMapping)
    assert warning.reason == ("warning: queue orders visibility timeout 184 s is under 6 x the function timeout 30 s "
                              "+ batching window (185 s): throttled batches may become visible again before Lambda "
                              "retries them")
    assert len(esm.plan([_target(trigger, timeout=30)], Live((), {QUEUE: Queue(185)}))) == 1


def test_a_source_in_another_region_is_refused() -> None:
    trigger = SqsTrigger(f"arn:aws:sqs:us-east-1:{ACCOUNT}:orders", "where")
    with pytest.raises(ConfigError) as caught:
        esm.plan([_target(trigger)], Live())
    assert caught.value.what == "sqs orders is in us-east-1, function shop-orders in eu-west-1"
    assert caught.value.where == "where"


def test_a_target_without_esm_wiring_plans_nothing() -> None:
    assert esm.plan([_target()], None) == []


# --- the documentation ---------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("#### SQS, Kinesis and DynamoDB streams (poll-based)", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    (head, *rest) = block.split("[[functions.orders.triggers]]\n")
    assert head == ""
    sqs, kinesis = _load(tmp_path, "[[functions.orders.triggers]]\n".join(rest))
    assert isinstance(sqs, SqsTrigger) and (sqs.batch_size, sqs.batching_window) == (100, 5)
    assert isinstance(kinesis, KinesisTrigger) and kinesis.bisect_on_error and kinesis.retries == 3


def test_the_example_file_shows_every_trigger_key() -> None:
    text = (REPO / "lbuild.toml.example").read_text(encoding="utf-8")
    keys = set(esm._COMMON | esm._SQS_ONLY | esm._STREAM_ONLY) | set(esm.KINDS)
    missing = {k for k in keys if not re.search(rf"^\s*#?\s*{k}\s*=", text, re.MULTILINE)}
    assert not missing, f"lbuild.toml.example lacks {sorted(missing)}"


def test_two_ids_on_one_source_are_refused_at_plan() -> None:
    one, two = SqsTrigger(QUEUE, "first", id="a"), SqsTrigger(QUEUE, "second", id="b")
    with pytest.raises(ConfigError) as caught:
        esm.plan([_target(one, two)], Live((), _QUEUES))
    assert caught.value.what == f"function orders has two triggers on {QUEUE} (first)"
    assert caught.value.where == "second" and caught.value.hint is not None and "merge" in caught.value.hint


# --- applying: what moto cannot show ------------------------------------------------------------------------


@pytest.fixture()
def stubbed_lambda(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An ``Aws`` whose lambda client is stubbed (no network): (aws, stubber)."""
    from botocore.stub import Stubber

    from lbuild.publisher.aws import Aws

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(esm, "_POLL_SECONDS", 0.0)
    aws = Aws(region=REGION)
    stubber = Stubber(aws.client("lambda", REGION))
    with stubber:
        yield aws, stubber


OLD, NEW = "0ld00000-0000-4000-8000-000000000000", "11e70000-0000-4000-8000-000000000000"


def test_replace_waits_until_aws_has_deleted_the_old_mapping(stubbed_lambda: Any) -> None:
    """Stubber: moto deletes a mapping at once, AWS asynchronously (State Deleting), and a create on the same
    function and source conflicts until the old one is gone (ResourceConflictException), so the wait is only
    observable with AWS's answers."""
    aws, stubber = stubbed_lambda
    trigger = KinesisTrigger(STREAM, "w", starting_position="LATEST")
    step = ReplaceMapping("why", "shop-orders", "kinesis clicks", OLD, "kinesis", STREAM,
                          f"{FUNCTION_ARN}:live", esm.wanted_settings(trigger))
    stubber.add_response("delete_event_source_mapping", {"UUID": OLD, "State": "Deleting"},
                         {"UUID": OLD})
    for _ in range(2):
        stubber.add_response("get_event_source_mapping", {"UUID": OLD, "State": "Deleting"},
                             {"UUID": OLD})
    stubber.add_client_error("get_event_source_mapping", "ResourceNotFoundException", http_status_code=404,
                             expected_params={"UUID": OLD})
    stubber.add_response("create_event_source_mapping", {"UUID": NEW},
                         {"EventSourceArn": STREAM, "FunctionName": f"{FUNCTION_ARN}:live",
                          **esm.api_params("kinesis", step.settings)})
    assert esm.apply_replace(aws, REGION, step) == f"mapping {OLD} deleted, mapping {NEW} created"
    stubber.assert_no_pending_responses()



def test_deleting_a_mapping_that_is_already_gone_succeeds(stubbed_lambda: Any) -> None:
    """Stubber: moto in server mode answers 200 to deleting a mapping that does not exist; AWS answers
    ResourceNotFoundException, which lbuild takes as done (someone deleted it between plan and apply)."""
    aws, stubber = stubbed_lambda
    stubber.add_client_error("delete_event_source_mapping", "ResourceNotFoundException", http_status_code=404,
                             expected_params={"UUID": OLD})
    step = DeleteMapping("no longer in lbuild.toml", "shop-orders", "sqs orders", OLD)
    assert esm.apply_delete(aws, REGION, step) == f"mapping {OLD} (already gone)"


def test_a_changed_filter_is_an_update_that_shows_the_patterns() -> None:
    trigger = SqsTrigger(QUEUE, "w", filters=('{"body": {"kind": ["refund"]}}',))
    live = _live(trigger, filters=('{"body":{"kind":["order"]}}',))
    (step,) = esm.plan([_target(trigger, recorded=frozenset({trigger.token}))], Live((live,), _QUEUES))
    assert isinstance(step, UpdateMapping)
    assert step.describe() == 'sqs orders: filters [{"body":{"kind":["order"]}}] -> [{"body":{"kind":["refund"]}}]'
    assert esm.api_params("sqs", step.settings, step.names) == \
        {"FilterCriteria": {"Filters": [{"Pattern": '{"body":{"kind":["refund"]}}'}]}}


def test_a_stream_that_retries_forever_without_a_destination_is_a_warning() -> None:
    forever = KinesisTrigger(STREAM, "w", starting_position="LATEST")
    warning, create = esm.plan([_target(forever)], Live())
    assert isinstance(warning, Unchanged) and isinstance(create, CreateMapping)
    assert warning.reason == ("warning: kinesis clicks retries a failing batch until its records expire and has no "
                              "on_failure: one bad record holds back its shard that long (set retries, "
                              "max_record_age or on_failure)")
    for bounded in (replace(forever, retries=3), replace(forever, max_record_age=3600),
                    replace(forever, on_failure=QUEUE)):
        assert [type(s) for s in esm.plan([_target(bounded)], Live())] == [CreateMapping]
