"""A zip is trusted by its sha256, never by its size: a byte flipped in the build cache or in dist/ is found on the
next ``lbuild package``, which rebuilds (or copies again) the artifact with a warning and ships the original
bytes. Fault campaign observation: an altered cached zip was copied to dist/ and deployed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.workloads import make_workload, read_manifest, run_cli


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def packaged(tmp_path: Path) -> tuple[Path, dict[str, str | None], dict[str, object]]:
    workload = make_workload(tmp_path / "project", functions=3, seed=5, local_packages=6)
    env: dict[str, str | None] = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    code, _, stderr = run_cli(["package", "--out", str(tmp_path / "d1")], workload.root, env)
    assert code == 0, stderr
    return workload.root, env, read_manifest(tmp_path / "d1")


@pytest.mark.parametrize("kind", ["functions", "layers"])
def test_a_corrupt_zip_in_the_build_cache_is_rebuilt(tmp_path: Path, kind: str,
                                                     packaged: tuple[Path, dict[str, str | None],
                                                                     dict[str, object]]) -> None:
    root, env, first = packaged
    entries = first[kind]
    assert isinstance(entries, list) and entries, f"the workload has {kind}"
    entry = entries[0]
    total = len(first["layers"]) + len(first["functions"])  # type: ignore[arg-type]
    cached = tmp_path / "cache" / "artifacts" / entry["cache_key"][:2] / f"{entry['cache_key']}.zip"
    assert _sha(cached) == entry["sha256"]
    _flip(cached)
    code, _, stderr = run_cli(["package", "--out", str(tmp_path / "d2")], root, env)
    assert code == 0, stderr
    assert "warning:" in stderr and "does not match its sha256: rebuilding it" in stderr and str(cached) in stderr
    assert f"(1 built, {total - 1} from cache)" in stderr
    again = next(e for e in read_manifest(tmp_path / "d2")[kind] if e["name"] == entry["name"])
    assert again["sha256"] == entry["sha256"]
    assert _sha(tmp_path / "d2" / entry["file"]) == entry["sha256"] == _sha(cached)


def test_a_corrupt_zip_in_dist_is_replaced(tmp_path: Path,
                                           packaged: tuple[Path, dict[str, str | None], dict[str, object]]) -> None:
    root, env, first = packaged
    entry = first["functions"][0]  # type: ignore[index]
    shipped = tmp_path / "d1" / entry["file"]
    _flip(shipped)
    code, _, stderr = run_cli(["package", "--out", str(tmp_path / "d1")], root, env)
    assert code == 0, stderr
    assert _sha(shipped) == entry["sha256"]
