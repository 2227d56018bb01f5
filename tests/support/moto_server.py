"""moto in server mode on 127.0.0.1 for the deploy tests, and an AWS environment pointing at it.

``moto_endpoint`` (session): one ``ThreadedMotoServer`` on a free loopback port, with moto's Docker use
turned off (``invoke`` would otherwise make a reachable dockerd pull images; see
``../shared/research/infra.md``). ``aws_env`` (function): a clean moto, the standard AWS variables
pointing at it (``AWS_ENDPOINT_URL``, ``AWS_REGION``, fake credentials; no profile), and the IAM role the
test projects use. Nothing here can reach real AWS: every client is built with the moto endpoint.

Register both in a ``conftest.py`` with ``from tests.support.moto_server import aws_env, moto_endpoint``.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
ROLE_NAME = "lbuild-test-lambda"
TRUST_POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})

__all__ = ["ACCOUNT", "REGION", "ROLE_NAME", "MotoAws", "aws_env", "moto_endpoint"]


def _post(url: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body or {}).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        response.read()


def _warm_up(url: str) -> None:
    """One request per service, one at a time, before any test runs requests in parallel.

    moto builds each service's URL router on its first request, with ``ast.parse``; on CPython 3.11,
    two threads doing that at once can fail with "SystemError: AST constructor recursion depth
    mismatch", which moto answers with HTTP 500 (botocore then retries it, so counts of HTTP requests
    would be off by one).
    """
    helper = MotoAws(url)
    helper.lambda_.list_functions()
    helper.lambda_.list_layers()
    helper.s3.list_buckets()
    helper.iam.list_roles()
    helper.client("sts").get_caller_identity()
    # the services the wiring stage (triggers and execution settings) talks to
    helper.client("sqs").list_queues()
    helper.client("kinesis").list_streams()
    helper.client("dynamodb").list_tables()
    helper.client("dynamodbstreams").list_streams()
    helper.client("sns").list_topics()
    helper.client("events").list_rules()
    helper.client("scheduler").list_schedule_groups()
    helper.client("logs").describe_log_groups()
    helper.client("apigatewayv2").get_apis()
    helper.lambda_.list_event_source_mappings()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto server that lives for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        _post(f"{url}/moto-api/config", {"lambda": {"use_docker": False}})
        _warm_up(url)
        yield url
    finally:
        server.stop()


@dataclass
class MotoAws:
    """What a test needs to look at (or prepare) the fake AWS: clients, the role, buckets."""

    endpoint: str
    region: str = REGION
    role_name: str = ROLE_NAME
    role_arn: str = ""
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A boto3 client on the moto endpoint (never real AWS), cached per service."""
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service, region_name=self.region, endpoint_url=self.endpoint,
                aws_access_key_id="testing", aws_secret_access_key="testing")
        return self._clients[service]

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    def create_role(self, name: str) -> str:
        """An IAM role that trusts lambda.amazonaws.com; returns its ARN."""
        return str(self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"])

    def role_arn_for(self, name: str) -> str:
        """The ARN a role of that name has (or would have) in moto's account."""
        return f"arn:aws:iam::{ACCOUNT}:role/{name}"

    def create_bucket(self, name: str) -> None:
        self.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})

    def reset(self) -> None:
        """Forget every resource (moto's /moto-api/reset) and turn Docker use off again."""
        _post(f"{self.endpoint}/moto-api/reset")
        _post(f"{self.endpoint}/moto-api/config", {"lambda": {"use_docker": False}})


@pytest.fixture()
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> MotoAws:
    """A fresh moto and an environment whose standard AWS settings point at it; the test role exists."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # no credential or config file of the machine may leak in (nor a profile named in one)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    helper = MotoAws(moto_endpoint)
    helper.reset()
    helper.role_arn = helper.create_role(ROLE_NAME)
    return helper
