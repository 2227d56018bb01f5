"""The pure shard assignment (``lbuild.shards``): a partition, deterministic, balanced within the largest cost."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbuild.errors import UsageError
from lbuild.shards import Shard, artifact_cost, assign, parse_shard

costs_st = st.dictionaries(st.text(min_size=1, max_size=12), st.integers(min_value=0, max_value=10**9), max_size=60)


@given(costs_st, st.integers(min_value=1, max_value=12))
def test_every_artifact_is_in_exactly_one_shard(costs: dict[str, int], count: int) -> None:
    owner = assign(costs, count)
    assert set(owner) == set(costs)
    assert all(1 <= k <= count for k in owner.values())


@given(costs_st, st.integers(min_value=1, max_value=12), st.randoms(use_true_random=False))
def test_the_assignment_is_deterministic_whatever_the_order(costs: dict[str, int], count: int,
                                                            rnd: random.Random) -> None:
    items = list(costs.items())
    rnd.shuffle(items)
    assert assign(dict(items), count) == assign(costs, count)


@given(costs_st, st.integers(min_value=1, max_value=12))
def test_loads_differ_by_at_most_the_largest_single_cost(costs: dict[str, int], count: int) -> None:
    owner = assign(costs, count)
    loads = [sum(c for name, c in costs.items() if owner[name] == k) for k in range(1, count + 1)]
    assert max(loads) - min(loads) <= max(costs.values(), default=0)


def test_longest_first_to_the_least_loaded_ties_to_the_lowest_shard() -> None:
    owner = assign({"a": 5, "b": 5, "c": 4, "d": 3, "e": 1}, 2)
    # a -> 1 (tie), b -> 2, c -> 1 (9), d -> 2 (8), e -> 2 (9)
    assert owner == {"a": 1, "b": 2, "c": 1, "d": 2, "e": 2}
    assert assign({"x": 1, "y": 1}, 3) == {"x": 1, "y": 2}  # shard 3 gets nothing: fine


def test_cost_is_wheels_plus_source_plus_one() -> None:
    assert artifact_cost([100, 20], 3) == 124
    assert artifact_cost([], 0) == 1


@pytest.mark.parametrize(("text", "shard"), [("1/3", Shard(1, 3)), ("3/3", Shard(3, 3)), (" 2 / 5 ", Shard(2, 5)),
                                             ("1/1", Shard(1, 1))])
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize(("text", "message"), [("0/3", "k must be between 1 and N"), ("4/3", "k must be between"),
                                               ("1/0", "k must be between"), ("2", "is not k/N"),
                                               ("a/b", "is not k/N"), ("-1/3", "is not k/N"), ("1/3/4", "is not k/N")])
def test_bad_shards_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_shard(text)
    assert message in raised.value.what and raised.value.exit_code == 2
    assert "--shard k/N" in (raised.value.hint or "")


def test_shard_costs_name_each_artifact_by_kind_and_add_its_wheels_and_source() -> None:
    from pathlib import Path

    from lbuild.builders.package import shard_costs
    from lbuild.builders.plan import ArtifactSpec
    from lbuild.builders.sources import SourceFile, SourceTree
    from lbuild.config import Function
    from lbuild.resolver.lockfile import LockedPackage, LockedWheel

    def pkg(name: str, size: int) -> LockedPackage:
        return LockedPackage(name, "1.0", LockedWheel(f"{name}-1.0-py3-none-any.whl", "0" * 64, size))

    fn = object.__new__(Function)  # only its presence matters to the estimate
    layer = ArtifactSpec("layer", "shop", "layers/shop.zip", "python/", (pkg("a", 1000), pkg("b", 200)))
    bundle = ArtifactSpec("function", "shop", "functions/shop.zip", "", (pkg("c", 30),), fn)
    tree = SourceTree(Path("/src"), (SourceFile("app.py", Path("/src/app.py"), 0o644, 4),
                                     SourceFile("x.py", Path("/src/x.py"), 0o644, 5)), "d")
    assert shard_costs([layer, bundle], {"shop": tree}) == {"layer shop": 1201, "function shop": 40}
