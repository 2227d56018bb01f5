"""Source excludes have gitignore semantics (checked against git itself), ``.env*`` is always out, and links
inside the repository are followed while every other link is an error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pathspec import GitIgnoreSpec

from lbuild.builders.sources import ALWAYS_EXCLUDED, _folder_matches, excluded, repository_of, scan
from lbuild.config import DEFAULT_EXCLUDE
from lbuild.errors import BuildError


def _tree(root: Path, files: list[str]) -> Path:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rel}\n", encoding="utf-8")
    return root


def _paths(root: Path, patterns: tuple[str, ...] = DEFAULT_EXCLUDE, repository: Path | None = None) -> list[str]:
    return [f.path for f in scan(root, patterns, repository).files]


@pytest.mark.parametrize(("path", "out"), [
    (".env", True), (".env.local", True), (".envrc", True), (".env-prod", True), ("sub/.envrc", True),
    ("sub/.env.production", True), ("environment.py", False), ("env/.gitkeep", False), ("x.env", False),
    ("a/__pycache__", True), ("stray.pyc", True), (".git", True), (".github/ci.yml", False), (".gitignore", False),
])
def test_always_excluded_files(path: str, out: bool) -> None:
    """Fault campaign D8: `.envrc` (SECRET=3) and `.env-prod` shipped although README says `.env*`."""
    assert excluded(path, ()) is out


def test_no_negation_brings_back_what_is_always_excluded(tmp_path: Path) -> None:
    _tree(tmp_path, [".envrc", ".env", "x.pyc", "app.py", "tests/test_a.py"])
    got = _paths(tmp_path, (*DEFAULT_EXCLUDE, "!.envrc", "!.env", "!*.pyc", "!tests/"))
    assert got == ["app.py", "tests/test_a.py"]  # tests/ is a default, not an always


@pytest.mark.parametrize(("patterns", "path", "folder", "out"), [
    (("*.py[cod]",), "x.pyo", False, True),
    (("*.py[cod]",), "x.pyx", False, False),
    (("data[0-9].csv",), "sub/data7.csv", False, True),
    (("data[!0-9].csv",), "datax.csv", False, True),
    (("*.log", "!keep.log"), "keep.log", False, False),
    (("*.log", "!keep.log"), "other.log", False, True),
    (("/top.txt",), "sub/top.txt", False, False),
    (("/top.txt",), "top.txt", False, True),
    (("build/",), "build", False, False),
    (("build/",), "build", True, True),
    (("docs/**",), "docs", True, False),
    (("docs/**",), "docs/x.md", False, True),
    (("a/**/b",), "a/x/y/b", False, True),
    (("tests",), "tests_helper.py", False, False),
])
def test_exclude_patterns_are_gitignore_patterns(patterns: tuple[str, ...], path: str, folder: bool,
                                                 out: bool) -> None:
    assert excluded(path, patterns, folder=folder) is out


TREE = ["app.py", "README.md", "docs/guide.md", "docs/keep.md", "docs/sub/deep.md", "build/keep.txt", "build/x.o",
        "tests/test_a.py", "tests/keep.py", "sub/tests/t.py", "tests_helper.py", "test_app.py", "x.pyo", "x.pyc",
        "data1.csv", "datax.csv", "lib/a.log", "lib/keep.log", "lib/vendor/v.py", "top.txt", "sub/top.txt",
        ".envrc", "sub/.env.local", "environment.py", "a/x/y/b", "a/b", "notes/a.txt", "notes/b.txt"]

PATTERN_SETS = [
    ("*.md", "docs/**"),
    ("docs/**", "!docs/keep.md"),
    ("build/", "!build/keep.txt"),
    ("!tests/keep.py",),
    ("*.py[cod]", "data[0-9].csv"),
    ("*.log", "!lib/keep.log", "lib/vendor/"),
    ("/top.txt", "a/**/b"),
    ("notes/*", "!notes/b.txt"),
    ("*", "!*/", "!*.py"),
]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("patterns", PATTERN_SETS, ids=[" ".join(p) for p in PATTERN_SETS])
def test_the_shipped_files_are_the_ones_git_would_not_ignore(tmp_path: Path, patterns: tuple[str, ...]) -> None:
    """git is the reference: the files `git ls-files --others --exclude-from` lists are the ones scanned."""
    root = _tree(tmp_path / "src", TREE)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    rules = tmp_path / "rules"
    rules.write_text("\n".join((*ALWAYS_EXCLUDED, *DEFAULT_EXCLUDE, *patterns)) + "\n", encoding="utf-8")
    listed = subprocess.run(["git", "ls-files", "--others", f"--exclude-from={rules}"], cwd=root, check=True,
                            capture_output=True, text=True).stdout.split()
    assert _paths(root, (*DEFAULT_EXCLUDE, *patterns)) == sorted(listed, key=str.encode)


# --- links -------------------------------------------------------------------------------------------------


def _repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = tmp_path / "repo"
    source = repo / "functions" / "fn"
    _tree(repo, ["functions/fn/app.py", "shared/util.py", "shared/pkg/mod.py", "shared/pkg/tests/t.py"])
    (repo / "lbuild.toml").write_text("", encoding="utf-8")
    return repo, source


def test_links_inside_the_repository_ship_what_they_point_to(tmp_path: Path) -> None:
    repo, source = _repo(tmp_path)
    (source / "util.py").symlink_to("../../shared/util.py")
    (source / "pkg").symlink_to(repo / "shared" / "pkg")
    (source / "again.py").symlink_to("app.py")
    tree = scan(source, DEFAULT_EXCLUDE)
    assert [f.path for f in tree.files] == ["again.py", "app.py", "pkg/mod.py", "util.py"]  # pkg/tests excluded
    util = next(f for f in tree.files if f.path == "util.py")
    assert util.absolute == (repo / "shared" / "util.py").resolve()
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=False)  # the same bytes as real files: the same digest
    assert scan(copy / "functions" / "fn", DEFAULT_EXCLUDE).digest == tree.digest
    assert repository_of(source) == repo


@pytest.mark.parametrize(("name", "target", "message"), [
    ("passwd", "/etc/hostname", "points outside the repository, to /etc/hostname"),
    ("up", "../../..", "points outside the repository"),
    ("gone.py", "missing.py", "is dangling"),
    ("self", "self", "is a link loop"),
    ("here", ".", "is a link loop"),
    ("parent", "..", "is a link loop"),
])
def test_links_that_leave_dangle_or_loop_are_exit_4(tmp_path: Path, name: str, target: str, message: str) -> None:
    _, source = _repo(tmp_path)
    (source / name).symlink_to(target)
    with pytest.raises(BuildError) as caught:
        scan(source, DEFAULT_EXCLUDE)
    assert caught.value.exit_code == 4 and message in caught.value.what
    assert f"symlink {name} -> {target}" in caught.value.what
    assert caught.value.where == str(source / name)


def test_a_loop_through_two_folders_is_exit_4(tmp_path: Path) -> None:
    repo, source = _repo(tmp_path)
    (repo / "shared" / "pkg" / "back").symlink_to(source)
    (source / "pkg").symlink_to(repo / "shared" / "pkg")
    with pytest.raises(BuildError, match="link loop"):
        scan(source, DEFAULT_EXCLUDE)


def test_an_excluded_link_is_not_followed(tmp_path: Path) -> None:
    _, source = _repo(tmp_path)
    (source / ".env").symlink_to("/etc/hostname")
    (source / "docs").symlink_to("/nonexistent")
    assert _paths(source, (*DEFAULT_EXCLUDE, "docs")) == ["app.py"]


def test_special_files_are_not_dropped_silently(tmp_path: Path) -> None:
    _, source = _repo(tmp_path)
    os.mkfifo(source / "pipe")
    with pytest.raises(BuildError, match="neither a file nor a folder"):
        scan(source, DEFAULT_EXCLUDE)
    assert _paths(source, (*DEFAULT_EXCLUDE, "pipe")) == ["app.py"]


_NAMES = st.text(alphabet="ab.t_-*?", min_size=1, max_size=5)
_PARTS = st.text(alphabet="ab.t_-", min_size=1, max_size=5).filter(lambda p: p not in {".", ".."})  # as a scan gives


@settings(max_examples=400, deadline=None)
@given(patterns=st.lists(_NAMES, max_size=4).map(tuple), parts=st.lists(_PARTS, min_size=1, max_size=4),
       folder=st.booleans())
def test_name_globs_decide_as_gitignore_spec_does(patterns: tuple[str, ...], parts: list[str], folder: bool) -> None:
    """Name-glob excludes (the defaults) are matched without pathspec; the answer is pathspec's, file or folder."""
    path = "/".join(parts)
    spec = GitIgnoreSpec.from_lines(ALWAYS_EXCLUDED + patterns)
    want = _folder_matches(spec, path) if folder else spec.match_file(path)
    assert excluded(path, patterns, folder=folder) == want


def test_a_pattern_beyond_name_globs_takes_the_full_gitignore_rules() -> None:
    assert excluded("a/keep.py", ("a/*", "!a/keep.py")) is False
    assert excluded("a/drop.py", ("a/*", "!a/keep.py")) is True
    assert excluded("build", ("build/",), folder=False) is False
    assert excluded("build", ("build/",), folder=True) is True
