"""A no-op ``lbuild package`` answers from its stamp (lbuild/stamp.py) without loading the CLI, and a change to
anything the stamped run read makes the next run a real one.

Real ``python -X importtime -m lbuild`` processes: a run was replayed when it never imported ``lbuild.cli``.
The projects are copies of one built project, made and then left alone for longer than ``stamp.RACY_NS`` (a
stamp trusts no input that changed within it), so each test starts from a project whose next package stamps.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from lbuild import stamp
from tests.support import HANDLER, Fn, build_wheelhouse, write_project
from tests.support.workloads import cli_env

COPIES = ("noop", "edit", "add", "excluded", "config", "wheel", "env", "dist", "tamper", "cache", "subdir", "human",
          "racy", "not-stamped", "include", "rebuilt")


#: No byte code written by these runs: a module compiled for the first time (a fresh clone) would change a
#: __pycache__ folder, an input of every stamp, under the next test's feet.
QUIET_CODE = {"PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str
    replayed: bool


@dataclass(frozen=True)
class Projects:
    roots: dict[str, Path]
    caches: dict[str, Path]  # one local cache per copy: a cached zip another copy links to dist/ changes its ctime

    def run(self, name: str, *args: str, env: Mapping[str, str | None] | None = None,
            cwd: Path | None = None) -> Result:
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "lbuild", *args],
                              cwd=cwd or self.roots[name], env=cli_env({"LBUILD_CACHE_DIR": str(self.caches[name]),
                                                                         **QUIET_CODE, **(env or {})}),
                              capture_output=True, text=True, timeout=120, check=False)
        lines = done.stderr.splitlines()
        imported = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}
        stderr = "\n".join(line for line in lines if not line.startswith("import time:"))
        assert "lbuild.stamp" in imported, "-X importtime was read"
        return Result(done.returncode, done.stdout, stderr, "lbuild.cli" not in imported)

    def stamped(self, name: str, *args: str, **kw: object) -> Result:
        """Package ``name`` for real (writing its stamp), then again: that one must be replayed, same output."""
        first = self.run(name, "package", *args, **kw)  # type: ignore[arg-type]
        assert first.code == 0 and not first.replayed, first.stderr
        second = self.run(name, "package", *args, **kw)  # type: ignore[arg-type]
        assert second.code == 0 and second.replayed, second.stderr
        assert second.stdout == first.stdout
        return first


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Projects]:
    base = tmp_path_factory.mktemp("stamp-base") / "p"
    build_wheelhouse(base / "wheels")
    libs = base / "libs" / "common"
    libs.mkdir(parents=True)
    (libs / "common.py").write_text("X = 1\n", encoding="utf-8")
    write_project(base, {"orders": Fn("purea\n", files={"tests/test_x.py": "T = 1\n", "util.py": "U = 1\n"}),
                         "users": Fn("purea\n", extra='include = ["libs/common"]'), "plain": None},
                  find_links=["wheels"])
    cache = tmp_path_factory.mktemp("stamp-cache")
    env = cli_env({"LBUILD_CACHE_DIR": str(cache), **QUIET_CODE})
    done = subprocess.run([sys.executable, "-m", "lbuild", "package"], cwd=base, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    top = tmp_path_factory.mktemp("stamp-copies")
    roots = {name: Path(shutil.copytree(base, top / name, symlinks=True)) for name in COPIES}
    caches = {name: Path(shutil.copytree(cache, top / f"{name}-cache", symlinks=True)) for name in COPIES}
    time.sleep(stamp.RACY_NS / 1e9 + 0.2)  # every input older than the racy window: the next package stamps
    yield Projects(roots, caches)


def _same_size_edit(path: Path, old: bytes, new: bytes) -> None:
    """Change ``old`` to ``new`` (same length) and put the modification time back: only ctime and bytes differ."""
    before = path.stat()
    data = path.read_bytes()
    assert len(old) == len(new) and old in data
    path.write_bytes(data.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _function(result: Result, name: str) -> dict[str, object]:
    return next(f for f in json.loads(result.stdout)["functions"] if f["name"] == name)


def test_a_no_op_is_replayed_with_the_same_document_and_loads_no_cli(projects: Projects) -> None:
    first = projects.stamped("noop", "--json")
    assert json.loads(first.stdout)["project"] == "demo"
    (path,) = [p for p in (projects.caches["noop"] / "stamps").glob("*.stamp")
               if marshal.loads(p.read_bytes())["identity"][4] == str(projects.roots["noop"])]
    inputs = marshal.loads(path.read_bytes())["inputs"]
    import typer

    code = {str(Path(stamp.__file__).with_name("cli.py")), typer.__file__, str(projects.roots["noop"] / "lbuild.lock")}
    assert code <= set(inputs), "lbuild's own code, its libraries and the lock count as read"


def test_a_same_size_edit_with_its_mtime_put_back_is_seen(projects: Projects) -> None:
    before = projects.stamped("edit", "--json")
    _same_size_edit(projects.roots["edit"] / "functions/orders/app.py", b"'ok': True", b"'ok': 1234")
    after = projects.run("edit", "package", "--json")
    assert after.code == 0 and not after.replayed
    assert _function(after, "orders")["sha256"] != _function(before, "orders")["sha256"]


def test_a_new_source_file_is_seen(projects: Projects) -> None:
    before = projects.stamped("add", "--json")
    (projects.roots["add"] / "functions/users/extra.py").write_text("E = 1\n", encoding="utf-8")
    after = projects.run("add", "package", "--json")
    assert not after.replayed and _function(after, "users")["sha256"] != _function(before, "users")["sha256"]


def test_a_file_added_inside_an_excluded_folder_changes_nothing_and_is_still_replayed(projects: Projects) -> None:
    before = projects.stamped("excluded", "--json")
    (projects.roots["excluded"] / "functions/orders/tests/test_y.py").write_text("Y = 1\n", encoding="utf-8")
    again = projects.run("excluded", "package", "--json")
    assert again.replayed and again.stdout == before.stdout


def test_an_included_library_edit_is_seen(projects: Projects) -> None:
    before = projects.stamped("include", "--json")
    _same_size_edit(projects.roots["include"] / "libs/common/common.py", b"X = 1", b"X = 2")
    after = projects.run("include", "package", "--json")
    assert not after.replayed and _function(after, "users")["sha256"] != _function(before, "users")["sha256"]


def test_an_edit_of_lbuild_toml_is_seen(projects: Projects) -> None:
    projects.stamped("config", "--json")
    config = projects.roots["config"] / "lbuild.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "[functions.plain]", '[functions.plain]\nenvironment = { MODE = "x" }'), encoding="utf-8")
    after = projects.run("config", "package", "--json")
    limits = _function(after, "plain")["limits"]["limits"]  # type: ignore[index]
    assert not after.replayed and next(u["value"] for u in limits if u["limit"] == "environment") > 0


def test_a_local_wheel_replaced_in_place_is_seen(projects: Projects) -> None:
    projects.stamped("wheel", "--json")
    wheel = next((projects.roots["wheel"] / "wheels").glob("pureb-*.whl"))
    before = wheel.stat()
    data = bytearray(wheel.read_bytes())
    data[-30] ^= 0xFF  # inside the zip's trailing directory: the same size, other bytes
    wheel.write_bytes(bytes(data))
    os.utime(wheel, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = projects.run("wheel", "package", "--json")
    assert not after.replayed


def test_another_environment_is_a_real_run_and_a_volatile_variable_is_not(projects: Projects) -> None:
    projects.stamped("env", "--json")
    assert projects.run("env", "package", "--json", env={"SHLVL": "7", "OLDPWD": "/elsewhere"}).replayed
    assert not projects.run("env", "package", "--json", env={"LBUILD_SOMETHING": "1"}).replayed
    assert not projects.run("env", "package", "--json", env={"SOURCE_DATE_EPOCH": "0"}).replayed


def test_a_deleted_dist_zip_is_rebuilt_by_a_real_run(projects: Projects) -> None:
    first = projects.stamped("dist", "--json")
    zip_path = projects.roots["dist"] / "dist" / str(_function(first, "orders")["file"])
    zip_path.unlink()
    after = projects.run("dist", "package", "--json")
    assert not after.replayed and zip_path.is_file() and after.stdout == first.stdout


def test_a_tampered_dist_zip_with_its_mtime_put_back_is_replaced(projects: Projects) -> None:
    first = projects.stamped("tamper", "--json")
    zip_path = projects.roots["tamper"] / "dist" / str(_function(first, "orders")["file"])
    good = zip_path.read_bytes()
    before = zip_path.stat()
    zip_path.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    os.utime(zip_path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = projects.run("tamper", "package", "--json")
    assert not after.replayed and zip_path.read_bytes() == good


def test_a_lbuild_toml_created_between_the_working_folder_and_the_project_is_seen(projects: Projects) -> None:
    root = projects.roots["subdir"]
    folder = root / "ops" / "ci" / "jobs"  # no source folder: only the search for lbuild.toml looked up here
    folder.mkdir(parents=True)
    time.sleep(stamp.RACY_NS / 1e9 + 0.2)
    first = projects.run("subdir", "package", "--json", cwd=folder)
    assert first.code == 0 and not first.replayed, first.stderr
    assert projects.run("subdir", "package", "--json", cwd=folder).replayed
    write_project(root / "ops", {"solo": None}, find_links=[root / "wheels"])  # nearer than the project's own
    after = projects.run("subdir", "package", "--json", cwd=folder)
    assert after.code == 0, after.stderr
    assert not after.replayed and [f["name"] for f in json.loads(after.stdout)["functions"]] == ["solo"]


def test_the_human_output_is_replayed_with_the_size_table_and_a_summary(projects: Projects) -> None:
    first = projects.run("human", "package")
    again = projects.run("human", "package")
    assert first.code == again.code == 0 and not first.replayed and again.replayed
    table = [line for line in first.stderr.splitlines() if not line.startswith("wrote ")]
    assert [line for line in again.stderr.splitlines() if not line.startswith("wrote ")] == table
    summary = f"wrote {projects.roots['human'] / 'dist'}: 1 layers, 3 functions (0 built, 4 from cache) in "
    assert again.stderr.splitlines()[-1].startswith(summary) and first.stderr.splitlines()[-1].startswith(summary)
    assert again.stdout == first.stdout == ""


def test_an_input_changed_just_before_a_run_is_not_trusted(projects: Projects) -> None:
    projects.stamped("racy", "--json")
    source = projects.roots["racy"] / "functions/plain/app.py"
    source.write_text(HANDLER, encoding="utf-8")  # the same bytes, written now
    assert not projects.run("racy", "package", "--json").replayed
    assert not projects.run("racy", "package", "--json").replayed, "within RACY_NS of a change: no stamp"


def test_partial_packages_and_the_off_switch_are_never_replayed(projects: Projects) -> None:
    for args, env in ((("orders",), {}), (("--explain",), {}), ((), {stamp.OFF: "1"})):
        assert projects.run("not-stamped", "package", "--json", *args, env=env).code == 0
        again = projects.run("not-stamped", "package", "--json", *args, env=env)
        assert again.code == 0 and not again.replayed, args


def test_a_damaged_cached_artifact_is_a_real_run(projects: Projects) -> None:
    """Last in this module: the rebuilt entry is a fresh input of every copy (the copies share one cache)."""
    first = projects.stamped("cache", "--json")
    key = str(_function(first, "plain")["cache_key"])
    cached = projects.caches["cache"] / "artifacts" / key[:2] / f"{key}.zip"
    cached.write_bytes(b"PK damaged")
    after = projects.run("cache", "package", "--json")
    assert not after.replayed and after.code == 0 and after.stdout == first.stdout
    assert "does not match its sha256: rebuilding it" in after.stderr


def test_a_run_that_built_something_writes_no_stamp(projects: Projects) -> None:
    """A run that rebuilt an artifact (its cache entry was gone) is not replayed: the next run is a real one."""
    first = projects.stamped("rebuilt", "--json")
    key = str(_function(first, "plain")["cache_key"])
    (projects.caches["rebuilt"] / "artifacts" / key[:2] / f"{key}.zip").unlink()
    (projects.caches["rebuilt"] / "artifacts" / key[:2] / f"{key}.json").unlink()
    assert not projects.run("rebuilt", "package").replayed  # builds plain again
    after = projects.run("rebuilt", "package")
    assert not after.replayed and "(0 built, 4 from cache)" in after.stderr


def test_a_run_that_warns_is_never_replayed_so_the_warning_is_always_seen(projects: Projects,
                                                                         tmp_path: Path) -> None:
    root = tmp_path / "old"
    write_project(root, {"legacy": Fn(runtime="python3.9")}, find_links=[projects.roots["noop"] / "wheels"])
    projects.roots["old"], projects.caches["old"] = root, tmp_path / "old-cache"
    assert projects.run("old", "package", "--json").code == 0
    time.sleep(stamp.RACY_NS / 1e9 + 0.2)
    for _ in range(2):
        again = projects.run("old", "package", "--json")
        assert again.code == 0 and not again.replayed
        assert "warning: function legacy: python3.9 is deprecated" in again.stderr


def test_a_cache_that_cannot_hold_a_stamp_costs_only_the_shortcut(projects: Projects, tmp_path: Path) -> None:
    (projects.caches["noop"] / "stamps").rename(tmp_path / "stamps")
    (projects.caches["noop"] / "stamps").write_text("a file where the stamps folder goes\n", encoding="utf-8")
    try:
        for _ in range(2):
            result = projects.run("noop", "package", "--json")
            assert result.code == 0 and not result.replayed and json.loads(result.stdout)["project"] == "demo"
    finally:
        (projects.caches["noop"] / "stamps").unlink()
        (tmp_path / "stamps").rename(projects.caches["noop"] / "stamps")
