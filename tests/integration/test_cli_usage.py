"""Command-line usage errors: the contract's message format and exit code 2, whichever click typer carries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.workloads import run_cli


@pytest.mark.parametrize(("args", "what", "where"), [
    (["lock", "--bogus"], "error: No such option: --bogus", "lbuild lock)"),
    (["nosuchcmd"], "error: No such command 'nosuchcmd' (", "lbuild)"),
    (["deploy", "--alias"], "error: No such option: --alias", "lbuild deploy)"),
    (["package", "--out"], "error: Option '--out' requires an argument", "lbuild)"),
])
def test_a_usage_error_is_one_message_and_exit_2(tmp_path: Path, args: list[str], what: str, where: str) -> None:
    code, stdout, stderr = run_cli(args, tmp_path)
    assert code == 2, stderr
    first, hint = stderr.strip().splitlines()
    assert first.startswith(what) and first.endswith(where), stderr
    assert hint.startswith("hint: see `") and hint.endswith(" --help`"), stderr
    assert "unexpected" not in stderr and "Traceback" not in stderr
    assert stdout == ""


def test_a_usage_error_with_json_is_one_document(tmp_path: Path) -> None:
    code, stdout, _ = run_cli(["--json", "lock", "--bogus"], tmp_path)
    assert code == 2
    assert json.loads(stdout) == {"error": "No such option: --bogus", "exit_code": 2,
                                  "hint": json.loads(stdout)["hint"], "where": json.loads(stdout)["where"]}


def test_version(tmp_path: Path) -> None:
    code, stdout, _ = run_cli(["--version"], tmp_path)
    assert code == 0 and stdout.startswith("lbuild ")
