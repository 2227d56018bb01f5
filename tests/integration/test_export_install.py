"""``lbuild export`` through the CLI: pip installs the exported requirements with ``--require-hashes``, for the
function's target, from the project's own wheel folder; the pylock.toml parses back; a missing or stale lock
and an unknown function fail as everywhere else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lbuild import rules
from lbuild.rules import Target
from tests.support.workloads import Workload, cli_env, make_workload, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture()
def workload(tmp_path: Path) -> Workload:
    workload = make_workload(tmp_path / "wl", functions=3)
    code, _, err = run_cli(["lock"], workload.root)
    assert code == 0, err
    return workload


def _pip_install(workload: Workload, requirements: Path, target: Path) -> subprocess.CompletedProcess[str]:
    """pip, offline, for the function's target (python3.12 on aarch64 Linux): only hashed, locked wheels."""
    platforms = [arg for tag in rules.platform_tags(Target("python3.12", "arm64")) for arg in ("--platform", tag)]
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
         "--find-links", str(workload.wheels), "--require-hashes", "--no-deps", "--only-binary", ":all:",
         *platforms, "--python-version", "3.12", "--implementation", "cp",
         "--target", str(target), "-r", str(requirements)],
        capture_output=True, text=True, check=False, timeout=300, env=cli_env(),
    )


def _installed(target: Path) -> set[str]:
    return {p.name.split("-")[0] for p in target.glob("*.dist-info")}


def test_exported_requirements_install_with_require_hashes(workload: Workload, tmp_path: Path) -> None:
    function = workload.functions[0]
    out = tmp_path / "requirements.txt"
    code, stdout, err = run_cli(["export", function, "--format", "requirements", "-o", str(out)], workload.root)
    assert code == 0 and stdout == "", err
    assert f"wrote {out}" in err
    closure = {name.replace("-", "_") for name in workload.closure(function)}
    assert closure

    done = _pip_install(workload, out, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    assert _installed(tmp_path / "site") == closure, "exactly the closure, each locked wheel (x86_64 ones differ)"

    same, printed, _ = run_cli(["export", function], workload.root)
    assert same == 0 and printed == out.read_text(encoding="utf-8"), "stdout by default, requirements by default"

    tampered = tmp_path / "tampered.txt"
    text = out.read_text(encoding="utf-8")
    first_hash = text.index("--hash=sha256:") + len("--hash=sha256:")
    tampered.write_text(text[:first_hash] + ("0" if text[first_hash] != "0" else "1") + text[first_hash + 1:],
                        encoding="utf-8")
    refused = _pip_install(workload, tampered, tmp_path / "site2")
    assert refused.returncode != 0 and "HASH" in refused.stderr.upper(), "pip checks every hash"


def test_exported_pylock_parses_back_with_paths_relative_to_it(workload: Workload, tmp_path: Path) -> None:
    function = workload.functions[1]
    out = tmp_path / "export" / "pylock.toml"
    out.parent.mkdir()
    code, _, err = run_cli(["export", function, "--format", "pylock", "-o", str(out)], workload.root)
    assert code == 0, err
    data = tomllib.loads(out.read_text(encoding="utf-8"))
    assert data["lock-version"] == "1.0" and data["created-by"] == "lbuild"
    names = {p["name"] for p in data["packages"]}
    assert names == set(workload.closure(function))
    for package in data["packages"]:
        (wheel,) = package["wheels"]
        assert (out.parent / wheel["path"]).resolve().is_file(), wheel
        assert wheel["name"].endswith(("py3-none-any.whl", "aarch64.whl"))
    pylock_module = pytest.importorskip("packaging.pylock", reason="this packaging has no pylock validator")
    pylock_module.Pylock.from_dict(data).validate()


def test_missing_stale_lock_and_unknown_function(tmp_path: Path) -> None:
    workload = make_workload(tmp_path / "wl", functions=2)
    code, out, err = run_cli(["export", "fn001"], workload.root)
    assert code == 10 and out == "", err
    assert "error: lbuild.lock does not exist" in err and "hint: run `lbuild lock` first" in err

    assert run_cli(["lock"], workload.root)[0] == 0
    requirements = workload.source("fn001") / "requirements.txt"
    requirements.write_text(requirements.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    code, _, err = run_cli(["export", "fn001", "-o", str(tmp_path / "r.txt")], workload.root)
    assert code == 10 and "error: lbuild.lock is stale: function 'fn001'" in err, err
    assert not (tmp_path / "r.txt").exists()

    code, _, err = run_cli(["export", "fn009"], workload.root)
    assert code == 2 and "error: unknown function 'fn009'" in err, err
    code, _, err = run_cli(["export"], workload.root)
    assert code == 2 and "error: lbuild.toml has 2 functions; name the one to export (lbuild export)" in err
    assert "hint: the functions are: fn001, fn002" in err
    code, _, err = run_cli(["export", "fn001", "--format", "conda"], workload.root)
    assert code == 2 and "error: unknown --format 'conda' (--format)" in err
    assert "hint: use one of: requirements, pylock" in err
    code, out, err = run_cli(["--json", "export", "fn001"], workload.root)
    assert code == 2 and "error: export writes a requirements file or a pylock.toml, not JSON" in err
    assert json.loads(out)["exit_code"] == 2, "with --json, the error is the one JSON document"


def test_the_only_function_is_the_default(tmp_path: Path) -> None:
    workload = make_workload(tmp_path / "one", functions=1)
    assert run_cli(["lock"], workload.root)[0] == 0
    code, default, err = run_cli(["export"], workload.root)
    assert code == 0, err
    assert default == run_cli(["export", workload.functions[0], "--format", "requirements"], workload.root)[1]
    assert f"function {workload.functions[0]}," in default.splitlines()[0]


def test_an_output_that_cannot_be_written_is_exit_2(workload: Workload, tmp_path: Path) -> None:
    function = workload.functions[0]
    code, _, err = run_cli(["export", function, "-o", str(tmp_path)], workload.root)
    assert code == 2 and f"error: {tmp_path} is a directory (--output)" in err and "hint: name a file" in err
    missing = tmp_path / "no" / "such" / "requirements.txt"
    code, _, err = run_cli(["export", function, "-o", str(missing)], workload.root)
    assert code == 2 and f"error: {missing} cannot be written" in err, err
    assert f"hint: make {missing.parent} exist and be writable" in err
