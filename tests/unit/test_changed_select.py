"""Pure: ``lbuild.changed`` selects the functions whose files, settings or locked dependencies changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.builders.plan import split_inputs
from lbuild.changed import Before, FunctionInputs, config_reasons, lock_reasons, path_reasons, select_changed
from lbuild.config import DEFAULT_EXCLUDE, Function, Project
from lbuild.errors import ConfigError
from lbuild.resolver.lockfile import FunctionLock, Lock, LockedPackage, LockedWheel, Resolution
from lbuild.resolver.split import plan_layers
from lbuild.rules import Target
from lbuild.wiring.model import Permission, Wiring

ROOT = Path("/repo")
TARGET = Target("python3.12", "x86_64")


def fn(name: str, **changes: object) -> Function:
    base = Function(name, "app.handler", ROOT / "functions" / name, ROOT / "functions" / name / "requirements.txt",
                    "python3.12", "x86_64")
    return replace(base, **changes)  # type: ignore[arg-type]


def project(*functions: Function, **changes: object) -> Project:
    functions = functions or (fn("fa"), fn("fb"), fn("fc"))
    return replace(Project("demo", ROOT / "lbuild.toml", ROOT, tuple(functions)), **changes)  # type: ignore[arg-type]


def lock(closures: Mapping[str, Sequence[str]], versions: Mapping[str, str] | None = None) -> Lock:
    """One resolution; each package at ``versions[name]`` (default 1.0), its wheel hash from name and version."""
    versions = versions or {}
    names = sorted({p for closure in closures.values() for p in closure})
    packages = tuple(LockedPackage(n, versions.get(n, "1.0"),
                                   LockedWheel(f"{n}.whl", f"{n}-{versions.get(n, '1.0')}", 1000)) for n in names)
    resolution = Resolution("r1", TARGET, "x86_64-manylinux_2_34", tuple(sorted(closures)), "", packages)
    return Lock("", (resolution,), tuple(FunctionLock(f, "r1", "", (), tuple(sorted(c))) for f, c in closures.items()))


CLOSURES = {"fa": ["purea", "pureb"], "fb": ["pureb"], "fc": ["pureb", "common"]}


def inputs(function: Function, **changes: object) -> FunctionInputs:
    base = FunctionInputs(function.name, function.source, function.exclude, files=(function.requirements,)
                          if function.requirements else ())
    return replace(base, **changes)  # type: ignore[arg-type]


def run(paths: Sequence[str], now: Project | None = None, before: Before | None = None,
        current: Lock | None = None, names: Sequence[str] = ()) -> dict[str, tuple[str, ...]]:
    now = now or project()
    current = current or lock(CLOSURES)
    before = before or Before(now, lock(CLOSURES))
    chosen = select_changed(now, [inputs(f) for f in now.functions], [ROOT / p for p in paths], before, current,
                            ref="main", base="abc", names=names)
    return {s.name: s.reasons for s in chosen.functions}


# --- files --------------------------------------------------------------------------------------------------


def test_nothing_changed_selects_nothing() -> None:
    assert run([]) == {}
    assert run(["README.md", "lbuild.toml", "lbuild.lock", "functions/other/app.py"]) == {}, \
        "files of no function; lbuild.toml and lbuild.lock are compared by content"


def test_a_source_file_selects_its_function_unless_excluded() -> None:
    assert run(["functions/fa/app.py"]) == {"fa": ("source changed: functions/fa/app.py",)}
    assert run(["functions/fa/tests/test_app.py", "functions/fa/pkg/__pycache__/m.pyc", "functions/fa/.env"]) == {}
    patterned = fn("fa", exclude=(*DEFAULT_EXCLUDE, "*.md", "fixtures/"))
    assert path_reasons(inputs(patterned), [ROOT / "functions/fa/NOTES.md", ROOT / "functions/fa/fixtures/x.json"],
                        ROOT) == []
    assert path_reasons(inputs(patterned), [ROOT / "functions/fa/fixtures.py"], ROOT) == [
        "source changed: functions/fa/fixtures.py"]


def test_requirements_include_dockerfile_and_local_projects() -> None:
    fa = fn("fa", include=(ROOT / "libs/shared",))
    found = inputs(fa, include=fa.include, files=(ROOT / "reqs/base.txt", ROOT / "docker/Dockerfile"),
                   local=(ROOT / "libs/common",), dockerfile=ROOT / "docker/Dockerfile")
    assert path_reasons(found, [ROOT / "reqs/base.txt"], ROOT) == ["requirements changed: reqs/base.txt"]
    assert path_reasons(found, [ROOT / "docker/Dockerfile"], ROOT) == ["dockerfile changed: docker/Dockerfile"]
    assert path_reasons(found, [ROOT / "libs/shared/x.py"], ROOT) == ["include changed: libs/shared/x.py"]
    assert path_reasons(found, [ROOT / "libs/common/common/__init__.py", ROOT / "libs/common/pyproject.toml"],
                        ROOT) == ["local project changed: libs/common/common/__init__.py"], "one reason per kind"
    assert path_reasons(found, [ROOT / "libs/commonx/a.py", ROOT / "libs/common"], ROOT) == []
    service = ROOT / "services" / "api"
    assert path_reasons(found, [ROOT / "libs/common/x.py"], service) == [
        "local project changed: ../../libs/common/x.py"]


def test_a_requirements_file_in_the_source_is_said_as_requirements() -> None:
    assert run(["functions/fb/requirements.txt"]) == {"fb": ("requirements changed: functions/fb/requirements.txt",)}


# --- lbuild.toml --------------------------------------------------------------------------------------------


def test_where_a_setting_is_written_is_no_change() -> None:
    old = project(fn("fa", wiring=Wiring(permissions=(Permission("123456789012", where="lbuild.toml:9"),))))
    new = project(fn("fa", wiring=Wiring(permissions=(Permission("123456789012", where="lbuild.toml:12"),))))
    assert config_reasons(new, Before(old, None)) == {}
    other = project(fn("fa", wiring=Wiring(permissions=(Permission("210987654321", where="lbuild.toml:12"),))))
    assert config_reasons(other, Before(old, None)) == {"fa": ["settings changed: permissions"]}


def test_settings_project_keys_and_new_functions() -> None:
    old = project()
    assert config_reasons(project(fn("fa"), fn("fb", memory=256, timeout=9), fn("fc")), Before(old, None)) == {
        "fb": ["settings changed: memory, timeout"]}
    assert config_reasons(project(fn("fa"), fn("fb"), fn("fc"), fn("fd")), Before(old, None)) == {
        "fd": ["new in lbuild.toml"]}
    everyone = config_reasons(project(alias="live", region="eu-west-1"), Before(old, None))
    assert everyone == {f: ["[project] region changed", "[project] alias changed"] for f in ("fa", "fb", "fc")}
    assert config_reasons(old, Before(None, None, "did not exist at abc")) == {
        f: ["lbuild.toml did not exist at abc"] for f in ("fa", "fb", "fc")}


# --- lbuild.lock --------------------------------------------------------------------------------------------


def test_a_version_change_selects_its_users_only_through_changed_layers() -> None:
    bumped = lock(CLOSURES, {"purea": "2.0"})
    assert lock_reasons(project(), Before(project(), lock(CLOSURES)), bumped) == {
        "fa": ["locked dependencies changed: +purea==2.0, -purea==1.0"]}, "purea is in fa's bundle only"
    shared = lock(CLOSURES, {"pureb": "2.0"})
    assert set(lock_reasons(project(), Before(project(), lock(CLOSURES)), shared)) == {"fa", "fb", "fc"}


def test_a_package_joining_a_shared_layer_selects_the_functions_that_share_it() -> None:
    more = {**CLOSURES, "fb": ["purea", "pureb"]}
    assert lock_reasons(project(), Before(project(), lock(CLOSURES)), lock(more)) == {
        "fa": ["the shared layers it attaches changed (what it shares with other functions was regrouped)"],
        "fb": ["locked dependencies changed: +purea==1.0"]}


def test_a_missing_lock_selects() -> None:
    assert lock_reasons(project(), Before(project(), None, lock_note="did not exist at abc"), lock(CLOSURES)) == {
        f: ["lbuild.lock did not exist at abc"] for f in ("fa", "fb", "fc")}
    assert set(lock_reasons(project(), Before(project(), lock(CLOSURES)), None)) == {"fa", "fb", "fc"}
    assert lock_reasons(project(fn("fa"), fn("fb"), fn("fc"), fn("fd")), Before(project(), lock(CLOSURES)),
                        lock({**CLOSURES, "fd": []})) == {"fd": ["lbuild.lock did not lock it at the base commit"]}


# --- names --------------------------------------------------------------------------------------------------


def test_names_intersect_and_unknown_names_fail() -> None:
    changed = ["functions/fa/app.py", "functions/fb/app.py"]
    assert list(run(changed, names=["fb", "fc"])) == ["fb"]
    assert run(changed, names=["fc"]) == {}
    with pytest.raises(ConfigError, match="unknown function 'fz'"):
        run(changed, names=["fz"])


# --- property: the lock comparison selects exactly the functions whose packaged dependencies change -----------


def _shipped(now: Project, locked: Lock) -> dict[str, tuple[frozenset[frozenset[str]], frozenset[str]]]:
    """Each function's dependencies as shipped: the contents of each layer it attaches, and of its bundle."""
    functions, packages = split_inputs(now, locked)
    plan = plan_layers(now.name, functions, packages, now.min_functions)
    pins = {n: p.pin for n, p in locked.resolution("r1").by_name.items()}
    out = {}
    for f in now.functions:
        bundle = plan.bundle(f.name)
        layers = frozenset(frozenset(pins[n] for n in plan.layer(layer).packages) for layer in bundle.layers)
        out[f.name] = (layers, frozenset(pins[n] for n in bundle.packages))
    return out


