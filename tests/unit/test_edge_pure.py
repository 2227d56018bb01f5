"""Lambda@Edge, pure parts: the CloudFront association edit, the trust-policy check, and the planner's Edge steps.

No AWS: DistributionConfig dicts are shaped like GetDistributionConfig's answer; the planner gets hand-made
wanted and remote state (``tests/unit/test_publish_plan.py`` does the same for regular functions).
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lbuild import rules
from lbuild.config import EdgeSpec, Function, Project
from lbuild.errors import ConfigError
from lbuild.manifest import Manifest
from lbuild.publisher.edge import (
    EDGE_PRINCIPALS,
    TRUST_POLICY,
    Association,
    current_arn,
    missing_principals,
    trusted_principals,
    with_association,
)
from lbuild.publisher.plan import (
    AssociateEdge,
    CreateFunction,
    MoveAlias,
    PublishVersion,
    RemoteFunction,
    RemoteState,
    TagFunction,
    Unchanged,
    UpdateCode,
    UpdateConfig,
    WantedFunction,
    plan,
    wanted_state,
)
from tests.unit.test_manifest import zip_entry
from tests.unit.test_publish_plan import config, project, remote, wanted

ACCOUNT = "123456789012"
DIST = "E2QWRUHAPOMQZL"
OLD = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-auth:3"
NEW = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-auth:4"
HEADERS = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-headers:12"
REWRITE = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-rewrite:7"


# --- a realistic DistributionConfig -------------------------------------------------------------------------


def _behaviour(associations: list[dict[str, Any]] | None, **extra: Any) -> dict[str, Any]:
    behaviour: dict[str, Any] = {
        "TargetOriginId": "shop-web",
        "TrustedSigners": {"Enabled": False, "Quantity": 0},
        "TrustedKeyGroups": {"Enabled": False, "Quantity": 0},
        "ViewerProtocolPolicy": "redirect-to-https",
        "AllowedMethods": {"Quantity": 2, "Items": ["HEAD", "GET"],
                           "CachedMethods": {"Quantity": 2, "Items": ["HEAD", "GET"]}},
        "SmoothStreaming": False,
        "Compress": True,
        "FunctionAssociations": {"Quantity": 1, "Items": [
            {"FunctionARN": f"arn:aws:cloudfront::{ACCOUNT}:function/redirects", "EventType": "viewer-response"}]},
        "FieldLevelEncryptionId": "",
        "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        **extra,
    }
    if associations is not None:
        behaviour["LambdaFunctionAssociations"] = {"Quantity": len(associations), "Items": associations} \
            if associations else {"Quantity": 0}
    return behaviour


def _item(arn: str, event_type: str, include_body: bool = False) -> dict[str, Any]:
    return {"LambdaFunctionARN": arn, "EventType": event_type, "IncludeBody": include_body}


def distribution_config() -> dict[str, Any]:
    """Three behaviours: default (viewer-request -> OLD, origin-response -> HEADERS), /api/* (origin-request ->
    REWRITE, with body) and /static/* (none)."""
    return {
        "CallerReference": "shop-2024-03-01",
        "Aliases": {"Quantity": 1, "Items": ["shop.example.com"]},
        "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 2, "Items": [
            {"Id": "shop-web", "DomainName": "shop-web.s3.eu-west-1.amazonaws.com", "OriginPath": "",
             "CustomHeaders": {"Quantity": 0}, "S3OriginConfig": {"OriginAccessIdentity": ""},
             "ConnectionAttempts": 3, "ConnectionTimeout": 10, "OriginShield": {"Enabled": False},
             "OriginAccessControlId": "E3OAC"},
            {"Id": "shop-api", "DomainName": "api.shop.example.com", "OriginPath": "/v1",
             "CustomHeaders": {"Quantity": 1, "Items": [{"HeaderName": "X-Origin-Key", "HeaderValue": "s3cr3t"}]},
             "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only",
                                    "OriginSslProtocols": {"Quantity": 1, "Items": ["TLSv1.2"]},
                                    "OriginReadTimeout": 30, "OriginKeepaliveTimeout": 5}},
        ]},
        "OriginGroups": {"Quantity": 0},
        "DefaultCacheBehavior": _behaviour([_item(OLD, "viewer-request"), _item(HEADERS, "origin-response")]),
        "CacheBehaviors": {"Quantity": 2, "Items": [
            _behaviour([_item(REWRITE, "origin-request", True)], PathPattern="/api/*", TargetOriginId="shop-api",
                       Compress=False),
            _behaviour([], PathPattern="/static/*"),
        ]},
        "CustomErrorResponses": {"Quantity": 1, "Items": [
            {"ErrorCode": 404, "ResponsePagePath": "/404.html", "ResponseCode": "404", "ErrorCachingMinTTL": 10}]},
        "Comment": "shop front",
        "Logging": {"Enabled": False, "IncludeCookies": False, "Bucket": "", "Prefix": ""},
        "PriceClass": "PriceClass_100",
        "Enabled": True,
        "ViewerCertificate": {"ACMCertificateArn": f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/abc",
                              "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"},
        "Restrictions": {"GeoRestriction": {"RestrictionType": "none", "Quantity": 0}},
        "WebACLId": "",
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": True,
    }


def _associations(config: dict[str, Any], path: str | None) -> dict[str, Any]:
    if path is None:
        return dict(config["DefaultCacheBehavior"]["LambdaFunctionAssociations"])
    behaviour = next(b for b in config["CacheBehaviors"]["Items"] if b["PathPattern"] == path)
    return dict(behaviour["LambdaFunctionAssociations"])


def _except(config: dict[str, Any], path: str | None) -> dict[str, Any]:
    """``config`` without the associations of one behaviour."""
    rest = copy.deepcopy(config)
    if path is None:
        rest["DefaultCacheBehavior"].pop("LambdaFunctionAssociations", None)
    else:
        next(b for b in rest["CacheBehaviors"]["Items"] if b["PathPattern"] == path).pop("LambdaFunctionAssociations",
                                                                                          None)
    return rest


def _by_event(block: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    assert block["Quantity"] == len(block.get("Items") or [])
    return {i["EventType"]: (i["LambdaFunctionARN"], i["IncludeBody"]) for i in block.get("Items") or []}


# --- with_association ------------------------------------------------------------------------------------------


def test_default_behaviour_replaces_its_event_type_and_keeps_everything_else() -> None:
    before = distribution_config()
    after = with_association(before, Association(DIST, None, "viewer-request"), NEW)
    assert _by_event(_associations(after, None)) == {"viewer-request": (NEW, False),
                                                     "origin-response": (HEADERS, False)}
    assert _associations(after, None)["Quantity"] == 2
    assert _except(after, None) == _except(before, None), "every other setting and association is untouched"
    assert before == distribution_config(), "the configuration read is not changed in place"


def test_path_pattern_behaviour_is_edited_not_the_default_one() -> None:
    before = distribution_config()
    after = with_association(before, Association(DIST, "/api/*", "origin-request", include_body=False), NEW)
    assert _by_event(_associations(after, "/api/*")) == {"origin-request": (NEW, False)}
    assert _associations(after, "/api/*")["Quantity"] == 1
    assert _associations(after, None) == _associations(before, None)
    assert _except(after, "/api/*") == _except(before, "/api/*")


def test_a_new_event_type_is_added_beside_the_others() -> None:
    before = distribution_config()
    after = with_association(before, Association(DIST, None, "viewer-response"), NEW)
    assert _by_event(_associations(after, None)) == {
        "viewer-request": (OLD, False), "origin-response": (HEADERS, False), "viewer-response": (NEW, False)}
    assert _associations(after, None)["Quantity"] == 3
    assert _except(after, None) == _except(before, None)


def test_include_body_is_carried() -> None:
    after = with_association(distribution_config(), Association(DIST, None, "origin-request", True), NEW)
    assert _by_event(_associations(after, None))["origin-request"] == (NEW, True)


@pytest.mark.parametrize("block", [{"Quantity": 0}, None], ids=["quantity-0-without-items", "absent"])
def test_a_behaviour_without_associations_gets_its_first(block: dict[str, Any] | None) -> None:
    before = distribution_config()
    static = before["CacheBehaviors"]["Items"][1]
    if block is None:
        del static["LambdaFunctionAssociations"]
    else:
        static["LambdaFunctionAssociations"] = block
    after = with_association(before, Association(DIST, "/static/*", "viewer-request"), NEW)
    assert _associations(after, "/static/*") == {"Quantity": 1, "Items": [_item(NEW, "viewer-request")]}
    assert _except(after, "/static/*") == _except(before, "/static/*")


def test_the_edit_is_idempotent() -> None:
    association = Association(DIST, "/api/*", "origin-request", True)
    once = with_association(distribution_config(), association, NEW)
    assert with_association(once, association, NEW) == once


def test_unknown_path_pattern_names_it_and_lists_the_existing_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        with_association(distribution_config(), Association(DIST, "/apu/*", "origin-request"), NEW)
    error = caught.value
    assert error.exit_code == 2
    assert error.what == f"distribution {DIST} has no cache behaviour with path pattern '/apu/*'"
    assert error.where == "edge.path_pattern"
    assert error.hint is not None and "'/api/*'" in error.hint and "'/static/*'" in error.hint
    assert "leave path_pattern out for the default behaviour" in error.hint


def test_unknown_path_pattern_on_a_distribution_without_cache_behaviours() -> None:
    config = distribution_config()
    config["CacheBehaviors"] = {"Quantity": 0}
    with pytest.raises(ConfigError) as caught:
        current_arn(config, Association(DIST, "/api/*", "origin-request"))
    assert "'/api/*'" in caught.value.what
    assert caught.value.hint == "leave path_pattern out to use the default cache behaviour"


def test_current_arn() -> None:
    config = distribution_config()
    assert current_arn(config, Association(DIST, None, "viewer-request")) == OLD
    assert current_arn(config, Association(DIST, None, "origin-response")) == HEADERS
    assert current_arn(config, Association(DIST, None, "viewer-response")) is None
    assert current_arn(config, Association(DIST, "/api/*", "origin-request")) == REWRITE
    assert current_arn(config, Association(DIST, "/api/*", "viewer-request")) is None
    assert current_arn(config, Association(DIST, "/static/*", "viewer-request")) is None


def test_behaviour_is_described_for_the_plan() -> None:
    assert Association(DIST, None, "viewer-request").behaviour() == "the default cache behaviour"
    assert Association(DIST, "/api/*", "origin-request").behaviour() == "path /api/*"


# --- the trust policy ------------------------------------------------------------------------------------------


LAMBDA_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def test_the_example_policy_and_the_template_trust_both() -> None:
    template = Path(__file__).resolve().parents[2] / "templates" / "edge-trust-policy.json"
    assert json.loads(template.read_text(encoding="utf-8")) == TRUST_POLICY
    assert trusted_principals(TRUST_POLICY) == set(EDGE_PRINCIPALS)
    assert missing_principals(TRUST_POLICY) == []


def test_single_string_principal() -> None:
    assert trusted_principals(LAMBDA_ONLY) == {"lambda.amazonaws.com"}
    assert missing_principals(LAMBDA_ONLY) == ["edgelambda.amazonaws.com"]


def test_url_encoded_json_string_as_iam_returns_it() -> None:
    encoded = urllib.parse.quote(json.dumps(TRUST_POLICY))
    assert encoded.startswith("%7B")
    assert missing_principals(encoded) == []
    assert missing_principals(urllib.parse.quote(json.dumps(LAMBDA_ONLY))) == ["edgelambda.amazonaws.com"]
    assert missing_principals(json.dumps(LAMBDA_ONLY)) == ["edgelambda.amazonaws.com"], "plain JSON too"


def test_principals_from_several_statements_and_a_single_statement_object() -> None:
    split = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Service": ["edgelambda.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}
    assert missing_principals(split) == []
    single = {"Version": "2012-10-17", "Statement": LAMBDA_ONLY["Statement"][0]}
    assert missing_principals(single) == ["edgelambda.amazonaws.com"]


def test_deny_statements_do_not_trust() -> None:
    denied = {"Version": "2012-10-17", "Statement": [
        *LAMBDA_ONLY["Statement"],
        {"Effect": "Deny", "Principal": {"Service": "edgelambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    assert trusted_principals(denied) == {"lambda.amazonaws.com"}
    assert missing_principals(denied) == ["edgelambda.amazonaws.com"]


def test_account_principals_are_not_services() -> None:
    accounts = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
    assert trusted_principals(accounts) == set()
    assert missing_principals(accounts) == list(EDGE_PRINCIPALS)
    assert missing_principals({"Version": "2012-10-17", "Statement": []}) == list(EDGE_PRINCIPALS)


def test_wildcard_principal_names_no_service_and_does_not_crash() -> None:
    wildcard = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}, *LAMBDA_ONLY["Statement"]]}
    assert trusted_principals(wildcard) == {"lambda.amazonaws.com"}
    assert missing_principals(wildcard) == ["edgelambda.amazonaws.com"]


# --- the planner -------------------------------------------------------------------------------------------------


EDGE_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:shop-auth"
ASSOCIATION = Association(DIST, None, "viewer-request")


def edge_wanted(code: str = "code-1", **config_changes: object) -> WantedFunction:
    fn = wanted("auth", code=code, architecture="x86_64", **{"memory": 128, "timeout": 5, "environment": (),
                                                              **config_changes})
    return replace(fn, tags={}, region=rules.EDGE_REGION, edge=ASSOCIATION)


def edge_remote(fn: WantedFunction, *, attached: str | None = f"{EDGE_ARN}:3", code: str | None = None,
                version_code: str | None = None, **config_changes: object) -> RemoteFunction:
    """The function in us-east-1 and the version CloudFront runs (``attached``, ``version_code``)."""
    base = remote(fn, code=code, alias_version=None, **config_changes)
    base = replace(base, arn=EDGE_ARN, tags={})
    if attached is None or not attached.startswith(EDGE_ARN + ":"):
        return replace(base, edge_arn=attached)
    return replace(base, edge_arn=attached, alias_version=attached.rsplit(":", 1)[1],
                   alias_code_sha256=version_code or fn.code_sha256, alias_config=fn.config)


def _plan(*functions: WantedFunction, remotes: dict[str, RemoteFunction | None], alias: str | None = "live") -> Any:
    return plan(project(alias=alias, bucket=None), (), functions, RemoteState(remotes, {}), alias)


def test_association_running_the_same_code_and_config_is_unchanged() -> None:
    fn = edge_wanted()
    result = _plan(fn, remotes={fn.name: edge_remote(fn)})
    assert result.changes == ()
    assert [type(s) for s in result.steps] == [Unchanged, Unchanged]
    association = result.steps[1]
    assert association.describe() == "association of shop-auth (the default cache behaviour, viewer-request): unchanged"
    assert association.reason == "CloudFront already runs version 3 with this code"


def test_changed_code_publishes_a_version_and_moves_the_association_last() -> None:
    fn = edge_wanted(code="code-2")
    result = _plan(fn, remotes={fn.name: edge_remote(fn, code="code-1", version_code="code-1")})
    assert [type(s) for s in result.steps] == [UpdateCode, PublishVersion, AssociateEdge]
    publish, associate = result.steps[1], result.steps[2]
    assert publish.reason == "Lambda@Edge needs a numbered version of the new code"
    assert associate.reason == "version 3 -> the new version, after every function has its new version"
    assert associate.association == ASSOCIATION and associate.old_arn == f"{EDGE_ARN}:3"
    assert associate.describe() == f"attach shop-auth to distribution {DIST} (the default cache behaviour, " \
                                   "viewer-request)"
    assert associate.function.region == "us-east-1"


def test_changed_configuration_also_needs_a_new_version() -> None:
    fn = edge_wanted(memory=128)
    current = edge_remote(fn, memory=64)
    current = replace(current, alias_config=current.config)
    result = _plan(fn, remotes={fn.name: current})
    assert [type(s) for s in result.steps] == [UpdateConfig, PublishVersion, AssociateEdge]
    assert result.steps[0].reason == "memory 64 -> 128"


def test_latest_updated_but_association_on_an_older_version_publishes_and_attaches() -> None:
    """$LATEST already has the new code (an earlier deploy stopped half-way): a version is published."""
    fn = edge_wanted(code="code-2")
    result = _plan(fn, remotes={fn.name: edge_remote(fn, version_code="code-1")})
    assert [type(s) for s in result.steps] == [Unchanged, PublishVersion, AssociateEdge]


def test_association_of_another_function_is_taken_back() -> None:
    fn = edge_wanted()
    result = _plan(fn, remotes={fn.name: edge_remote(fn, attached=OLD.replace("shop-auth", "shop-legacy-auth"))})
    assert [type(s) for s in result.steps] == [Unchanged, PublishVersion, AssociateEdge]
    associate = result.steps[-1]
    assert associate.old_arn == OLD.replace("shop-auth", "shop-legacy-auth")
    assert associate.reason.startswith(f"{associate.old_arn} -> the new version")


def test_nothing_attached_yet_and_function_missing() -> None:
    fn = edge_wanted()
    attached_nothing = _plan(fn, remotes={fn.name: edge_remote(fn, attached=None)})
    assert [type(s) for s in attached_nothing.steps] == [Unchanged, PublishVersion, AssociateEdge]
    assert attached_nothing.steps[-1].reason.startswith("nothing -> the new version")
    new = _plan(fn, remotes={fn.name: None})
    assert [type(s) for s in new.steps] == [CreateFunction, AssociateEdge]
    assert isinstance(new.steps[0], CreateFunction) and new.steps[0].publish, "the create publishes version 1"
    assert new.steps[-1].old_arn is None


def test_edge_functions_get_no_alias_even_when_the_project_has_one() -> None:
    fn = edge_wanted(code="code-2")
    result = _plan(fn, remotes={fn.name: edge_remote(fn, code="code-1", version_code="code-1")})
    assert not any(isinstance(s, MoveAlias) for s in result.steps)


def test_associations_and_aliases_come_after_every_other_step() -> None:
    edge, regular = edge_wanted(code="code-2"), wanted("orders", code="code-2")
    result = _plan(edge, regular, remotes={edge.name: edge_remote(edge, code="code-1", version_code="code-1"),
                                           regular.name: remote(regular, code="code-1")})
    kinds = [type(s) for s in result.steps]
    assert kinds == [UpdateCode, PublishVersion, UpdateCode, PublishVersion, AssociateEdge, MoveAlias]


def test_edge_functions_are_never_tagged() -> None:
    fn = edge_wanted()
    current = replace(edge_remote(fn), tags={"lbuild:project": "old-name", "team": "web"})
    result = _plan(fn, remotes={fn.name: current})
    assert not any(isinstance(s, TagFunction) for s in result.steps)
    assert result.changes == ()


def test_wanted_state_puts_edge_functions_in_us_east_1_without_tags() -> None:
    root = Path("/project")
    edge = Function("auth", "app.handler", root / "functions" / "auth", None, "python3.12", "x86_64",
                    tags={"team": "web"}, role=f"arn:aws:iam::{ACCOUNT}:role/shop-edge",
                    edge=EdgeSpec(DIST, "origin-request", "/api/*", True))
    regular = Function("orders", "app.handler", root / "functions" / "orders", None, "python3.12", "arm64",
                       tags={"team": "web"}, role=f"arn:aws:iam::{ACCOUNT}:role/shop-lambda")
    shop = Project("shop", root / "lbuild.toml", root, (edge, regular), region="eu-west-1")

    built = Manifest("0", "shop", (), (zip_entry("auth", "x86_64"), zip_entry("orders", "arm64")))
    _, functions = wanted_state(shop, built, root / "dist", [])
    auth, orders = functions
    assert (auth.region, auth.tags, auth.architecture) == ("us-east-1", {}, "x86_64")
    assert auth.edge == Association(DIST, "/api/*", "origin-request", True)
    assert orders.region is None and orders.edge is None
    assert orders.tags == {"team": "web", "lbuild:tags": "team", "lbuild:project": "shop", "lbuild:function": "orders"}


def test_unchanged_config_helper_matches() -> None:
    """The helpers above build an Edge config the way wanted_state does: no environment, no layers."""
    fn = edge_wanted()
    assert fn.config == config(memory=128, timeout=5, environment=())
    assert fn.config.layers == () and fn.config.environment == ()
