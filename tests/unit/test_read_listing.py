"""The remote state from ListFunctions and GetResources pages (lbuild.publisher.listing): what the listings
settle, what still needs a GetFunction, and that "differs" is exactly "the planner would write"."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from lbuild.publisher.listing import differs, from_listing, function_name, sweep, tags_by_function
from lbuild.publisher.plan import RemoteFunction, RemoteState, WantedFunction, plan
from tests.unit.test_publish_plan import ROLE, layer, layer_arn, project, remote, wanted

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:shop-orders"
LAYER = "shop-py312-arm64-aaaa"


def entry(fn: WantedFunction, **changes: Any) -> dict[str, Any]:
    """The ListFunctions entry of ``fn`` as deployed (its layer at version 1)."""
    out: dict[str, Any] = {
        "FunctionName": fn.name, "FunctionArn": f"arn:aws:lambda:eu-west-1:123456789012:function:{fn.name}",
        "Runtime": "python3.12", "Handler": "app.handler", "MemorySize": 256, "Timeout": 10, "Role": ROLE,
        "CodeSha256": fn.code_sha256, "Architectures": [fn.architecture], "PackageType": "Zip",
        "Environment": {"Variables": {"STAGE": "test"}}, "EphemeralStorage": {"Size": 512}, "Description": "",
        "Layers": [{"Arn": layer_arn(n, 1)} for n in fn.layers], "RevisionId": "r1",
    }
    return {**out, **changes}


def test_the_function_name_is_taken_from_its_arn_qualified_or_not() -> None:
    assert function_name(ARN) == "shop-orders"
    assert function_name(ARN + ":live") == "shop-orders"
    assert function_name("arn:aws:lambda:eu-west-1:123456789012:layer:x:1") == ""


def test_tag_mappings_become_tags_by_function() -> None:
    mappings = [{"ResourceARN": ARN, "Tags": [{"Key": "lbuild:project", "Value": "shop"}, {"Key": "k", "Value": ""}]},
                {"ResourceARN": "arn:aws:sqs:eu-west-1:123456789012:q", "Tags": []}]
    assert tags_by_function(mappings) == {"shop-orders": {"lbuild:project": "shop", "k": ""}}


def test_a_listing_entry_gives_what_get_function_gives_but_an_image_needs_its_own_read() -> None:
    fn = wanted(layers=(LAYER,))
    got = from_listing(entry(fn), fn.tags)
    assert got == replace(remote(fn, alias_version=None, layer_arns={LAYER: layer_arn(LAYER, 1)}), revision_id="r1")
    assert from_listing(entry(fn, PackageType="Image"), fn.tags) is None


CHANGES: list[tuple[str, dict[str, Any], dict[str, str] | None]] = [
    ("nothing", {}, None),
    ("code", {"CodeSha256": "other"}, None),
    ("architecture", {"Architectures": ["x86_64"]}, None),
    ("memory", {"MemorySize": 512}, None),
    ("environment", {"Environment": {"Variables": {"STAGE": "prod"}}}, None),
    ("an older layer", {"Layers": [{"Arn": layer_arn(LAYER, 0)}]}, None),
    ("a tag lbuild sets, changed", {}, {"lbuild:project": "shop", "lbuild:function": "other"}),
    ("a tag of lbuild's, gone", {}, {"lbuild:project": "shop"}),
    ("a stale lbuild tag", {}, {"lbuild:project": "shop", "lbuild:function": "orders", "lbuild:old": "x"}),
    ("someone else's tag (kept)", {}, {"lbuild:project": "shop", "lbuild:function": "orders", "owner": "x"}),
    ("a wiring record (the wiring stage's)", {}, {"lbuild:project": "shop", "lbuild:function": "orders",
                                                  "lbuild:wiring": "esm"}),
]


@pytest.mark.parametrize(("what", "changes", "tags"), CHANGES, ids=[c[0] for c in CHANGES])
def test_differs_is_exactly_whether_the_planner_writes_to_the_function(
        what: str, changes: dict[str, Any], tags: dict[str, str] | None) -> None:
    fn = wanted(layers=(LAYER,))
    current = from_listing(entry(fn, **changes), fn.tags if tags is None else tags)
    assert current is not None
    layers = {LAYER: layer_arn(LAYER, 1)}
    planned = plan(project(alias=None), [layer(LAYER)], [fn], RemoteState({fn.name: current}, layers), None)
    assert differs(fn, current, layers) == bool(planned.changes), what


def test_a_layer_not_published_yet_differs() -> None:
    fn = wanted(layers=(LAYER,))
    current = from_listing(entry(fn), fn.tags)
    assert current is not None
    assert differs(fn, current, {LAYER: None})


def test_the_sweep_settles_the_same_absent_and_untagged_and_reads_the_rest() -> None:
    same, absent, untagged, drifted, image = (wanted(name) for name in ("same", "absent", "untagged", "drift", "img"))
    listed = [entry(same), entry(untagged), entry(drifted, Timeout=30), entry(image, PackageType="Image"),
              entry(wanted("foreign"))]
    tags = {f.name: dict(f.tags) for f in (same, drifted, image)}
    known, unread = sweep([same, absent, untagged, drifted, image], listed, tags, {})
    assert set(known) == {same.name, absent.name} and known[absent.name] is None
    assert isinstance(known[same.name], RemoteFunction) and known[same.name].tags == same.tags  # type: ignore[union-attr]
    assert unread == (untagged.name, drifted.name, image.name)
