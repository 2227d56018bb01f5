"""dist/ as `lbuild package` leaves it: swapped in whole (a failure leaves the old one byte for byte),
`package FN` keeps the other functions, and filesystem problems are reported, not "unexpected"."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lbuild import manifest as manifest_mod
from tests.integration import test_deploy
from tests.integration.test_deploy import FUNCTIONS, Demo

# the demo project's fixtures
demo, deploy_wheels, run_cli = test_deploy.demo, test_deploy.deploy_wheels, test_deploy.run_cli


def _tree(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under ``root``: its mode and, for files, its bytes."""
    return {p.relative_to(root).as_posix(): (p.lstat().st_mode, None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- package FN keeps the others ------------------------------------------------------------------------


def test_package_fn_keeps_the_other_functions_and_a_deploy_of_all_still_works(demo: Demo) -> None:
    demo.deploy()
    before = demo.manifest()
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(event, context):\n    return 'v2'\n",
                                                              encoding="utf-8")
    partial = demo.run("package", "users")
    assert partial.code == 0, partial.stderr
    after = demo.manifest()
    assert [f["name"] for f in after["functions"]] == list(FUNCTIONS)
    for name in FUNCTIONS:
        old = next(f for f in before["functions"] if f["name"] == name)
        new = next(f for f in after["functions"] if f["name"] == name)
        assert (new["sha256"] == old["sha256"]) == (name != "users"), name
        assert (demo.root / "dist" / new["file"]).is_file()
    assert {layer["name"] for layer in after["layers"]} == {layer["name"] for layer in before["layers"]}
    for layer in after["layers"]:
        assert (demo.root / "dist" / layer["file"]).is_file()

    plan = demo.run("plan", "--json")
    assert plan.code == 10, plan.stderr
    assert "stale" not in plan.stderr and "not built" not in plan.stderr
    writing = [step["what"] for step in plan.json()["steps"] if step["writes"]]
    assert writing == ["update code of demo-users", "publish a version of demo-users", "move alias live of demo-users"]

    deployed = demo.deploy()
    assert deployed.touched("UpdateFunctionCode") == {"demo-users"}
    again = demo.run("plan")
    assert again.code == 0, again.stderr


# --- a package with nothing to change rewrites nothing ---------------------------------------------------


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (and root itself): inode and modification time."""
    return {p.relative_to(root).as_posix(): (p.lstat().st_ino, p.lstat().st_mtime_ns)
            for p in [root, *sorted(root.rglob("*"))]}


def test_a_package_with_nothing_changed_leaves_dist_untouched_but_restores_a_tampered_zip(demo: Demo) -> None:
    assert demo.run("package").code == 0
    dist = demo.root / "dist"
    before, stamps = _tree(dist), _stamps(dist)
    again = demo.run("package")
    assert again.code == 0, again.stderr
    assert _stamps(dist) == stamps, "no file of dist/ (nor dist/ itself) was written again"

    victim = dist / "functions" / "orders.zip"
    data = bytearray(victim.read_bytes())
    data[-30] ^= 0xFF  # same size, other bytes
    victim.write_bytes(bytes(data))
    repaired = demo.run("package")
    assert repaired.code == 0, repaired.stderr
    assert _tree(dist) == before, "a dist/ zip that no longer hashes right is replaced by the built one"


# --- a failing package leaves dist/ as it was ------------------------------------------------------------


def test_a_syntax_error_fails_the_package_and_leaves_dist_byte_for_byte(demo: Demo) -> None:
    assert demo.run("package").code == 0
    dist = demo.root / "dist"
    before = _tree(dist)
    (demo.root / "functions" / "orders" / "helpers.py").write_text("def broken(:\n    pass\n", encoding="utf-8")
    failed = demo.run("package")
    assert failed.code == 4, failed.stderr
    assert failed.stderr.splitlines()[-2].startswith("error: functions/orders/helpers.py:1: SyntaxError: ")
    assert "(function orders, functions/orders/helpers.py:1)" in failed.stderr
    assert "hint: fix the syntax of functions/orders/helpers.py (Lambda would fail to import it)" in failed.stderr
    assert _tree(dist) == before
    assert _leftovers(demo.root) == []


def test_a_failure_while_writing_dist_leaves_the_old_one(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    assert demo.run("package").code == 0
    dist = demo.root / "dist"
    before = _tree(dist)
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(event, context):\n    return 3\n",
                                                              encoding="utf-8")

    def fail(manifest: manifest_mod.Manifest, folder: Path) -> None:
        (folder / manifest_mod.FILE).write_text("{", encoding="utf-8")  # half written, then the disk fills
        raise OSError(28, "No space left on device", str(folder / manifest_mod.FILE))

    monkeypatch.setattr(manifest_mod, "write", fail)
    failed = demo.run("package")
    assert failed.code == 4, failed.stderr
    assert f"error: cannot write {dist}: No space left on device" in failed.stderr
    assert f"hint: make {demo.root} writable, or pass --out DIR on a writable file system" in failed.stderr
    assert _tree(dist) == before
    assert _leftovers(demo.root) == []


# --- filesystem problems: their own message, exit 2 or 4 ------------------------------------------------


def test_dist_that_is_a_file_is_exit_2(demo: Demo) -> None:
    (demo.root / "dist").write_bytes(b"not a folder")
    result = demo.run("package")
    assert result.code == 2, result.stderr
    assert f"error: dist is a file, not the build directory ({demo.root / 'dist'})" in result.stderr
    assert "hint: remove or rename the file" in result.stderr
    assert (demo.root / "dist").read_bytes() == b"not a folder"


def test_out_that_is_a_file_is_exit_2(demo: Demo, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"x")
    result = demo.run("package", "--out", str(target))
    assert result.code == 2, result.stderr
    assert f"error: --out {target} is a file, not a directory (--out)" in result.stderr
    assert "hint: pass a directory (it is created when missing)" in result.stderr
    under = demo.run("package", "--out", str(target / "dist"))
    assert under.code == 2, under.stderr
    assert f"error: {target} is a file, so {target / 'dist'} cannot be created (--out)" in under.stderr


def test_out_that_cannot_be_written_is_exit_4(demo: Demo) -> None:
    result = demo.run("package", "--out", "/proc/lbuild-dist")
    assert result.code == 4, result.stderr
    assert "error: cannot write /proc/lbuild-dist: No such file or directory" in result.stderr
    assert "hint: make /proc writable, or pass --out DIR on a writable file system" in result.stderr


def test_cache_dir_that_is_a_file_or_unwritable_is_exit_2(demo: Demo, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache-file"
    cache.write_bytes(b"x")
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(cache))
    for command in ("lock", "package"):
        result = demo.run(command)
        assert result.code == 2, result.stderr
        assert f"error: lbuild's cache {cache} is a file, not a directory (LBUILD_CACHE_DIR={cache})" in result.stderr
        assert "hint: set LBUILD_CACHE_DIR to a writable directory" in result.stderr
    monkeypatch.setenv("LBUILD_CACHE_DIR", "/proc/lbuild-cache")
    result = demo.run("package")
    assert result.code == 2, result.stderr
    assert "error: lbuild's cache /proc/lbuild-cache cannot be written: No such file or directory" in result.stderr


def test_lock_that_is_a_directory_is_exit_2(demo: Demo) -> None:
    (demo.root / "lbuild.lock").mkdir()
    for command in ("lock", "package"):
        result = demo.run(command)
        assert result.code == 2, result.stderr
        assert f"error: lbuild.lock is a directory, not a lock file ({demo.root / 'lbuild.lock'})" in result.stderr
        assert "hint: remove or rename the directory" in result.stderr
    assert not (demo.root / "dist").exists()


def test_config_that_is_a_directory_or_not_utf8_is_exit_2(demo: Demo) -> None:
    folder = demo.root / "conf"
    folder.mkdir()
    result = demo.run("package", "--config", str(folder))
    assert result.code == 2, result.stderr
    assert f"error: {folder} is a directory, not an lbuild.toml" in result.stderr
    config = demo.root / "lbuild.toml"
    config.write_bytes(config.read_bytes().replace(b'"test"', b'"t\xe9st"', 1))
    bad = demo.run("package")
    assert bad.code == 2, bad.stderr
    assert "error: lbuild.toml is not UTF-8 text (byte 0xe9 at line " in bad.stderr
    assert "hint: save lbuild.toml as UTF-8" in bad.stderr


def test_json_error_for_a_filesystem_problem(demo: Demo) -> None:
    (demo.root / "dist").write_bytes(b"")
    result = demo.run("package", "--json")
    assert result.code == 2
    assert json.loads(result.stdout)["exit_code"] == 2
    assert os.path.isfile(demo.root / "dist")


# --- lock --upgrade NAME of a package no function uses ---------------------------------------------------


def test_upgrade_of_a_package_no_function_uses_is_exit_2(demo: Demo) -> None:
    assert demo.run("lock").code == 0
    before = (demo.root / "lbuild.lock").read_bytes()
    result = demo.run("lock", "--upgrade", "gamm")
    assert result.code == 2, result.stderr
    assert result.stderr.splitlines()[-2:] == [
        "error: no function uses package gamm: nothing to upgrade (lbuild lock --upgrade)",
        "hint: did you mean gamma? name packages lbuild.lock pins (or that a function requires)",
    ]
    assert (demo.root / "lbuild.lock").read_bytes() == before
    assert demo.run("lock", "--upgrade", "Gamma").code == 0
