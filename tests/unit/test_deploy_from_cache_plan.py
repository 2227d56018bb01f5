"""The pure half of deploying from the shared cache: which zips a plan sends, and the plan that reads them by key."""

from __future__ import annotations

from dataclasses import replace

from lbuild.builders.s3cache import artifact_keys
from lbuild.manifest import Manifest
from lbuild.publisher import from_cache
from lbuild.publisher.plan import (
    CreateFunction,
    PublishLayer,
    RemoteState,
    UpdateCode,
    UploadObject,
    WantedImage,
    plan,
    s3_key,
)
from lbuild.steps import Unchanged
from tests.unit.test_manifest import image_entry, layer_entry, zip_entry
from tests.unit.test_publish_plan import BUCKET, LIMIT, layer, project, remote, wanted

CACHE = "shop-build-cache"
REGION = "eu-west-1"


def test_the_location_constraint_is_a_region() -> None:
    assert from_cache.bucket_region(None) == "us-east-1"
    assert from_cache.bucket_region("") == "us-east-1"
    assert from_cache.bucket_region("EU") == "eu-west-1"
    assert from_cache.bucket_region("ap-south-1") == "ap-south-1"


def test_only_the_zips_the_plan_sends_are_wanted_each_with_its_region_and_cache_key() -> None:
    built = Manifest("0.1.0", "shop", (replace(layer_entry(), cache_key="2" * 64),),
                     (zip_entry("orders", key="1" * 64), zip_entry("odd", key="not a key"), image_entry("report")))
    new_layer = layer("shop-py312-arm64-0123", sha="b" * 64)
    orders = wanted("orders", sha="a" * 64)
    edge = replace(wanted("edge", sha="a" * 64), region="us-east-1")
    image = replace(wanted("report", sha="i" * 64), image=WantedImage("t", "r", "t", None))
    steps = [PublishLayer("new", new_layer), CreateFunction("new", orders), UpdateCode("changed", edge),
             CreateFunction("new", image), Unchanged("same", "function shop-users")]
    found = from_cache.wanted(steps, built, "ci", REGION)
    assert [(w.sha256, w.region, w.key) for w in found] == [
        ("b" * 64, REGION, artifact_keys("ci", "2" * 64)[0]),
        ("a" * 64, REGION, artifact_keys("ci", "1" * 64)[0]),
        ("a" * 64, "us-east-1", artifact_keys("ci", "1" * 64)[0]),
    ]


def test_a_zip_found_in_the_cache_is_read_from_there_and_its_upload_is_dropped() -> None:
    big, other = wanted("orders", size=LIMIT + 1, sha="f" * 64), wanted("users", size=LIMIT + 1, sha="e" * 64)
    new_layer = layer(sha="b" * 64)
    steps = plan(project(), [new_layer], [big, other],
                 RemoteState(functions={big.name: None, other.name: None}, layers={}), "live").steps
    assert sum(isinstance(s, UploadObject) for s in steps) == 2
    found = {("f" * 64, REGION): "ci/artifacts/ff/f.zip", ("b" * 64, REGION): "ci/artifacts/bb/b.zip"}
    result = from_cache.use(steps, found, CACHE, REGION, BUCKET)
    uploads = [s for s in result if isinstance(s, UploadObject)]
    assert [u.key for u in uploads] == [s3_key(project(), "e" * 64)], "the zip not in the cache is uploaded"
    creates = {s.function.name: s for s in result if isinstance(s, CreateFunction)}
    assert (creates[big.name].cache_bucket, creates[big.name].s3_key) == (CACHE, "ci/artifacts/ff/f.zip")
    assert creates[big.name].describe() == (f"create function {big.name} and publish its first version from the "
                                            f"shared cache s3://{CACHE}/ci/artifacts/ff/f.zip")
    assert (creates[other.name].cache_bucket, creates[other.name].s3_key) == (None, s3_key(project(), "e" * 64))
    (publish,) = [s for s in result if isinstance(s, PublishLayer)]
    assert publish.describe() == (f"publish layer {new_layer.name} from the shared cache "
                                 f"s3://{CACHE}/ci/artifacts/bb/b.zip")
    assert len(result) == len(steps) - 1


def test_an_already_uploaded_object_no_step_reads_is_not_shown() -> None:
    big = wanted("orders", size=LIMIT + 1, sha="f" * 64)
    key = s3_key(project(), "f" * 64)
    state = RemoteState(functions={big.name: remote(big, code="old")}, layers={}, objects=frozenset({key}))
    steps = plan(project(), [], [big], state, "live").steps
    assert any(isinstance(s, Unchanged) and s.subject == f"s3://{BUCKET}/{key}" for s in steps)
    result = from_cache.use(steps, {("f" * 64, REGION): "ci/k.zip"}, CACHE, REGION, BUCKET)
    assert not any(isinstance(s, Unchanged) and s.subject == f"s3://{BUCKET}/{key}" for s in result)
    (update,) = [s for s in result if isinstance(s, UpdateCode)]
    assert update.describe() == f"update code of {big.name} from the shared cache s3://{CACHE}/ci/k.zip"


def test_a_function_in_another_region_keeps_its_path() -> None:
    edge = replace(wanted("edge", sha="a" * 64), region="us-east-1")
    steps = (CreateFunction("new", edge),)
    assert from_cache.use(steps, {("a" * 64, REGION): "ci/k.zip"}, CACHE, REGION, None) == steps
