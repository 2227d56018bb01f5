"""The incremental layer split returns exactly the plans of the split it replaced (issue 17).

``tests/support/split_reference.py`` is the old planner, kept verbatim; every plan (layers, names, bundles,
reasons) must be equal, so tie-breaking and remedy order are the same.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lbuild.resolver.split import PackageInfo, SplitFunction, plan_layers
from lbuild.rules import Target
from tests.support import split_reference

T312 = Target("python3.12", "arm64")
T311 = Target("python3.11", "x86_64")
Case = tuple[list[SplitFunction], dict[str, dict[str, PackageInfo]], int]


def info(name: str, size: int, version: str = "1.0") -> PackageInfo:
    return PackageInfo(name, version, f"{abs(hash((name, version))):064x}"[:64], size)


@st.composite
def closures(draw: st.DrawFn) -> Case:
    """Random repositories that hit the layer limit often: few sizes (ties), shared and solo packages."""
    n_packages = draw(st.integers(1, 30))
    # Sizes from a tiny set, so equal-cost remedies are common and the tie-breaking decides.
    sizes = draw(st.sampled_from([(1000,), (1000, 2000), (1000, 1500, 3000), (1, 10**6)]))
    names = [f"p{i:02d}" for i in range(n_packages)]
    resolutions = ["r1", "r2"] if draw(st.booleans()) else ["r1"]
    packages = {r: {n: info(n, draw(st.sampled_from(sizes)), version=r) for n in names} for r in resolutions}
    everyone = draw(st.booleans())  # one package every function needs
    functions = []
    for j in range(draw(st.integers(1, 30))):
        closure = set(draw(st.lists(st.sampled_from(names), max_size=20, unique=True)))
        if everyone:
            closure.add(names[0])
        if draw(st.integers(0, 5)) == 0 and n_packages > 1:  # a singleton: one package, maybe its own
            closure = {names[-1 - j % n_packages]}
        shares = draw(st.integers(0, 6)) != 0
        functions.append(SplitFunction(
            f"f{j:02d}", draw(st.sampled_from(resolutions)), T312 if j % 5 else T311, tuple(sorted(closure)),
            shares, "" if shares else "isolated", draw(st.sampled_from([0, 0, 0, 2, 3, 4, 5]))))
    # Each resolution's functions share one target (as the lock groups them).
    target = {r: next((f.target for f in functions if f.resolution == r), T312) for r in resolutions}
    functions = [SplitFunction(f.name, f.resolution, target[f.resolution], f.closure, f.shares, f.why_not,
                               f.external_layers) for f in functions]
    return functions, packages, draw(st.integers(1, 4))


def remedies(plan_reasons: Mapping[str, Mapping[str, str]]) -> set[str]:
    """Which remedies a plan's reasons show."""
    text = " ".join(r for per_fn in plan_reasons.values() for r in per_fn.values())
    return {kind for kind, marker in (("drop", "stays within"), ("dissolve", "left it (fewer than"),
                                      ("nest", "took its packages into that one")) if marker in text}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(closures())
def test_the_incremental_split_plans_exactly_as_the_reference(case: Case) -> None:
    functions, packages, min_functions = case
    new = plan_layers("shop", functions, packages, min_functions)
    for kind in remedies(new.reasons):
        event(f"remedy: {kind}")
    assert new == split_reference.plan_layers("shop", functions, packages, min_functions)


def bench_like(functions: int, seed: int) -> Case:
    """The shape of bench/bench_split.py's workload: Zipf-like popularity, 3-25 packages, external ARNs."""
    rng = random.Random(seed)
    names = [f"pkg{i:03d}" for i in range(functions + 20)]
    packages = {n: info(n, rng.choice([10_000, 20_000, rng.randint(1, 5_000_000)])) for n in names}
    weights = [1 / (rank + 1) for rank in range(len(names))]
    out = []
    for j in range(functions):
        closure = set(rng.choices(names, weights, k=rng.randint(3, 25)))
        out.append(SplitFunction(f"fn{j:03d}", "r", T312, tuple(sorted(closure)), j % 11 != 10,
                                 "" if j % 11 != 10 else "isolated", 2 if j % 7 == 6 else 0))
    return out, {"r": packages}, 2


def test_bench_shaped_repositories_plan_the_same_and_use_every_remedy() -> None:
    seen: set[str] = set()
    for seed in range(6):
        functions, packages, min_functions = bench_like(60, seed)
        new = plan_layers("shop", functions, packages, min_functions)
        assert new == split_reference.plan_layers("shop", functions, packages, min_functions), seed
        assert all(len(b.layers) + f.external_layers <= 5 for b, f in zip(new.bundles, functions, strict=True))
        seen |= remedies(new.reasons)
    assert seen == {"drop", "dissolve", "nest"}, "the comparison must cover every kind of remedy"
