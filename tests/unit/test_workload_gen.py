"""tests/support/workload_gen.py: deterministic for a seed, and its wheels say what workload.json says."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from lbuild.builders.wheels import parse_metadata, read_wheel_metadata
from tests.support.workload_gen import generate, make_pool


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", functions=5, seed=3, local_packages=8)
    generate(tmp_path / "b", functions=5, seed=3, local_packages=8)
    generate(tmp_path / "c", functions=5, seed=4, local_packages=8)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert _tree(tmp_path / "a") != _tree(tmp_path / "c")


def test_wheels_and_requirements_match_workload_json(tmp_path: Path) -> None:
    meta = generate(tmp_path, functions=12, seed=2, runtime="python3.11", architecture="x86_64",
                    local_packages=10, pin="closure")
    assert json.loads((tmp_path / "workload.json").read_text()) == meta
    pool = {p.name: p for p in make_pool(10, 2)}
    requires = {}
    for wheel in sorted((tmp_path / "wheels").glob("*.whl")):
        info = parse_metadata(read_wheel_metadata(wheel))
        requires[info.name] = sorted(r.split(">=")[0] for r in info.requires_dist)
        assert info.version == "1.2.0"
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
        if "-cp311-cp311-manylinux_2_17_" in wheel.name:
            machine = "x86_64" if "x86_64" in wheel.name else "aarch64"
            assert f"{info.name.replace('-', '_')}/_native.cpython-311-{machine}-linux-gnu.so" in names
        else:
            assert wheel.name.endswith("-py3-none-any.whl")
    assert requires == {name: list(p.deps) for name, p in pool.items()}
    assert list(meta["functions"]) == [f"fn{i:03d}" for i in range(1, 13)]
    for fn, entry in meta["functions"].items():
        lines = (tmp_path / "functions" / fn / "requirements.txt").read_text().splitlines()
        assert lines == [f"{n}==1.2.0" for n in entry["closure"]] == entry["requirements"]
        assert set(entry["direct"]) <= set(entry["closure"])
        assert all(set(pool[n].deps) <= set(entry["closure"]) for n in entry["closure"])
    assert max(meta["package_users"].values()) > 1  # something to share in a layer
    config = (tmp_path / "lbuild.toml").read_text()
    assert 'runtime = "python3.11"' in config and "[functions.fn012]" in config and "no_index = true" in config


def test_refuses_a_non_empty_folder_and_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(FileExistsError):
        generate(tmp_path)
    with pytest.raises(ValueError):
        generate(tmp_path / "new", runtime="py3")
