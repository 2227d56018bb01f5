"""SOURCE_DATE_EPOCH set to the last commit's time: a warning saying to leave it unset (issues 13 and 17)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import Fn, MakeProject, run_lbuild

COMMITTED = 1_767_225_600  # 2026-01-01T00:00:00Z


def _commit(root: Path) -> None:
    env = {**os.environ, "GIT_COMMITTER_DATE": f"@{COMMITTED} +0000", "GIT_AUTHOR_DATE": f"@{COMMITTED} +0000",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


@pytest.mark.parametrize(("epoch", "warned"), [(COMMITTED, True), (COMMITTED + 1, False)], ids=["head", "other"])
def test_an_epoch_equal_to_heads_commit_time_is_warned_about(tmp_path: Path, make_project: MakeProject,
                                                             monkeypatch: pytest.MonkeyPatch, epoch: int,
                                                             warned: bool) -> None:
    make_project(tmp_path, {"fa": Fn("purea\n")})
    _commit(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))
    done = run_lbuild(["package"], tmp_path)
    assert done.returncode == 0, done.stderr
    warning = (f"warning: SOURCE_DATE_EPOCH={epoch} is the time of the last commit (HEAD): every zip changes on every "
               "commit (every layer republished, every function a new version); leave it unset: lbuild's fixed "
               "timestamp keeps every zip the same across commits")
    assert (warning in done.stderr) is warned, done.stderr


def test_no_git_repository_no_warning(tmp_path: Path, make_project: MakeProject,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, {"fa": Fn("purea\n")})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(COMMITTED))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    done = run_lbuild(["package"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "SOURCE_DATE_EPOCH" not in done.stderr


def test_a_deprecated_runtime_warning_names_the_tables_date(tmp_path: Path, make_project: MakeProject) -> None:
    make_project(tmp_path, {"fa": Fn("purea\n")}, runtime="python3.10")
    done = run_lbuild(["package"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: function fa: python3.10 " in done.stderr
    assert "(Lambda's runtime table as of 2026-12-03)" in done.stderr


def test_an_epoch_that_is_not_a_number_is_exit_2_saying_leave_it_unset(tmp_path: Path, make_project: MakeProject,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path, {"fa": Fn("purea\n")})
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    done = run_lbuild(["package"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "error: SOURCE_DATE_EPOCH='yesterday' is not a whole number of seconds (environment)\n" \
           "hint: leave it unset: " in done.stderr
    assert not (tmp_path / "dist").exists()
