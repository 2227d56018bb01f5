"""Reproducible artifacts: one project, two clones that differ in everything but content.

Clone A: a plain path, umask 022, TZ=UTC, file modes 0644/0755, mtimes as copied, run from the project
folder. Clone B: a path with spaces, umask 077, TZ=Pacific/Kiritimati (UTC+14), modes 0600/0700, every
file and folder touched to its own random time, run from elsewhere with ``--config`` and an ``--out``
with a space. Each is packaged in a fresh process with fresh caches: every artifact must have the same
sha256 (and bytes). With ``SOURCE_DATE_EPOCH`` the bytes change (the timestamps) but agree again.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.workloads import Workload, artifact_shas, digests, make_workload, read_manifest, run_cli

EPOCH = 1_700_000_000  # 2023-11-14 22:13:20 UTC
EPOCH_DOS = (2023, 11, 14, 22, 13, 20)
DEFAULT_DOS = (1980, 1, 1, 0, 0, 0)
FAR_EAST = "Pacific/Kiritimati" if Path("/usr/share/zoneinfo/Pacific/Kiritimati").exists() else "<+14>-14"

#: Extra source files of fn001: an executable script, a nested folder, a non-ASCII name.
EXTRA_SOURCE = {"scripts/run.sh": "#!/bin/sh\necho run\n", "pkg/helpers.py": "X = 1\n",
                "pkg/données.txt": "é\n", "Zeta.py": "Z = 1\n"}


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    root = tmp_path_factory.mktemp("origin")
    workload = make_workload(root / "project", functions=8, seed=11, runtime="python3.12", architecture="arm64",
                             local_packages=14)
    for rel, text in EXTRA_SOURCE.items():
        path = workload.source("fn001") / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (workload.source("fn001") / "scripts/run.sh").chmod(0o755)
    return workload


def _clone_a(origin: Workload, dest: Path) -> Path:
    shutil.copytree(origin.root, dest)
    for path in [dest, *dest.rglob("*")]:
        executable = path.is_dir() or path.name == "run.sh"
        path.chmod(0o755 if executable else 0o644)
    return dest


def _clone_b(origin: Workload, dest: Path, seed: int) -> Path:
    """A clone as a umask-077 checkout would leave it, with scattered mtimes."""
    shutil.copytree(origin.root, dest, copy_function=shutil.copyfile)
    rng = random.Random(seed)
    paths = sorted(dest.rglob("*"), key=lambda p: len(p.parts), reverse=True)  # files before their folders
    for path in [*paths, dest]:
        executable = path.is_dir() or path.name == "run.sh"
        path.chmod(0o700 if executable else 0o600)
        moment = rng.randrange(300_000_000, 2_000_000_000)
        os.utime(path, (moment, moment))
    return dest


@dataclass
class Clone:
    project: Path
    dist: Path
    code: int
    stderr: str

    @property
    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.dist)

    def zips(self) -> dict[str, Path]:
        return {e["file"]: self.dist / e["file"] for kind in ("layers", "functions") for e in self.manifest[kind]}


def _package_pair(origin: Workload, base: Path, extra_env: dict[str, str | None]) -> tuple[Clone, Clone]:
    a = _clone_a(origin, base / "a" / "project")
    b = _clone_b(origin, base / "b dir with space" / "the project", seed=7)
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()

    def env(name: str, tz: str) -> dict[str, str | None]:
        return {"LBUILD_CACHE_DIR": str(base / f"lbuild-cache-{name}"), "UV_CACHE_DIR": str(base / f"uv-cache-{name}"),
                "TZ": tz, **extra_env}

    code_a, _, err_a = run_cli(["package"], a, env("a", "UTC"), umask=0o022)
    out_b = base / "b dir with space" / "out dir"
    code_b, _, err_b = run_cli(["--config", str(b / "lbuild.toml"), "package", "--out", str(out_b)], elsewhere,
                               env("b", FAR_EAST), umask=0o077)
    return Clone(a, a / "dist", code_a, err_a), Clone(b, out_b, code_b, err_b)


@pytest.fixture(scope="module")
def default_pair(origin: Workload, tmp_path_factory: pytest.TempPathFactory) -> tuple[Clone, Clone]:
    return _package_pair(origin, tmp_path_factory.mktemp("default"), {"SOURCE_DATE_EPOCH": None})


@pytest.fixture(scope="module")
def epoch_pair(origin: Workload, tmp_path_factory: pytest.TempPathFactory) -> tuple[Clone, Clone]:
    return _package_pair(origin, tmp_path_factory.mktemp("epoch"), {"SOURCE_DATE_EPOCH": str(EPOCH)})


def _same_artifacts(a: Clone, b: Clone) -> dict[str, str]:
    assert a.code == 0, a.stderr
    assert b.code == 0, b.stderr
    shas = artifact_shas(a.manifest)
    assert len(shas) > 8, "expected layers as well as the 8 function bundles"
    assert artifact_shas(b.manifest) == shas
    zips_a, zips_b = a.zips(), b.zips()
    assert zips_a.keys() == zips_b.keys()
    for file, path in zips_a.items():
        assert path.read_bytes() == zips_b[file].read_bytes(), file
    for entry in a.manifest["layers"] + a.manifest["functions"]:
        assert digests(a.dist / entry["file"]) == (entry["sha256"], entry["code_sha256"])
    return shas


def test_two_clones_give_identical_artifacts(default_pair: tuple[Clone, Clone]) -> None:
    _same_artifacts(*default_pair)


def test_two_clones_give_identical_manifests_and_locks(default_pair: tuple[Clone, Clone]) -> None:
    a, b = default_pair
    assert a.code == b.code == 0, a.stderr + b.stderr
    assert a.manifest == b.manifest
    assert (a.project / "lbuild.lock").read_bytes() == (b.project / "lbuild.lock").read_bytes()


def _entries_normalised(clone: Clone, when: tuple[int, ...]) -> None:
    for file, path in clone.zips().items():
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names, key=str.encode), file
        for info in infos:
            assert not info.is_dir(), (file, info.filename)
            assert info.date_time == when, (file, info.filename, info.date_time)
            assert info.external_attr >> 16 in (stat.S_IFREG | 0o644, stat.S_IFREG | 0o755), (file, info.filename)
            assert info.create_system == 3
            assert info.extra == b"" and info.comment == b"", (file, info.filename)
            assert info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        if file == "functions/fn001.zip":
            modes = {i.filename: i.external_attr >> 16 & 0o777 for i in infos}
            assert modes["scripts/run.sh"] == 0o755  # 0700 in clone B: the execute bit survives, normalised
            assert modes["app.py"] == modes["pkg/données.txt"] == 0o644  # 0600 in clone B


def test_zip_entries_are_normalised(default_pair: tuple[Clone, Clone]) -> None:
    for clone in default_pair:
        assert clone.code == 0, clone.stderr
        _entries_normalised(clone, DEFAULT_DOS)


def test_source_date_epoch_changes_the_bytes_and_stays_reproducible(
        default_pair: tuple[Clone, Clone], epoch_pair: tuple[Clone, Clone]) -> None:
    default = _same_artifacts(*default_pair)
    with_epoch = _same_artifacts(*epoch_pair)
    assert with_epoch.keys() == default.keys()
    assert all(with_epoch[k] != default[k] for k in default), "every zip carries the timestamp"
    for clone in epoch_pair:
        _entries_normalised(clone, EPOCH_DOS)
