"""Resolution failures that each get their own message (issue 13): a package with only an sdist, a wrong hash
in a pip-compile lock, an unreachable git URL. Each through ``lbuild lock``: exit 3, no lbuild.lock written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support import Fn, MakeProject, run_lbuild


def test_a_package_with_only_an_sdist_gets_the_hints_that_help(tmp_path: Path, make_project: MakeProject,
                                                               wheelhouse: Path) -> None:
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    (sdists / "sdistonly-1.0.tar.gz").write_bytes(b"uv never opens it: lbuild resolves with --only-binary")
    make_project(tmp_path / "p", {"fa": Fn("sdistonly\n")}, find_links=[wheelhouse, sdists])
    done = run_lbuild(["lock"], tmp_path / "p")
    assert done.returncode == 3, done.stderr
    assert "error: sdistonly 1.0 has no wheel, only a source distribution (sdist); lbuild installs wheels and never " \
           "builds a package from source (function fa, " in done.stderr
    assert "hint: pin a version of sdistonly that has a wheel for python3.12 x86_64 (glibc 2.34) (e.g. " \
           "sdistonly!=1.0), or build its wheel for the target yourself" in done.stderr
    assert "and list that folder in find_links" in done.stderr
    assert "package_type" not in done.stderr, "an image installs the same wheels: it would not help"
    assert not (tmp_path / "p" / "lbuild.lock").exists()


def test_a_wheel_that_fits_no_platform_no_longer_suggests_an_image(tmp_path: Path, make_project: MakeProject) -> None:
    make_project(tmp_path, {"fa": Fn("glibc228\n")}, runtime="python3.11")
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert "error: no " in done.stderr and "fits python3.11 x86_64 (glibc 2.26)" in done.stderr
    assert "package_type" not in done.stderr and "list that folder in find_links" in done.stderr


def test_a_wrong_hash_in_a_pip_compile_lock_is_its_own_message_naming_only_that_file(
        tmp_path: Path, make_project: MakeProject, wheelhouse: Path) -> None:
    real = hashlib.sha256((wheelhouse / "purea-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    pureb = hashlib.sha256((wheelhouse / "pureb-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    wrong = "0" * 64
    lock = (f"purea==1.0 \\\n    --hash=sha256:{wrong}\n    # via -r requirements.in\n"
            f"pureb==1.0 \\\n    --hash=sha256:{pureb}\n    # via purea\n")
    make_project(tmp_path, {"fa": Fn(lock), "fb": Fn("pureb\n")})
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode == 3, done.stderr
    fa, fb = tmp_path / "functions" / "fa" / "requirements.txt", tmp_path / "functions" / "fb" / "requirements.txt"
    assert (f"error: the hash of purea 1.0 in the pip-compile lock matches none of its files: the lock has "
            f"sha256:{wrong}; the files found are purea-1.0-py3-none-any.whl sha256:{real} ({fa})\n") in done.stderr
    assert "another environment" not in done.stderr and str(fb) not in done.stderr
    assert "hint: check that purea comes from where the lock was made" in done.stderr
    assert not (tmp_path / "lbuild.lock").exists()


@pytest.mark.parametrize(("url", "said"), [
    ("git+http://127.0.0.1:9/nowhere.git", "unable to access 'http://127.0.0.1:9/nowhere.git/'"),
    ("git+file:///nonexistent/repo.git@v1", "'/nonexistent/repo.git' does not appear to be a git repository"),
], ids=["refused-connection", "no-repository"])
def test_an_unreachable_git_url_is_not_called_a_version_conflict(tmp_path: Path, make_project: MakeProject,
                                                                url: str, said: str) -> None:
    make_project(tmp_path, {"fa": Fn(f"purea @ {url}\n")})
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode == 3, done.stderr
    repository = url.removeprefix("git+").split("@v1")[0]
    assert f"error: cannot fetch {repository} with git: {said}" in done.stderr
    assert "conflict" not in done.stderr.lower()
    assert "hint: check the URL and the branch, tag or commit after @" in done.stderr
