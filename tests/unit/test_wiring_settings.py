"""Execution settings: lbuild.toml -> ``Wiring`` (every validation message), the normalised forms AWS's and
moto's answers compare equal in, and the pure planner (steps, tokens, grants, the account-pool check)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbuild.errors import ConfigError, LbuildError, LimitError
from lbuild.publisher import execute
from lbuild.publisher.plan import FunctionConfig, config_from_aws
from lbuild.steps import Unchanged
from lbuild.wiring import settings
from lbuild.wiring.core import SETTINGS, Target
from lbuild.wiring.model import AsyncSettings, Cors, Grant, LogSettings, UrlSettings, Wiring
from lbuild.wiring.settings import (
    DeleteAsyncConfig,
    DeleteLogRetention,
    DeleteUrl,
    Live,
    PutAsyncConfig,
    PutUrl,
    SetConcurrency,
    SetLogRetention,
)
from tests.unit.test_config import config_text, fail, line_of, load, make_function, where

ALIAS = 'alias = "live"\n'


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    make_function(tmp_path)
    return tmp_path


def wiring(root: Path, function: str = "", project: str = ALIAS) -> Wiring:
    return load(root, config_text(project=project, function=function)).function("hello").wiring


# --- parsing and normalisation -------------------------------------------------------------------------


def test_nothing_set_is_an_empty_wiring(root: Path) -> None:
    assert wiring(root).empty


def test_every_setting_parsed_and_normalised(root: Path) -> None:
    text = config_text(project=ALIAS, function=(
        'reserved_concurrency = 10\nprovisioned_concurrency = 2\nlog_retention_days = "never"\n'
        'log_format = "json"\nlog_level = "debug"\nlog_group = "/shop/hello"\n'
        'async = { retries = 0, on_success = "arn:aws:sqs:eu-west-1:123456789012:done", '
        'on_failure = "arn:aws:s3:::failed" }\n'
        'url = { auth = "none", invoke_mode = "response_stream", cors = { allow_methods = '
        '["post", "get", "get"], allow_origins = ["https://b", "https://a"], max_age = 60 } }\n'))
    got = load(root, text).function("hello").wiring
    assert got.reserved_concurrency == 10 and got.provisioned_concurrency == 2
    assert got.log == LogSettings(0, "JSON", "DEBUG", "INFO", "/shop/hello")
    assert got.async_ == AsyncSettings(0, None, "arn:aws:sqs:eu-west-1:123456789012:done", "arn:aws:s3:::failed")
    assert got.url == UrlSettings("NONE", "RESPONSE_STREAM", Cors(("https://a", "https://b"), ("GET", "POST"),
                                                                  max_age=60))
    assert not got.snap_start
    assert got.where["reserved_concurrency"] == where(root, line_of(text, "reserved_concurrency"),
                                                      "functions.hello.reserved_concurrency")


def test_project_defaults_apply_and_the_function_overrides_them_key_by_key(root: Path) -> None:
    project = ALIAS + 'log_retention_days = 30\nlog_format = "JSON"\nasync = { retries = 1, max_age = 120 }\n'
    got = wiring(root, "log_retention_days = 7\nasync = { max_age = 600 }\n", project)
    assert got.log.retention_days == 7 and got.log.format == "JSON" and got.log.level == "INFO"
    assert got.async_ == AsyncSettings(1, 600)
    assert wiring(root, "", project).log.retention_days == 30


def test_empty_tables_mean_aws_defaults(root: Path) -> None:
    got = wiring(root, "async = {}\nurl = { cors = {} }\n")
    assert got.async_ == AsyncSettings() and got.url == UrlSettings("AWS_IAM", "BUFFERED", None)


def test_snap_start_on_a_python312_zip_function(root: Path) -> None:
    assert wiring(root, "snap_start = true\n").snap_start


def test_project_defaults_do_not_reach_a_lambda_edge_function(tmp_path: Path) -> None:
    make_function(tmp_path)
    text = config_text(project='log_retention_days = 30\nlog_format = "JSON"\n',
                       function='architecture = "x86_64"\n'
                                'edge = { distribution = "E1", event_type = "origin-request" }\n')
    assert load(tmp_path, text).function("hello").wiring.empty


def test_an_edge_function_may_not_set_one(tmp_path: Path) -> None:
    make_function(tmp_path)
    text = config_text(function='architecture = "x86_64"\nreserved_concurrency = 5\n'
                                'edge = { distribution = "E1", event_type = "origin-request" }\n')
    err = fail(tmp_path, text)
    assert "cannot have triggers, permissions or execution settings" in err.what


# Every validation message: (function lines, project lines, error type, message, key).
BAD: list[tuple[str, str, type[LbuildError], str, str]] = [
    ("reserved_concurrency = -1\n", "", LimitError, "reserved_concurrency -1 is below 0",
     "functions.hello.reserved_concurrency"),
    ('reserved_concurrency = "5"\n', "", ConfigError, "'reserved_concurrency' must be an integer, not a string",
     "functions.hello.reserved_concurrency"),
    ("provisioned_concurrency = 0\n", ALIAS, LimitError, "provisioned_concurrency 0 is below 1",
     "functions.hello.provisioned_concurrency"),
    ("provisioned_concurrency = 2\n", "", ConfigError, "provisioned_concurrency needs [project].alias",
     "functions.hello.provisioned_concurrency"),
    ("reserved_concurrency = 1\nprovisioned_concurrency = 2\n", ALIAS, LimitError,
     "provisioned_concurrency 2 is more than reserved_concurrency 1", "functions.hello.provisioned_concurrency"),
    ("provisioned_concurrency = 2\nsnap_start = true\n", ALIAS, ConfigError,
     "snap_start cannot be combined with provisioned_concurrency", "functions.hello.snap_start"),
    ('snap_start = true\nruntime = "python3.11"\n', "", ConfigError,
     "snap_start needs python3.12 or later, not python3.11", "functions.hello.snap_start"),
    ('snap_start = true\npackage_type = "image"\n', "", ConfigError,
     "snap_start works with zip functions only, not container images", "functions.hello.snap_start"),
    ("snap_start = true\nephemeral_storage = 1024\n", "", ConfigError,
     "snap_start needs ephemeral_storage 512 MB, not 1024 MB", "functions.hello.snap_start"),
    ("log_retention_days = 31\n", "", ConfigError, "log_retention_days 31 is not a retention CloudWatch Logs accepts",
     "functions.hello.log_retention_days"),
    ("", 'log_retention_days = "forever"\n', ConfigError,
     "log_retention_days 'forever' is not a retention CloudWatch Logs accepts", "project.log_retention_days"),
    ('log_format = "XML"\n', "", ConfigError, "log_format 'XML' is not one Lambda knows",
     "functions.hello.log_format"),
    ('log_level = "INFO"\n', "", ConfigError, 'log_level needs log_format = "JSON"', "functions.hello.log_level"),
    ('log_format = "Text"\nsystem_log_level = "WARN"\n', "", ConfigError, 'system_log_level needs log_format = '
     '"JSON"', "functions.hello.system_log_level"),
    ('log_format = "JSON"\nlog_level = "LOUD"\n', "", ConfigError, "log_level 'LOUD' is not one Lambda knows",
     "functions.hello.log_level"),
    ('log_format = "JSON"\nsystem_log_level = "TRACE"\n', "", ConfigError,
     "system_log_level 'TRACE' is not one Lambda knows", "functions.hello.system_log_level"),
    ('log_group = "/shop/#1"\n', "", ConfigError, "log_group '/shop/#1' is not a log group name lbuild can manage",
     "functions.hello.log_group"),
    ("async = { retry = 1 }\n", "", ConfigError, "unknown key 'retry'", "functions.hello.async.retry"),
    ('async = "fast"\n', "", ConfigError, "'async' must be a table, not a string", "functions.hello.async"),
    ("async = { retries = 3 }\n", "", LimitError, "async.retries 3 is outside Lambda's range 0-2",
     "functions.hello.async.retries"),
    ("", "async = { max_age = 59 }\n", LimitError, "async.max_age 59 s is outside Lambda's range 60-21600 s",
     "project.async.max_age"),
    ('async = { retries = "1" }\n', "", ConfigError, "'async.retries' must be an integer",
     "functions.hello.async.retries"),
    ("async = { on_failure = 5 }\n", "", ConfigError, "'async.on_failure' must be a string",
     "functions.hello.async.on_failure"),
    ('async = { on_success = "arn:aws:s3:::bucket" }\n', "", ConfigError,
     "an S3 bucket can only be an on_failure destination", "functions.hello.async.on_success"),
    ('async = { on_failure = "arn:aws:dynamodb:eu-west-1:123456789012:table/t" }\n', "", ConfigError,
     "async.on_failure 'arn:aws:dynamodb:eu-west-1:123456789012:table/t' is not a destination Lambda accepts",
     "functions.hello.async.on_failure"),
    ('async = { on_failure = "orders-dlq" }\n', "", ConfigError,
     "async.on_failure 'orders-dlq' is not a destination Lambda accepts", "functions.hello.async.on_failure"),
    ('async = { on_failure = "arn:aws:sqs:eu-west-1:123456789012:dlq.fifo" }\n', "", ConfigError,
     "async.on_failure is a FIFO queue, which Lambda cannot deliver to", "functions.hello.async.on_failure"),
    ('async = { on_success = "arn:aws:sns:eu-west-1:123456789012:done.fifo" }\n', "", ConfigError,
     "async.on_success is a FIFO topic, which Lambda cannot deliver to", "functions.hello.async.on_success"),
    ("url = true\n", "", ConfigError, "'url' must be a table, not true or false", "functions.hello.url"),
    ("url = { public = true }\n", "", ConfigError, "unknown key 'public'", "functions.hello.url.public"),
    ('url = { auth = "IAM" }\n', "", ConfigError, "url.auth 'IAM' is not one Lambda knows", "functions.hello.url.auth"),
    ('url = { invoke_mode = "STREAM" }\n', "", ConfigError, "url.invoke_mode 'STREAM' is not one Lambda knows",
     "functions.hello.url.invoke_mode"),
    ("url = { cors = { origins = [] } }\n", "", ConfigError, "unknown key 'origins'",
     "functions.hello.url.cors.origins"),
    ('url = { cors = { allow_methods = ["GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "*"] } }\n', "", LimitError,
     "url.cors.allow_methods lists 7 values; Lambda allows 6", "functions.hello.url.cors.allow_methods"),
    ('url = { cors = { allow_methods = ["FETCH"] } }\n', "", ConfigError,
     "url.cors.allow_methods has 'FETCH', not an HTTP method Lambda knows", "functions.hello.url.cors.allow_methods"),
    ("url = { cors = { allow_origins = [" + ", ".join(f'"https://{n}"' for n in range(101)) + "] } }\n", "",
     LimitError, "url.cors.allow_origins lists 101 values; Lambda allows 100",
     "functions.hello.url.cors.allow_origins"),
    ("url = { cors = { max_age = 86401 } }\n", "", LimitError, "url.cors.max_age 86401 s is outside Lambda's range "
     "0-86400 s", "functions.hello.url.cors.max_age"),
    ('url = { cors = { allow_headers = "x" } }\n', "", ConfigError, "'allow_headers' must be a list, not a string",
     "functions.hello.url.cors.allow_headers"),
    ("", "url = {}\n", ConfigError, "unknown key 'url'", "project.url"),
    ("", "reserved_concurrency = 5\n", ConfigError, "unknown key 'reserved_concurrency'",
     "project.reserved_concurrency"),
]


@pytest.mark.parametrize(("function", "project", "kind", "message", "key"), BAD,
                         ids=[f"{n}-{b[3][:40]}" for n, b in enumerate(BAD)])
def test_every_bad_setting_is_one_clear_error(root: Path, function: str, project: str, kind: type[LbuildError],
                                              message: str, key: str) -> None:
    text = config_text(project=project, function=function)
    err = fail(root, text, kind)
    assert err.what == message
    last = key.split(".")
    section = "[project]" if key.startswith("project") else "[functions.hello]"
    top = last[1] if key.startswith("project") else last[2]
    line = next(n for n, text_line in enumerate(text.splitlines(), start=1)
                if text_line.startswith(f"{top} =") and n > line_of(text, section))
    assert err.where == where(root, line, key)


# --- normalisation: AWS's and moto's answers compare equal to lbuild.toml ---------------------------------

destinations = st.one_of(st.none(), st.sampled_from(["arn:aws:sqs:eu-west-1:123456789012:q",
                                                     "arn:aws:sns:eu-west-1:123456789012:t"]))


@given(retries=st.one_of(st.none(), st.integers(0, 2)), max_age=st.one_of(st.none(), st.integers(60, 21600)),
       on_success=destinations, on_failure=destinations, omit_defaults=st.booleans())
def test_async_config_as_aws_returns_it_equals_what_was_put(retries: int | None, max_age: int | None,
                                                            on_success: str | None, on_failure: str | None,
                                                            omit_defaults: bool) -> None:
    wanted = settings.wanted_async(AsyncSettings(retries, max_age, on_success, on_failure))
    answer: dict[str, Any] = {"FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:f:live",
                              "DestinationConfig": {"OnSuccess": {"Destination": on_success} if on_success else {},
                                                    "OnFailure": {"Destination": on_failure} if on_failure else {}}}
    if not (omit_defaults and retries in (None, 2)):  # moto leaves out what was not put
        answer["MaximumRetryAttempts"] = wanted.retries
    if not (omit_defaults and max_age in (None, 21600)):
        answer["MaximumEventAgeInSeconds"] = wanted.max_age
    if omit_defaults and not (on_success or on_failure):
        del answer["DestinationConfig"]
    assert settings.async_from_aws(answer) == wanted


@given(mode=st.sampled_from(["BUFFERED", "RESPONSE_STREAM"]), moto_case=st.booleans(),
       methods=st.lists(st.sampled_from(["GET", "POST", "PUT"]), max_size=3),
       headers=st.lists(st.sampled_from(["Content-Type", "X-Id"]), max_size=2), with_cors=st.booleans())
def test_url_config_as_aws_or_moto_returns_it_equals_lbuild_toml(mode: str, moto_case: bool, methods: list[str],
                                                                 headers: list[str], with_cors: bool) -> None:
    cors = Cors(("https://a",), tuple(methods), tuple(headers)) if with_cors else None
    wanted = settings.normal_url(UrlSettings("NONE", mode, cors))
    answer: dict[str, Any] = {"AuthType": "NONE", "InvokeMode": mode.title() if moto_case else mode,
                              "FunctionUrl": "https://x.lambda-url.eu-west-1.on.aws/"}
    if cors is not None:
        answer["Cors"] = {"AllowOrigins": ["https://a"], "AllowMethods": list(reversed(methods)),
                          "AllowHeaders": [h.lower() for h in headers], "MaxAge": 0}
    elif moto_case:
        answer["Cors"] = settings.cors_to_aws(None)  # what an update that removed CORS leaves
    assert settings.url_from_aws(answer) == wanted


def _config(**logging: Any) -> dict[str, Any]:
    return {"FunctionName": "shop-hello", "Runtime": "python3.12", "Handler": "app.handler", "MemorySize": 128,
            "Timeout": 3, "Role": "arn:aws:iam::123456789012:role/r", **logging}


def test_aws_default_logging_and_snap_start_read_as_no_setting() -> None:
    """AWS answers LoggingConfig {Text, /aws/lambda/<name>} and SnapStart None for every function; moto
    answers no LoggingConfig. Both read as the defaults, so functions that set nothing get no new diff."""
    aws = config_from_aws(_config(LoggingConfig={"LogFormat": "Text", "LogGroup": "/aws/lambda/shop-hello"},
                                  SnapStart={"ApplyOn": "None", "OptimizationStatus": "Off"}))
    moto = config_from_aws(_config(SnapStart={"ApplyOn": "None", "OptimizationStatus": "Off"}))
    assert aws == moto
    assert (aws.snap_start, aws.log_format, aws.log_level, aws.system_log_level, aws.log_group) == \
        (False, "Text", "", "", "")
    edge = config_from_aws(_config(LoggingConfig={"LogFormat": "Text", "LogGroup": "/aws/lambda/us-east-1.shop-hello"}))
    assert edge == aws, "a Lambda@Edge function's regional group is Lambda's own too"
    assert config_from_aws(_config(LoggingConfig={"LogGroup": "/aws/lambda/shop-hello-2"})).log_group == \
        "/aws/lambda/shop-hello-2"


def test_json_logging_and_snap_start_read_back() -> None:
    got = config_from_aws(_config(LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG",
                                                 "SystemLogLevel": "WARN", "LogGroup": "/shop/hello"},
                                  SnapStart={"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}))
    assert (got.snap_start, got.log_format, got.log_level, got.system_log_level, got.log_group) == \
        (True, "JSON", "DEBUG", "WARN", "/shop/hello")
    defaults = config_from_aws(_config(LoggingConfig={"LogFormat": "JSON", "LogGroup": "/aws/lambda/shop-hello"}))
    assert (defaults.log_level, defaults.system_log_level, defaults.log_group) == ("INFO", "INFO", "")


class _Fn:
    def __init__(self, config: FunctionConfig, name: str = "shop-hello") -> None:
        self.config, self.name = config, name


BASE = FunctionConfig("python3.12", "app.handler", 128, 3, 512, (), "", "arn:aws:iam::1:role/r", ())


def test_snap_start_and_logging_are_sent_only_when_set_or_changed() -> None:
    send: Any = execute._log_and_snap_start
    assert send(_Fn(BASE)) == {}
    assert send(_Fn(BASE), ("memory",)) == {}
    assert send(_Fn(replace(BASE, snap_start=True))) == {"SnapStart": {"ApplyOn": "PublishedVersions"}}
    assert send(_Fn(BASE), ("snap_start",)) == {"SnapStart": {"ApplyOn": "None"}}
    assert send(_Fn(replace(BASE, log_format="JSON", log_level="INFO", system_log_level="WARN"))) == {
        "LoggingConfig": {"LogFormat": "JSON", "LogGroup": "/aws/lambda/shop-hello", "ApplicationLogLevel": "INFO",
                          "SystemLogLevel": "WARN"}}
    assert send(_Fn(BASE), ("log_format", "log_level")) == {
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/shop-hello"}}
    assert send(_Fn(replace(BASE, log_group="/shop/x"))) == {
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/shop/x"}}


# --- the planner (pure) ----------------------------------------------------------------------------------


NONE = Wiring()


def target(w: Wiring = NONE, recorded: frozenset[str] = frozenset(), qualifier: str | None = "live",
           name: str = "shop-hello", exists: bool = True) -> Target:
    return Target("hello", name, "shop", "eu-west-1", "123456789012", qualifier, 3, "python3.12", "zip", 512, w,
                  recorded, exists)


def writes(steps: list[Any]) -> list[Any]:
    return [s for s in steps if s.writes]


def test_wanted_settings_on_a_function_that_has_none_are_put() -> None:
    w = Wiring(reserved_concurrency=10, provisioned_concurrency=2, async_=AsyncSettings(retries=1),
               url=UrlSettings("NONE"), log=LogSettings(retention_days=30))
    steps = settings.plan([target(w)], Live())
    assert steps == [
        SetConcurrency("lbuild.toml sets reserved_concurrency; lbuild.toml sets provisioned_concurrency",
                       "shop-hello", "live", (None, 10), (None, 2)),
        PutAsyncConfig("lbuild.toml sets async", "shop-hello", "live", AsyncSettings(1, 21600), None),
        PutUrl("lbuild.toml sets url; warning: auth NONE: anyone on the internet can invoke it", "shop-hello",
               "live", UrlSettings("NONE", "BUFFERED"), None),
        SetLogRetention("lbuild.toml sets log_retention_days", "shop-hello", "/aws/lambda/shop-hello", 30, None),
    ]
    assert all(s.phase == SETTINGS for s in steps)
    assert [s.describe() for s in steps] == [
        "concurrency of shop-hello: reserved none -> 10, provisioned on live none -> 2",
        "async config of shop-hello on live: create (retries 1, max_age 21600)",
        "function URL of shop-hello on live: create (auth NONE, invoke_mode BUFFERED)",
        "log group /aws/lambda/shop-hello of shop-hello: create it, retention 30 days",
    ]
    assert settings.tokens(target(w)) == {"reserved", "provisioned", "async", "url", "logs"}


def test_equal_settings_are_unchanged_and_changed_ones_say_what_changes() -> None:
    w = Wiring(reserved_concurrency=10, async_=AsyncSettings(retries=1), url=UrlSettings(),
               log=LogSettings(retention_days=30, group="/shop/hello"))
    same = Live({"shop-hello": 10}, {}, {"shop-hello": AsyncSettings(1, 21600)}, {"shop-hello": UrlSettings()},
                {"/shop/hello": 30})
    steps = settings.plan([target(w, frozenset({"reserved", "async", "url", "logs=/shop/hello"}))], same)
    assert writes(steps) == [] and all(isinstance(s, Unchanged) for s in steps) and len(steps) == 4
    other = Live({"shop-hello": 5}, {}, {"shop-hello": AsyncSettings(2, 21600)},
                 {"shop-hello": UrlSettings("NONE")}, {"/shop/hello": 7})
    assert [s.describe() for s in settings.plan([target(w)], other)] == [
        "concurrency of shop-hello: reserved 5 -> 10",
        "async config of shop-hello on live: retries 2 -> 1",
        "function URL of shop-hello on live: auth NONE -> AWS_IAM",
        "log group /shop/hello of shop-hello: retention 7 days -> 30 days",
    ]
    assert settings.tokens(target(w)) == {"reserved", "async", "url", "logs=/shop/hello"}


def test_removed_settings_are_removed_only_where_lbuild_recorded_them() -> None:
    live = Live({"shop-hello": 10}, {"shop-hello": 2}, {"shop-hello": AsyncSettings(1, 60)},
                {"shop-hello": UrlSettings()}, {"/aws/lambda/shop-hello": 30})
    mine = frozenset({"reserved", "provisioned", "async", "url", "logs"})
    steps = settings.plan([target(recorded=mine)], live)
    assert steps == [
        SetConcurrency("reserved_concurrency is no longer in lbuild.toml (lbuild set it); provisioned_concurrency "
                       "is no longer in lbuild.toml (lbuild set it)", "shop-hello", "live", (10, None), (2, None)),
        DeleteAsyncConfig("async is no longer in lbuild.toml (lbuild set it)", "shop-hello", "live"),
        DeleteUrl("url is no longer in lbuild.toml (lbuild set it)", "shop-hello", "live"),
        DeleteLogRetention("log_retention_days is no longer in lbuild.toml (lbuild set it)", "shop-hello",
                           "/aws/lambda/shop-hello", 30),
    ]
    assert settings.plan([target()], live) == [], "what lbuild did not record is someone else's"
    assert settings.tokens(target(recorded=mine)) == set()


def test_a_changed_log_group_gets_the_retention_and_the_old_one_loses_it() -> None:
    w = Wiring(log=LogSettings(retention_days=14, group="/shop/new"))
    live = Live(groups={"/aws/lambda/shop-hello": 14, "/shop/new": 14})
    steps = settings.plan([target(w, frozenset({"logs"}))], live)
    assert [s.describe() for s in writes(steps)] == [
        "log group /aws/lambda/shop-hello of shop-hello: retention 14 days -> never expire"]


def test_never_expire_deletes_a_retention_and_creates_no_group() -> None:
    w = Wiring(log=LogSettings(retention_days=0))
    assert writes(settings.plan([target(w)], Live())) == []
    steps = settings.plan([target(w)], Live(groups={"/aws/lambda/shop-hello": 30}))
    assert [type(s) for s in steps] == [DeleteLogRetention]


def test_a_function_without_alias_gets_unqualified_settings_and_no_provisioned_concurrency() -> None:
    w = Wiring(provisioned_concurrency=2, url=UrlSettings())
    steps = settings.plan([target(w, qualifier=None)], Live())
    assert [s.describe() for s in steps] == ["function URL of shop-hello: create (auth AWS_IAM, invoke_mode "
                                             "BUFFERED)"]
    assert settings.tokens(target(w, qualifier=None)) == {"url"}


def test_a_public_url_needs_both_statements_lambda_requires() -> None:
    assert settings.grants(target(Wiring(url=UrlSettings("AWS_IAM")))) == []
    assert settings.grants(target(Wiring())) == []
    assert settings.grants(target(Wiring(url=UrlSettings("NONE")))) == [
        Grant("url", "*", action="lambda:InvokeFunctionUrl", url_auth_type="NONE"),
        Grant("url", "*", action="lambda:InvokeFunction", invoked_via_url=True)]


def test_reservations_past_the_unreserved_pool_are_refused_at_plan() -> None:
    w = Wiring(reserved_concurrency=500, where={"reserved_concurrency": "lbuild.toml:9, key functions.hello."
                                                                      "reserved_concurrency"})
    settings.plan([target(w)], Live(unreserved=600))  # 600 - 500 = 100 left: allowed
    settings.plan([target(w)], Live(reserved={"shop-hello": 450}, unreserved=150))  # 50 more of 150
    with pytest.raises(LimitError) as info:
        settings.plan([target(w)], Live(unreserved=599))
    assert info.value.exit_code == 5
    assert info.value.what == "this deploy reserves 500 more concurrency, and the account has 599 unreserved; " \
                              "Lambda keeps at least 100 unreserved"
    assert info.value.where == "lbuild.toml:9, key functions.hello.reserved_concurrency"
    assert info.value.hint == "reserve at most 499 more in all, or ask AWS for a higher concurrent-executions quota"
    freed = target(Wiring(), frozenset({"reserved"}), name="shop-other")
    settings.plan([target(w), freed], Live(reserved={"shop-other": 100}, unreserved=599))  # a removal frees 100
    settings.plan([target(w)], Live())  # unknown pool (no GetAccountSettings): not checked


def test_unreserved_provisioned_concurrency_counts_against_the_pool() -> None:
    with pytest.raises(LimitError):
        settings.plan([target(Wiring(provisioned_concurrency=50))], Live(unreserved=149))
    settings.plan([target(Wiring(provisioned_concurrency=50))], Live(unreserved=150))


def test_a_function_created_by_this_deploy_is_not_read() -> None:
    class NoAws:
        def call(self, *a: Any, **k: Any) -> Any:
            raise AssertionError(f"read {a}")

        def pages(self, *a: Any, **k: Any) -> Any:
            raise AssertionError(f"read {a}")

    live = settings.read(NoAws(), "eu-west-1", [target(Wiring(async_=AsyncSettings()), exists=False)])  # type: ignore[arg-type]
    assert live == Live()


def test_a_streaming_url_on_python_is_warned_about_in_the_plan() -> None:
    step = settings.plan([target(Wiring(url=UrlSettings(invoke_mode="RESPONSE_STREAM")))], Live())[0]
    assert step.reason == "lbuild.toml sets url; warning: the python3.12 managed runtime does not stream responses " \
                          "(a custom runtime or the Lambda Web Adapter does)"
