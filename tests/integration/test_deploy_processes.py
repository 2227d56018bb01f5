"""Real ``lbuild deploy`` processes: a real SIGINT at each phase, and two deploys of different builds at once.

Each deploy runs as ``python -m lbuild`` in its own process, against moto in server mode behind the fault
proxy (tests/support/faultproxy.py). The proxy sends the signal at an exact request (before it reaches moto,
or after moto performed it), and holds requests to make two deploys overlap. State is read straight from
moto. The project has an ``artifact_bucket``, so deploys take the project's deploy lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_deploy import ALIAS, FUNCTIONS, PROJECT, REPO, Demo
from tests.integration.test_deploy_faults import snapshot
from tests.support.faultproxy import FaultProxy, Rule

BUCKET = "demo-artifacts"
LOCK_KEY = f"lbuild/{PROJECT}/deploy.lock"


def _fn(name: str) -> str:
    return f"{PROJECT}-{name}"


class Process:
    """One ``lbuild`` process in a project folder, with the test's environment (AWS_ENDPOINT_URL: the proxy)."""

    def __init__(self, root: Path, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        self.popen = subprocess.Popen([sys.executable, "-m", "lbuild", *args], cwd=root, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout = self.stderr = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait(self, timeout: float = 120) -> int:
        self.stdout, self.stderr = self.popen.communicate(timeout=timeout)
        return self.popen.returncode

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture()
def locked_demo(demo: Demo, fault_proxy: FaultProxy) -> Demo:
    """The demo project with an artifact bucket (so deploys hold the deploy lock), packaged."""
    demo.aws.create_bucket(BUCKET)
    demo.bucket = BUCKET
    demo.write()
    assert demo.run("package").code == 0
    return demo


def _lock_object(demo: Demo) -> bool:
    return bool(demo.aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY).get("KeyCount"))


def _reference(demo: Demo) -> dict[str, Any]:
    demo.deploy()
    reference = snapshot(demo.aws, demo.names)
    demo.aws.reset()
    demo.aws.create_role(demo.aws.role_name)
    demo.aws.create_bucket(BUCKET)
    return reference


INTERRUPTS = {
    # phase: the rule that sends SIGINT (the pid is filled in once the process runs)
    "after the first layer is published": dict(op="^PublishLayerVersion$", nth=1, after=True),
    "at the third create of a function": dict(op="^CreateFunction$", nth=3),
    "after the last function is created": dict(op="^CreateFunction$", nth=len(FUNCTIONS), after=True),
}


@pytest.mark.parametrize("phase", list(INTERRUPTS))
def test_sigint_before_the_release_moves_no_alias_releases_the_lock_and_a_rerun_finishes(
        locked_demo: Demo, fault_proxy: FaultProxy, phase: str) -> None:
    demo = locked_demo
    reference = _reference(demo)
    running: list[Process] = []
    fault_proxy.add(Rule("signal", service="lambda", signal=int(signal.SIGINT), pid=lambda: running[0].pid,
                         **INTERRUPTS[phase]))  # type: ignore[arg-type]
    running.append(Process(demo.root, "deploy", "--yes", "--json"))
    code = running[0].wait()
    assert code == 130, running[0].stderr
    error = running[0].json()
    assert error["error"].startswith("deploy stopped: interrupted"), error["error"]
    assert "no alias was moved" in error["hint"]
    assert all(demo.alias_version(n) is None for n in FUNCTIONS), "no alias moved"
    assert not _lock_object(demo), "the deploy lock was released"
    assert "Traceback" not in running[0].stderr

    fault_proxy.clear()
    demo.deploy()
    assert snapshot(demo.aws, demo.names) == reference


def test_sigint_in_the_release_is_deferred_until_every_alias_moved(locked_demo: Demo,
                                                                   fault_proxy: FaultProxy) -> None:
    demo = locked_demo
    running: list[Process] = []
    fault_proxy.add(Rule("signal", service="lambda", op="^CreateAlias$", nth=1, pid=lambda: running[0].pid))
    running.append(Process(demo.root, "deploy", "--yes", "--json"))
    code = running[0].wait()
    assert code == 0, running[0].stderr
    assert "Ctrl-C came during the release; it was finished first" in running[0].stderr
    assert all(demo.alias_version(n) == "1" for n in FUNCTIONS), "the release finished"
    assert not _lock_object(demo)


def test_a_second_sigint_in_the_release_stops_at_once_and_says_which_alias_moved(
        locked_demo: Demo, fault_proxy: FaultProxy) -> None:
    demo = locked_demo
    running: list[Process] = []
    fault_proxy.add(Rule("signal", service="lambda", op="^CreateAlias$", nth=1, pid=lambda: running[0].pid))
    fault_proxy.add(Rule("hold", service="lambda", op="^CreateAlias$", seconds=2.0))  # the others are slow
    running.append(Process(demo.root, "deploy", "--yes", "--json"))
    deadline = time.monotonic() + 60
    while not fault_proxy.count(fault="signal") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the first Ctrl-C has been handled (two at once would arrive as one)
    os.kill(running[0].pid, signal.SIGINT)
    code = running[0].wait()
    assert code == 130, running[0].stderr
    error = running[0].json()
    moved = {s["what"] for s in error["steps"] if s["action"] == "MoveAlias" and s["status"] == "done"}
    live = {f"create alias {ALIAS} of {_fn(n)}" for n in FUNCTIONS if demo.alias_version(n) is not None}
    assert moved == live, "the report says exactly which aliases point at the new versions"
    assert not _lock_object(demo)
    fault_proxy.clear()
    demo.deploy()
    assert all(demo.alias_version(n) == "1" for n in FUNCTIONS)


# --- two deploys of different builds at once ------------------------------------------------------------------


def _build(demo: Demo, root: Path, mark: str, memory: int) -> Demo:
    """A copy of the project (same name, same bucket) with its own code and memory: another build."""
    copy = Demo(root, demo.aws, demo.wheelhouse, demo.run_cli, role=demo.role, bucket=BUCKET,
                memory={"orders": memory})
    copy.write()
    for name in ("users", "reports"):
        (root / "functions" / name / "app.py").write_text(f"def handler(e, c):\n    return {mark!r}\n")
    (root / "lbuild.lock").write_bytes((demo.root / "lbuild.lock").read_bytes())
    assert copy.run("package", "--locked").code == 0
    return copy


def _serving(demo: Demo, builds: dict[str, Demo]) -> set[str]:
    """The builds whose code and memory every alias serves (functions alike in both builds fit both)."""
    served = set(builds)
    for name in FUNCTIONS:
        target = demo.aws.lambda_.get_function(FunctionName=_fn(name), Qualifier=ALIAS)["Configuration"]
        served &= {label for label, build in builds.items()
                   if target["CodeSha256"] == next(f["code_sha256"] for f in build.manifest()["functions"]
                                                   if f["name"] == name)
                   and target["MemorySize"] == build.memory.get(name, 256)}
    return served


@pytest.mark.parametrize("timeout", ["60", "0"])
def test_two_deploys_of_different_builds_never_mix(locked_demo: Demo, fault_proxy: FaultProxy, tmp_path: Path,
                                                   timeout: str) -> None:
    demo = locked_demo
    demo.deploy()
    builds = {"Y": _build(demo, tmp_path / "y", "Y", 512), "Z": _build(demo, tmp_path / "z", "Z", 1024)}
    fault_proxy.add(Rule("hold", service="lambda", op="^UpdateFunctionCode$", seconds=2.0, times=1))
    runs = {label: Process(build.root, "deploy", "--yes", "--json", "--lock-timeout", timeout)
            for label, build in builds.items()}
    codes = {label: run.wait() for label, run in runs.items()}
    if timeout == "60":
        assert codes == {"Y": 0, "Z": 0}, {k: r.stderr for k, r in runs.items()}
        waited = [label for label, run in runs.items() if "waiting up to" in run.stderr]
        assert len(waited) == 1, "one deploy waited for the other's lock"
        assert _serving(demo, builds) == set(waited), "every alias serves the build deployed last"
    else:
        assert sorted(codes.values()) == [0, 6], {k: r.stderr for k, r in runs.items()}
        loser = next(label for label, code in codes.items() if code == 6)
        winner = next(label for label, code in codes.items() if code == 0)
        error = runs[loser].json()
        assert error["code"] == "LockHeld" and "holds the deploy lock" in error["error"]
        assert "lbuild unlock " in error["hint"] and "--lock-timeout" in error["hint"]
        assert _serving(demo, builds) == {winner}
        assert runs[loser].json().get("steps") is None, "the loser wrote nothing"
    assert not _lock_object(demo)
    for run in runs.values():
        assert "Traceback" not in run.stderr


def test_a_killed_deploy_leaves_a_lock_that_unlock_removes(locked_demo: Demo, fault_proxy: FaultProxy) -> None:
    demo = locked_demo
    running: list[Process] = []
    fault_proxy.add(Rule("signal", service="lambda", op="^CreateFunction$", nth=1, signal=int(signal.SIGKILL),
                         pid=lambda: running[0].pid))
    running.append(Process(demo.root, "deploy", "--yes"))
    assert running[0].wait() == -signal.SIGKILL
    assert _lock_object(demo), "a killed runner cannot release its lock"
    fault_proxy.clear()

    blocked = demo.run("deploy", "--yes", "--json")
    assert blocked.code == 6
    error = blocked.json()
    lock_id = error["hint"].split("lbuild unlock ", 1)[1].split("`")[0]
    assert f"lock ID {lock_id}" in error["error"] and "pid" in error["error"]

    wrong = demo.run("unlock", "nope")
    assert wrong.code == 2 and f"lock ID {lock_id}" in wrong.stderr
    removed = demo.run("unlock", lock_id, "--json")
    assert removed.code == 0 and removed.json()["removed"] is True
    started = time.monotonic()
    demo.deploy()
    assert time.monotonic() - started < 30
    assert all(demo.alias_version(n) == "1" for n in FUNCTIONS)


def test_prune_takes_the_deploy_lock_and_refuses_while_a_deploy_holds_it(locked_demo: Demo,
                                                                          fault_proxy: FaultProxy) -> None:
    demo = locked_demo
    demo.deploy()
    for n in range(2):
        (demo.root / "functions" / "users" / "app.py").write_text(f"def handler(e, c):\n    return {n}\n")
        demo.deploy()
    (demo.root / "functions" / "orders" / "app.py").write_text("def handler(e, c):\n    return 'held'\n")
    assert demo.run("package").code == 0
    fault_proxy.add(Rule("hold", service="lambda", op="^UpdateFunctionCode$", seconds=4.0, times=1))
    deploying = Process(demo.root, "deploy", "--yes", "--json")
    deadline = time.monotonic() + 60
    while not _lock_object(demo) and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = demo.run("prune", "--keep", "0", "--yes", "--json")
    assert refused.code == 6, refused.stderr
    assert refused.json()["code"] == "LockHeld" and "another deploy holds the deploy lock" in refused.json()["error"]
    assert demo.versions("users") == ["1", "2", "3"], "prune deleted nothing"
    assert deploying.wait() == 0, deploying.stderr
    pruned = demo.run("prune", "--keep", "0", "--yes", "--lock-timeout", "30")
    assert pruned.code == 0, pruned.stderr
    assert demo.versions("users") == ["3"]
    assert not _lock_object(demo)
