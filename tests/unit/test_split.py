"""The layer planner: invariants over random dependency graphs, and the choices it makes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.resolver.split import LayerPlan, PackageInfo, SplitFunction, plan_layers
from lbuild.rules import Target

T312 = Target("python3.12", "arm64")
T311 = Target("python3.11", "x86_64")


def pkg(name: str, size: int = 1000, version: str = "1.0") -> PackageInfo:
    return PackageInfo(name, version, f"{abs(hash((name, version))):064x}"[:64], size)


def fn(name: str, closure: list[str], shares: bool = True, external: int = 0, resolution: str = "r") -> SplitFunction:
    return SplitFunction(name, resolution, T312, tuple(sorted(closure)), shares, "" if shares else "isolated",
                         external)


def received(plan: LayerPlan, name: str) -> list[str]:
    """Every package a function sees: its bundle plus each attached layer (with repeats)."""
    bundle = plan.bundle(name)
    out = list(bundle.packages)
    for layer in bundle.layers:
        out += plan.layer(layer).packages
    return out


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[SplitFunction], dict[str, dict[str, PackageInfo]], int]:
    n_packages = draw(st.integers(1, 25))
    packages = {f"p{i}": pkg(f"p{i}", draw(st.integers(1, 10**6))) for i in range(n_packages)}
    names = sorted(packages)
    functions = []
    for j in range(draw(st.integers(1, 20))):
        closure = draw(st.lists(st.sampled_from(names), max_size=15, unique=True))
        functions.append(fn(f"f{j:02d}", closure, shares=draw(st.booleans()) or j % 3 != 0,
                            external=draw(st.integers(0, 4))))
    return functions, {"r": packages}, draw(st.integers(1, 4))


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_every_function_gets_exactly_its_closure_within_the_layer_limit(case) -> None:  # type: ignore[no-untyped-def]
    functions, packages, min_functions = case
    plan = plan_layers("shop", functions, packages, min_functions)
    for f in functions:
        got = received(plan, f.name)
        assert sorted(got) == sorted(f.closure), "bundle + layers must equal the closure, each package once"
        assert len(plan.bundle(f.name).layers) + f.external_layers <= 5
        if not f.shares:
            assert plan.bundle(f.name).layers == ()
    for layer in plan.layers:
        assert len(layer.functions) >= min_functions
        assert all(set(layer.packages) <= set(next(f for f in functions if f.name == user).closure)
                   for user in layer.functions)
    assert plan == plan_layers("shop", list(reversed(functions)), packages, min_functions), "order-independent"


@settings(max_examples=100, deadline=None)
@given(graphs())
def test_adding_an_unrelated_function_changes_no_layer(case) -> None:  # type: ignore[no-untyped-def]
    functions, packages, min_functions = case
    before = plan_layers("shop", functions, packages, min_functions)
    packages = {"r": {**packages["r"], "solo": pkg("solo")}}
    after = plan_layers("shop", [*functions, fn("zz-new", ["solo"])], packages, min_functions)
    # Every existing layer survives unchanged (with min_functions = 1 the newcomer may get its own).
    assert {layer.name for layer in before.layers} <= {layer.name for layer in after.layers}
    assert len(after.layers) <= len(before.layers) + (min_functions == 1)


def test_shared_packages_group_by_users_and_names_are_content_addressed() -> None:
    packages = {"r": {n: pkg(n) for n in ("a", "b", "c", "d")}}
    plan = plan_layers("shop", [fn("x", ["a", "b", "c"]), fn("y", ["a", "b"]), fn("z", ["c", "d"])], packages)
    layers = {layer.packages: layer.functions for layer in plan.layers}
    assert layers == {("a", "b"): ("x", "y"), ("c",): ("x", "z")}
    assert plan.bundle("z").packages == ("d",)
    assert "needed by 1 function" in plan.reasons["z"]["d"]
    assert all(layer.name.startswith("shop-py312-arm64-") for layer in plan.layers)
    renamed = plan_layers("shop", [fn("x2", ["a", "b", "c"]), fn("y", ["a", "b"]), fn("z", ["c", "d"])], packages)
    assert {layer.name for layer in renamed.layers} == {layer.name for layer in plan.layers}


def test_bumping_one_package_renames_only_its_layer() -> None:
    base = {n: pkg(n) for n in ("a", "b", "c")}
    functions = [fn("x", ["a", "b", "c"]), fn("y", ["a", "b"]), fn("z", ["c"])]
    before = plan_layers("shop", functions, {"r": base})
    after = plan_layers("shop", functions, {"r": {**base, "c": pkg("c", version="2.0")}})
    changed = {layer.name for layer in before.layers} ^ {layer.name for layer in after.layers}
    assert len(changed) == 2  # the old and the new name of the one layer holding c


def test_over_the_limit_moves_the_cheapest_layer_into_the_bundle() -> None:
    # x needs 6 groups (each shared with a different partner): it must drop the smallest one.
    names = [f"p{i}" for i in range(6)]
    packages = {"r": {n: pkg(n, size=(i + 1) * 1000) for i, n in enumerate(names)}}
    functions = [fn("x", names)] + [fn(f"y{i}", [n]) for i, n in enumerate(names)]
    plan = plan_layers("shop", functions, packages, min_functions=2)
    assert len(plan.bundle("x").layers) == 5
    assert plan.bundle("x").packages == ("p0",)
    assert "stays within 5 layers" in plan.reasons["x"]["p0"]
    assert "dissolved" in plan.reasons["y0"]["p0"]


def test_external_layers_count_toward_five() -> None:
    packages = {"r": {n: pkg(n) for n in ("a", "b")}}
    plan = plan_layers("shop", [fn("x", ["a", "b"], external=4), fn("y", ["a"]), fn("z", ["b"])], packages)
    assert len(plan.bundle("x").layers) == 1


def test_isolated_edge_and_image_functions_take_no_layers() -> None:
    packages = {"r": {n: pkg(n) for n in ("a",)}}
    plan = plan_layers("shop", [fn("x", ["a"]), fn("y", ["a"]), fn("e", ["a"], shares=False)], packages)
    assert plan.bundle("e").layers == () and plan.bundle("e").packages == ("a",)
    assert plan.reasons["e"]["a"] == "bundle: isolated"
    assert plan.bundle("x").layers == plan.bundle("y").layers != ()


def test_resolutions_never_share_layers() -> None:
    packages = {"r1": {"a": pkg("a")}, "r2": {"a": pkg("a", version="2.0")}}
    functions = [fn("x", ["a"], resolution="r1"), fn("y", ["a"], resolution="r2")]
    plan = plan_layers("shop", functions, packages)
    assert plan.layers == ()


def test_nesting_gives_functions_over_the_limit_one_combined_layer() -> None:
    # x and y may attach one layer (4 external ARNs each); both need a and t, z needs t alone.
    packages = {"r": {"a": pkg("a", size=1000), "t": pkg("t", size=1500)}}
    functions = [fn("x", ["a", "t"], external=4), fn("y", ["a", "t"], external=4), fn("z", ["t"])]
    plan = plan_layers("shop", functions, packages)
    assert [(layer.packages, layer.functions) for layer in plan.layers] == [(("a", "t"), ("x", "y"))]
    assert plan.bundle("x").packages == () and plan.bundle("y").packages == ()
    assert plan.bundle("z").packages == ("t",), "t is stored once more, in z's bundle: cheaper than two copies of a"
    assert "dissolved" in plan.reasons["z"]["t"]


def test_nesting_keeps_the_outer_layer_for_its_other_users() -> None:
    packages = {"r": {"a": pkg("a", size=1000), "t": pkg("t", size=1500)}}
    functions = [fn("x", ["a", "t"], external=4), fn("y", ["a", "t"], external=4), fn("z", ["t"]), fn("w", ["t"])]
    plan = plan_layers("shop", functions, packages)
    assert sorted((layer.packages, layer.functions) for layer in plan.layers) == [
        (("a", "t"), ("x", "y")), (("t",), ("w", "z"))]
