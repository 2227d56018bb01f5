"""Ctrl-C during ``lbuild deploy``: nothing half-moved, a clear message, and a re-run finishes the job."""

from __future__ import annotations

from typing import Any

import pytest

from lbuild.publisher import execute
from lbuild.publisher.plan import CreateFunction
from lbuild.steps import Step
from tests.integration.test_deploy import Demo


def test_ctrl_c_moves_no_alias_and_a_rerun_finishes(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    original = execute.Executor._do

    def interrupted(self: execute.Executor, step: Step) -> Any:
        if isinstance(step, CreateFunction) and step.function.key == "users":
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C while this call ran
        return original(self, step)

    with monkeypatch.context() as patch:
        patch.setattr(execute.Executor, "_do", interrupted)
        result = demo.run("deploy", "--yes")
    assert result.code == 130, result.stderr  # an interrupt exits 130
    assert "deploy stopped: interrupted" in result.stderr
    assert "no alias was moved" in result.stderr and "run `lbuild deploy` again" in result.stderr
    assert all(demo.alias_version(name) is None for name in demo.names), "no alias moved"

    again = demo.deploy()
    assert again.json()["changes"] > 0
    assert all(demo.alias_version(name) == "1" for name in demo.names)
