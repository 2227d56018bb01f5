"""Lock lookups by name (issue 17, scale): indexed once, the same answers as a scan of the tuples."""

from __future__ import annotations

import dataclasses

import pytest

from lbuild import rules
from lbuild.resolver.lockfile import FunctionLock, Lock, LockedPackage, LockedWheel, Resolution

TARGET = rules.Target("python3.11", "x86_64")


def pkg(name: str, version: str) -> LockedPackage:
    return LockedPackage(name, version, LockedWheel(f"{name}-{version}-py3-none-any.whl", "a" * 64, 10))


def resolution(id: str, *packages: LockedPackage) -> Resolution:
    return Resolution(id, TARGET, "x86_64-manylinux_2_17", ("fn1",), "i", packages)


def test_package_finds_each_name_and_the_first_of_a_duplicate() -> None:
    first, second = pkg("dup", "1.0"), pkg("dup", "2.0")
    res = resolution("r", pkg("a", "1"), first, pkg("b", "1"), second)
    assert [res.package(n).version for n in ("a", "b")] == ["1", "1"]
    assert res.package("dup") is first  # as the scan it replaces returned
    assert res.by_name["dup"] is second  # by_name kept the last one, and still does
    with pytest.raises(KeyError, match="missing"):
        res.package("missing")


def test_by_name_is_built_once_and_leaves_equality_alone() -> None:
    res = resolution("r", pkg("a", "1"), pkg("b", "2"))
    assert res.by_name is res.by_name  # one dict, not one per function looked up
    assert res == resolution("r", pkg("a", "1"), pkg("b", "2"))
    assert hash(res) == hash(resolution("r", pkg("a", "1"), pkg("b", "2")))
    changed = dataclasses.replace(res, packages=(pkg("c", "3"),))
    assert list(changed.by_name) == ["c"] and changed.package("c").version == "3"


def test_lock_function_and_resolution_lookups() -> None:
    fns = tuple(FunctionLock(f"fn{i}", "r1" if i % 2 else "r2", "i", (), (f"p{i}",)) for i in range(300))
    twin = FunctionLock("fn7", "r2", "other", (), ())
    lock = Lock("i", (resolution("r1"), resolution("r2"), resolution("r1", pkg("x", "1"))), (*fns, twin))
    assert all(lock.function(f"fn{i}") is fns[i] for i in range(300))
    assert lock.function("fn7") is fns[7]  # the first of a repeated name
    assert lock.resolution("r1").packages == ()  # the first r1
    assert lock.resolution("r2").id == "r2"
    for bad in (lambda: lock.function("fn300"), lambda: lock.resolution("r3")):
        with pytest.raises(KeyError):
            bad()
