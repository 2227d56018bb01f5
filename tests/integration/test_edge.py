"""Lambda@Edge end to end against moto in server mode (issue 6).

A project with one regular function (``api``: project region eu-west-1, project architecture arm64,
project environment and an external layer) and two Edge functions on one CloudFront distribution
(``viewer``: viewer-request on the default cache behaviour; ``origin``: origin-request with IncludeBody on
the ``/api/*`` behaviour). The CLI runs in-process (``run_cli`` of ``test_deploy``) and every API call
lbuild makes is recorded with its parameters.

What moto cannot prove (``../shared/lambda-facts.md`` §9, ``../shared/research/infra.md``): CloudFront in
moto silently drops ``LambdaFunctionAssociations`` (a read always says ``{"Quantity": 0}``), never changes
the ETag and accepts any non-empty IfMatch, so it never answers 412 PreconditionFailed. ``CloudFront`` below
is a before-call hook that keeps what moto drops, the way CloudFront does: GetDistributionConfig is read
from moto and given back the associations and an ETag that changes with every update; UpdateDistribution
is checked against that ETag (stale -> 412 PreconditionFailed, as CloudFront answers) and against
CloudFront's association rules, its serialized XML body is recorded as sent, and it then goes on to moto.
"""

from __future__ import annotations

import json
import random
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.waiter
import pytest
from botocore.awsrequest import AWSResponse

from lbuild.publisher.edge import TRUST_POLICY
from tests.integration.test_deploy import READ_PREFIXES, DeployingProject, Run, RunCli
from tests.support.moto_server import ACCOUNT, MotoAws

PROJECT = "site"
ALIAS = "live"
EDGE_REGION = "us-east-1"
EDGE_ROLE = "lbuild-test-edge"
PATH = "/api/*"
OTHER = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:someone-else-headers:4"  # attached before lbuild came
OTHER_ITEM = {"LambdaFunctionARN": OTHER, "EventType": "viewer-response", "IncludeBody": False}
NS = "{http://cloudfront.amazonaws.com/doc/2020-05-31/}"


# --- CloudFront as it behaves where moto does not -------------------------------------------------------------


