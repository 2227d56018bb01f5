"""``plan_prune`` (pure) and the layer description it relies on.

Properties (hypothesis): nothing referenced is ever deleted (alias targets, routing weights, the N newest
versions, ``$LATEST``, layer versions any kept version or any ``$LATEST`` attaches), nothing of another
project, nothing younger than the threshold; and everything else of this project is deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.publisher import prune as prune_mod
from lbuild.publisher.plan import LAYER_DESCRIPTION, parse_layer_description
from lbuild.publisher.prune import FunctionVersions, LayerVersion, PruneInputs, plan_prune

PROJECT = "bench"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
SHA = "ab" * 32


def _arn(layer: int, version: int) -> str:
    return f"arn:aws:lambda:eu-west-1:123456789012:layer:L{layer}:{version}"


LAYER_ARNS = [_arn(layer, version) for layer in range(3) for version in range(1, 4)]


# --- the description -----------------------------------------------------------------------------------


def test_the_description_names_the_project_and_parses_back() -> None:
    text = LAYER_DESCRIPTION.format(project="bench-pyramid", sha256=SHA)
    assert text == f"lbuild project=bench-pyramid sha256:{SHA}"
    assert parse_layer_description(text) == ("bench-pyramid", SHA)


def test_the_older_description_has_no_project() -> None:
    assert parse_layer_description(f"lbuild sha256:{SHA}") == (None, SHA)


def test_descriptions_lbuild_did_not_write_are_not_lbuilds() -> None:
    for text in ("", "my layer", f"sha256:{SHA}", f"lbuild sha256:{SHA[:-1]}", f"lbuild project= sha256:{SHA}",
                 f"lbuild project=a b sha256:{SHA}", f"lbuild project=x sha256:{SHA} extra",
                 f"lbuild sha256:{SHA.upper()}"):
        assert parse_layer_description(text) is None, text


@given(st.from_regex(r"[A-Za-z0-9_-]{1,50}", fullmatch=True), st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
def test_every_project_name_round_trips(project: str, sha256: str) -> None:
    text = LAYER_DESCRIPTION.format(project=project, sha256=sha256)
    assert len(text) <= 256, "Lambda's description limit"
    assert parse_layer_description(text) == (project, sha256)


# --- examples --------------------------------------------------------------------------------------------


def _layer(arn: str, project: str | None = PROJECT, age: float = 3600.0) -> LayerVersion:
    return LayerVersion(arn, project, NOW - timedelta(seconds=age))


def test_another_projects_layers_are_never_candidates() -> None:
    """D2: project ``bench`` once deleted every layer version of ``bench-pyramid``."""
    inputs = PruneInputs((), (_layer(_arn(0, 1), "bench-pyramid"), _layer(_arn(0, 2))), {})
    assert plan_prune(PROJECT, inputs, 1, NOW).delete_layers == (_arn(0, 2),)


def test_layers_published_before_the_project_was_marked_are_left_alone_and_counted_once() -> None:
    inputs = PruneInputs((), (_layer(_arn(0, 1), None), _layer(_arn(1, 1), None)), {})
    plan = plan_prune(PROJECT, inputs, 0, NOW)
    assert plan.delete_layers == ()
    assert plan.skipped == ("2 layer versions published before lbuild marked its project are left alone",)


def test_a_young_layer_version_is_kept_with_its_reason() -> None:
    """D7: a running deploy may have published it and not attached it yet."""
    inputs = PruneInputs((), (_layer(_arn(0, 1), age=30), _layer(_arn(0, 2), age=900)), {})
    plan = plan_prune(PROJECT, inputs, 0, NOW)
    assert plan.delete_layers == (_arn(0, 2),)
    assert plan.skipped == ("layer L0:1: published 30s ago (under 900s): a running deploy may not have attached "
                            "it yet",)
    assert plan_prune(PROJECT, inputs, 0, NOW, young_seconds=10).delete_layers == (_arn(0, 1), _arn(0, 2))


def test_the_threshold_is_read_when_planning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prune_mod, "YOUNG_SECONDS", 0.0)
    inputs = PruneInputs((), (_layer(_arn(0, 1), age=1),), {})
    assert plan_prune(PROJECT, inputs, 0, NOW).delete_layers == (_arn(0, 1),)


def test_an_unknown_creation_date_counts_as_young() -> None:
    inputs = PruneInputs((), (LayerVersion(_arn(0, 1), PROJECT, None),), {})
    plan = plan_prune(PROJECT, inputs, 0, NOW)
    assert plan.delete_layers == ()
    assert plan.skipped == ("layer L0:1: its creation date is unknown, so it may be new",)


def test_a_layer_attached_by_another_functions_latest_is_kept_and_named() -> None:
    inputs = PruneInputs((), (_layer(_arn(0, 1)),), {"someone-else": (_arn(0, 1),)})
    plan = plan_prune(PROJECT, inputs, 0, NOW)
    assert plan.delete_layers == ()
    assert plan.skipped == ("layer L0:1: attached by someone-else ($LATEST)",)


def test_versions_aliases_and_routing_are_kept_and_their_layers_too() -> None:
    fn = FunctionVersions(f"{PROJECT}-orders", {
        "$LATEST": (_arn(0, 3),), "1": (_arn(0, 1),), "2": (_arn(0, 2),), "3": (_arn(1, 1),), "4": (_arn(1, 2),),
        "5": (_arn(0, 3),)}, frozenset({"2", "3"}))  # alias on 2, routing weight to 3
    layers = tuple(_layer(a) for a in (_arn(0, 1), _arn(0, 2), _arn(0, 3), _arn(1, 1), _arn(1, 2)))
    plan = plan_prune(PROJECT, PruneInputs((fn,), layers, {fn.name: (_arn(0, 3),)}), 1, NOW)
    assert plan.delete_versions == ((fn.name, "1"), (fn.name, "4"))
    assert plan.delete_layers == (_arn(0, 1), _arn(1, 2))


def test_a_function_no_longer_in_lbuild_toml_keeps_every_version() -> None:
    why = f"{PROJECT}-old: no longer in lbuild.toml, every version is kept (`lbuild remove old` deletes it)"
    fn = FunctionVersions(f"{PROJECT}-old", {"$LATEST": (), "1": (_arn(0, 1),), "2": ()}, frozenset(), why)
    plan = plan_prune(PROJECT, PruneInputs((fn,), (_layer(_arn(0, 1)),), {}), 0, NOW)
    assert (plan.delete_versions, plan.delete_layers, plan.skipped) == ((), (), (why,))


# --- properties ------------------------------------------------------------------------------------------


@st.composite
def functions(draw: st.DrawFn) -> FunctionVersions:
    name = f"{PROJECT}-{draw(st.sampled_from(['a', 'b', 'c', 'd']))}"
    count = draw(st.integers(0, 6))
    versions = {v: tuple(draw(st.lists(st.sampled_from(LAYER_ARNS), max_size=2, unique=True)))
                for v in ["$LATEST", *map(str, range(1, count + 1))]}
    aliased = draw(st.frozensets(st.sampled_from(sorted(versions)), max_size=2)) if count else frozenset()
    return FunctionVersions(name, versions, aliased, draw(st.sampled_from([None, None, None, "kept: removed"])))


@st.composite
def inputs(draw: st.DrawFn) -> PruneInputs:
    fns = {fn.name: fn for fn in draw(st.lists(functions(), max_size=4))}  # one entry per name
    layers = tuple(LayerVersion(arn, draw(st.sampled_from([PROJECT, PROJECT, "bench-pyramid", "benc", None])),
                                draw(st.one_of(st.none(), st.floats(-60, 4000).map(lambda s: NOW - timedelta(
                                    seconds=s)))))
                   for arn in draw(st.lists(st.sampled_from(LAYER_ARNS), unique=True)))
    latest = {name: fn.versions["$LATEST"] for name, fn in fns.items()}
    latest |= draw(st.dictionaries(st.sampled_from(["other-x", "bench-pyramid-a"]),
                                   st.lists(st.sampled_from(LAYER_ARNS), max_size=2).map(tuple), max_size=2))
    return PruneInputs(tuple(fns.values()), layers, latest)


def _kept_versions(fn: FunctionVersions, keep: int) -> set[str]:
    if fn.keep_all:
        return set(fn.versions)
    newest = sorted((v for v in fn.versions if v != "$LATEST"), key=int, reverse=True)[:keep]
    return {"$LATEST", *fn.aliased, *newest}


@settings(max_examples=400, deadline=None)
@given(inputs(), st.integers(0, 3), st.sampled_from([0.0, 1.0, 900.0, 3600.0]))
def test_nothing_referenced_foreign_or_young_is_deleted_and_the_rest_is(
        given_inputs: PruneInputs, keep: int, young: float) -> None:
    plan = plan_prune(PROJECT, given_inputs, keep, NOW, young_seconds=young)
    by_name = {fn.name: fn for fn in given_inputs.functions}
    kept = {(fn.name, v) for fn in given_inputs.functions for v in _kept_versions(fn, keep)}
    referenced = {arn for fn in given_inputs.functions for v in _kept_versions(fn, keep) for arn in fn.versions[v]}
    referenced |= {arn for layers in given_inputs.latest.values() for arn in layers}

    for name, version in plan.delete_versions:
        assert name in by_name and version in by_name[name].versions
        assert (name, version) not in kept, "an aliased, routed, newest or $LATEST version, or a removed function's"
    assert set(plan.delete_versions) == {(fn.name, v) for fn in given_inputs.functions for v in fn.versions} - kept

    layers = {layer.arn: layer for layer in given_inputs.layers}
    deletable = set()
    for arn, layer in layers.items():
        old_enough = layer.created is not None and (NOW - layer.created).total_seconds() >= young
        if layer.project == PROJECT and arn not in referenced and old_enough:
            deletable.add(arn)
    for arn in plan.delete_layers:
        assert layers[arn].project == PROJECT, "another project's, or one published before projects were marked"
        assert arn not in referenced, "attached by a kept version or some $LATEST"
        created = layers[arn].created
        assert created is not None and (NOW - created).total_seconds() >= young, "younger than the threshold"
    assert set(plan.delete_layers) == deletable
    assert len(plan.delete_layers) == len(set(plan.delete_layers))
    unmarked = sum(1 for layer in given_inputs.layers if layer.project is None)
    counted = [s for s in plan.skipped if "published before lbuild marked its project" in s]
    assert counted == ([] if not unmarked else ["1 layer version published before lbuild marked its project is left "
                                                "alone"] if unmarked == 1 else
                       [f"{unmarked} layer versions published before lbuild marked its project are left alone"])
