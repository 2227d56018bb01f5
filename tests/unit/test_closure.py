"""closure.py: a function's closure within a joint resolution, markers evaluated for the target."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import Marker
from packaging.utils import NormalizedName, canonicalize_name

from lbuild import rules
from lbuild.resolver.closure import ROOT, MissingPin, Node, Walker, compute_closure

ARM312 = rules.marker_environment(rules.Target("python3.12", "arm64"))
X86_311 = rules.marker_environment(rules.Target("python3.11", "x86_64"))


def graph(spec: Mapping[str, tuple[str, ...]], versions: Mapping[str, str] | None = None
          ) -> dict[NormalizedName, Node]:
    """Nodes from ``{name: requires_dist}`` (version 1.0 unless ``versions`` says otherwise)."""
    versions = versions or {}
    return {canonicalize_name(n): Node(canonicalize_name(n), versions.get(n, "1.0"), deps) for n, deps in spec.items()}


MARKERDEMO = graph({
    "markerdemo": ('dep-arm; platform_machine == "aarch64"', 'dep-x86; platform_machine == "x86_64"',
                   'dep-oldpy; python_version < "3.12"', 'dep-newpy; python_version >= "3.12"',
                   'dep-win; sys_platform == "win32"'),
    "dep-arm": (), "dep-x86": (), "dep-oldpy": (), "dep-newpy": (), "dep-win": (),
})


def test_markers_are_evaluated_for_the_target_not_the_host() -> None:
    assert compute_closure(["markerdemo"], MARKERDEMO, ARM312).names == ("dep-arm", "dep-newpy", "markerdemo")
    assert compute_closure(["markerdemo"], MARKERDEMO, X86_311).names == ("dep-oldpy", "dep-x86", "markerdemo")


def test_required_by_names_parents_and_root() -> None:
    nodes = graph({"a": ("c",), "b": ("c",), "c": ()})
    closure = compute_closure(["a", "b", "c"], nodes, ARM312)
    assert closure.required_by == {"a": {ROOT}, "b": {ROOT}, "c": {"a", "b", ROOT}}


def test_marker_on_a_root_requirement() -> None:
    nodes = graph({"a": (), "b": ()})
    roots = ['a; platform_machine == "x86_64"', 'b; python_version >= "3.12"']
    assert compute_closure(roots, nodes, ARM312).names == ("b",)
    assert compute_closure(roots, nodes, X86_311).names == ("a",)


def test_names_are_normalized() -> None:
    nodes = graph({"Zope.Interface": ("Typing_Extensions",), "typing-extensions": ()})
    assert compute_closure(["zope_interface"], nodes, ARM312).names == ("typing-extensions", "zope-interface")


WITHEXTRA = graph({
    "withextra": ('speedup; extra == "fast"', 'armonly; extra == "fast" and platform_machine == "aarch64"',
                  'withextra[fast]; extra == "all"', "base"),
    "speedup": (), "armonly": (), "base": (),
    "plain-user": ("withextra",),
    "fast-user": ("withextra[fast]",),
})


def test_extra_pulls_its_dependencies_with_markers() -> None:
    assert compute_closure(["withextra"], WITHEXTRA, ARM312).names == ("base", "withextra")
    assert compute_closure(["withextra[fast]"], WITHEXTRA, ARM312).names == \
        ("armonly", "base", "speedup", "withextra")
    assert compute_closure(["withextra[FAST]"], WITHEXTRA, X86_311).names == ("base", "speedup", "withextra")


@pytest.mark.parametrize("roots", [["fast-user", "plain-user"], ["plain-user", "fast-user"],
                                   ["fast-user", "withextra"], ["withextra", "fast-user"]])
def test_extra_requested_only_on_a_second_visit(roots: list[str]) -> None:
    """Whichever path reaches withextra first, the extra asked for by the other one still counts."""
    closure = compute_closure(roots, WITHEXTRA, ARM312)
    assert {"speedup", "armonly", "base", "withextra"} <= set(closure.names)
    assert closure.required_by[canonicalize_name("speedup")] == {"withextra"}


def test_self_referencing_extra() -> None:
    """``pkg[all]`` requiring ``pkg[fast]`` (a common pattern) switches on the fast extra too."""
    assert "speedup" in compute_closure(["withextra[all]"], WITHEXTRA, X86_311).names


def test_unknown_extra_adds_nothing() -> None:
    assert compute_closure(["withextra[nosuch]"], WITHEXTRA, ARM312).names == ("base", "withextra")


def test_cycles_terminate() -> None:
    nodes = graph({"a": ("b",), "b": ("c",), "c": ("a", "a[x]"), "d": ()})
    closure = compute_closure(["a"], nodes, ARM312)
    assert closure.names == ("a", "b", "c")
    assert closure.required_by[canonicalize_name("a")] == {ROOT, "c"}


def test_self_dependency() -> None:
    closure = compute_closure(["a"], graph({"a": ("a",)}), ARM312)
    assert closure.required_by == {"a": {ROOT, "a"}}


def test_missing_pin_names_requirement_and_parent() -> None:
    nodes = graph({"a": ("b>=1",)})
    with pytest.raises(MissingPin) as info:
        compute_closure(["a"], nodes, ARM312)
    assert (info.value.requirement, info.value.parent, info.value.pinned) == ("b>=1", "a", None)


def test_missing_root_pin() -> None:
    with pytest.raises(MissingPin) as info:
        compute_closure(["nosuch==1"], graph({}), ARM312)
    assert (info.value.requirement, info.value.parent, info.value.pinned) == ("nosuch==1", ROOT, None)


def test_pin_outside_the_specifier_is_a_missing_pin() -> None:
    nodes = graph({"a": ("b<2",), "b": ()}, versions={"b": "2.0"})
    with pytest.raises(MissingPin) as info:
        compute_closure(["a"], nodes, ARM312)
    assert (info.value.requirement, info.value.parent, info.value.pinned) == ("b<2", "a", "2.0")


def test_prerelease_pin_satisfies_a_plain_specifier() -> None:
    nodes = graph({"a": ("b>=1",), "b": ()}, versions={"b": "2.0rc1"})
    assert compute_closure(["a"], nodes, ARM312).names == ("a", "b")


def test_missing_pin_behind_a_false_marker_is_fine() -> None:
    nodes = graph({"a": ('winonly; sys_platform == "win32"',)})
    assert compute_closure(["a"], nodes, ARM312).names == ("a",)


# --- property: random dependency graphs -------------------------------------------------------------

MARKERS = ("", 'platform_machine == "aarch64"', 'platform_machine == "x86_64"', 'python_version < "3.12"',
           'python_version >= "3.12"', 'sys_platform == "win32"')
ENVS = [rules.marker_environment(rules.Target(rt, arch))
        for rt in ("python3.11", "python3.12") for arch in ("x86_64", "arm64")]


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """``{node: [(dep, marker)]}`` over p0..pN and the roots: DAGs, or (half the time) graphs with cycles."""
    size = draw(st.integers(1, 12))
    cyclic = draw(st.booleans())
    edges: dict[str, list[tuple[str, str]]] = {f"p{i}": [] for i in range(size)}
    for i in range(size):
        choices = [j for j in range(size) if (j != i if cyclic else j > i)]
        if choices:
            targets = draw(st.lists(st.sampled_from(choices), unique=True, max_size=4))
            edges[f"p{i}"] = [(f"p{j}", draw(st.sampled_from(MARKERS))) for j in targets]
    roots = draw(st.lists(st.sampled_from(sorted(edges)), min_size=1, unique=True, max_size=4))
    return edges, roots


def _requirement(name: str, marker: str) -> str:
    return f"{name}; {marker}" if marker else name


def _holds(marker: str, env: Mapping[str, str]) -> bool:
    return not marker or Marker(marker).evaluate(dict(env))


def _reachable(edges: Mapping[str, list[tuple[str, str]]], roots: list[str], env: Mapping[str, str]) -> set[str]:
    """The oracle: plain graph search over the edges whose markers hold."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo += [dep for dep, marker in edges[node] if _holds(marker, env)]
    return seen


