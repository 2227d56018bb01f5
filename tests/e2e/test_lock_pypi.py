"""End to end with real PyPI: wheels for the Lambda target, never for this x86_64 / Python 3.11 host.

One ``lbuild lock`` run for the module: a project with a python3.12/arm64 function and a python3.11/x86_64
one, both needing ``pydantic==2.*`` and ``numpy``.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from lbuild import rules
from lbuild.builders.wheels import WheelRef, WheelStore
from lbuild.resolver import lockfile
from lbuild.resolver.lockfile import Lock, LockedPackage
from tests.support import Fn, run_lbuild, write_project

pytestmark = pytest.mark.network

REQUIREMENTS = "pydantic==2.*\nnumpy\n"
TARGETS = {"api": rules.Target("python3.12", "arm64"), "batch": rules.Target("python3.11", "x86_64")}
ELF_MACHINE = {"aarch64": 183, "x86_64": 62}


@pytest.fixture(scope="module")
def pypi_lock(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lock, dict[str, Any]]:
    root = tmp_path_factory.mktemp("pypi")
    functions = {name: Fn(REQUIREMENTS, runtime=t.runtime, architecture=t.architecture) for name, t in TARGETS.items()}
    write_project(root, functions, find_links=(), no_index=False)
    done = run_lbuild(["lock", "--json"], root, timeout=300)
    assert done.returncode == 0, done.stderr
    lock = lockfile.read(root / "lbuild.lock")
    assert lock is not None
    return lock, json.loads(done.stdout)


def locked(pypi_lock: tuple[Lock, dict[str, Any]], function: str, name: str) -> LockedPackage:
    return {p.name: p for p in pypi_lock[0].closure_packages(function)}[name]


def test_one_resolution_per_target(pypi_lock: tuple[Lock, dict[str, Any]]) -> None:
    lock, document = pypi_lock
    assert {r.id: r.platform for r in lock.resolutions} == {
        "python3.12-arm64": "aarch64-manylinux_2_34", "python3.11-x86_64": "x86_64-manylinux_2_17"}
    assert sorted(document["resolved"]) == ["python3.11-x86_64", "python3.12-arm64"]
    for name in TARGETS:
        assert {"pydantic", "pydantic-core", "annotated-types", "typing-extensions", "numpy"} <= \
            set(lock.function(name).closure)


@pytest.mark.parametrize(("function", "pattern"), [
    ("api", r"pydantic_core-[^-]+-cp312-cp312-manylinux[\w.]*_aarch64\.whl"),
    ("batch", r"pydantic_core-[^-]+-cp311-cp311-manylinux[\w.]*_x86_64\.whl"),
])
def test_pydantic_core_wheel_is_for_the_target(pypi_lock: tuple[Lock, dict[str, Any]], function: str,
                                               pattern: str) -> None:
    core = locked(pypi_lock, function, "pydantic-core")
    assert re.fullmatch(pattern, core.wheel.filename), core.wheel.filename
    assert Version(locked(pypi_lock, function, "pydantic").version).major == 2


@pytest.mark.parametrize(("function", "pattern"), [
    ("api", r"numpy-[^-]+-cp312-cp312-manylinux[\w.]*_aarch64\.whl"),
    ("batch", r"numpy-[^-]+-cp311-cp311-manylinux[\w.]*_x86_64\.whl"),
])
def test_numpy_wheel_and_requires_python_fit_the_target(pypi_lock: tuple[Lock, dict[str, Any]], function: str,
                                                        pattern: str) -> None:
    numpy = locked(pypi_lock, function, "numpy")
    assert re.fullmatch(pattern, numpy.wheel.filename), numpy.wheel.filename
    assert numpy.requires_python, "numpy declares Requires-Python"
    python = TARGETS[function].python_version
    assert SpecifierSet(numpy.requires_python).contains(f"{python}.0"), (numpy.version, numpy.requires_python)


def test_every_wheel_fits_its_target_glibc_and_python(pypi_lock: tuple[Lock, dict[str, Any]]) -> None:
    lock, _ = pypi_lock
    for res in lock.resolutions:
        accepted = set(rules.wheel_tags(res.target))
        for pkg in res.packages:
            _, _, _, tags = parse_wheel_filename(pkg.wheel.filename)
            assert {str(t) for t in tags} & accepted, (res.id, pkg.wheel.filename)
            assert re.fullmatch(r"[0-9a-f]{64}", pkg.wheel.sha256) and pkg.wheel.size > 0
            assert (pkg.wheel.url or "").startswith("https://")
            if pkg.requires_python:
                assert SpecifierSet(pkg.requires_python).contains(f"{res.target.python_version}.0")


def test_pydantic_core_extension_is_built_for_the_target_machine(pypi_lock: tuple[Lock, dict[str, Any]],
                                                                 tmp_path: Path) -> None:
    """Fetch (hash-verified) and look inside: the ELF header names the target machine, not the host's."""
    store = WheelStore(tmp_path)
    for function, target in TARGETS.items():
        wheel = locked(pypi_lock, function, "pydantic-core").wheel
        path = store.fetch(WheelRef(wheel.filename, wheel.sha256, url=wheel.url, size=wheel.size))
        with zipfile.ZipFile(path) as archive:
            (so,) = [n for n in archive.namelist() if n.endswith(".so")]
            header = archive.read(so)[:20]
        assert header[:4] == b"\x7fELF"
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[target.machine]
