"""Wheel tags in pip's order: ``rules.wheel_tags`` is ``packaging.tags`` for the target, element by element (the order
is the ranking the lock uses to pick a wheel), on the target's manylinux platforms in packaging's order."""

from __future__ import annotations

import pytest
from packaging import _manylinux, tags

from lbuild import rules

TARGETS = [rules.Target(runtime, architecture) for runtime in rules.RUNTIMES for architecture in rules.ARCHITECTURES]


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
def test_the_order_is_packagings(target: rules.Target) -> None:
    version, abi, platforms = target.spec.python, target.spec.abi, rules.platform_tags(target)
    expected = [str(t) for t in tags.cpython_tags(version, [abi], platforms)]
    expected += [str(t) for t in tags.compatible_tags(version, abi, platforms)]
    assert rules.wheel_tags(target) == expected


@pytest.mark.parametrize(("target", "better", "worse"), [
    # code review 1.8-4: every older cpXY-abi3 ranked above cp312-none; pip prefers the interpreter's own tag
    (rules.Target("python3.12", "x86_64"), "cp312-none-manylinux_2_17_x86_64", "cp311-abi3-manylinux_2_34_x86_64"),
    (rules.Target("python3.11", "arm64"), "cp311-none-manylinux_2_17_aarch64", "cp310-abi3-manylinux_2_26_aarch64"),
    (rules.Target("python3.12", "arm64"), "py312-none-manylinux_2_34_aarch64", "cp312-none-any"),
    (rules.Target("python3.12", "x86_64"), "cp39-abi3-manylinux_2_5_x86_64", "py312-none-manylinux_2_34_x86_64"),
])
def test_pips_preferences(target: rules.Target, better: str, worse: str) -> None:
    ranked = rules.wheel_tags(target)
    assert ranked.index(better) < ranked.index(worse)


@pytest.mark.parametrize("target", TARGETS, ids=[t.id for t in TARGETS])
def test_manylinux_platforms_are_in_packagings_order(monkeypatch: pytest.MonkeyPatch, target: rules.Target) -> None:
    """packaging's own generator, as it would run on a host with the runtime's glibc and machine (it reads the
    host's glibc and interpreter, so both are patched)."""
    monkeypatch.setattr(_manylinux, "_get_glibc_version", lambda: target.glibc)
    monkeypatch.setattr(_manylinux, "_have_compatible_abi", lambda executable, archs: True)
    monkeypatch.setattr(_manylinux, "_get_manylinux_module", lambda: None)
    assert rules.platform_tags(target) == list(_manylinux.platform_tags([target.machine]))
