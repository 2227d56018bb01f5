"""Shell completion, the typer way: ``lbuild --show-completion bash`` prints a script, ``--install-completion
bash`` installs it, and bash with the script sourced completes lbuild's commands and options."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.workloads import cli_env

BIN = str(Path(sys.executable).parent)  # where the venv's `lbuild` script is


def _lbuild(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lbuild", *args], capture_output=True, text=True, check=False,
                          timeout=60, env=cli_env(env), stdin=subprocess.DEVNULL)


def test_show_completion_prints_a_bash_script() -> None:
    shown = _lbuild("--show-completion", "bash")
    assert shown.returncode == 0, shown.stderr
    assert "complete -o default -F _lbuild_completion lbuild" in shown.stdout, "named lbuild under python -m too"
    assert "_LBUILD_COMPLETE=complete_bash" in shown.stdout


def test_installed_script_completes_commands_and_options_in_bash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    installed = _lbuild("--install-completion", "bash", env={"HOME": str(home), "SHELL": "/bin/bash"})
    assert installed.returncode == 0, installed.stderr
    script = home / ".bash_completions" / "lbuild.sh"
    assert f"source '{script}'" in (home / ".bashrc").read_text(encoding="utf-8")
    assert script.read_text(encoding="utf-8").strip() == _lbuild("--show-completion", "bash").stdout.strip()

    bash = shutil.which("bash")
    assert bash and shutil.which("lbuild", path=BIN), "bash and the venv's lbuild script"

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        done = subprocess.run(
            [bash, "--norc", "-c", f'source "{script}"; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; '
             '_lbuild_completion lbuild; printf "%s\\n" "${COMPREPLY[@]}"'],
            capture_output=True, text=True, check=False, timeout=60, cwd=tmp_path,
            env=cli_env({"PATH": BIN + os.pathsep + os.environ.get("PATH", "")}))
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert "plan" in complete("lbuild", "pl") and "package" not in complete("lbuild", "pl")
    assert complete("lbuild", "plan", "--form") == ["--format"]
    assert "export" in complete("lbuild", "ex")
