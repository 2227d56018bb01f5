"""The fault proxy itself (``tests/support/faultproxy.py``), driven by plain boto3 clients.

Each test gets a proxy in front of the session's moto (``fault_proxy``) and looks at moto's state through
``aws_env`` (clients straight to moto). Retries are off (``total_max_attempts: 1``) unless a test is about
botocore's standard retry mode, whose sleeps ``fast_backoff`` shortens.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import os
import random
import signal
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from tests.support.faultproxy import FaultProxy, Rule, operation_for, service_of
from tests.support.moto_server import ROLE_NAME, MotoAws

REGION = "eu-west-1"
NO_RETRIES = Config(retries={"total_max_attempts": 1})
STANDARD = Config(retries={"mode": "standard", "total_max_attempts": 4})
BUCKET = "faultproxy-bucket"


def client(proxy: FaultProxy, service: str, config: Config = NO_RETRIES) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=proxy.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=config)


def small_zip(text: str = "def handler(event, context):\n    return 1\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", text)
    return buffer.getvalue()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def create_function(lam: Any, aws: MotoAws, name: str = "fn") -> dict[str, Any]:
    return dict(lam.create_function(FunctionName=name, Runtime="python3.12", Role=aws.role_arn,
                                    Handler="app.handler", Code={"ZipFile": small_zip()}))


def error_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


# --- which operation a request is --------------------------------------------------------------------------

FN_ARN = "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Afn"


@pytest.mark.parametrize(("service", "method", "path", "query", "headers", "body", "expected"), [
    ("lambda", "GET", f"/2015-03-31/functions/{FN_ARN}", {}, {}, b"", "GetFunction"),
    ("lambda", "GET", f"/2015-03-31/functions/{FN_ARN}/configuration", {"Qualifier": ["live"]}, {}, b"",
     "GetFunctionConfiguration"),
    ("lambda", "GET", "/2015-03-31/functions", {}, {}, b"", "ListFunctions"),
    ("lambda", "GET", "/2015-03-31/functions/", {}, {}, b"", "ListFunctions"),
    ("lambda", "POST", "/2015-03-31/functions", {}, {}, b"{}", "CreateFunction"),
    ("lambda", "DELETE", "/2018-10-31/layers/lib/versions/3", {}, {}, b"", "DeleteLayerVersion"),
    ("lambda", "GET", "/2018-10-31/layers", {}, {}, b"", "ListLayers"),
    ("lambda", "GET", "/2018-10-31/layers", {"find": ["LayerVersion"], "Arn": ["x"]}, {}, b"",
     "GetLayerVersionByArn"),
    ("lambda", "POST", f"/2017-03-31/tags/{FN_ARN}", {}, {}, b"{}", "TagResource"),
    ("s3", "PUT", "/bucket/dir/sub%20key.txt", {}, {}, b"x", "PutObject"),
    ("s3", "PUT", "/bucket/dir/key", {"partNumber": ["1"], "uploadId": ["u"]}, {}, b"x", "UploadPart"),
    ("s3", "PUT", "/bucket/key", {}, {"x-amz-copy-source": "other/key"}, b"", "CopyObject"),
    ("s3", "PUT", "/bucket", {}, {}, b"", "CreateBucket"),
    ("s3", "HEAD", "/bucket", {}, {}, b"", "HeadBucket"),
    ("s3", "HEAD", "/bucket/", {}, {}, b"", "HeadBucket"),
    ("s3", "HEAD", "/bucket/a/b", {}, {}, b"", "HeadObject"),
    ("s3", "GET", "/bucket", {"list-type": ["2"], "prefix": ["a/"]}, {}, b"", "ListObjectsV2"),
    ("s3", "GET", "/bucket", {"prefix": ["a/"]}, {}, b"", "ListObjects"),
    ("s3", "POST", "/bucket/key", {"uploads": [""]}, {}, b"", "CreateMultipartUpload"),
    ("s3", "POST", "/bucket/key", {"uploadId": ["u"]}, {}, b"<x/>", "CompleteMultipartUpload"),
    ("s3", "DELETE", "/bucket/key", {"uploadId": ["u"]}, {}, b"", "AbortMultipartUpload"),
    ("s3", "DELETE", "/bucket/key", {}, {}, b"", "DeleteObject"),
    ("s3", "GET", "/bucket", {"uploads": [""]}, {}, b"", "ListMultipartUploads"),
    ("cloudfront", "GET", "/2020-05-31/distribution/E1/config", {}, {}, b"", "GetDistributionConfig"),
    ("cloudfront", "PUT", "/2020-05-31/distribution/E1/config", {}, {}, b"<x/>", "UpdateDistribution"),
    ("iam", "POST", "/", {}, {}, b"Action=GetRole&Version=2010-05-08&RoleName=r", "GetRole"),
    ("sts", "POST", "/", {}, {}, b"Action=GetCallerIdentity&Version=2011-06-15", "GetCallerIdentity"),
    ("sts", "GET", "/", {"Action": ["GetCallerIdentity"]}, {}, b"", "GetCallerIdentity"),
    ("logs", "POST", "/", {}, {"x-amz-target": "Logs_20140328.PutLogEvents"}, b"{}", "PutLogEvents"),
    ("lambda", "GET", "/nothing/here", {}, {}, b"", None),
    ("no-such-service", "GET", "/", {}, {}, b"", None),
    (None, "GET", "/", {}, {}, b"", None),
])
def test_operation_for(service: str | None, method: str, path: str, query: dict[str, list[str]],
                       headers: dict[str, str], body: bytes, expected: str | None) -> None:
    assert operation_for(service, method, path, query, headers, body) == expected


def test_service_of_reads_the_credential_scope() -> None:
    scope = "AWS4-HMAC-SHA256 Credential=AKID/20261202/eu-west-1/lambda/aws4_request, SignedHeaders=host, Signature=0"
    assert service_of({"authorization": scope}) == "lambda"
    assert service_of({}, {"X-Amz-Credential": ["AKID/20261202/eu-west-1/s3/aws4_request"]}) == "s3"
    assert service_of({"authorization": "Bearer x"}) is None


def test_real_requests_are_named(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    lam, s3 = client(fault_proxy, "lambda"), client(fault_proxy, "s3")
    expected: list[tuple[str, str]] = []

    def did(service: str, *operations: str) -> None:
        expected.extend((service, operation) for operation in operations)

    arn = create_function(lam, aws_env)["FunctionArn"]
    lam.get_function(FunctionName="fn")
    lam.get_function_configuration(FunctionName=arn)
    lam.update_function_code(FunctionName="fn", ZipFile=small_zip("x = 2\n"))
    lam.update_function_configuration(FunctionName="fn", MemorySize=256)
    version = lam.publish_version(FunctionName="fn")["Version"]
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion=version)
    lam.update_alias(FunctionName="fn", Name="live", FunctionVersion=version, Description="d")
    lam.get_alias(FunctionName="fn", Name="live")
    lam.list_aliases(FunctionName="fn")
    lam.list_versions_by_function(FunctionName="fn")
    lam.delete_alias(FunctionName="fn", Name="live")
    layer = lam.publish_layer_version(LayerName="lib", Content={"ZipFile": small_zip()})
    lam.list_layer_versions(LayerName="lib")
    lam.list_layers()
    lam.delete_layer_version(LayerName="lib", VersionNumber=layer["Version"])
    lam.tag_resource(Resource=arn, Tags={"k": "v"})
    lam.list_tags(Resource=arn)
    lam.list_functions()
    lam.delete_function(FunctionName="fn")
    did("lambda", "CreateFunction", "GetFunction", "GetFunctionConfiguration", "UpdateFunctionCode",
        "UpdateFunctionConfiguration", "PublishVersion", "CreateAlias", "UpdateAlias", "GetAlias", "ListAliases",
        "ListVersionsByFunction", "DeleteAlias", "PublishLayerVersion", "ListLayerVersions", "ListLayers",
        "DeleteLayerVersion", "TagResource", "ListTags", "ListFunctions", "DeleteFunction")

    aws_env.create_bucket(BUCKET)
    key = "dir/sub key+x.txt"
    s3.head_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"data")
    s3.head_object(Bucket=BUCKET, Key=key)
    s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.list_objects_v2(Bucket=BUCKET, Prefix="dir/")
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="big")["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key="big", UploadId=upload, PartNumber=1, Body=b"part")["ETag"]
    s3.complete_multipart_upload(Bucket=BUCKET, Key="big", UploadId=upload,
                                 MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]})
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="abandoned")["UploadId"]
    s3.list_multipart_uploads(Bucket=BUCKET)
    s3.abort_multipart_upload(Bucket=BUCKET, Key="abandoned", UploadId=upload)
    s3.delete_object(Bucket=BUCKET, Key=key)
    did("s3", "HeadBucket", "PutObject", "HeadObject", "GetObject", "ListObjectsV2", "CreateMultipartUpload",
        "UploadPart", "CompleteMultipartUpload", "CreateMultipartUpload", "ListMultipartUploads",
        "AbortMultipartUpload", "DeleteObject")

    cloudfront = client(fault_proxy, "cloudfront")
    distribution = aws_env.client("cloudfront").create_distribution(DistributionConfig={
        "CallerReference": "faultproxy", "Comment": "", "Enabled": False,
        "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": f"{BUCKET}.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"}})["Distribution"]
    current = cloudfront.get_distribution_config(Id=distribution["Id"])
    config = current["DistributionConfig"]
    config["Comment"] = "changed"
    cloudfront.update_distribution(Id=distribution["Id"], IfMatch=current["ETag"], DistributionConfig=config)
    did("cloudfront", "GetDistributionConfig", "UpdateDistribution")

    client(fault_proxy, "iam").get_role(RoleName=ROLE_NAME)
    client(fault_proxy, "sts").get_caller_identity()
    did("iam", "GetRole")
    did("sts", "GetCallerIdentity")

    assert [(entry.service, entry.operation) for entry in fault_proxy.log] == expected
    assert all(entry.fault is None and entry.status is not None and entry.status < 300 for entry in fault_proxy.log)
    paths = {entry.operation: entry.path for entry in fault_proxy.log}
    assert paths["HeadBucket"] == f"/{BUCKET}"  # path-style S3
    assert paths["PutObject"] == f"/{BUCKET}/{key}"  # unquoted
    assert fault_proxy.count("PutObject", service="s3") == 1


# --- faults ------------------------------------------------------------------------------------------------

CALLS: dict[str, Callable[[Any], Any]] = {
    "lambda": lambda c: c.list_functions(),
    "s3": lambda c: c.list_buckets(),
    "iam": lambda c: c.get_role(RoleName=ROLE_NAME),
    "sts": lambda c: c.get_caller_identity(),
    "cloudfront": lambda c: c.list_distributions(),
}


@pytest.mark.parametrize(("fault", "service", "status", "code"), [
    ("throttle429", "lambda", 429, "TooManyRequestsException"),
    ("throttle400", "lambda", 400, "ThrottlingException"),
    ("err500", "lambda", 500, "ServiceException"),
    ("err503", "lambda", 503, "503"),
    ("conflict409", "lambda", 409, "ResourceConflictException"),
    ("precondition412", "lambda", 412, "PreconditionFailedException"),
    ("throttle429", "s3", 503, "SlowDown"),
    ("throttle400", "s3", 503, "SlowDown"),
    ("err500", "s3", 500, "InternalError"),
    ("err503", "s3", 503, "503"),
    ("precondition412", "s3", 412, "PreconditionFailed"),
    ("throttle429", "iam", 400, "Throttling"),
    ("err500", "iam", 500, "InternalFailure"),
    ("throttle400", "sts", 400, "Throttling"),
    ("throttle400", "cloudfront", 400, "Throttling"),
    ("precondition412", "cloudfront", 412, "PreconditionFailed"),
])
def test_fault_answers_parse(fault_proxy: FaultProxy, fault: str, service: str, status: int, code: str) -> None:
    fault_proxy.add(Rule(fault, service=service, nth=1))
    target = client(fault_proxy, service)
    assert error_of(lambda: CALLS[service](target)) == (status, code)
    CALLS[service](target)  # the next request goes through
    assert [(entry.fault, entry.status) for entry in fault_proxy.log] == [(fault, status), (None, 200)]


def test_throttle429_headers_and_body(fault_proxy: FaultProxy) -> None:
    fault_proxy.add(Rule("throttle429", nth=1))
    with pytest.raises(ClientError) as caught:
        client(fault_proxy, "lambda").list_functions()
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "TooManyRequestsException"
    assert response["Reason"] == "CallerRateLimitExceeded"
    assert response["Error"]["Message"] == "Rate exceeded"


def test_conflict409_names_the_function_and_is_not_forwarded(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    fault_proxy.add(Rule("conflict409", op="CreateFunction", nth=1))
    lam = client(fault_proxy, "lambda")
    with pytest.raises(ClientError) as caught:
        create_function(lam, aws_env, "fn-c")
    assert caught.value.response["Error"]["Message"] == (
        "The operation cannot be performed at this time. An update is in progress for resource: "
        "arn:aws:lambda:eu-west-1:123456789012:function:fn-c")
    assert aws_env.lambda_.list_functions()["Functions"] == []
    create_function(lam, aws_env, "fn-c")
    fault_proxy.add(Rule("conflict409", op="UpdateFunctionConfiguration"))
    with pytest.raises(ClientError) as caught:
        lam.update_function_configuration(FunctionName="fn-c", MemorySize=512)
    assert caught.value.response["Error"]["Message"].endswith(":function:fn-c")
    assert aws_env.lambda_.get_function_configuration(FunctionName="fn-c")["MemorySize"] == 128


def test_reset_before_and_after_moto(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    lam, s3 = client(fault_proxy, "lambda"), client(fault_proxy, "s3")
    fault_proxy.add(Rule("reset", op="CreateFunction", nth=1))
    with pytest.raises(ConnectionClosedError):
        create_function(lam, aws_env, "fn-r")
    assert aws_env.lambda_.list_functions()["Functions"] == []
    fault_proxy.add(Rule("reset_after", op="CreateFunction", nth=1))  # counts from when it is added
    with pytest.raises(ConnectionClosedError):
        create_function(lam, aws_env, "fn-r")
    assert aws_env.lambda_.get_function(FunctionName="fn-r")["Configuration"]["FunctionName"] == "fn-r"

    aws_env.create_bucket(BUCKET)
    fault_proxy.add(Rule("reset_after", op="PutObject"))
    with pytest.raises(ConnectionClosedError):
        s3.put_object(Bucket=BUCKET, Key="lost", Body=b"written anyway")
    assert aws_env.s3.get_object(Bucket=BUCKET, Key="lost")["Body"].read() == b"written anyway"
    assert [(entry.operation, entry.status, entry.fault) for entry in fault_proxy.log] == [
        ("CreateFunction", None, "reset"), ("CreateFunction", None, "reset_after"), ("PutObject", None, "reset_after")]
    lam.list_functions()  # the proxy still serves


def test_hold_and_delay_then_forward(fault_proxy: FaultProxy) -> None:
    lam = client(fault_proxy, "lambda")
    lam.list_functions()  # connection and client warm
    fault_proxy.add(Rule("hold", seconds=0.2, nth=1))
    started = time.monotonic()
    lam.list_functions()
    assert time.monotonic() - started >= 0.2
    fault_proxy.reset()
    fault_proxy.delay_range = (0.2, 0.3)
    fault_proxy.add(Rule("delay", nth=1))
    started = time.monotonic()
    lam.list_functions()
    assert 0.2 <= time.monotonic() - started < 2.0
    assert [(entry.status, entry.fault) for entry in fault_proxy.log] == [(200, "delay")]


# --- which requests a rule hits ------------------------------------------------------------------------------

def outcomes(proxy: FaultProxy, calls: int) -> list[str | None]:
    lam = client(proxy, "lambda")
    for _ in range(calls):
        with contextlib.suppress(ClientError):
            lam.list_layers()
    return [entry.fault for entry in proxy.log]


def test_nth_rate_times_with_a_seed(fault_proxy: FaultProxy) -> None:
    fault_proxy.add(Rule("err500", op="^ListLayers$", nth=2))
    assert outcomes(fault_proxy, 4) == [None, "err500", None, None]

    fault_proxy.reset()
    fault_proxy.add(Rule("err500", times=2))
    assert outcomes(fault_proxy, 4) == ["err500", "err500", None, None]

    fault_proxy.reset()  # the RNG starts again from the seed
    fault_proxy.add(Rule("err500", rate=0.5))
    rng = random.Random(fault_proxy.seed)
    expected = ["err500" if rng.random() < 0.5 else None for _ in range(12)]
    assert outcomes(fault_proxy, 12) == expected
    assert None in expected and "err500" in expected

    fault_proxy.reset()
    fault_proxy.add(Rule("err500", rate=0.5, times=2))
    rng, fired, expected = random.Random(fault_proxy.seed), 0, []
    for _ in range(12):
        hit = fired < 2 and rng.random() < 0.5
        fired += hit
        expected.append("err500" if hit else None)
    assert outcomes(fault_proxy, 12) == expected
    assert expected.count("err500") == 2


def test_filters_and_first_firing_rule_wins(fault_proxy: FaultProxy) -> None:
    fault_proxy.add(Rule("err500", service="s3"))  # never matches Lambda
    fault_proxy.add(Rule("err500", path="^/2015-03-31/"))  # ListLayers is under /2018-10-31/
    fault_proxy.add(Rule("err503", op="ListLayers$", nth=2))
    fault_proxy.add(Rule("throttle400", service="lambda", nth=1))
    fault_proxy.add(Rule("conflict409", op="^List"))
    # each rule counts every request that passes its filters, whether or not an earlier rule fired
    assert outcomes(fault_proxy, 4) == ["throttle400", "err503", "conflict409", "conflict409"]
    assert fault_proxy.count("ListLayers") == 4
    assert fault_proxy.count(fault="conflict409") == 2
    assert fault_proxy.count(service="s3") == 0
    fault_proxy.clear()
    assert outcomes(fault_proxy, 1)[-1] is None


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Rule("explode")
    with pytest.raises(ValueError, match="rate"):
        Rule("err500", rate=1.5)
    with pytest.raises(ValueError, match="nth"):
        Rule("err500", nth=0)
    with pytest.raises(ValueError, match="upstream"):
        FaultProxy("http://192.0.2.1:80")


# --- botocore's standard retry mode --------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["throttle429", "throttle400", "err500", "err503", "reset"])
@pytest.mark.usefixtures("fast_backoff")
def test_standard_retries_ride_out_three_faults(fault_proxy: FaultProxy, fault: str) -> None:
    fault_proxy.add(Rule(fault, op="ListFunctions", times=3))
    response = client(fault_proxy, "lambda", STANDARD).list_functions()
    assert response["ResponseMetadata"]["RetryAttempts"] == 3
    assert [entry.fault for entry in fault_proxy.log] == [fault, fault, fault, None]


@pytest.mark.usefixtures("fast_backoff")
def test_standard_retries_ride_out_s3_throttles(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    aws_env.create_bucket(BUCKET)
    fault_proxy.add(Rule("throttle429", op="PutObject", times=2))
    fault_proxy.add(Rule("reset_after", op="PutObject", times=1))
    client(fault_proxy, "s3", STANDARD).put_object(Bucket=BUCKET, Key="k", Body=b"v")
    assert [entry.fault for entry in fault_proxy.log] == ["throttle429", "throttle429", "reset_after", None]
    assert aws_env.s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"v"


@pytest.mark.usefixtures("fast_backoff")
def test_faults_on_head_requests(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    aws_env.create_bucket(BUCKET)
    fault_proxy.add(Rule("throttle429", op="HeadBucket", nth=1))
    assert error_of(lambda: client(fault_proxy, "s3").head_bucket(Bucket=BUCKET)) == (503, "503")  # no body
    fault_proxy.add(Rule("err500", op="HeadBucket", times=2))
    client(fault_proxy, "s3", STANDARD).head_bucket(Bucket=BUCKET)
    assert [entry.status for entry in fault_proxy.log] == [503, 500, 500, 200]


@pytest.mark.parametrize("fault", ["conflict409", "precondition412"])
def test_standard_retries_do_not_retry_conflicts(fault_proxy: FaultProxy, fault: str) -> None:
    fault_proxy.add(Rule(fault, times=1))
    with pytest.raises(ClientError):
        client(fault_proxy, "lambda", STANDARD).list_functions()
    assert fault_proxy.count() == 1


# --- Lambda revisions ----------------------------------------------------------------------------------------

def test_function_revisions(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    lam = client(fault_proxy, "lambda")
    created = create_function(lam, aws_env)["RevisionId"]
    assert lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"] == created
    assert lam.get_function_configuration(FunctionName=f"arn:aws:lambda:{REGION}:123456789012:function:fn",
                                          Qualifier="$LATEST")["RevisionId"] == created
    configured = lam.update_function_configuration(FunctionName="fn", MemorySize=256)["RevisionId"]
    code = small_zip("x = 2\n")
    updated = lam.update_function_code(FunctionName="fn", ZipFile=code)["RevisionId"]
    assert len({created, configured, updated}) == 3
    assert lam.get_function(FunctionName="fn")["Configuration"]["RevisionId"] == updated
    assert fault_proxy.revision("fn") == updated

    stale = [lambda: lam.publish_version(FunctionName="fn", RevisionId=configured),
             lambda: lam.update_function_configuration(FunctionName="fn", MemorySize=512, RevisionId=created),
             lambda: lam.update_function_code(FunctionName="fn", ZipFile=small_zip(), RevisionId=configured)]
    for call in stale:
        assert error_of(call) == (412, "PreconditionFailedException")
    latest = aws_env.lambda_.get_function_configuration(FunctionName="fn")
    assert (latest["MemorySize"], latest["CodeSha256"]) == (256, sha256_b64(code))
    assert error_of(lambda: lam.publish_version(FunctionName="fn", CodeSha256=sha256_b64(b"other"))) == (
        412, "PreconditionFailedException")
    versions = aws_env.lambda_.list_versions_by_function(FunctionName="fn")["Versions"]
    assert [version["Version"] for version in versions] == ["$LATEST"]  # none of the refused ones reached moto

    published = lam.publish_version(FunctionName="fn", RevisionId=updated, CodeSha256=sha256_b64(code))
    assert published["Version"] == "1" and published["RevisionId"] not in (None, updated)
    assert lam.get_function(FunctionName="fn", Qualifier="1")["Configuration"]["RevisionId"] == published["RevisionId"]
    listed = lam.list_versions_by_function(FunctionName="fn")["Versions"]
    assert [(version["Version"], version["RevisionId"]) for version in listed] == [
        ("$LATEST", updated), ("1", published["RevisionId"])]
    assert fault_proxy.count(service="lambda", fault=None) == fault_proxy.count()  # the 412s are no faults
    lam.delete_function(FunctionName="fn")
    assert fault_proxy.revision("fn") is None


def test_alias_revisions(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    lam = client(fault_proxy, "lambda")
    create_function(lam, aws_env)
    version = lam.publish_version(FunctionName="fn")["Version"]
    created = lam.create_alias(FunctionName="fn", Name="live", FunctionVersion=version)["RevisionId"]
    assert lam.get_alias(FunctionName="fn", Name="live")["RevisionId"] == created
    assert lam.list_aliases(FunctionName="fn")["Aliases"][0]["RevisionId"] == created
    updated = lam.update_alias(FunctionName="fn", Name="live", Description="one", RevisionId=created)["RevisionId"]
    assert updated != created and fault_proxy.revision("fn", "live") == updated
    assert error_of(lambda: lam.update_alias(FunctionName="fn", Name="live", Description="two",
                                             RevisionId=created)) == (412, "PreconditionFailedException")
    assert aws_env.lambda_.get_alias(FunctionName="fn", Name="live")["Description"] == "one"

    # two racing updates with the same RevisionId: exactly one wins
    results: list[str] = []

    def update(description: str) -> None:
        try:
            lam.update_alias(FunctionName="fn", Name="live", Description=description, RevisionId=updated)
            results.append("ok")
        except ClientError as error:
            results.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=update, args=(f"racer {n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["PreconditionFailedException", "ok"]

    lam.delete_alias(FunctionName="fn", Name="live")
    assert fault_proxy.revision("fn", "live") is None


def test_revisions_of_things_created_before_the_proxy(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    create_function(aws_env.lambda_, aws_env, "early")  # straight to moto
    version = aws_env.lambda_.publish_version(FunctionName="early")["Version"]
    aws_env.lambda_.create_alias(FunctionName="early", Name="live", FunctionVersion=version)
    lam = client(fault_proxy, "lambda")
    assert error_of(lambda: lam.publish_version(FunctionName="early", RevisionId="made-up")) == (
        412, "PreconditionFailedException")
    seen = lam.get_function(FunctionName="early")["Configuration"]["RevisionId"]
    assert lam.get_function_configuration(FunctionName="early")["RevisionId"] == seen
    lam.update_function_configuration(FunctionName="early", MemorySize=256, RevisionId=seen)
    alias = lam.get_alias(FunctionName="early", Name="live")["RevisionId"]
    lam.update_alias(FunctionName="early", Name="live", Description="moved", RevisionId=alias)
    assert error_of(lambda: lam.publish_version(FunctionName="missing", RevisionId="x")) == (
        404, "ResourceNotFoundException")


def test_revisions_off_forwards_untouched(moto_endpoint: str, aws_env: MotoAws) -> None:
    with FaultProxy(moto_endpoint, revisions=False) as proxy:
        lam = client(proxy, "lambda")
        assert "RevisionId" not in create_function(lam, aws_env)


# --- signals -------------------------------------------------------------------------------------------------

@pytest.fixture()
def usr1() -> Iterator[list[int]]:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("after", [False, True])
def test_signal_before_or_after_moto(fault_proxy: FaultProxy, aws_env: MotoAws, usr1: list[int],
                                     after: bool) -> None:
    aws_env.create_bucket(BUCKET)
    returned = threading.Event()
    seen: list[tuple[bool, bool]] = []  # (object in moto, client call returned) when the proxy signals

    def pid() -> int:
        try:
            aws_env.s3.head_object(Bucket=BUCKET, Key="k")
            exists = True
        except ClientError:
            exists = False
        seen.append((exists, returned.is_set()))
        return os.getpid()

    fault_proxy.add(Rule("signal", op="PutObject", signal=signal.SIGUSR1, pid=pid, after=after))
    client(fault_proxy, "s3").put_object(Bucket=BUCKET, Key="k", Body=b"v")
    returned.set()
    for _ in range(200):  # the handler runs in the main thread, at the latest now
        if usr1:
            break
        time.sleep(0.01)
    assert usr1 == [signal.SIGUSR1]
    assert seen == [(after, False)]
    assert [(entry.status, entry.fault) for entry in fault_proxy.log] == [(200, "signal")]


# --- S3 conditional writes -----------------------------------------------------------------------------------

def race_create_only(proxy: FaultProxy, key: str, racers: int = 4) -> list[str]:
    clients = [client(proxy, "s3") for _ in range(racers)]
    barrier = threading.Barrier(racers)
    results: list[str] = []

    def put(s3: Any, n: int) -> None:
        barrier.wait(timeout=10)
        try:
            s3.put_object(Bucket=BUCKET, Key=key, Body=f"racer {n}".encode(), IfNoneMatch="*")
            results.append("ok")
        except ClientError as error:
            results.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=put, args=(s3, n)) for n, s3 in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(results)


def test_conditional_writes_are_atomic(fault_proxy: FaultProxy, aws_env: MotoAws, moto_endpoint: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.s3.models import S3Backend

    aws_env.create_bucket(BUCKET)
    original = S3Backend.get_object

    def slow_get_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        found = original(self, bucket_name, key_name, *args, **kwargs)
        if key_name.startswith("race-"):
            time.sleep(0.15)  # widen moto's window between the If-None-Match check and the write
        return found

    monkeypatch.setattr(S3Backend, "get_object", slow_get_object)
    with FaultProxy(moto_endpoint, serialize_conditional=False) as unserialized:
        assert race_create_only(unserialized, "race-unserialized").count("ok") > 1  # moto alone: several win
    assert race_create_only(fault_proxy, "race-serialized") == ["PreconditionFailed"] * 3 + ["ok"]


# --- HTTP plumbing -------------------------------------------------------------------------------------------

def test_keep_alive_and_chunked_bodies(fault_proxy: FaultProxy, aws_env: MotoAws) -> None:
    aws_env.create_bucket(BUCKET)
    authorization = ("AWS4-HMAC-SHA256 Credential=testing/20261202/eu-west-1/s3/aws4_request, "
                     "SignedHeaders=host, Signature=0")
    port = int(fault_proxy.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("PUT", f"/{BUCKET}/chunked", body=iter([b"hello ", b"chunked ", b"world"]),
                           headers={"Authorization": authorization, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
                           encode_chunked=True)
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        first = connection.sock
        for _ in range(3):
            connection.request("GET", f"/{BUCKET}/chunked", headers={"Authorization": authorization})
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"hello chunked world")
            assert connection.sock is first  # one connection for all four requests
    finally:
        connection.close()
    assert [entry.operation for entry in fault_proxy.log] == ["PutObject"] + ["GetObject"] * 3


def test_stop_closes_the_port(moto_endpoint: str) -> None:
    proxy = FaultProxy(moto_endpoint).start()
    port = int(proxy.url.rsplit(":", 1)[1])
    proxy.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
