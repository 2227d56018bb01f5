"""``lbuild deploy`` with ``[cache]``: Lambda takes the code from the shared cache by S3 key, against moto in server
mode on 127.0.0.1 (the demo project of test_deploy.py, whose recorder keeps every call with its parameters).

moto computes a function's and a layer version's CodeSha256 from the S3 object it is given, as Lambda does, so
the CodeSha256 checks below prove that Lambda got the cache's bytes.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import boto3
import pytest

from lbuild.builders.s3cache import artifact_keys
from tests.integration.test_deploy import Demo, Run
from tests.integration.test_iam_policy import _allowed, _needed

CACHE_BUCKET = "demo-build-cache"
PREFIX = "ci/lbuild"


def with_cache(demo: Demo, region: str | None = None) -> Demo:
    """The demo with a ``[cache]`` table, its bucket made in ``region`` (default: the demo's, eu-west-1)."""
    if region is None:
        demo.aws.create_bucket(CACHE_BUCKET)
    else:
        s3 = boto3.client("s3", region_name=region, endpoint_url=demo.aws.endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        s3.create_bucket(Bucket=CACHE_BUCKET, CreateBucketConfiguration={"LocationConstraint": region})
    config = demo.root / "lbuild.toml"
    config.write_text(config.read_text() + f'\n[cache]\nbucket = "{CACHE_BUCKET}"\nprefix = "{PREFIX}"\n')
    return demo


def zip_keys(demo: Demo) -> dict[str, str]:
    """Each artifact's sha256 -> the S3 key of its zip in the cache."""
    manifest = demo.manifest()
    return {e["sha256"]: artifact_keys(PREFIX, e["cache_key"])[0] for e in manifest["layers"] + manifest["functions"]}


def codes(run: Run) -> list[dict[str, Any]]:
    """The Code / Content of every CreateFunction, UpdateFunctionCode and PublishLayerVersion call."""
    return [p["Code"] for p in run.params("lambda.CreateFunction")] + \
        [{k: v for k, v in p.items() if k in ("ZipFile", "S3Bucket", "S3Key")}
         for p in run.params("lambda.UpdateFunctionCode")] + \
        [p["Content"] for p in run.params("lambda.PublishLayerVersion")]


def test_code_and_layers_come_from_the_cache_by_key_when_it_is_in_the_region(demo: Demo) -> None:
    first = with_cache(demo).deploy()
    manifest = demo.manifest()
    keys = zip_keys(demo)
    by_name = {f"demo-{f['name']}": f for f in manifest["functions"]}

    created = {p["FunctionName"]: p["Code"] for p in first.params("lambda.CreateFunction")}
    assert set(created) == set(by_name)
    for name, code in created.items():
        assert code == {"S3Bucket": CACHE_BUCKET, "S3Key": keys[by_name[name]["sha256"]]}, name
        got = demo.aws.lambda_.get_function(FunctionName=name)["Configuration"]["CodeSha256"]
        assert got == by_name[name]["code_sha256"]
    layers = {p["LayerName"]: p["Content"] for p in first.params("lambda.PublishLayerVersion")}
    assert len(layers) == len(manifest["layers"]) == 3
    for entry in manifest["layers"]:
        assert layers[entry["name"]] == {"S3Bucket": CACHE_BUCKET, "S3Key": keys[entry["sha256"]]}
        versions = demo.aws.lambda_.list_layer_versions(LayerName=entry["name"])["LayerVersions"]
        version = demo.aws.lambda_.get_layer_version(LayerName=entry["name"],
                                                     VersionNumber=versions[0]["Version"])
        assert version["Content"]["CodeSha256"] == entry["code_sha256"]
    assert not any("ZipFile" in code for code in codes(first)), "no zip bytes are sent"
    assert first.counts["s3.GetBucketLocation"] == 1, "the bucket's region is asked once"
    assert first.counts["s3.HeadObject"] == len(keys)  # each zip sent is checked once
    what = {s["what"] for s in first.json()["steps"] if s["action"] in ("CreateFunction", "PublishLayer")}
    assert all(f" from the shared cache s3://{CACHE_BUCKET}/{PREFIX}/artifacts/" in w for w in what), what

    # one changed function: its new code goes by key too, and `lbuild plan` says where it comes from
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(event, context):\n    return 2\n")
    assert demo.run("package").code == 0
    planned = demo.run("plan")
    new = next(f for f in demo.manifest()["functions"] if f["name"] == "users")
    assert f"update code of demo-users from the shared cache s3://{CACHE_BUCKET}/{zip_keys(demo)[new['sha256']]}" \
        in planned.stderr, planned.stderr
    second = demo.deploy()
    assert [p["FunctionName"] for p in second.params("lambda.UpdateFunctionCode")] == ["demo-users"]
    assert codes(second) == [{"S3Bucket": CACHE_BUCKET, "S3Key": zip_keys(demo)[new["sha256"]]}]
    assert second.counts["s3.GetObject"] == 0, "the deploy downloads nothing"
    got = demo.aws.lambda_.get_function(FunctionName="demo-users")["Configuration"]["CodeSha256"]
    assert got == new["code_sha256"]


def test_a_cache_bucket_in_another_region_falls_back_to_the_upload(demo: Demo) -> None:
    first = with_cache(demo, "us-west-2").deploy()
    assert first.counts["s3.GetBucketLocation"] == 1
    assert first.counts["s3.HeadObject"] == 0, "nothing is looked up in a bucket Lambda cannot read from"
    sent = codes(first)
    assert sent and all(set(code) == {"ZipFile"} for code in sent)
    assert "from the shared cache" not in first.stdout + first.stderr
    for entry in demo.manifest()["functions"]:
        got = demo.aws.lambda_.get_function(FunctionName=f"demo-{entry['name']}")["Configuration"]["CodeSha256"]
        assert got == entry["code_sha256"]


def test_a_cache_object_that_is_not_this_build_is_not_deployed(demo: Demo) -> None:
    """The zip under the key holds other bytes (a planted or damaged object): its size or checksum differs, so
    the code goes as bytes, with a warning."""
    with_cache(demo)
    assert demo.run("package").code == 0
    entry = next(f for f in demo.manifest()["functions"] if f["name"] == "orders")
    key = zip_keys(demo)[entry["sha256"]]
    other = b"PK\x05\x06" + b"\x00" * 18
    demo.aws.s3.put_object(Bucket=CACHE_BUCKET, Key=key, Body=other, ChecksumAlgorithm="SHA256",
                           ChecksumSHA256=base64.b64encode(hashlib.sha256(other).digest()).decode())
    result = demo.deploy()
    created = {p["FunctionName"]: p["Code"] for p in result.params("lambda.CreateFunction")}
    assert set(created["demo-orders"]) == {"ZipFile"}
    assert all(set(code) == {"S3Bucket", "S3Key"} for name, code in created.items() if name != "demo-orders")
    assert f"warning: cache: s3://{CACHE_BUCKET}/{key} does not hold this build's zip" in result.stderr
    got = demo.aws.lambda_.get_function(FunctionName="demo-orders")["Configuration"]["CodeSha256"]
    assert got == entry["code_sha256"]


def test_a_no_op_deploy_fetches_nothing_from_s3(demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_cache(demo).deploy()
    again = demo.deploy()
    assert again.writes == 0
    s3_calls = {op for op, _ in again.recorder.calls if op.startswith("s3.")}
    assert s3_calls == set(), "nothing unchanged is looked up or fetched"

    # another runner with an empty local cache deploys the dist/ it was given: not one object is read
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "empty-cache"))
    prebuilt = demo.deploy("--from", "dist")
    assert prebuilt.writes == 0
    assert prebuilt.counts["s3.GetObject"] == 0 and prebuilt.counts["s3.HeadObject"] == 0


def test_a_missing_cache_object_is_sent_as_before(demo: Demo) -> None:
    with_cache(demo)
    assert demo.run("package").code == 0
    layer = demo.manifest()["layers"][0]
    demo.aws.s3.delete_object(Bucket=CACHE_BUCKET, Key=zip_keys(demo)[layer["sha256"]])
    result = demo.deploy()
    contents = {p["LayerName"]: p["Content"] for p in result.params("lambda.PublishLayerVersion")}
    assert set(contents.pop(layer["name"])) == {"ZipFile"}
    assert contents and all(set(c) == {"S3Bucket", "S3Key"} for c in contents.values())
    assert "warning" not in result.stderr, "a miss is not a warning"


def test_the_policy_allows_a_deploy_from_the_cache(demo: Demo) -> None:
    runs = [with_cache(demo).deploy()]
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(e, c):\n    return 2\n")
    runs += [demo.deploy(), demo.run("plan")]
    assert runs[1].params("lambda.UpdateFunctionCode")[0]["S3Bucket"] == CACHE_BUCKET
    missing = sorted(_needed(*runs) - _allowed())
    assert missing == [], f"templates/iam-policy.json lacks {missing}"


def test_mode_off_deploys_as_before_and_asks_s3_nothing(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    with_cache(demo)
    monkeypatch.setenv("LBUILD_CACHE_MODE", "off")
    result = demo.deploy()
    assert not [op for op, _ in result.recorder.calls if op.startswith("s3.")]
    sent = codes(result)
    assert sent and all(set(code) == {"ZipFile"} for code in sent)
