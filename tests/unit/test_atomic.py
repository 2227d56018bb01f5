"""lbuild.atomic: files are replaced whole, directories swapped whole, nothing left behind on a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbuild import atomic


def _listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_write_text_replaces_whole_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    atomic.write_text(target, "new\n")
    assert target.read_bytes() == b"new\n"
    assert target.stat().st_mode & 0o777 == 0o644
    assert _listing(tmp_path) == ["a.txt"]


def test_write_into_a_directory_target_fails_and_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        atomic.write_bytes(tmp_path / "d", b"x")
    assert _listing(tmp_path) == ["d"]


def test_swap_dir_replaces_the_old_tree(tmp_path: Path) -> None:
    target = tmp_path / "dist"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "old.zip").write_bytes(b"old")
    with atomic.staging_dir(target) as staged:
        (staged / "new.zip").write_bytes(b"new")
        atomic.swap_dir(staged, target)
    assert _listing(tmp_path) == ["dist", "dist/new.zip"]


def test_a_failure_before_the_swap_leaves_the_old_tree_and_no_staging_dir(tmp_path: Path) -> None:
    target = tmp_path / "dist"
    target.mkdir()
    (target / "old.zip").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic.staging_dir(target) as staged:
        (staged / "new.zip").write_bytes(b"new")
        raise RuntimeError("boom")
    assert _listing(tmp_path) == ["dist", "dist/old.zip"]
    assert (target / "old.zip").read_bytes() == b"old"
