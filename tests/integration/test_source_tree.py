"""``lbuild package`` on function sources with real symbolic links, secrets, binaries and gitignore excludes.

Every run is ``python -m lbuild package`` in a subprocess on a small project without requirements (nothing to
resolve), as the fault campaign ran it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.support import Fn, run_lbuild, write_project
from tests.support.hostile import elf_needing
from tests.support.wheelfactory import fake_elf


def _project(tmp_path: Path, files: dict[str, str] | None = None, extra: str = "", runtime: str = "python3.12",
             architecture: str = "x86_64") -> Path:
    root = tmp_path / "repo"
    (root / "wheels").mkdir(parents=True)
    write_project(root, {"fn": Fn(files=files or {}, extra=extra)}, runtime=runtime, architecture=architecture,
                  find_links=["wheels"])
    return root


def _package(root: Path) -> tuple[int, str, list[str], dict[str, bytes]]:
    """(exit code, stderr, the bundle's names, its contents) of `lbuild package --json`."""
    result = run_lbuild(["package", "--json"], root)
    if result.returncode != 0:
        return result.returncode, result.stderr, [], {}
    fn = next(f for f in json.loads(result.stdout)["functions"] if f["name"] == "fn")
    with zipfile.ZipFile(root / "dist" / fn["file"]) as archive:
        return 0, result.stderr, archive.namelist(), {n: archive.read(n) for n in archive.namelist()}


def _error(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("error:"))


# --- secrets and excludes --------------------------------------------------------------------------------------


def test_every_env_file_stays_out_and_gitignore_patterns_apply(tmp_path: Path) -> None:
    """Fault campaign D8 (`.envrc` with SECRET=3 and `.env-prod` shipped) and code review 1.8-5 (`[...]` and `!`
    ignored)."""
    files = {".envrc": "SECRET=3\n", ".env-prod": "SECRET=4\n", ".env": "SECRET=1\n", "sub/.env.production": "S\n",
             "sub/.envrc": "S\n", "environment.py": "X = 1\n", "x.pyo": "", "x.pyd": "", "x.py": "",
             "logs/a.log": "", "logs/keep.log": "", "tests/test_a.py": "", "test_app.py": ""}
    root = _project(tmp_path, files, extra='exclude = ["*.py[cod]", "*.log", "!logs/keep.log", "!.envrc"]')
    code, stderr, names, contents = _package(root)
    assert code == 0, stderr
    assert sorted(names) == ["app.py", "environment.py", "logs/keep.log", "test_app.py", "x.py"]
    assert not any(b"SECRET" in data for data in contents.values())


# --- symbolic links ------------------------------------------------------------------------------------------


def test_links_to_a_file_and_a_folder_inside_the_repository_are_packaged(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "shared" / "lib").mkdir(parents=True)
    (root / "shared" / "util.py").write_text("UTIL = 1\n", encoding="utf-8")
    (root / "shared" / "lib" / "__init__.py").write_text("LIB = 2\n", encoding="utf-8")
    (root / "shared" / "lib" / "deep").mkdir()
    (root / "shared" / "lib" / "deep" / "x.py").write_text("X = 3\n", encoding="utf-8")
    source = root / "functions" / "fn"
    (source / "util.py").symlink_to("../../shared/util.py")
    (source / "lib").symlink_to("../../shared/lib")  # was dropped silently
    code, stderr, names, contents = _package(root)
    assert code == 0, stderr
    assert sorted(names) == ["app.py", "lib/__init__.py", "lib/deep/x.py", "util.py"]
    assert contents["util.py"] == b"UTIL = 1\n" and contents["lib/deep/x.py"] == b"X = 3\n"


def _outside_file(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0\n", encoding="utf-8")
    return secret


@pytest.mark.parametrize(("name", "target", "message"), [
    ("hostname", "/etc/hostname", "points outside the repository, to /etc/hostname"),
    ("secret.txt", "OUTSIDE", "points outside the repository"),
    ("up", "../../..", "points outside the repository"),
    ("gone.py", "nothing-here.py", "is dangling"),
    ("loop.py", "loop.py", "is a link loop"),
    ("again", ".", "is a link loop"),
], ids=["etc-hostname", "tmp-file", "dotdot", "dangling", "loop", "folder-loop"])
def test_links_that_leave_dangle_or_loop_fail_with_exit_4(tmp_path: Path, name: str, target: str,
                                                          message: str) -> None:
    root = _project(tmp_path)
    link = root / "functions" / "fn" / name
    shown = str(_outside_file(tmp_path)) if target == "OUTSIDE" else target
    link.symlink_to(shown)
    code, stderr, _, _ = _package(root)
    assert code == 4, stderr
    error = _error(stderr)
    assert f"symlink {name} -> {shown}" in error and message in error and str(link) in error
    assert "hint:" in stderr
    assert not (root / "dist").exists()


def test_an_excluded_link_out_is_neither_followed_nor_an_error(tmp_path: Path) -> None:
    root = _project(tmp_path, extra='exclude = ["private/"]')
    (root / "functions" / "fn" / "private").symlink_to("/etc")
    code, stderr, names, _ = _package(root)
    assert code == 0, stderr
    assert names == ["app.py"]


# --- binaries in the source -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "message"), [
    (elf_needing("x86_64", "GLIBC_2.28"), "native/_fast.so (from the function's source): needs GLIBC_2.28, "
                                          "python3.11 has 2.26"),
    (fake_elf("aarch64"), "native/_fast.so (from the function's source): built for aarch64 (64-bit little-endian), "
                          "python3.11 x86_64 needs x86_64"),
], ids=["glibc-2.28", "aarch64"])
def test_a_shared_object_in_the_source_is_audited(tmp_path: Path, data: bytes, message: str) -> None:
    root = _project(tmp_path, runtime="python3.11", architecture="x86_64")
    (root / "functions" / "fn" / "native").mkdir()
    (root / "functions" / "fn" / "native" / "_fast.so").write_bytes(data)
    code, stderr, _, _ = _package(root)
    assert code == 4, stderr
    error = _error(stderr)
    assert "1 binary file(s) in function fn cannot load on python3.11 x86_64 (glibc 2.26)" in error
    assert message in error and "(function fn)" in error
    assert not (root / "dist").exists()
