"""``lbuild export``: the renderers over a hand-made lbuild.lock (pure), and the pylock.toml checked by parsing it
back (tomllib, and ``packaging.pylock`` where this packaging has it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from lbuild.export import pylock, requirements
from lbuild.resolver.lockfile import FunctionLock, Lock, LockedPackage, LockedWheel, Resolution
from lbuild.rules import Target

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path("/repo/services/api")
ALPHA = LockedPackage("alpha", "1.0", LockedWheel("alpha-1.0-py3-none-any.whl", "a" * 64, 1200,
                                                  url="https://files.example/alpha-1.0-py3-none-any.whl"))
BETA = LockedPackage("beta", "2.1", LockedWheel("beta-2.1-cp312-cp312-manylinux_2_17_aarch64.whl", "b" * 64, 3400,
                                                path="wheels/beta-2.1-cp312-cp312-manylinux_2_17_aarch64.whl"),
                     requires_python=">=3.9", dependencies=("alpha",))
COMMON = LockedPackage("common", "0.3", LockedWheel("common-0.3-py3-none-any.whl", "c" * 64, 800,
                                                    path="../../libs/common"), source_tree="d" * 64)
UNUSED = LockedPackage("gamma", "9.9", LockedWheel("gamma-9.9-py3-none-any.whl", "e" * 64, 10, url="file:///g.whl"))
LOCK = Lock("inputs", (Resolution("python3.12-arm64", Target("python3.12", "arm64"), "aarch64-manylinux_2_34",
                                  ("orders", "users"), "r", (ALPHA, BETA, COMMON, UNUSED)),),
            (FunctionLock("orders", "python3.12-arm64", "i", ("beta", "common"), ("alpha", "beta", "common")),
             FunctionLock("users", "python3.12-arm64", "i", ("gamma",), ("gamma",))))


def test_requirements_are_pip_tools_hashed_entries_of_the_closure_only() -> None:
    text = requirements(LOCK, "orders")
    assert text.startswith("# Exported by lbuild ")
    assert "function orders, python3.12 arm64 (aarch64-manylinux_2_34)" in text.splitlines()[0]
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == ["alpha==1.0 \\", f"    --hash=sha256:{'a' * 64}",
                    "beta==2.1 \\", f"    --hash=sha256:{'b' * 64}",
                    "common==0.3 \\", f"    --hash=sha256:{'c' * 64}"]
    assert "# common: the local project ../../libs/common, built by lbuild" in text
    assert "gamma" not in text
    assert text.endswith("\n")


def _parsed(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def test_pylock_is_pep_751_with_one_wheel_per_package() -> None:
    data = _parsed(pylock(LOCK, "orders", ROOT, ROOT))
    assert (data["lock-version"], data["created-by"], data["requires-python"]) == ("1.0", "lbuild", "==3.12.*")
    packages = {p["name"]: p for p in data["packages"]}
    assert set(packages) == {"alpha", "beta", "common"}
    assert packages["alpha"] == {"name": "alpha", "version": "1.0", "wheels": [
        {"name": "alpha-1.0-py3-none-any.whl", "url": "https://files.example/alpha-1.0-py3-none-any.whl",
         "size": 1200, "hashes": {"sha256": "a" * 64}}]}
    assert packages["beta"]["requires-python"] == ">=3.9"
    assert packages["beta"]["wheels"][0]["path"] == "wheels/beta-2.1-cp312-cp312-manylinux_2_17_aarch64.whl"
    assert packages["common"] == {"name": "common", "directory": {"path": "../../libs/common"}}
    assert data["tool"]["lbuild"] == {"function": "orders", "runtime": "python3.12", "architecture": "arm64",
                                      "platform": "aarch64-manylinux_2_34"}


def test_pylock_paths_are_relative_to_where_the_file_goes() -> None:
    data = _parsed(pylock(LOCK, "orders", ROOT, ROOT / "build" / "export"))
    packages = {p["name"]: p for p in data["packages"]}
    assert packages["beta"]["wheels"][0]["path"] == "../../wheels/beta-2.1-cp312-cp312-manylinux_2_17_aarch64.whl"
    assert packages["common"]["directory"]["path"] == "../../../../libs/common"


def test_pylock_passes_packaging_validation() -> None:
    pylock_module = pytest.importorskip("packaging.pylock", reason="this packaging has no pylock validator")
    for function in ("orders", "users"):
        parsed = pylock_module.Pylock.from_dict(_parsed(pylock(LOCK, function, ROOT, ROOT)))
        parsed.validate()
        assert str(parsed.lock_version) == "1.0" and parsed.created_by == "lbuild"
    broken = _parsed(pylock(LOCK, "orders", ROOT, ROOT))
    del broken["packages"][0]["wheels"][0]["hashes"]
    with pytest.raises(pylock_module.PylockValidationError):
        pylock_module.Pylock.from_dict(broken)


def test_names_that_need_escaping_stay_valid_toml() -> None:
    odd = LockedPackage('we"ird', "1.0", LockedWheel('we"ird-1.0-py3-none-any.whl', "f" * 64, 1, url="file:///x"))
    lock = Lock("i", (Resolution("r", Target("python3.12", "arm64"), "p", ("f",), "r", (odd,)),),
                (FunctionLock('f', "r", "i", (), ('we"ird',)),))
    assert _parsed(pylock(lock, "f", ROOT, ROOT))["packages"][0]["name"] == 'we"ird'
