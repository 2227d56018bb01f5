"""Shell completion, the typer way: ``lbuild --show-completion bash`` prints a script, and the protocol it calls
completes lbuild's commands and options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.workloads import cli_env


def _lbuild(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbuild", *args], capture_output=True, text=True, check=False,
                          timeout=60, env=cli_env(env), stdin=subprocess.DEVNULL)


def test_show_completion_prints_a_bash_script() -> None:
    shown = _lbuild("--show-completion", "bash")
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _lbuild_completion lbuild" in shown.stdout
    assert "_LBUILD_COMPLETE=complete_bash" in shown.stdout


def test_the_script_completes_commands_and_options(tmp_path: Path) -> None:
    """What bash runs on <TAB>: the script's environment variables, lbuild answering with candidates."""
    def complete(words: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", "import sys; from lbuild.cli import run; sys.argv[0] = 'lbuild'; "
                               "run()"], capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
                              env=cli_env({"_LBUILD_COMPLETE": "complete_bash", "COMP_WORDS": words,
                                           "COMP_CWORD": str(len(words.split(" ")) - 1)}))
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert "plan" in complete("lbuild pl") and "package" not in complete("lbuild pl")
    assert complete("lbuild plan --form") == ["--format"]
    assert "export" in complete("lbuild ex")
