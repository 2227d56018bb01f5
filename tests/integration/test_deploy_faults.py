"""``lbuild deploy`` under faults: moto in server mode behind the fault-injecting proxy of tests/support.

Faults reach botocore as real HTTP answers (throttling, 5xx, resets, lost responses, 409s), so its real
retry path runs. State is always read straight from moto (``aws_env``), never through the proxy. moto has
no RevisionId on functions and never changes an alias's: the proxy models both and enforces them (and
CodeSha256 on PublishVersion), as Lambda does; the tests that rely on it say so.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.integration.test_deploy import (
    ALIAS,
    BUCKET,
    FUNCTIONS,
    PROJECT,
    Demo,
    RunCli,
)
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.moto_server import REGION, MotoAws


def _fn(name: str) -> str:
    return f"{PROJECT}-{name}"


def snapshot(aws: MotoAws, names: list[str]) -> dict[str, Any]:
    """What a deploy leaves in moto, by content: per function its $LATEST and its alias's version (code,
    layers by content, memory), the number of versions, and the number of versions of each layer."""
    lam = aws.lambda_
    layer_content: dict[str, str] = {}

    def layers(config: dict[str, Any]) -> list[str]:
        out = []
        for layer in config.get("Layers") or []:
            arn = layer["Arn"]
            if arn not in layer_content:
                name, number = arn.rsplit(":", 2)[-2:]
                layer_content[arn] = lam.get_layer_version(LayerName=name, VersionNumber=int(number))["Description"]
            out.append(layer_content[arn])
        return out

    state: dict[str, Any] = {}
    for name in names:
        latest = lam.get_function(FunctionName=_fn(name))["Configuration"]
        entry: dict[str, Any] = {"code": latest["CodeSha256"], "layers": layers(latest),
                                 "memory": latest["MemorySize"]}
        versions = [v for v in lam.list_versions_by_function(FunctionName=_fn(name))["Versions"]
                    if v["Version"] != "$LATEST"]
        entry["versions"] = len(versions)
        aliases = lam.list_aliases(FunctionName=_fn(name))["Aliases"]
        for alias in aliases:
            target = lam.get_function(FunctionName=_fn(name), Qualifier=alias["Name"])["Configuration"]
            entry[f"alias {alias['Name']}"] = {"version": alias["FunctionVersion"], "code": target["CodeSha256"],
                                               "layers": layers(target),
                                               "routing": (alias.get("RoutingConfig") or {}).get(
                                                   "AdditionalVersionWeights") or {}}
        state[name] = entry
    state["layer versions"] = {layer["LayerName"]: len(lam.list_layer_versions(
        LayerName=layer["LayerName"])["LayerVersions"]) for layer in lam.list_layers()["Layers"]}
    return state


def _reference(demo: Demo, *args: str) -> dict[str, Any]:
    """The state a fault-free deploy leaves (from an empty moto); moto is emptied again afterwards."""
    demo.deploy(*args)
    reference = snapshot(demo.aws, demo.names)
    demo.aws.reset()
    demo.aws.create_role(demo.aws.role_name)
    return reference


def _change_all(demo: Demo, mark: str) -> None:
    for name in demo.names:
        (demo.root / "functions" / name / "app.py").write_text(f"def handler(e, c):\n    return {mark!r}\n")


# --- lost responses: every step is idempotent ----------------------------------------------------------------


@pytest.mark.parametrize("operation", ["CreateFunction", "CreateAlias", "PublishLayerVersion", "PublishVersion",
                                       "UpdateFunctionCode"])
def test_a_lost_response_to_a_write_is_ridden_out_and_leaves_the_same_state(
        demo: Demo, fault_proxy: FaultProxy, operation: str) -> None:
    update = operation in ("UpdateFunctionCode", "PublishVersion")  # a first deploy publishes with the create
    if update:  # the update path: deploy, change the code of users, lose the response to its update
        demo.deploy()
        (demo.root / "functions" / "users" / "app.py").write_text("def handler(e, c):\n    return 2\n")
        reference = None
    else:
        reference = _reference(demo)
    fault_proxy.add(Rule("reset_after", service="lambda", op=f"^{operation}$", nth=1))
    started = time.monotonic()
    result = demo.run("deploy", "--yes", "--json")
    assert result.code == 0, result.stderr
    assert time.monotonic() - started < 20, "no long mislabelled retry loop"
    assert fault_proxy.count(fault="reset_after") == 1
    state = snapshot(demo.aws, demo.names)
    if reference is not None:
        assert state == reference
    else:
        assert state["users"]["alias live"]["version"] == "2" and state["users"]["versions"] == 2
    assert all(n == 1 for n in state["layer versions"].values()), "no duplicate layer version"


def test_random_faults_at_fixed_seeds_end_in_the_fault_free_state(demo: Demo, fault_proxy: FaultProxy) -> None:
    reference = _reference(demo)
    injected = 0
    for seed in (3, 11, 29):
        fault_proxy.seed = seed
        fault_proxy.reset()  # rules and log cleared, the RNG seeded with ``seed``
        # About one request in five faulted: enough for several faults per deploy, while six in a row on one
        # call (which exhausts botocore's attempts, a real failure) stays below one in ten thousand per call;
        # which request gets a fault varies with the threads' order, so the rates, not the seeds, must make it pass.
        for rule in (Rule("throttle429", service="lambda", rate=0.05), Rule("throttle400", rate=0.025),
                     Rule("err500", rate=0.04), Rule("err503", rate=0.02), Rule("reset", rate=0.03),
                     Rule("reset_after", service="lambda", rate=0.04),
                     Rule("conflict409", service="lambda", op="^(Create|Update|Publish)", rate=0.2)):
            fault_proxy.add(rule)
        result = demo.run("deploy", "--yes", "--json")
        assert result.code == 0, f"seed {seed}: {result.stderr}"
        injected += sum(1 for entry in fault_proxy.log if entry.fault)  # which request gets one varies with threads
        assert snapshot(demo.aws, demo.names) == reference, f"seed {seed}"
        demo.aws.reset()
        demo.aws.create_role(demo.aws.role_name)
    assert injected >= 5, f"only {injected} faults were injected over three deploys"


# --- persistent faults ---------------------------------------------------------------------------------------


def test_a_persistent_throttle_fails_within_a_minute_and_moves_no_alias(demo: Demo, fault_proxy: FaultProxy) -> None:
    demo.deploy()
    _change_all(demo, "v2")
    fault_proxy.add(Rule("throttle429", service="lambda", op="^PublishVersion$", path=_fn("users")))
    started = time.monotonic()
    result = demo.run("deploy", "--yes", "--json")
    seconds = time.monotonic() - started
    assert result.code == 6, result.stderr
    assert seconds < 60, f"gave up after {seconds:.0f} s"
    error = result.json()
    assert error["code"] == "TooManyRequestsException" and error["operation"] == "PublishVersion"
    assert "throttled" in error["hint"] and "no alias was moved" in error["hint"]
    from lbuild.publisher.aws import RETRY_ATTEMPTS
    assert fault_proxy.count("PublishVersion", fault="throttle429") == RETRY_ATTEMPTS, "one retry policy"
    assert all(demo.alias_version(n) == "1" for n in FUNCTIONS)


def test_a_function_failing_half_way_moves_no_alias_and_a_rerun_finishes(demo: Demo,
                                                                        fault_proxy: FaultProxy) -> None:
    demo.deploy()
    _change_all(demo, "v2")
    fault_proxy.add(Rule("err500", service="lambda", op="^UpdateFunctionCode$", path=_fn("legacy")))
    failed = demo.run("deploy", "--yes", "--json")
    assert failed.code == 6, failed.stderr
    error = failed.json()
    assert error["operation"] == "UpdateFunctionCode" and error["where"] == f"function {_fn('legacy')}"
    assert failed.stderr.startswith("error: deploy stopped: AWS refused UpdateFunctionCode")
    statuses = Counter(step["status"] for step in error["steps"])  # every step, with its state
    assert statuses == {"done": 3 + 3, "failed": 1, "not run": 1 + len(FUNCTIONS), "unchanged": 3}, statuses
    done, not_done = error["error"].split(". Done: ")[1].split(". Not done: ")
    assert len(done.split(", ")) == 6 and " more" not in done, "every step named, none cut"
    assert not_done.split(", ")[0] == f"update code of {_fn('legacy')} (failed)"
    assert "no alias was moved" in error["hint"]
    assert all(demo.alias_version(n) == "1" for n in FUNCTIONS)

    fault_proxy.clear()
    rerun = demo.deploy()
    assert rerun.touched("UpdateFunctionCode") == {_fn("legacy")}
    assert rerun.counts["lambda.PublishLayerVersion"] == 0
    assert all(demo.alias_version(n) == "2" for n in FUNCTIONS)
    assert all(demo.versions(n) == ["1", "2"] for n in FUNCTIONS), "a re-run publishes no redundant version"


# --- the release is all or nothing ----------------------------------------------------------------------------


def test_a_failure_in_the_alias_phase_puts_back_every_moved_alias(demo: Demo, fault_proxy: FaultProxy) -> None:
    demo.deploy()
    before = snapshot(demo.aws, demo.names)
    _change_all(demo, "v2")
    fault_proxy.add(Rule("err500", service="lambda", op="^UpdateAlias$", path=_fn("reports")))
    result = demo.run("deploy", "--yes", "--json")
    assert result.code == 6, result.stderr
    error = result.json()
    statuses = {step["what"]: step["status"] for step in error["steps"] if step["action"] == "MoveAlias"}
    assert statuses[f"move alias {ALIAS} of {_fn('reports')}"] == "failed"
    assert set(statuses.values()) <= {"failed", "rolled back", "not run"}
    assert "rolled back" in statuses.values(), "the others had moved and were put back"
    assert "Rolled back: " in error["error"] and "no alias was moved" in error["hint"]
    after = snapshot(demo.aws, demo.names)
    for name in demo.names:
        assert after[name][f"alias {ALIAS}"] == before[name][f"alias {ALIAS}"], name

    fault_proxy.clear()
    demo.deploy()
    assert all(demo.alias_version(n) == "2" for n in demo.names)
    assert all(demo.versions(n) == ["1", "2"] for n in demo.names), "PublishVersion of unchanged code: no new one"


# --- optimistic concurrency (the proxy models RevisionId; moto has none) -------------------------------------


def _proxied_lambda(proxy: FaultProxy) -> Any:
    return boto3.client("lambda", region_name=REGION, endpoint_url=proxy.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def test_a_version_is_published_only_from_the_state_this_deploy_wrote(demo: Demo, fault_proxy: FaultProxy,
                                                                      run_cli: RunCli) -> None:
    """Someone changes users' memory after lbuild wrote and re-read it, just before PublishVersion: the proxy
    (standing in for Lambda's RevisionId check, which moto lacks) refuses the publish; no mixed version."""
    demo.deploy()
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(e, c):\n    return 2\n")
    other = _proxied_lambda(fault_proxy)
    done = []

    def meddle(event_name: str, params: Any, **_: Any) -> None:
        if event_name.endswith(".PublishVersion") and _fn("users") in params["url_path"] and not done:
            done.append(1)
            other.update_function_configuration(FunctionName=_fn("users"), MemorySize=1024)

    result = demo.run("deploy", "--yes", "--json", before_call=(meddle,))
    assert result.code == 6, result.stderr
    error = result.json()
    assert error["code"] == "PreconditionFailedException"
    assert "changed by someone else" in error["error"] and "no version was published" in error["error"]
    assert demo.versions("users") == ["1"] and demo.alias_version("users") == "1"


def test_an_alias_moved_by_someone_else_is_left_alone_and_the_release_rolled_back(
        demo: Demo, fault_proxy: FaultProxy) -> None:
    demo.deploy()
    _change_all(demo, "v2")
    other = _proxied_lambda(fault_proxy)
    done = []

    def meddle(event_name: str, params: Any, **_: Any) -> None:
        if event_name.endswith(".UpdateAlias") and _fn("legacy") in params["url_path"] and not done:
            done.append(1)  # after lbuild read the alias, before its own move of it
            other.update_alias(FunctionName=_fn("legacy"), Name=ALIAS, FunctionVersion="1",
                               Description="moved by hand")

    result = demo.run("deploy", "--yes", "--json", before_call=(meddle,))
    assert result.code == 6, result.stderr
    error = result.json()
    assert error["code"] == "PreconditionFailedException"
    assert f"alias {ALIAS} of {_fn('legacy')} was moved by someone else" in error["error"]
    assert all(demo.alias_version(n) == "1" for n in demo.names), "every alias back where it was"


# --- S3 uploads ------------------------------------------------------------------------------------------------


def test_a_lost_create_multipart_upload_response_leaves_no_incomplete_upload(
        demo: Demo, fault_proxy: FaultProxy, big_wheels: Path) -> None:
    """botocore's retry of a CreateMultipartUpload whose response was lost starts a second upload; lbuild
    aborts the first, which nothing else would ever complete or remove."""
    demo.aws.create_bucket(BUCKET)
    demo.bucket = BUCKET
    demo.extra_links = (big_wheels,)
    demo.extra_functions = {"media": "bigdata\n"}
    demo.write()
    fault_proxy.add(Rule("reset_after", service="s3", op="^CreateMultipartUpload$", nth=1))
    result = demo.run("deploy", "--yes", "--json")
    assert result.code == 0, result.stderr
    assert fault_proxy.count("CreateMultipartUpload") == 2, "the lost one and botocore's retry"
    assert demo.aws.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    entry = next(f for f in demo.manifest()["functions"] if f["name"] == "media")
    key = f"lbuild/{PROJECT}/{entry['sha256']}.zip"
    assert demo.aws.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == entry["zip_bytes"]