@settings(max_examples=150, deadline=None)
@given(random_graphs(), st.sampled_from(ENVS))
def test_closure_is_exactly_the_applicable_reachable_set(
    case: tuple[dict[str, list[tuple[str, str]]], list[str]], env: Mapping[str, str]
) -> None:
    edges, roots = case
    nodes = {canonicalize_name(n): Node(canonicalize_name(n), "1.0", tuple(_requirement(d, m) for d, m in deps))
             for n, deps in edges.items()}
    closure = compute_closure(roots, nodes, env)
    names = set(closure.names)
    # contains the roots
    assert set(roots) <= names
    # closed under the edges whose markers hold for the target
    for name in names:
        for dep, marker in edges[name]:
            if _holds(marker, env):
                assert dep in names, (name, dep, marker)
                assert name in closure.required_by[canonicalize_name(dep)]
    # nothing unreachable (the least such set)
    assert names == _reachable(edges, roots, env)
    # every recorded parent is in the closure (or the root) and has an applicable edge to the child
    for child, parents in closure.required_by.items():
        for parent in parents:
            if parent == ROOT:
                assert child in roots
            else:
                assert parent in names and any(d == child for d, _ in edges[parent])


@settings(max_examples=100, deadline=None)
@given(random_graphs(), st.lists(st.lists(st.sampled_from([f"p{i}" for i in range(12)]), min_size=1, max_size=4),
                                 min_size=2, max_size=5), st.sampled_from(ENVS))
def test_a_walker_reused_across_functions_gives_each_its_own_closure(
    case: tuple[dict[str, list[tuple[str, str]]], list[str]], root_sets: list[list[str]], env: Mapping[str, str]
) -> None:
    """The walker's caches (parsed lines, marker results) never leak one function's closure into another's."""
    edges, _ = case
    extras = ("", "[fast]")
    nodes = {canonicalize_name(n): Node(canonicalize_name(n), "1.0",
                                        tuple(_requirement(d, m) for d, m in deps)
                                        + tuple(f'{d}; extra == "fast"' for d, _ in deps[:1]))
             for n, deps in edges.items()}
    walker = Walker(nodes, env)
    for i, roots in enumerate(root_sets):
        known = [f"{r}{extras[i % 2]}" for r in roots if r in edges]
        if known:
            assert walker.closure(known) == compute_closure(known, nodes, env)