def _error(url: str, status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse(url, status, {}, None), {"Error": {"Code": code, "Message": message},
                                                "ResponseMetadata": {"HTTPStatusCode": status}}


def _sent_associations(body: bytes) -> tuple[dict[str | None, list[dict[str, Any]]], list[str]]:
    """The associations of each behaviour (None: the default one) in a serialized DistributionConfig, and
    what CloudFront would refuse in them."""
    root = ET.fromstring(body)
    behaviours = [(None, root.find(f"{NS}DefaultCacheBehavior"))]
    behaviours += [(b.findtext(f"{NS}PathPattern"), b) for b in root.iter(f"{NS}CacheBehavior")]
    out: dict[str | None, list[dict[str, Any]]] = {}
    problems = []
    for path, behaviour in behaviours:
        assert behaviour is not None
        block = behaviour.find(f"{NS}LambdaFunctionAssociations")
        if block is None:
            problems.append(f"{path}: LambdaFunctionAssociations missing")
            continue
        items = [{"LambdaFunctionARN": i.findtext(f"{NS}LambdaFunctionARN"), "EventType": i.findtext(f"{NS}EventType"),
                  "IncludeBody": i.findtext(f"{NS}IncludeBody") == "true"}
                 for i in block.iter(f"{NS}LambdaFunctionAssociation")]
        if int(block.findtext(f"{NS}Quantity") or -1) != len(items):
            problems.append(f"{path}: InconsistentQuantities")
        if len({i["EventType"] for i in items}) != len(items):
            problems.append(f"{path}: two functions for one event type")
        for item in items:
            arn = str(item["LambdaFunctionARN"])
            if not arn.startswith(f"arn:aws:lambda:{EDGE_REGION}:") or not arn.rsplit(":", 1)[-1].isdigit():
                problems.append(f"{path}: {arn} is not a numbered version in us-east-1")
        out[path] = items
    return out, problems


@dataclass
class CloudFront:
    """A before-call hook: moto's CloudFront with the associations, ETags and 412s of the real one."""

    moto: MotoAws
    associations: dict[str, dict[str | None, list[dict[str, Any]]]] = field(default_factory=dict)
    generation: dict[str, int] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)  # ("get", ETag served) / ("update", IfMatch sent)
    bodies: list[bytes] = field(default_factory=list)  # UpdateDistribution bodies as serialized by botocore
    refused: list[str] = field(default_factory=list)
    race: Callable[[CloudFront, str], None] | None = None  # runs once, just before lbuild's first update
    in_progress: int = 0  # GetDistribution answers Status "InProgress" this many times first
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def etag(self, distribution: str) -> str:
        return f"ETAG{self.generation[distribution]}"

    def create(self, config: Mapping[str, Any]) -> str:
        distribution = str(self.moto.client("cloudfront").create_distribution(DistributionConfig=config)
                           ["Distribution"]["Id"])
        behaviours = [(None, config["DefaultCacheBehavior"])]
        behaviours += [(b["PathPattern"], b) for b in config.get("CacheBehaviors", {}).get("Items", [])]
        self.associations[distribution] = {
            path: [dict(i) for i in (b.get("LambdaFunctionAssociations") or {}).get("Items", [])]
            for path, b in behaviours}
        self.generation[distribution] = 1
        return distribution

    def changed_elsewhere(self, distribution: str, path: str | None, item: dict[str, Any]) -> None:
        """Someone else's UpdateDistribution: an association set, the ETag moves on."""
        kept = [i for i in self.associations[distribution][path] if i["EventType"] != item["EventType"]]
        self.associations[distribution][path] = sorted([*kept, item], key=lambda i: str(i["EventType"]))
        self.generation[distribution] += 1

    def stored(self, distribution: str, path: str | None) -> dict[str, str]:
        """EventType -> function ARN, as CloudFront now holds them for one behaviour."""
        return {i["EventType"]: i["LambdaFunctionARN"] for i in self.associations[distribution][path]}

    def __call__(self, event_name: str, params: Mapping[str, Any], **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        if not event_name.startswith("before-call.cloudfront.") or \
                operation not in ("GetDistributionConfig", "UpdateDistribution", "GetDistribution"):
            return None
        distribution = params["url_path"].split("/")[3]
        with self._lock:
            if operation == "GetDistributionConfig":
                return self._get(distribution, params["url"])
            if operation == "GetDistribution":
                return self._status(distribution, params["url"])
            return self._update(distribution, params)

    def _status(self, distribution: str, url: str) -> Any:
        parsed = self.moto.client("cloudfront").get_distribution(Id=distribution)
        if self.in_progress:
            self.in_progress -= 1
            parsed["Distribution"]["Status"] = "InProgress"
        return AWSResponse(url, 200, {}, None), parsed

    def _get(self, distribution: str, url: str) -> Any:
        parsed = self.moto.client("cloudfront").get_distribution_config(Id=distribution)
        config = parsed["DistributionConfig"]
        behaviours = [(None, config["DefaultCacheBehavior"])]
        behaviours += [(b["PathPattern"], b) for b in config.get("CacheBehaviors", {}).get("Items", [])]
        for path, behaviour in behaviours:
            items = self.associations[distribution][path]
            behaviour["LambdaFunctionAssociations"] = {"Quantity": len(items), "Items": [dict(i) for i in items]} \
                if items else {"Quantity": 0}
        parsed["ETag"] = self.etag(distribution)
        self.log.append(("get", parsed["ETag"]))
        return AWSResponse(url, 200, {}, None), parsed

    def _update(self, distribution: str, params: Mapping[str, Any]) -> Any:
        if_match = params["headers"].get("If-Match", "")
        self.log.append(("update", if_match))
        self.bodies.append(params["body"])
        if self.race is not None:
            race, self.race = self.race, None
            race(self, distribution)
        if if_match != self.etag(distribution):
            return _error(params["url"], 412, "PreconditionFailed",
                          "The request failed because it didn't meet the preconditions in one or more "
                          "request-header fields")
        sent, problems = _sent_associations(params["body"])
        if problems:
            self.refused += problems
            return _error(params["url"], 400, "InvalidLambdaFunctionAssociation", "; ".join(problems))
        self.associations[distribution] = sent
        self.generation[distribution] += 1
        return None  # on to moto, which stores the rest of the configuration


def _behaviour(path: str | None, associations: list[dict[str, Any]]) -> dict[str, Any]:
    behaviour = {"TargetOriginId": "site-bucket", "ViewerProtocolPolicy": "redirect-to-https",
                 "ForwardedValues": {"QueryString": path is not None, "Cookies": {"Forward": "none"}},
                 "MinTTL": 0, "Compress": path is None,
                 "LambdaFunctionAssociations": {"Quantity": len(associations), "Items": associations}}
    return behaviour if path is None else {"PathPattern": path, **behaviour}


DISTRIBUTION_CONFIG: dict[str, Any] = {
    "CallerReference": "site-2026-11",
    "Comment": "site with edge functions",
    "Enabled": True,
    "Origins": {"Quantity": 1, "Items": [{"Id": "site-bucket", "DomainName": "site.s3.amazonaws.com",
                                          "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
    "DefaultCacheBehavior": _behaviour(None, [OTHER_ITEM]),
    "CacheBehaviors": {"Quantity": 2, "Items": [_behaviour(PATH, []), _behaviour("/static/*", [])]},
}


# --- the project ------------------------------------------------------------------------------------------------


@dataclass
class Site(DeployingProject):
    """The project on disk, the fake CloudFront, and ``run`` for the CLI in the project folder."""

    root: Path
    aws: MotoAws
    cloudfront: CloudFront
    distribution: str
    run_cli: RunCli
    wheelhouse: Path
    lambda_role: str
    edge_role: str
    external_layer: str
    viewer_extra: str = ""

    def write(self) -> Site:
        lines = ["[project]", f'name = "{PROJECT}"', 'runtime = "python3.12"', 'architecture = "arm64"',
                 'region = "eu-west-1"', f'alias = "{ALIAS}"', f'find_links = ["{self.wheelhouse}"]',
                 "no_index = true", f'role = "{self.lambda_role}"', 'environment = { STAGE = "test" }',
                 f'layers = ["{self.external_layer}"]', "",
                 "[functions.api]", 'handler = "app.handler"', "memory = 256", "timeout = 10",
                 "", "[functions.viewer]", 'handler = "app.handler"', f'role = "{self.edge_role}"',
                 "timeout = 5", f'edge = {{ distribution = "{self.distribution}", event_type = "viewer-request" }}',
                 self.viewer_extra,
                 "", "[functions.origin]", 'handler = "app.handler"', f'role = "{self.edge_role}"',
                 "memory = 512", "timeout = 20",
                 f'edge = {{ distribution = "{self.distribution}", event_type = "origin-request", '
                 f'path_pattern = "{PATH}", include_body = true }}']
        requirements = {"api": "alpha\nbeta\n", "viewer": "alpha\n", "origin": "alpha\ngamma\n"}
        for name, needs in requirements.items():
            source = self.root / "functions" / name
            source.mkdir(parents=True, exist_ok=True)
            if not (source / "app.py").exists():
                self.edit(name, "")
            (source / "requirements.txt").write_text(needs, encoding="utf-8")
        (self.root / "lbuild.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self

    def edit(self, name: str, comment: str) -> None:
        (self.root / "functions" / name / "app.py").write_text(
            f"def handler(event, context):\n    return event  # {name} {comment}\n", encoding="utf-8")

    def run(self, *args: str) -> Run:
        return self.run_cli(self.root, *args, before_call=(self.cloudfront,))

    def lambda_in(self, region: str) -> Any:
        import boto3

        return boto3.client("lambda", region_name=region, endpoint_url=self.aws.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def functions(self, region: str) -> set[str]:
        return {f["FunctionName"] for f in self.lambda_in(region).list_functions()["Functions"]}

    def versions(self, name: str, region: str = EDGE_REGION) -> list[str]:
        found = self.lambda_in(region).list_versions_by_function(FunctionName=f"{PROJECT}-{name}")["Versions"]
        return sorted((v["Version"] for v in found if v["Version"] != "$LATEST"), key=int)

    def version_arn(self, name: str, version: str) -> str:
        return f"arn:aws:lambda:{EDGE_REGION}:{ACCOUNT}:function:{PROJECT}-{name}:{version}"


def _fn(name: str) -> str:
    return f"{PROJECT}-{name}"


def _create_role(aws: MotoAws, name: str, principals: list[str]) -> str:
    policy = {**TRUST_POLICY, "Statement": [{**TRUST_POLICY["Statement"][0], "Principal": {"Service": principals}}]}
    return str(aws.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy))["Role"]["Arn"])


@pytest.fixture()
def site(tmp_path: Path, aws_env: MotoAws, deploy_wheels: Path, run_cli: RunCli) -> Site:
    cloudfront = CloudFront(aws_env)
    distribution = cloudfront.create(DISTRIBUTION_CONFIG)
    empty_zip = b"PK\x05\x06" + bytes(18)
    external = aws_env.lambda_.publish_layer_version(LayerName="ext-tools", Content={"ZipFile": empty_zip},
                                                     CompatibleRuntimes=["python3.12"])["LayerVersionArn"]
    edge_role = _create_role(aws_env, EDGE_ROLE, ["lambda.amazonaws.com", "edgelambda.amazonaws.com"])
    return Site(tmp_path / "site", aws_env, cloudfront, distribution, run_cli, deploy_wheels, aws_env.role_arn,
                edge_role, external).write()


def _writes(result: Run) -> list[str]:
    return [op for op, _ in result.recorder.calls if not op.split(".")[1].startswith(READ_PREFIXES)]


def _without_associations(config: Mapping[str, Any]) -> dict[str, Any]:
    """A DistributionConfig with every LambdaFunctionAssociations block taken out."""
    out = json.loads(json.dumps(config))
    out["DefaultCacheBehavior"].pop("LambdaFunctionAssociations", None)
    for behaviour in out.get("CacheBehaviors", {}).get("Items", []):
        behaviour.pop("LambdaFunctionAssociations", None)
    return dict(out)


# --- deploy ---------------------------------------------------------------------------------------------------


def test_first_deploy_publishes_edge_versions_in_us_east_1_and_attaches_them(site: Site) -> None:
    read = site.aws.client("cloudfront").get_distribution_config(Id=site.distribution)["DistributionConfig"]
    assert read["Comment"] == "site with edge functions" and read["CacheBehaviors"]["Items"][0]["Compress"] is False
    result = site.deploy()
    manifest = site.manifest()
    entries = {f["name"]: f for f in manifest["functions"]}

    # the Edge functions: us-east-1 only, x86_64, no environment, no layers (not even the project's)
    assert site.functions(EDGE_REGION) == {_fn("viewer"), _fn("origin")}
    assert site.functions("eu-west-1") == {_fn("api")}
    assert manifest["layers"] == [], "alpha is needed by both Edge functions, but Edge takes no shared layer"
    edge_lambda = site.lambda_in(EDGE_REGION)
    for name, memory, timeout in (("viewer", 128, 5), ("origin", 512, 20)):
        got = edge_lambda.get_function(FunctionName=_fn(name))
        config = got["Configuration"]
        assert config["Architectures"] == ["x86_64"]
        assert config["Runtime"] == "python3.12"
        assert (config["MemorySize"], config["Timeout"]) == (memory, timeout)
        assert (config.get("Environment") or {}).get("Variables", {}) == {}
        assert config.get("Layers", []) == []
        assert config["Role"] == site.edge_role
        assert config["CodeSha256"] == entries[name]["code_sha256"]
        assert entries[name]["layers"] == [] and entries[name]["external_layers"] == []
        assert entries[name]["architecture"] == "x86_64"
        assert "alpha==1.0" in entries[name]["packages"], "its dependencies are in its own zip"
        assert not got.get("Tags"), "Edge functions carry no tags"
        assert site.versions(name) == ["1"], "a numbered version"
        with pytest.raises(edge_lambda.exceptions.ResourceNotFoundException):
            edge_lambda.get_alias(FunctionName=_fn(name), Name=ALIAS)
    created = {p["FunctionName"]: p for p in result.params("lambda.CreateFunction")}
    assert created[_fn("viewer")]["Tags"] == {} and created[_fn("viewer")]["Environment"] == {"Variables": {}}
    assert created[_fn("viewer")]["Layers"] == []

    # the regular function: eu-west-1 as before, with the project's settings and its alias
    api = site.aws.lambda_.get_function(FunctionName=_fn("api"))["Configuration"]
    assert api["Architectures"] == ["arm64"]
    assert api["Environment"]["Variables"] == {"STAGE": "test"}
    assert [layer["Arn"] for layer in api["Layers"]] == [site.external_layer]
    assert site.aws.lambda_.get_alias(FunctionName=_fn("api"), Name=ALIAS)["FunctionVersion"] == "1"

    # what was sent to CloudFront: for each Edge function a fresh read, then an update with its ETag
    assert result.counts["cloudfront.UpdateDistribution"] == 2
    updates = result.params("cloudfront.UpdateDistribution")
    log = site.cloudfront.log
    for position, (kind, value) in enumerate(log):
        if kind == "update":
            assert log[position - 1] == ("get", value), "IfMatch is the ETag of the read just before"
    assert [u["IfMatch"] for u in updates] == [v for k, v in log if k == "update"] == ["ETAG1", "ETAG2"]
    assert {u["Id"] for u in updates} == {site.distribution}
    assert site.cloudfront.refused == []

    viewer = {"LambdaFunctionARN": site.version_arn("viewer", "1"), "EventType": "viewer-request",
              "IncludeBody": False}
    origin = {"LambdaFunctionARN": site.version_arn("origin", "1"), "EventType": "origin-request",
              "IncludeBody": True}
    expected = [  # (default behaviour, /api/*) in each update: viewer first, in config order
        ({"Quantity": 2, "Items": [OTHER_ITEM, viewer]}, {"Quantity": 0}),
        ({"Quantity": 2, "Items": [OTHER_ITEM, viewer]}, {"Quantity": 1, "Items": [origin]}),
    ]
    for update, (default, api_path) in zip(updates, expected, strict=True):
        sent = update["DistributionConfig"]
        assert sorted(sent["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Items"], key=str) == \
            sorted(default["Items"], key=str)
        assert sent["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Quantity"] == default["Quantity"]
        assert sent["CacheBehaviors"]["Items"][0]["LambdaFunctionAssociations"] == api_path
        assert sent["CacheBehaviors"]["Items"][1]["LambdaFunctionAssociations"] == {"Quantity": 0}
        # everything but the associations is what was read before the deploy
        assert _without_associations(sent) == _without_associations(read)

    # the serialized request carries the version ARN (checked on the XML botocore sent)
    for body in site.cloudfront.bodies:
        assert b"<LambdaFunctionARN>" + OTHER.encode() in body
    last, problems = _sent_associations(site.cloudfront.bodies[-1])
    assert problems == []
    assert {i["EventType"]: i["LambdaFunctionARN"] for i in last[None]} == {
        "viewer-request": site.version_arn("viewer", "1"), "viewer-response": OTHER}
    assert last[PATH] == [origin] and last["/static/*"] == []
    assert site.cloudfront.stored(site.distribution, None) == {"viewer-request": site.version_arn("viewer", "1"),
                                                               "viewer-response": OTHER}

    # order: every association after every version, aliases included
    writes = _writes(result)
    assert writes[-2:] == ["cloudfront.UpdateDistribution"] * 2
    assert writes.index("cloudfront.UpdateDistribution") > max(i for i, op in enumerate(writes)
                                                              if op.startswith("lambda."))
    assert result.counts["cloudfront.GetDistribution"] == 0, "no waiting without --wait"


def test_unchanged_deploy_writes_nothing_and_a_code_change_moves_one_association(site: Site) -> None:
    site.deploy()
    again = site.deploy()
    assert _writes(again) == []
    assert again.json()["changes"] == 0
    steps = {s["what"]: s["reason"] for s in again.json()["steps"]}
    assert steps[f"association of {_fn('viewer')} (the default cache behaviour, viewer-request): unchanged"] == \
        "CloudFront already runs version 1 with this code"
    assert steps[f"association of {_fn('origin')} (path {PATH}, origin-request): unchanged"] == \
        "CloudFront already runs version 1 with this code"

    site.edit("viewer", "v2")
    assert site.run("package").code == 0  # plan plans what dist/ holds; it never builds
    plan = site.run("plan", "--json")
    assert plan.code == 10, plan.stderr
    assert _writes(plan) == []
    changes = [s for s in plan.json()["steps"] if s["writes"]]
    assert [(s["action"], s["what"]) for s in changes] == [
        ("UpdateCode", f"update code of {_fn('viewer')}"),
        ("PublishVersion", f"publish a version of {_fn('viewer')}"),
        ("AssociateEdge", f"attach {_fn('viewer')} to distribution {site.distribution} "
                          "(the default cache behaviour, viewer-request)"),
    ]
    assert changes[-1]["reason"] == "version 1 -> the new version, after every function has its new version"
    human = site.run("plan")
    assert human.code == 10
    assert f" + attach {_fn('viewer')} to distribution {site.distribution} (the default cache behaviour, " \
           "viewer-request): version 1 -> the new version" in human.stderr

    result = site.deploy()
    assert _writes(result) == ["lambda.UpdateFunctionCode", "lambda.PublishVersion", "cloudfront.UpdateDistribution"]
    assert result.touched("UpdateFunctionCode") == {_fn("viewer")}
    assert site.versions("viewer") == ["1", "2"] and site.versions("origin") == ["1"]
    (update,) = result.params("cloudfront.UpdateDistribution")
    default = update["DistributionConfig"]["DefaultCacheBehavior"]["LambdaFunctionAssociations"]
    assert sorted(default["Items"], key=str) == sorted(
        [OTHER_ITEM, {"LambdaFunctionARN": site.version_arn("viewer", "2"), "EventType": "viewer-request",
                      "IncludeBody": False}], key=str)
    assert update["DistributionConfig"]["CacheBehaviors"]["Items"][0]["LambdaFunctionAssociations"]["Items"] == [
        {"LambdaFunctionARN": site.version_arn("origin", "1"), "EventType": "origin-request", "IncludeBody": True}]
    step = next(s for s in result.json()["steps"] if s["action"] == "AssociateEdge")
    assert step["detail"] == f"{site.version_arn('viewer', '1')} -> {site.version_arn('viewer', '2')}"
    assert site.run("plan").code == 0


def test_association_taken_by_another_function_is_attached_again(site: Site) -> None:
    site.deploy()
    stranger = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:someone-else-auth:9"
    site.cloudfront.changed_elsewhere(site.distribution, None, {"LambdaFunctionARN": stranger,
                                                                "EventType": "viewer-request", "IncludeBody": False})
    plan = site.run("plan", "--json")
    assert plan.code == 10, plan.stderr
    (step,) = [s for s in plan.json()["steps"] if s["action"] == "AssociateEdge"]
    assert step["reason"] == f"{stranger} -> the new version, after every function has its new version"
    site.deploy()
    assert site.cloudfront.stored(site.distribution, None)["viewer-request"] == site.version_arn("viewer", "1")
    assert site.versions("viewer") == ["1"], "the code did not change: its version is reused"


# --- PreconditionFailed --------------------------------------------------------------------------------------


def test_precondition_failed_rereads_the_configuration_and_retries(site: Site) -> None:
    """moto never returns 412 (any non-empty IfMatch is accepted); the fake CloudFront answers the first
    UpdateDistribution with 412 PreconditionFailed, because someone else updated the distribution between
    lbuild's read and its update. lbuild reads it again and keeps that other change."""
    late = {"LambdaFunctionARN": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:someone-else-logs:2",
            "EventType": "origin-response", "IncludeBody": False}
    site.cloudfront.race = lambda cf, distribution: cf.changed_elsewhere(distribution, None, late)

    result = site.deploy()
    assert result.counts["cloudfront.UpdateDistribution"] == 3, "one refused, then one per Edge function"
    log = site.cloudfront.log
    assert log[-6:] == [("get", "ETAG1"), ("update", "ETAG1"),  # stale: the race moved the ETag to ETAG2
                        ("get", "ETAG2"), ("update", "ETAG2"),
                        ("get", "ETAG3"), ("update", "ETAG3")]
    refused, retried = result.params("cloudfront.UpdateDistribution")[:2]
    assert refused["IfMatch"] == "ETAG1" and retried["IfMatch"] == "ETAG2"
    items = retried["DistributionConfig"]["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Items"]
    assert late in items and OTHER_ITEM in items, "the retry edits the configuration as it is now"
    assert site.cloudfront.stored(site.distribution, None) == {
        "viewer-request": site.version_arn("viewer", "1"), "viewer-response": OTHER,
        "origin-response": late["LambdaFunctionARN"]}
    assert {s["status"] for s in result.json()["steps"]} == {"done"}


def test_precondition_failing_every_time_gives_up_with_a_clear_error(site: Site) -> None:
    """moto never returns 412: the fake CloudFront's distribution changes before every update."""
    def always(cf: CloudFront, distribution: str) -> None:
        cf.generation[distribution] += 1
        cf.race = always

    site.cloudfront.race = always
    result = site.run("deploy", "--yes")
    assert result.code == 6, result.stderr
    assert "PreconditionFailed" in result.stderr and "UpdateDistribution" in result.stderr
    assert result.counts["cloudfront.UpdateDistribution"] == 5, "a few attempts, then it gives up"
    assert site.cloudfront.stored(site.distribution, None) == {"viewer-response": OTHER}
    # the release is all or nothing: the alias of api, created before the associations, is taken back
    assert f"Rolled back: create alias {ALIAS} of {_fn('api')}" in result.stderr
    assert "no alias was moved; run `lbuild deploy` again to finish" in result.stderr
    assert site.aws.lambda_.list_aliases(FunctionName=_fn("api"))["Aliases"] == []


# --- validation against AWS ----------------------------------------------------------------------------------


def test_role_not_trusting_edgelambda_fails_the_plan_and_deploys_nothing(site: Site) -> None:
    site.edge_role = site.aws.role_arn  # trusts lambda.amazonaws.com only
    site.write()
    assert site.run("package").code == 0
    for command in (("plan",), ("deploy", "--yes")):
        result = site.run(*command, "--json")
        assert result.code == 2, result.stderr
        error = result.json()
        assert error["error"] == (f"role {site.aws.role_arn} does not trust edgelambda.amazonaws.com, "
                                  "which Lambda@Edge needs")
        assert error["where"].startswith("role of ") and _fn("viewer") in error["where"]
        assert "templates/edge-trust-policy.json" in error["hint"]
        policy = json.loads(error["hint"].split("templates/edge-trust-policy.json: ", 1)[1])
        template = Path(__file__).resolve().parents[2] / "templates" / "edge-trust-policy.json"
        assert policy == json.loads(template.read_text(encoding="utf-8")) == TRUST_POLICY
        assert "hint: add the principals to the role's trust policy" in result.stderr
        assert _writes(result) == []
        assert result.counts["iam.GetRole"] == 1
    assert site.functions(EDGE_REGION) == set() and site.functions("eu-west-1") == set()
    assert site.cloudfront.log == []


# --- size limit --------------------------------------------------------------------------------------------


def test_viewer_function_over_one_megabyte_is_refused_by_package(site: Site) -> None:
    blob = random.Random(6).randbytes(1536 * 1024)  # incompressible: the zip is over 1 MB
    (site.root / "functions" / "viewer" / "blob.bin").write_bytes(blob)
    result = site.run("package")
    assert result.code == 5, result.stderr
    assert "zip size for Lambda@Edge viewer-request is " in result.stderr
    assert "over Lambda's 1 MB (1,048,576 bytes)" in result.stderr
    assert "(function viewer)" in result.stderr
    assert "hint: trim the function's dependencies, or use an origin-request/origin-response trigger (50 MB)" \
        in result.stderr
    assert result.recorder.calls == []

    (site.root / "functions" / "viewer" / "blob.bin").rename(site.root / "functions" / "origin" / "blob.bin")
    fine = site.run("package")
    assert fine.code == 0, "origin-request allows 50 MB"
    assert next(f for f in site.manifest()["functions"] if f["name"] == "origin")["zip_bytes"] > 1024 * 1024


# --- prune ---------------------------------------------------------------------------------------------------


def test_prune_leaves_edge_versions_alone_and_says_why(site: Site) -> None:
    site.deploy()
    site.edit("viewer", "v2")
    site.edit("api", "v2")
    site.deploy()
    assert site.versions("viewer") == ["1", "2"]
    assert site.versions("api", "eu-west-1") == ["1", "2"]

    done = site.run("prune", "--keep", "0", "--yes")
    assert done.code == 0, done.stderr
    assert site.versions("viewer") == ["1", "2"] and site.versions("origin") == ["1"]
    assert site.versions("api", "eu-west-1") == ["2"], "the regular function is pruned down to its alias"
    for name in ("viewer", "origin"):
        assert f"{_fn(name)}: Lambda@Edge versions are never pruned (CloudFront may hold replicas)" in done.stderr
    edge_names = {_fn("viewer"), _fn("origin")}
    assert not any(p.get("FunctionName") in edge_names for _, p in done.recorder.calls)

    listed = site.run("prune", "--keep", "0", "--json")
    assert listed.code == 0, listed.stderr
    assert listed.json()["skipped"] == [
        f"{_fn(name)}: Lambda@Edge versions are never pruned (CloudFront may hold replicas)"
        for name in ("viewer", "origin")]


# --- --wait --------------------------------------------------------------------------------------------------


@pytest.fixture()
def waiter_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays botocore's waiters would sleep (60 s each for CloudFront), recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(botocore.waiter, "time", SimpleNamespace(sleep=slept.append))
    return slept


def test_deploy_wait_waits_until_the_distribution_is_deployed(site: Site, waiter_sleeps: list[float]) -> None:
    """moto reports Deployed at once; the fake CloudFront says InProgress twice first."""
    site.cloudfront.in_progress = 2
    result = site.deploy("--wait")
    gets = result.params("cloudfront.GetDistribution")
    assert len(gets) >= 3 and {g["Id"] for g in gets} == {site.distribution}
    assert waiter_sleeps == [60, 60], "polled until Deployed"
    calls = [op for op, _ in result.recorder.calls]
    last_update = max(i for i, op in enumerate(calls) if op == "cloudfront.UpdateDistribution")
    assert calls.index("cloudfront.GetDistribution") > calls.index("cloudfront.UpdateDistribution")
    assert calls[-1] == "cloudfront.GetDistribution" and last_update < len(calls) - 1, "waits after the last update"
    assert result.json()["requests"]["by_operation"]["cloudfront.GetDistribution"] == len(gets)

    site.cloudfront.in_progress = 1000
    site.edit("viewer", "v2")
    stuck = site.run("deploy", "--wait", "--yes")
    assert stuck.code == 6, stuck.stderr
    assert f"distribution {site.distribution} did not finish deploying" in stuck.stderr
    assert "hint: see its status in the CloudFront console" in stuck.stderr
    assert stuck.counts["cloudfront.GetDistribution"] == 35, "botocore's waiter: 35 attempts, 60 s apart"

    plain = site.deploy()
    assert plain.counts["cloudfront.GetDistribution"] == 0, "no waiting without --wait"


def test_canary_is_refused_for_edge_functions_and_allowed_for_the_others(site: Site) -> None:
    site.deploy()
    refused = site.run("deploy", "--yes", "--canary", "10")
    assert refused.code == 2, refused.stderr
    assert refused.stderr.startswith("error: Lambda@Edge functions cannot take a canary: ")
    assert "viewer" in refused.stderr and "origin" in refused.stderr and "api" not in refused.stderr.split("\n")[0]
    assert "hint: CloudFront runs one numbered version" in refused.stderr
    assert refused.writes == 0 and refused.reads == 0

    site.edit("api", "v2")
    canary = site.deploy("api", "--canary", "10")
    routing = site.aws.lambda_.get_alias(FunctionName=_fn("api"), Name=ALIAS)["RoutingConfig"]
    assert routing == {"AdditionalVersionWeights": {"2": 0.1}}
    assert canary.counts["cloudfront.UpdateDistribution"] == 0