NAMES = ["fa", "fb", "fc", "fd", "fe"]
POOL = ["p1", "p2", "p3", "p4", "p5", "p6"]
closures_st = st.fixed_dictionaries({n: st.lists(st.sampled_from(POOL), unique=True, max_size=5) for n in NAMES})
versions_st = st.dictionaries(st.sampled_from(POOL), st.sampled_from(["1.0", "2.0"]))


@settings(max_examples=150, deadline=None)
@given(closures_st, versions_st, closures_st, versions_st)
def test_selected_exactly_when_what_it_ships_changes(old_c: dict[str, list[str]], old_v: dict[str, str],
                                                     new_c: dict[str, list[str]], new_v: dict[str, str]) -> None:
    now = project(*(fn(n) for n in NAMES))
    old_lock, new_lock = lock(old_c, old_v), lock(new_c, new_v)
    selected = set(lock_reasons(now, Before(now, old_lock), new_lock))
    before, after = _shipped(now, old_lock), _shipped(now, new_lock)
    assert selected == {n for n in NAMES if before[n] != after[n]}


def test_min_functions_regroups_layers_without_any_closure_changing() -> None:
    stricter = project(min_functions=3)
    assert lock_reasons(stricter, Before(project(), lock(CLOSURES)), lock(CLOSURES)) == {}, \
        "pureb is needed by all three: still one layer"
    closures = {**CLOSURES, "fc": ["common"]}
    assert set(lock_reasons(stricter, Before(project(), lock(closures)), lock(closures))) == {"fa", "fb"}, \
        "pureb, needed by two, leaves its layer for their bundles"
