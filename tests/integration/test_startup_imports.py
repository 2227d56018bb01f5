"""A command loads only what it needs: a no-op ``lbuild package`` (the step every Makefile and CI job runs first)
starts without boto3, the docker SDK, the resolver's uv driver, the trigger families, the zip writer, the
requirement parser or the full gitignore matcher.

Read from ``python -X importtime`` of a real ``lbuild`` process: nothing in lbuild is patched to report it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import Fn, MakeProject
from tests.support.workloads import cli_env, run_cli

#: Modules a no-op package must not load, with why each is expensive or belongs to another command.
NOT_FOR_A_NO_OP = {
    "boto3": "plan and deploy talk to AWS, package does not",
    "botocore": "plan and deploy talk to AWS, package does not",
    "docker": "only image functions build with the engine",
    "lbuild.resolver.lock": "locking runs only when lbuild.lock is stale",
    "lbuild.resolver.uv": "uv runs only when locking",
    "lbuild.wiring.parse": "a project without triggers or settings needs no trigger family",
    "lbuild.wiring.esm": "a project without triggers or settings needs no trigger family",
    "lbuild.builders.zipper": "nothing is zipped when every artifact is cached",
    "lbuild.builders.audit": "nothing is audited when every artifact is cached",
    "lbuild.builders.image": "no function is an image",
    "lbuild.publisher.aws": "package publishes nothing",
    "packaging.requirements": "a fresh lock's fingerprints hash the requirement files: nothing is parsed",
    "pathspec": "the default excludes are name globs, matched without the full gitignore rules",
}


def _imported(root: Path, args: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "lbuild", *args], cwd=root, env=cli_env(None),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "self [us]" not in line}


def test_a_no_op_package_loads_no_aws_docker_locking_wiring_or_zip_code(tmp_path: Path,
                                                                          make_project: MakeProject) -> None:
    root = tmp_path / "p"
    make_project(root, {"orders": Fn("purea\n"), "users": Fn("purea\n"), "plain": None})
    code, _, stderr = run_cli(["package"], root)
    assert code == 0, stderr
    loaded = _imported(root, ["package", "--json"])
    assert "lbuild.builders.package" in loaded, "the reading of -X importtime found the command's own modules"
    wrong = {name: why for name, why in NOT_FOR_A_NO_OP.items() if name in loaded}
    assert wrong == {}


def test_a_project_with_triggers_loads_the_families_it_needs(tmp_path: Path, make_project: MakeProject) -> None:
    root = tmp_path / "p"
    make_project(root, {"orders": Fn("purea\n", extra='reserved_concurrency = 5'), "users": None})
    assert run_cli(["package"], root)[0] == 0
    loaded = _imported(root, ["package", "--json"])
    assert "lbuild.wiring.parse" in loaded, "settings are parsed (and checked) whenever lbuild.toml has them"
