"""The deploy planner (``lbuild.publisher.plan.plan``): hand-made wanted and remote state in, typed steps out.

Pure: no AWS, no files are read (paths are only carried along).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbuild import rules
from lbuild.config import Function, Project
from lbuild.errors import UsageError
from lbuild.manifest import Manifest
from lbuild.publisher.plan import (
    CreateFunction,
    FunctionConfig,
    MoveAlias,
    Plan,
    PublishLayer,
    PublishVersion,
    RemoteFunction,
    RemoteState,
    Step,
    TagFunction,
    Unchanged,
    UpdateCode,
    UpdateConfig,
    UploadObject,
    WantedFunction,
    WantedLayer,
    config_from_aws,
    plan,
    s3_key,
    wanted_state,
)
from tests.unit.test_manifest import layer_entry, zip_entry

ROOT = Path("/project")
ROLE = "arn:aws:iam::123456789012:role/shop-lambda"
BUCKET = "shop-artifacts"
LIMIT = rules.DIRECT_UPLOAD_ZIP_BYTES


def project(alias: str | None = "live", bucket: str | None = BUCKET) -> Project:
    return Project(name="shop", path=ROOT / "lbuild.toml", root=ROOT, functions=(), artifact_bucket=bucket,
                   alias=alias)


def layer(name: str = "shop-py312-arm64-aaaa", sha: str = "a" * 64, size: int = 1_000) -> WantedLayer:
    return WantedLayer(name, ROOT / "dist" / "layers" / f"{name}.zip", sha, f"code-{sha[:8]}", size, "python3.12",
                       "arm64")


def layer_arn(name: str, version: int) -> str:
    return f"arn:aws:lambda:eu-west-1:123456789012:layer:{name}:{version}"


def config(**changes: object) -> FunctionConfig:
    base = FunctionConfig(runtime="python3.12", handler="app.handler", memory=256, timeout=10, ephemeral_storage=512,
                          environment=(("STAGE", "test"),), description="", role=ROLE, layers=())
    return replace(base, **changes)  # type: ignore[arg-type]


def wanted(name: str = "orders", code: str = "code-1", size: int = 2_000, layers: tuple[str, ...] = (),
           architecture: str = "arm64", sha: str | None = None, **config_changes: object) -> WantedFunction:
    cfg = config(layers=tuple(f"layer:{n}" for n in layers), **config_changes)
    return WantedFunction(name, f"shop-{name}", ROOT / "dist" / "functions" / f"{name}.zip",
                          sha or (name[0] * 64), code, size, architecture, cfg,
                          {"lbuild:project": "shop", "lbuild:function": name}, layers, ())


def remote(fn: WantedFunction, *, code: str | None = None, alias_version: str | None = "3",
           layer_arns: dict[str, str] | None = None, architecture: str | None = None,
           tags: dict[str, str] | None = None, **config_changes: object) -> RemoteFunction:
    """What AWS would hold if ``fn`` had been deployed (with its layers at ``layer_arns``), then changed."""
    arns = layer_arns or {}
    cfg = replace(fn.config, layers=tuple(arns.get(a[6:], a) for a in fn.config.layers), **config_changes)
    sha = code or fn.code_sha256
    return RemoteFunction(fn.name, f"arn:aws:lambda:eu-west-1:123456789012:function:{fn.name}", sha,
                          architecture or fn.architecture, cfg, dict(fn.tags) if tags is None else tags,
                          alias_version, sha if alias_version else None, cfg if alias_version else None)


def kinds(result: Plan) -> list[str]:
    return [type(s).__name__ for s in result.steps]


def only(result: Plan, kind: type[Step]) -> list[Step]:
    return [s for s in result.steps if isinstance(s, kind)]


# --- from nothing ---------------------------------------------------------------------------------------


def test_everything_new_gives_layer_create_version_and_alias_in_that_order() -> None:
    lay = layer()
    fn = wanted(layers=(lay.name,))
    result = plan(project(), [lay], [fn], RemoteState(functions={fn.name: None}, layers={lay.name: None}), "live")
    assert kinds(result) == ["PublishLayer", "CreateFunction", "MoveAlias"]
    publish, create, alias = result.steps
    assert isinstance(publish, PublishLayer) and publish.reason == "no version with this content yet"
    assert publish.s3_key is None
    assert isinstance(create, CreateFunction) and create.reason == "does not exist yet" and create.s3_key is None
    assert create.function.config.layers == (f"layer:{lay.name}",), "an unpublished layer stays a placeholder"
    assert isinstance(create, CreateFunction) and create.publish, "version 1 comes with the create: one call"
    assert create.describe() == "create function shop-orders and publish its first version"
    assert isinstance(alias, MoveAlias) and alias.create and alias.alias == "live"
    assert alias.describe() == "create alias live of shop-orders"
    assert len(result.changes) == 3


def test_published_layer_is_reused_with_its_version_in_the_reason() -> None:
    lay = layer()
    fn = wanted(layers=(lay.name,))
    arn = layer_arn(lay.name, 7)
    result = plan(project(), [lay], [fn], RemoteState(functions={fn.name: None}, layers={lay.name: arn}), "live")
    unchanged = result.steps[0]
    assert isinstance(unchanged, Unchanged) and not unchanged.writes
    assert unchanged.reason == "already published as version 7"
    assert unchanged.describe() == f"layer {lay.name}: unchanged"
    create = only(result, CreateFunction)[0]
    assert isinstance(create, CreateFunction) and create.function.config.layers == (arn,)
    assert not only(result, PublishLayer)


# --- nothing to do --------------------------------------------------------------------------------------


def test_no_write_step_when_everything_matches() -> None:
    lay = layer()
    arns = {lay.name: layer_arn(lay.name, 7)}
    fns = [wanted("orders", layers=(lay.name,)), wanted("users", code="code-2", layers=(lay.name,))]
    state = RemoteState(functions={f.name: remote(f, layer_arns=arns) for f in fns}, layers=arns)
    result = plan(project(), [lay], fns, state, "live")
    assert result.changes == ()
    assert all(isinstance(s, Unchanged) for s in result.steps)
    same = ["code unchanged (CodeSha256 equal), configuration equal", "alias live already points at version 3"]
    assert [s.reason for s in result.steps] == ["already published as version 7", *same, *same]
    assert result.as_dict()["changes"] == 0
    assert {step["writes"] for step in result.as_dict()["steps"]} == {False}


def test_without_alias_an_unchanged_function_publishes_nothing() -> None:
    fn = wanted()
    state = RemoteState(functions={fn.name: remote(fn, alias_version=None)}, layers={})
    result = plan(project(alias=None), [], [fn], state, None)
    assert result.changes == ()
    assert kinds(result) == ["Unchanged"]


# --- code, configuration, tags ----------------------------------------------------------------------------


def test_changed_code_updates_code_only() -> None:
    fn = wanted()
    state = RemoteState(functions={fn.name: remote(fn, code="old-code")}, layers={})
    result = plan(project(), [], [fn], state, "live")
    assert kinds(result) == ["UpdateCode", "PublishVersion", "MoveAlias"]
    update = result.steps[0]
    assert isinstance(update, UpdateCode) and update.reason == "code changed (CodeSha256 differs)"
    assert update.s3_key is None
    alias = result.steps[-1]
    assert isinstance(alias, MoveAlias) and not alias.create and alias.describe() == "move alias live of shop-orders"


def test_changed_architecture_is_a_code_update() -> None:
    fn = wanted(architecture="arm64")
    state = RemoteState(functions={fn.name: remote(fn, architecture="x86_64")}, layers={})
    update = plan(project(), [], [fn], state, "live").steps[0]
    assert isinstance(update, UpdateCode) and update.reason == "architecture x86_64 -> arm64"


def test_changed_memory_updates_configuration_only() -> None:
    fn = wanted(memory=512)
    state = RemoteState(functions={fn.name: remote(fn, memory=256)}, layers={})
    result = plan(project(), [], [fn], state, "live")
    assert kinds(result) == ["UpdateConfig", "PublishVersion", "MoveAlias"]
    update = result.steps[0]
    assert isinstance(update, UpdateConfig)
    assert update.reason == "memory 256 -> 512"
    assert update.describe() == "update configuration of shop-orders"


def test_several_configuration_differences_are_all_named() -> None:
    fn = wanted(memory=1024, timeout=30, environment=(("STAGE", "prod"),), handler="app.main")
    state = RemoteState(functions={fn.name: remote(fn, memory=256, timeout=10, environment=(("STAGE", "test"),),
                                                   handler="app.handler")}, layers={})
    update = plan(project(), [], [fn], state, "live").steps[0]
    assert isinstance(update, UpdateConfig)
    assert update.reason == ("handler app.handler -> app.main; memory 256 -> 1024; timeout 10 -> 30; "
                             "environment ~STAGE")


def test_a_new_layer_version_is_a_configuration_change() -> None:
    old, new = layer("shop-l-old", "1" * 64), layer("shop-l-new", "2" * 64)
    fn = wanted(layers=(new.name,))
    current = remote(replace(fn, config=replace(fn.config, layers=(f"layer:{old.name}",))),
                     layer_arns={old.name: layer_arn(old.name, 1)})
    result = plan(project(), [new], [fn], RemoteState(functions={fn.name: current}, layers={new.name: None}), "live")
    assert kinds(result) == ["PublishLayer", "UpdateConfig", "PublishVersion", "MoveAlias"]
    update = result.steps[1]
    assert isinstance(update, UpdateConfig)
    assert update.reason == f"layers [{layer_arn(old.name, 1)}] -> [layer:{new.name}]"
    assert not only(result, UpdateCode)


def test_layer_order_matters() -> None:
    a, b = layer("shop-a", "a" * 64), layer("shop-b", "b" * 64)
    arns = {a.name: layer_arn(a.name, 1), b.name: layer_arn(b.name, 1)}
    fn = wanted(layers=(a.name, b.name))
    current = remote(replace(fn, config=replace(fn.config, layers=(f"layer:{b.name}", f"layer:{a.name}"))),
                     layer_arns=arns)
    result = plan(project(), [a, b], [fn], RemoteState(functions={fn.name: current}, layers=arns), "live")
    assert [type(s) for s in result.changes] == [UpdateConfig, PublishVersion, MoveAlias]


def test_tags_are_fixed_without_a_new_version() -> None:
    fn = wanted()
    stale = {"lbuild:project": "shop", "lbuild:function": "orders-old", "lbuild:gone": "x", "team": "ops"}
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: remote(fn, tags=stale)}, layers={}), "live")
    assert kinds(result) == ["TagFunction", "Unchanged", "Unchanged"]
    tag = result.steps[0]
    assert isinstance(tag, TagFunction) and tag.reason == "tags differ"
    assert dict(tag.add) == {"lbuild:function": "orders"}
    assert tag.remove == ("lbuild:gone",), "only lbuild's own tags are removed"
    assert tag.arn.endswith(":function:shop-orders")


# --- aliases ----------------------------------------------------------------------------------------------


def test_missing_alias_on_a_current_function_is_created_from_a_new_version() -> None:
    fn = wanted()
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: remote(fn, alias_version=None)}, layers={}),
                  "live")
    assert kinds(result) == ["Unchanged", "PublishVersion", "MoveAlias"]
    assert result.steps[0].reason == "code unchanged (CodeSha256 equal), configuration equal"
    assert result.steps[1].reason == "alias live does not point at the current code"
    alias = result.steps[2]
    assert isinstance(alias, MoveAlias) and alias.create


def test_alias_on_an_older_version_is_moved() -> None:
    fn = wanted()
    current = remote(fn)
    behind = replace(current, alias_version="2", alias_code_sha256="older-code")
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: behind}, layers={}), "live")
    assert kinds(result) == ["Unchanged", "PublishVersion", "MoveAlias"]
    alias = result.steps[-1]
    assert isinstance(alias, MoveAlias) and not alias.create


def test_alias_on_a_version_with_older_configuration_is_moved() -> None:
    fn = wanted()
    current = remote(fn)
    behind = replace(current, alias_config=replace(fn.config, memory=128))
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: behind}, layers={}), "live")
    assert [type(s) for s in result.changes] == [PublishVersion, MoveAlias]


def test_aliases_move_last_after_every_function_step() -> None:
    lay = layer()
    fns = [wanted("a", layers=(lay.name,)), wanted("b", code="code-b"), wanted("c", code="code-c", memory=512)]
    state = RemoteState(functions={"shop-a": None, "shop-b": remote(fns[1], code="old"),
                                   "shop-c": remote(fns[2], memory=256)}, layers={lay.name: None})
    result = plan(project(), [lay], fns, state, "live")
    names = kinds(result)
    first_alias = names.index("MoveAlias")
    assert names[first_alias:] == ["MoveAlias"] * 3
    moves = [s for s in result.steps[first_alias:] if isinstance(s, MoveAlias)]
    assert [s.function.name for s in moves] == ["shop-a", "shop-b", "shop-c"]
    assert {s.reason for s in moves} == {"moved last, after every function has its new version"}
    assert names.count("PublishVersion") == 2, "a is created with its version"
    assert [s.function.name for s in only(result, CreateFunction) if isinstance(s, CreateFunction) and s.publish] == \
        ["shop-a"]
    assert names.index("PublishLayer") == 0


def test_no_alias_configured_means_no_alias_step() -> None:
    fn = wanted(memory=512)
    result = plan(project(alias=None), [], [fn],
                  RemoteState(functions={fn.name: remote(fn, memory=256, alias_version=None)}, layers={}), None)
    assert kinds(result) == ["UpdateConfig", "PublishVersion"]


# --- big artifacts through S3 ---------------------------------------------------------------------------


def test_function_over_the_direct_upload_limit_is_uploaded_first() -> None:
    fn = wanted(size=LIMIT + 1, sha="f" * 64)
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: None}, layers={}), "live")
    assert kinds(result) == ["UploadObject", "CreateFunction", "MoveAlias"]
    upload, create = result.steps[:2]
    key = f"lbuild/shop/{'f' * 64}.zip"
    assert s3_key(project(), "f" * 64) == key
    assert isinstance(upload, UploadObject)
    assert (upload.bucket, upload.key, upload.file) == (BUCKET, key, fn.file)
    assert upload.reason == f"{LIMIT + 1:,} bytes is over the direct-upload limit"
    assert upload.describe() == f"upload s3://{BUCKET}/{key}"
    assert isinstance(create, CreateFunction) and create.s3_key == key


def test_upload_is_skipped_when_the_object_exists() -> None:
    fn = wanted(size=LIMIT + 1, sha="f" * 64)
    key = s3_key(project(), "f" * 64)
    state = RemoteState(functions={fn.name: remote(fn, code="old")}, layers={}, objects=frozenset({key}))
    result = plan(project(), [], [fn], state, "live")
    assert kinds(result) == ["Unchanged", "UpdateCode", "PublishVersion", "MoveAlias"]
    assert result.steps[0].reason == f"s3://{BUCKET}/{key} already uploaded"
    update = result.steps[1]
    assert isinstance(update, UpdateCode) and update.s3_key == key
    assert not only(result, UploadObject)


def test_exactly_at_the_limit_is_a_direct_upload() -> None:
    fn = wanted(size=LIMIT)
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: None}, layers={}), "live")
    create = result.steps[0]
    assert isinstance(create, CreateFunction) and create.s3_key is None


def test_big_layer_goes_through_s3_too() -> None:
    lay = layer(size=LIMIT + 10)
    fn = wanted(layers=(lay.name,))
    result = plan(project(), [lay], [fn], RemoteState(functions={fn.name: None}, layers={lay.name: None}), "live")
    assert kinds(result)[:2] == ["UploadObject", "PublishLayer"]
    publish = result.steps[1]
    assert isinstance(publish, PublishLayer) and publish.s3_key == s3_key(project(), lay.sha256)


def test_unchanged_big_function_needs_no_object() -> None:
    fn = wanted(size=LIMIT + 1)
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: remote(fn)}, layers={}), "live")
    assert result.changes == ()


# --- remote configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["Environment", "Layers", "VpcConfig", "EphemeralStorage", "Description"])
def test_config_from_aws_defaults_what_aws_leaves_out(missing: str) -> None:
    configuration = {
        "Runtime": "python3.12", "Handler": "app.handler", "MemorySize": 256, "Timeout": 10,
        "EphemeralStorage": {"Size": 512}, "Environment": {"Variables": {"STAGE": "test"}}, "Description": "",
        "Role": ROLE, "Layers": [], "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": [], "VpcId": ""},
    }
    del configuration[missing]
    got = config_from_aws(configuration)
    expected = config() if missing != "Environment" else config(environment=())
    assert got == expected


# --- canary routing ---------------------------------------------------------------------------------------


def _canary_state(fn: WantedFunction, *, primary_code: str = "old-code", routed: dict[str, float] | None = None,
                  routed_code: str | None = None) -> RemoteState:
    """``fn`` in $LATEST; the alias on version 3 (``primary_code``), maybe routing to version 4 (``routed_code``)."""
    current = replace(remote(fn), alias_code_sha256=primary_code, alias_weights=routed or {},
                      canary_code_sha256=routed_code, canary_config=fn.config if routed_code else None)
    return RemoteState(functions={fn.name: current}, layers={})


def test_canary_keeps_the_alias_version_and_routes_a_share_to_the_new_one() -> None:
    fn = wanted()
    result = plan(project(), [], [fn], _canary_state(fn), "live", canary=0.1)
    assert kinds(result) == ["Unchanged", "PublishVersion", "MoveAlias"]
    move = result.steps[-1]
    assert isinstance(move, MoveAlias)
    assert (move.keep, move.weight, move.version, move.create) == ("3", 0.1, None, False)
    assert move.describe() == "route 10% of alias live of shop-orders to the new version (version 3 keeps the rest)"


def test_canary_at_the_same_weight_is_unchanged_and_a_new_weight_moves_only_the_alias() -> None:
    fn = wanted()
    state = _canary_state(fn, routed={"4": 0.1}, routed_code=fn.code_sha256)
    same = plan(project(), [], [fn], state, "live", canary=0.1)
    assert same.changes == () and same.steps[-1].reason == "alias live already routes 10% to version 4"
    wider = plan(project(), [], [fn], state, "live", canary=0.5)
    assert [type(s) for s in wider.changes] == [MoveAlias]
    move = wider.changes[0]
    assert isinstance(move, MoveAlias) and (move.version, move.keep, move.weight) == ("4", "3", 0.5)
    assert move.reason == "canary weight 10% -> 50%"


def test_a_plain_deploy_promotes_the_canary_version_without_publishing() -> None:
    fn = wanted()
    result = plan(project(), [], [fn], _canary_state(fn, routed={"4": 0.25}, routed_code=fn.code_sha256), "live")
    assert [type(s) for s in result.changes] == [MoveAlias]
    move = result.changes[0]
    assert isinstance(move, MoveAlias) and (move.version, move.weight, move.create) == ("4", None, False)
    assert move.reason == "promote version 4 (canary at 25%) to all traffic"


def test_a_plain_deploy_of_the_primary_code_drops_the_routing() -> None:
    fn = wanted()
    state = _canary_state(fn, primary_code=fn.code_sha256, routed={"4": 0.1}, routed_code="bad-code")
    result = plan(project(), [], [fn], state, "live")
    assert [type(s) for s in result.changes] == [MoveAlias]
    move = result.changes[0]
    assert isinstance(move, MoveAlias) and move.version == "3" and move.weight is None
    assert "the canary routing to version 4 is dropped" in move.reason


def test_a_new_build_during_a_canary_replaces_the_routed_version() -> None:
    fn = wanted()
    result = plan(project(), [], [fn], _canary_state(fn, routed={"4": 0.1}, routed_code="older-canary"), "live",
                  canary=0.1)
    assert [type(s) for s in result.changes] == [PublishVersion, MoveAlias]
    move = result.changes[-1]
    assert isinstance(move, MoveAlias) and (move.version, move.keep, move.weight) == (None, "3", 0.1)


def test_canary_without_an_earlier_version_creates_the_alias_plainly() -> None:
    fn = wanted()
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: None}, layers={}), "live", canary=0.1)
    move = result.steps[-1]
    assert isinstance(move, MoveAlias) and move.create and move.weight is None
    assert move.reason.endswith("no earlier version to keep, so no canary")


def test_canary_refuses_a_role_change() -> None:
    fn = wanted()
    state = _canary_state(fn)
    moved = replace(state.functions[fn.name], alias_config=replace(fn.config, role=ROLE + "-old"))
    with pytest.raises(UsageError, match="a canary needs one execution role for both versions") as caught:
        plan(project(), [], [fn], RemoteState(functions={fn.name: moved}, layers={}), "live", canary=0.1)
    assert caught.value.exit_code == 2 and caught.value.where == "function shop-orders"


# --- wanted state: from the manifest and the config -------------------------------------------------------------


def test_wanted_state_takes_artifacts_runtime_and_architecture_from_the_manifest() -> None:
    """What was built decides the runtime and architecture (layers and functions alike); lbuild.toml the rest."""
    fn = Function("orders", "app.handler", ROOT / "functions" / "orders", None, "python3.12", "arm64", role=ROLE,
                  memory=512)
    shop = replace(project(), functions=(fn,))
    shared = layer_entry()
    built = Manifest("0", "shop", (shared, layer_entry("shop-unused")),
                     (zip_entry("orders", architecture="x86_64", runtime="python3.11", layers=(shared.name,)),))
    layers, (orders,) = wanted_state(shop, built, ROOT / "dist", [])
    assert [w.name for w in layers] == [shared.name], "only the layers a deployed function attaches"
    assert (layers[0].runtime, layers[0].architecture, layers[0].sha256) == ("python3.12", "arm64", "b" * 64)
    assert (orders.architecture, orders.config.runtime) == ("x86_64", "python3.11")
    assert (orders.file, orders.sha256, orders.code_sha256, orders.zip_bytes) == (
        ROOT / "dist" / "functions" / "orders.zip", "a" * 64, "c2hh", 100)
    assert orders.config.memory == 512 and orders.config.layers == (f"layer:{shared.name}",)


def test_aws_errors_carry_the_code_and_a_hint_for_a_missing_distribution() -> None:
    import botocore.exceptions

    from lbuild.publisher.aws import translate

    error = translate(botocore.exceptions.ClientError(
        {"Error": {"Code": "NoSuchDistribution", "Message": "The specified distribution does not exist."},
         "ResponseMetadata": {"HTTPStatusCode": 404}}, "GetDistributionConfig"),
        "get_distribution_config", "distribution EDOESNOTEXIST1")
    assert (error.code, error.operation, error.exit_code) == ("NoSuchDistribution", "GetDistributionConfig", 6)
    assert error.where == "distribution EDOESNOTEXIST1"
    assert error.hint is not None and "edge.distribution" in error.hint


# --- tags lbuild manages ---------------------------------------------------------------------------------------


def test_a_tag_dropped_from_lbuild_toml_is_removed_and_a_foreign_one_kept() -> None:
    from lbuild.publisher.plan import TagFunction, managed_tags

    fn = wanted()
    fn = replace(fn, tags={**fn.tags, "team": "web", **managed_tags({"team": "web"})})
    current = replace(remote(fn), tags={**fn.tags, "cost": "42", "owner": "ops", "lbuild:tags": "cost team"})
    result = plan(project(), [], [fn], RemoteState(functions={fn.name: current}, layers={}), None)
    tagging = only(result, TagFunction)
    assert len(tagging) == 1 and isinstance(tagging[0], TagFunction)
    assert tagging[0].remove == ("cost",), "set by lbuild, dropped from lbuild.toml; owner was never lbuild's"
    assert dict(tagging[0].add) == {"lbuild:tags": "team"}


@given(st.dictionaries(st.text(alphabet="abcdefghij:_-/", min_size=1, max_size=60), st.just("v"), max_size=40))
def test_managed_tags_round_trip_within_the_value_limit(user: dict[str, str]) -> None:
    from lbuild.publisher.plan import managed_keys, managed_tags

    tags = managed_tags(user)
    assert managed_keys(tags) == set(user)
    assert all(len(value) <= 256 for value in tags.values())
