"""``include = [...]``: extra source directories copied into a function's bundle root, in its cache key."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import Fn, MakeProject
from tests.support.workloads import run_cli, zip_names


def _library(root: Path) -> Path:
    lib = root / "libs" / "common" / "src" / "common"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("VALUE = 1\n", encoding="utf-8")
    (lib / "util.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / "util.cpython-312.pyc").write_bytes(b"stale")
    return lib


def _built(stdout: str) -> dict[str, str]:
    """function name -> the sha256 of its zip, from `package --json`."""
    return {f["name"]: f["sha256"] for f in json.loads(stdout)["functions"]}


def test_an_included_directory_lands_in_the_bundle_root_and_a_change_rebuilds_only_its_users(
        tmp_path: Path, make_project: MakeProject) -> None:
    root = tmp_path / "p"
    lib = _library(root)
    make_project(root, {"orders": Fn(extra='include = ["libs/common/src/common"]'), "users": None})
    env = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    code, stdout, stderr = run_cli(["package", "--json"], root, env)
    assert code == 0, stderr
    names = zip_names(root / "dist" / "functions" / "orders.zip")
    assert {"app.py", "common/__init__.py", "common/util.py"} <= set(names)
    assert not any("__pycache__" in n for n in names), "the source excludes apply to included directories"
    assert not any(n.startswith("common/") for n in zip_names(root / "dist" / "functions" / "users.zip"))
    before = _built(stdout)

    (lib / "util.py").write_text("def f():\n    return 2\n", encoding="utf-8")
    code, stdout, stderr = run_cli(["package", "--json"], root, env)
    assert code == 0, stderr
    after = _built(stdout)
    assert after["orders"] != before["orders"], "the included code is in the function's cache key"
    assert after["users"] == before["users"]


def test_a_project_wide_include_applies_to_every_function(tmp_path: Path, make_project: MakeProject) -> None:
    root = tmp_path / "p"
    _library(root)
    make_project(root, {"orders": None, "users": None}, 'include = ["libs/common/src/common"]')
    code, _, stderr = run_cli(["package"], root, {"LBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert code == 0, stderr
    for name in ("orders", "users"):
        assert "common/util.py" in zip_names(root / "dist" / "functions" / f"{name}.zip")


def test_an_include_that_is_not_a_directory_is_a_configuration_error(tmp_path: Path,
                                                                     make_project: MakeProject) -> None:
    root = tmp_path / "p"
    make_project(root, {"orders": Fn(extra='include = ["libs/missing"]')})
    code, _, stderr = run_cli(["package"], root, {"LBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert code == 2, stderr
    assert "error: include libs/missing is not a directory" in stderr and "functions.orders.include" in stderr
    assert "hint: name a directory relative to lbuild.toml" in stderr
    assert not (root / "dist").exists()


def test_an_included_path_the_source_also_has_is_exit_4(tmp_path: Path, make_project: MakeProject) -> None:
    root = tmp_path / "p"
    _library(root)
    make_project(root, {"orders": Fn(extra='include = ["libs/common/src/common"]',
                                     files={"common/util.py": "X = 1\n"})})
    code, _, stderr = run_cli(["package"], root, {"LBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert code == 4, stderr
    assert "error: common/util.py is both in the function's source and in include" in stderr


def test_a_syntax_error_in_an_included_library_fails_the_package_naming_the_file(
        tmp_path: Path, make_project: MakeProject) -> None:
    root = tmp_path / "p"
    lib = _library(root)
    make_project(root, {"orders": Fn(extra='include = ["libs/common/src/common"]'), "users": None})
    env = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cli(["package"], root, env)[0] == 0
    (lib / "util.py").write_text("def f(:\n    return 2\n", encoding="utf-8")
    code, _, stderr = run_cli(["package"], root, env)
    assert code == 4, stderr
    assert "error: libs/common/src/common/util.py:1: SyntaxError: " in stderr
    assert "(function orders, libs/common/src/common/util.py:1)" in stderr
