"""Local projects: file URLs, the source-tree hash, discovery through [tool.uv.sources] (pure, no uv)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from lbuild.errors import ConfigError
from lbuild.resolver import local
from lbuild.resolver.inputs import read_input


def lib(directory: Path, name: str, sources: str = "") -> Path:
    (directory / name).mkdir(parents=True, exist_ok=True)
    (directory / name / "__init__.py").write_text("X = 1\n", encoding="utf-8")
    (directory / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "1"\n{sources}',
                                              encoding="utf-8")
    return directory


def test_file_urls_absolute_and_relative(tmp_path: Path) -> None:
    assert local.file_url_to_path("file:///abs/libs/common", tmp_path) == Path("/abs/libs/common")
    assert local.file_url_to_path("file://localhost/abs/x%20y", tmp_path) == Path("/abs/x y")
    assert local.file_url_to_path("file:../libs/common", tmp_path) == tmp_path / "../libs/common"
    with pytest.raises(ValueError):
        local.file_url_to_path("file://server/share", tmp_path)


@pytest.mark.parametrize("ignored", [".git/HEAD", "build/lib/x.py", "dist/x.whl", ".venv/bin/python",
                                     "common/__pycache__/x.pyc", "common/x.pyc", "common.egg-info/PKG-INFO",
                                     ".pytest_cache/v"])
def test_tree_hash_leaves_out_what_no_wheel_holds(tmp_path: Path, ignored: str) -> None:
    root = lib(tmp_path / "common", "common")
    before = local.tree_hash(root)
    (root / ignored).parent.mkdir(parents=True, exist_ok=True)
    (root / ignored).write_text("noise", encoding="utf-8")
    assert local.tree_hash(root) == before


def test_tree_hash_follows_contents_names_and_new_files(tmp_path: Path) -> None:
    root = lib(tmp_path / "common", "common")
    before = local.tree_hash(root)
    (root / "common/__init__.py").write_text("X = 2\n", encoding="utf-8")
    edited = local.tree_hash(root)
    assert edited != before
    (root / "common/new.py").write_text("", encoding="utf-8")
    added = local.tree_hash(root)
    assert added not in (before, edited)
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    assert local.tree_hash(moved) == added  # the place is not part of it


def test_discover_follows_uv_path_sources(tmp_path: Path) -> None:
    lib(tmp_path / "util", "util")
    common = lib(tmp_path / "common", "common", '[tool.uv.sources]\nutil = { path = "../util" }\n')
    found = local.discover({canonicalize_name("common"): common}, "x")
    assert sorted(found) == ["common", "util"]
    assert found[canonicalize_name("util")].directory == (tmp_path / "util").resolve()


def test_a_path_that_is_another_project_is_refused(tmp_path: Path) -> None:
    common = lib(tmp_path / "common", "common")
    with pytest.raises(ConfigError, match="is the project common, not other"):
        local.discover({canonicalize_name("other"): common}, "x")


def test_every_form_reads_as_the_plain_name(tmp_path: Path) -> None:
    lib(tmp_path / "libs" / "common", "common")
    fn = tmp_path / "fn"
    fn.mkdir()
    url = (tmp_path / "libs" / "common").as_uri()
    for text in ("common @ file:../libs/common", f"common @ {url}", "../libs/common", "-e ../libs/common",
                 "--editable=../libs/common"):
        (fn / "requirements.txt").write_text(text + "\n", encoding="utf-8")
        got = read_input(fn / "requirements.txt", tmp_path)
        assert got.requirements == ("common",), text
        assert list(got.local) == ["common"]
    (fn / "requirements.txt").write_text('../libs/common[fast] ; python_version >= "3.9"\n', encoding="utf-8")
    assert read_input(fn / "requirements.txt", tmp_path).requirements == ('common[fast]; python_version >= "3.9"',)


def test_two_places_for_one_name_are_refused(tmp_path: Path) -> None:
    lib(tmp_path / "a", "common")
    lib(tmp_path / "b", "common")
    (tmp_path / "requirements.txt").write_text("./a\n./b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="named at two places"):
        read_input(tmp_path / "requirements.txt", tmp_path)


def test_lock_round_trips_a_local_project() -> None:
    from lbuild.resolver import lockfile
    from lbuild.rules import Target

    wheel = lockfile.LockedWheel("common-0.1-py3-none-any.whl", "ab" * 32, 10, None, "../../libs/common")
    pkg = lockfile.LockedPackage("common", "0.1", wheel, None, ("pureb",), "sha256:" + "cd" * 32)
    res = lockfile.Resolution("python3.12-x86_64", Target("python3.12", "x86_64"), "x86_64-manylinux_2_34",
                              ("fa",), "sha256:0", (pkg,))
    lock = lockfile.Lock("sha256:1", (res,), (lockfile.FunctionLock("fa", res.id, "sha256:2", ("common",),
                                                                    ("common",)),))
    text = lockfile.dumps(lock)
    assert 'directory = { path = "../../libs/common", source-tree = "sha256:' in text
    assert lockfile.loads(text) == lock


def test_other_uv_sources_are_refused_not_looked_up(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "fa"\nversion = "0"\ndependencies = ["common"]\n\n'
        '[tool.uv.sources]\ncommon = { git = "https://example.invalid/common" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="only path and workspace sources are supported"):
        read_input(tmp_path / "pyproject.toml", tmp_path)


def test_workspace_source_outside_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "pyproject.toml").write_text(
        '[project]\nname = "fa"\nversion = "0"\ndependencies = ["common"]\n\n'
        '[tool.uv.sources]\ncommon = { workspace = true }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no \[tool\.uv\.workspace\] encloses"):
        read_input(tmp_path / "fn" / "pyproject.toml", tmp_path)


def test_tree_hash_follows_a_linked_directory_and_survives_a_cycle(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.py").write_text("A = 1\n", encoding="utf-8")
    root = lib(tmp_path / "common", "common")
    (root / "common" / "shared").symlink_to(shared, target_is_directory=True)
    (root / "common" / "loop").symlink_to(root / "common", target_is_directory=True)
    before = local.tree_hash(root)
    (shared / "data.py").write_text("A = 2\n", encoding="utf-8")
    assert local.tree_hash(root) != before


def test_normalized_wheels_depend_on_their_members_only(tmp_path: Path) -> None:
    import zipfile

    def wheel(directory: Path, order: list[str], when: tuple[int, int, int, int, int, int], method: int) -> Path:
        directory.mkdir()
        path = directory / "common-0.1-py3-none-any.whl"
        members = {"common/__init__.py": b"X = 1\n", "common-0.1.dist-info/METADATA": b"Name: common\n",
                   "common-0.1.dist-info/RECORD": b"common/__init__.py,,\ncommon-0.1.dist-info/METADATA,,"}
        with zipfile.ZipFile(path, "w", method) as archive:
            for name in order:
                archive.writestr(zipfile.ZipInfo(name, date_time=when), members[name])
        return path

    a = wheel(tmp_path / "a", ["common/__init__.py", "common-0.1.dist-info/METADATA", "common-0.1.dist-info/RECORD"],
              (2020, 1, 1, 0, 0, 0), zipfile.ZIP_DEFLATED)
    b = wheel(tmp_path / "b", ["common-0.1.dist-info/RECORD", "common-0.1.dist-info/METADATA", "common/__init__.py"],
              (2024, 5, 6, 7, 8, 10), zipfile.ZIP_STORED)
    (tmp_path / "na").mkdir()
    (tmp_path / "nb").mkdir()
    na = local.normalize_wheel(a, tmp_path / "na")
    nb = local.normalize_wheel(b, tmp_path / "nb")
    assert na.read_bytes() == nb.read_bytes()
    with zipfile.ZipFile(na) as archive:
        assert archive.namelist()[0] == "common/__init__.py"
        assert archive.read("common-0.1.dist-info/RECORD").endswith(b"\n")
