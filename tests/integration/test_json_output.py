"""``--json`` prints one document: one line for a program reading a pipe, indented for a person at a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.support import Fn, MakeProject
from tests.support.workloads import cli_env, run_cli


def _through_a_terminal(args: list[str], cwd: Path) -> str:
    """stdout of ``lbuild ARGS`` written to a pseudo-terminal (a real tty for the process)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "lbuild", *args], cwd=cwd, env=cli_env(None), stdout=follower,
                            stderr=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_json_is_one_line_through_a_pipe_and_indented_on_a_terminal(tmp_path: Path,
                                                                    make_project: MakeProject) -> None:
    root = tmp_path / "p"
    make_project(root, {"orders": Fn("purea\n"), "users": Fn("purea\n")})
    code, piped, stderr = run_cli(["package", "--json"], root)
    assert code == 0, stderr
    assert piped.count("\n") == 1 and piped.endswith("\n"), "one line, the fast encoder's"
    shown = _through_a_terminal(["package", "--json"], root)
    assert shown.count("\n") > 10 and '\n  "functions": [' in shown
    assert json.loads(shown) == json.loads(piped)
