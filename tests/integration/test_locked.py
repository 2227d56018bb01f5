"""``--locked``: CI builds exactly what lbuild.lock says, or fails; it never re-locks."""

from __future__ import annotations

from pathlib import Path

from tests.support.workloads import make_workload, run_cli


def test_locked_refuses_a_missing_or_stale_lock_and_builds_an_up_to_date_one(tmp_path: Path) -> None:
    workload = make_workload(tmp_path / "wl", functions=3)
    code, _, err = run_cli(["package", "--locked"], workload.root)
    assert code == 10, err
    assert "lbuild.lock is not up to date: lbuild.lock does not exist" in err
    assert "hint: run `lbuild lock` and commit lbuild.lock" in err
    assert not (workload.root / "lbuild.lock").exists() and not (workload.root / "dist").exists()

    assert run_cli(["lock"], workload.root)[0] == 0
    code, _, err = run_cli(["package", "--locked"], workload.root)
    assert code == 0, err

    first = workload.functions[0]
    requirements = workload.source(first) / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# edited\n")
    before = (workload.root / "lbuild.lock").read_bytes()
    code, _, err = run_cli(["package", "--locked"], workload.root)
    assert code == 10 and f"function '{first}'" in err, err
    assert (workload.root / "lbuild.lock").read_bytes() == before, "--locked never rewrites the lock"
